// The admin dashboard in a real browser: headless Debian chromium driven by playwright-core (no downloaded
// browser). Skips, saying why, only where chromium is missing (.ci/run installs it).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startDemoServer, type DemoServer } from '../../src/demo/services.ts';
import { DASHBOARD_CSP } from '../../src/admin/dashboard.ts';
import type { RouteRow } from '../../src/routing/describe.ts';
import { startGateway, call, eventually, type TestGateway } from '../helpers.ts';

const CHROMIUM = process.env.GATEHOUSE_CHROMIUM ?? '/usr/bin/chromium';
const skip = existsSync(CHROMIUM) ? false : `chromium not found at ${CHROMIUM} (apt-get install chromium, or set GATEHOUSE_CHROMIUM): the dashboard's browser tests did not run`;
const ARTIFACTS = 'test-artifacts';
const TOKEN = 'dash-Admin-Token-h15a-canary';

let browser: Browser;
before(async () => {
  if (skip) return;
  mkdirSync(ARTIFACTS, { recursive: true });
  browser = await chromium.launch({ executablePath: CHROMIUM, chromiumSandbox: false, args: ['--disable-gpu', '--disable-dev-shm-usage'] });
});
after(async () => { await browser?.close(); });

interface Watched { page: Page; errors: string[]; violations: string[]; urls: string[] }

/** A fresh page that records console errors, page errors, CSP violations and every URL it requests. */
async function openPage(url: string): Promise<Watched> {
  const context = await browser.newContext({ viewport: { width: 1360, height: 1000 } });
  const page = await context.newPage();
  const w: Watched = { page, errors: [], violations: [], urls: [] };
  page.on('console', (m) => { if (m.type() === 'error') w.errors.push(m.text()); });
  page.on('pageerror', (e) => w.errors.push(String(e)));
  page.on('request', (r) => w.urls.push(r.url()));
  await page.exposeFunction('reportViolation', (d: string) => w.violations.push(d));
  // Runs before the page's own script through the DevTools protocol (not subject to the page's CSP).
  await page.addInitScript(() => document.addEventListener('securitypolicyviolation', (e) => (window as unknown as { reportViolation(d: string): void }).reportViolation(`${e.effectiveDirective} ${e.blockedURI}`)));
  await page.goto(url);
  return w;
}

