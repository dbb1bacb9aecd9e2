// Makes docs/img/dashboard.png: a gateway with a few routes, a blue-green upstream with one target down, an LLM
// route with priced models and consumers, ~20 s of traffic, then a screenshot of the dashboard in Debian's chromium.
//   node --import tsx scripts/dashboard-screenshot.ts [out.png]
import { createHash } from 'node:crypto';
import { chromium } from 'playwright-core';
import { startDemoServer } from '../src/demo/services.ts';
import { startLlmStub } from '../test/support/llm-stub.ts';
import { startGateway, call } from '../test/helpers.ts';

const out = process.argv[2] ?? 'docs/img/dashboard.png';
const hash = (k: string) => 'sha256:' + createHash('sha256').update(k).digest('hex');
const blue = await startDemoServer({ name: 'blue' });
const green = await startDemoServer({ name: 'green' });
const canary = await startDemoServer({ name: 'canary' });
const llm = await startLlmStub('openai', 'openai');
const g = await startGateway(`
pricing: { currency: USD, models: { gpt-4o-2024-08-06: { input: 2.5, output: 10 } } }
upstreams:
  chat:
    balance: weighted
    targets: [ { url: ${blue.url}, weight: 90 }, { url: ${green.url}, weight: 10 }, { url: ${canary.url}, weight: 0 } ]
    health: { path: /health, interval: 1s }
    circuitBreaker: { failures: 5, resetAfter: 10s }
  openai: { provider: openai, apiKey: "\${OPENAI_KEY}", targets: [ "${llm.url}" ] }
consumers:
  - { id: acme, plan: pro, keys: [ "${hash('key-acme')}" ] }
  - { id: globex, plan: pro, keys: [ "${hash('key-globex')}" ] }
  - { id: initech, plan: pro, keys: [ "${hash('key-initech')}" ] }
plans:
  pro: { quota: { cost: { limit: 50, period: month } } }
routes:
  - { name: api, match: { path: /api, prefix: true }, upstream: chat, auth: public, rateLimit: [ { limit: 40, window: 10s, by: ip } ] }
  - { name: completions, match: { path: /v1/chat/completions, methods: [POST] }, auth: apikey, models: { gpt-4o: [ { upstream: openai, model: gpt-4o-2024-08-06 } ] }, quota: { usage: cost } }
  - { name: legacy, match: { path: /v0, prefix: true }, upstream: chat, auth: public, enabled: false }
`, { env: { OPENAI_KEY: "sk-screenshot" } });
await canary.close(); // one target down: the standby the health checks now fail

const stop = Date.now() + 20_000;
const traffic = (async () => {
  let i = 0;
  while (Date.now() < stop) {
    i++;
    await call(`${g.url}/api/items?i=${i}`);
    if (i % 7 === 0) await call(`${g.url}/nope`);
    const who = ['acme', 'acme', 'globex', 'initech'][i % 4];
    if (i % 3 === 0) await call(`${g.url}/v1/chat/completions`, { method: 'POST', headers: { 'x-api-key': `key-${who}`, 'content-type': 'application/json' }, body: JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hello '.repeat(20 + (i % 50)) }] }) });
    await new Promise((r) => setTimeout(r, 60 + (i % 5) * 20));
  }
})();

const browser = await chromium.launch({ executablePath: process.env.GATEHOUSE_CHROMIUM ?? '/usr/bin/chromium', chromiumSandbox: false });
const page = await browser.newPage({ viewport: { width: 1360, height: 900 }, deviceScaleFactor: 1 });
await page.goto(`${g.adminUrl}/`);
await traffic;
await page.waitForTimeout(1500);
await page.screenshot({ path: out, fullPage: true });
console.log(`wrote ${out}`);
await browser.close();
await g.close();
await Promise.all([blue.close(), green.close(), llm.close()]);