async function upstreamsOf(g: TestGateway, token?: string) {
  const r = await call(`${g.adminUrl}/admin/upstreams`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  assert.equal(r.status, 200);
  return r.json() as Array<{ name: string; targets: Array<{ url: string; weight: number; state: string }> }>;
}

test('the dashboard signs in with the admin token (never in a URL), loads with no console error or CSP violation, and shows the running routes, traffic and refusals', { skip }, async (t) => {
  const svc = await startDemoServer({ name: 'svc' });
  const g = await startGateway(`
admin: { token: ${TOKEN} }
upstreams:
  api: { targets: [ ${svc.url} ] }
routes:
  - { name: chat, match: { path: /v1/chat, methods: [GET, POST] }, upstream: api, auth: public }
  - { name: limited, match: { path: /limited }, upstream: api, auth: public, rateLimit: [ { limit: 2, window: 1h, by: ip } ] }
  - { name: retired, match: { path: /old, prefix: true }, upstream: api, auth: public, enabled: false }
`);
  t.after(async () => { await g.close(); await svc.close(); });

  const w = await openPage(`${g.adminUrl}/`);
  const main = await call(`${g.adminUrl}/`);
  assert.equal(main.headers['content-security-policy'], DASHBOARD_CSP);
  assert.equal(main.headers['x-frame-options'], 'DENY');

  // Signed out: the form, and no API call has been made yet (so no 401 in the console).
  await w.page.waitForSelector('#login:not([hidden])');
  assert.ok(!w.urls.some((u) => u.includes('/admin/')), 'nothing asked of the API before signing in');
  await w.page.fill('#token', 'wrong-token');
  await w.page.click('#login button[type=submit]');
  await w.page.waitForSelector('#login-error:text("refused")');
  w.errors.length = 0; // the refused token's 401 is the one console error this test expects
  await w.page.fill('#token', TOKEN);
  await w.page.click('#login button[type=submit]');
  await w.page.waitForSelector('#conn.live');

  // The routes of the running config, as `gatehouse routes` shows them.
  await w.page.waitForSelector('#routes tbody tr >> nth=2');
  const routes = await w.page.$$eval('#routes tbody tr', (rows) => rows.map((r) => [...r.querySelectorAll('td')].map((c) => c.textContent)));
  assert.deepEqual(routes.map((r) => r[0]), ['chat', 'limited', 'retired']);
  const described = (await call(`${g.adminUrl}/admin/routes`, { headers: { authorization: `Bearer ${TOKEN}` } })).json() as RouteRow[];
  assert.deepEqual(routes, described.map((r) => [r.name, r.methods, r.paths, r.conditions, r.upstream, r.rewrite, r.auth, r.policies, r.timeout]));
  assert.match(routes[1][7], /rate-limit/);
  assert.equal(routes[2][7], 'DISABLED');

  // Traffic, errors and rate-limit refusals show up live.
  for (let i = 0; i < 20; i++) await call(`${g.url}/v1/chat`);
  for (let i = 0; i < 5; i++) await call(`${g.url}/limited`);
  await call(`${g.url}/nowhere`);
  const row = (route: string) => w.page.$$eval('#traffic tbody tr', (rows, name) => rows.map((r) => [...r.querySelectorAll('td')].map((c) => c.textContent ?? '')).find((c) => c[0] === name), route);
  await eventually(async () => (await row('chat'))?.[9] === '20' && (await row('limited'))?.[7] === '3', 5000);
  const chat = (await row('chat'))!;
  assert.match(chat[3], /ms$/, 'a p50 from the histogram');
  assert.match(chat[4], /ms$/, 'a p99 from the histogram');
  assert.ok(Number(chat[1]) > 0, `a request rate (${chat[1]})`);
  const limited = (await row('limited'))!;
  assert.equal(limited[5], '3', '4xx in the window');
  assert.ok(await row('(no route)'), 'unmatched requests have their own row');
  assert.match(await w.page.textContent('#generation') ?? '', /^generation 1/);
  assert.match(await w.page.textContent('#config') ?? '', /none since start/);

  // The config generation and the last reload's result move with a reload.
  g.setConfig(`
admin: { token: ${TOKEN} }
upstreams:
  api: { targets: [ ${svc.url} ] }
routes:
  - { name: chat, match: { path: /v1/chat }, upstream: api, auth: public }
  - { name: extra, match: { path: /extra }, upstream: api, auth: public }
`);
  assert.equal((await call(`${g.adminUrl}/admin/reload`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } })).status, 200);
  await w.page.waitForSelector('#generation:text("generation 2")', { timeout: 3000 });
  assert.match(await w.page.textContent('#config') ?? '', /ok → generation 2[\s\S]*routes added: extra/);
  await w.page.waitForSelector('#routes td:text-is("extra")');

  await w.page.screenshot({ path: `${ARTIFACTS}/dashboard-overview.png`, fullPage: true });
  assert.deepEqual(w.errors, [], 'no console errors');
  assert.deepEqual(w.violations, [], 'no CSP violations');
  assert.ok(!w.urls.some((u) => u.includes(TOKEN)), 'the token is never in a URL');
  assert.ok(w.urls.every((u) => u.startsWith(g.adminUrl)), `nothing leaves the admin origin: ${w.urls.filter((u) => !u.startsWith(g.adminUrl)).join(', ')}`);

  // The violation detector works: the policy refuses an inline style and the page reports it.
  await w.page.evaluate(() => { const s = document.createElement('style'); s.textContent = 'body{}'; document.head.append(s); });
  await eventually(() => w.violations.some((v) => v.startsWith('style-src')), 2000);
  await w.page.context().close();
});

test('the dashboard shows a target going down within 2 s of its process dying, and switches weights blue → green with a confirmed dialog', { skip }, async (t) => {
  const blue = await startDemoServer({ name: 'blue' });
  const green = await startDemoServer({ name: 'green' });
  let spare: DemoServer | null = await startDemoServer({ name: 'spare' });
  const g = await startGateway(`
upstreams:
  chat:
    balance: weighted
    targets: [ { url: ${blue.url}, weight: 100 }, { url: ${green.url}, weight: 0 } ]
    health: { path: /health, interval: 100ms, timeout: 500ms, unhealthyThreshold: 1 }
  backup:
    targets: [ ${spare.url} ]
    health: { path: /health, interval: 100ms, timeout: 500ms, unhealthyThreshold: 1 }
routes:
  - { name: chat, match: { path: /v1/chat }, upstream: chat, auth: public }
  - { name: backup, match: { path: /backup }, upstream: backup, auth: public }
`);
  t.after(async () => { await g.close(); await blue.close(); await green.close(); await spare?.close(); });
  await eventually(async () => (await upstreamsOf(g)).every((u) => u.targets.every((x) => x.state === 'up')), 3000);

  const w = await openPage(`${g.adminUrl}/`);
  const spareRow = `[data-upstream="backup"] tr[data-target="${spare.url}"]`;
  await w.page.waitForSelector(`${spareRow} td.state-up`);
  await w.page.waitForSelector('[data-upstream="backup"] .badge.status-healthy');

  // Kill the spare's process: the page says so within 2 s.
  const killedAt = Date.now();
  await spare.close();
  spare = null;
  await w.page.waitForSelector(`${spareRow} td.state-unhealthy`, { timeout: 2000 });
  const seenAfterMs = Date.now() - killedAt;
  await w.page.waitForSelector('[data-upstream="backup"] .badge.status-unhealthy', { timeout: 2000 });
  await w.page.screenshot({ path: `${ARTIFACTS}/dashboard-target-down.png`, fullPage: true });

  // Blue-green: "all traffic here" on green. A dismissed dialog changes nothing.
  const greenRow = `[data-upstream="chat"] tr[data-target="${green.url}"]`;
  const dialogs: string[] = [];
  w.page.once('dialog', (d) => { dialogs.push(d.message()); void d.dismiss(); });
  await w.page.click(`${greenRow} button[data-action=only]`);
  await eventually(() => dialogs.length === 1, 2000);
  assert.deepEqual((await upstreamsOf(g))[0].targets.map((x) => x.weight), [100, 0], 'dismissed: unchanged');
  assert.match(dialogs[0], new RegExp(`${blue.url}: 100 → 0[\\s\\S]*${green.url}: 0 → 100`));

  w.page.once('dialog', (d) => { dialogs.push(d.message()); void d.accept(); });
  await w.page.click(`${greenRow} button[data-action=only]`);
  await eventually(async () => (await upstreamsOf(g))[0].targets.map((x) => x.weight).join() === '0,100', 3000);
  await w.page.waitForSelector('#notice:text("weights now")');
  assert.equal(await w.page.inputValue(`${greenRow} input`), '100');
  const served = await call(`${g.url}/v1/chat`);
  assert.equal(served.json().service, 'green', 'new requests go to green');

  // Typed weights, applied with the button: a canary split.
  await w.page.fill(`[data-upstream="chat"] tr[data-target="${blue.url}"] input`, '5');
  await w.page.fill(`${greenRow} input`, '95');
  w.page.once('dialog', (d) => { dialogs.push(d.message()); void d.accept(); });
  await w.page.click('[data-upstream="chat"] button[data-action=apply]');
  await eventually(async () => (await upstreamsOf(g))[0].targets.map((x) => x.weight).join() === '5,95', 3000);

  await w.page.screenshot({ path: `${ARTIFACTS}/dashboard.png`, fullPage: true });
  assert.deepEqual(w.errors, [], 'no console errors');
  assert.deepEqual(w.violations, [], 'no CSP violations');
  t.diagnostic(`target down shown after ${seenAfterMs} ms`);
  await w.page.context().close();
});
