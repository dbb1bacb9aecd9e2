import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { request } from 'undici';
import { startDemoServer, type DemoServer } from '../../src/demo/services.ts';
import { call, startGateway, eventually, type TestGateway } from '../helpers.ts';

const hash = (k: string) => 'sha256:' + createHash('sha256').update(k).digest('hex');
const KEY = { 'x-api-key': 'key-acme' };
const JSON_H = { ...KEY, 'content-type': 'application/json' };
const chat = (content: string, extra: Record<string, unknown> = {}) => JSON.stringify({ messages: [{ role: 'user', content }], ...extra });

async function setup(t: { after(fn: () => Promise<void>): void }, plan: string, routes: string): Promise<{ g: TestGateway; up: DemoServer }> {
  const up = await startDemoServer({ name: 'chat' });
  const g = await startGateway(`
upstreams:
  chat: { targets: [ ${up.url} ] }
  dead: { targets: [ "http://127.0.0.1:1" ] }
consumers:
  - { id: acme, plan: free, keys: ["${hash('key-acme')}"] }
plans:
  free: ${plan}
routes:
${routes}
`);
  t.after(async () => { await g.close(); await up.close(); });
  return { g, up };
}


interface UsageReport { quotas: Array<{ kind: string; used: number; limit: number; resetAt: string }>; totals: Record<string, Record<string, number>> }
async function usage(g: TestGateway): Promise<UsageReport> {
  const r = await call(`${g.adminUrl}/admin/usage?consumer=acme`);
  assert.equal(r.status, 200, r.text);
  return r.json();
}
const used = async (g: TestGateway, kind: string) => (await usage(g)).quotas.find((q) => q.kind === kind)!.used;

test('an exhausted quota answers 402 naming the quota and when it resets', async (t) => {
  const { g } = await setup(t, '{ quota: { requests: { limit: 3, period: day } } }', `
  - { name: echo, match: { path: /echo }, upstream: chat, auth: apikey, quota: {} }
  - { name: free-for-all, match: { path: /other }, upstream: chat, auth: apikey }`);
  for (let i = 0; i < 3; i++) assert.equal((await call(`${g.url}/echo`, { headers: KEY })).status, 200);
  const r = await call(`${g.url}/echo`, { headers: KEY });
  assert.equal(r.status, 402);
  assert.equal(r.headers['content-type'], 'application/problem+json');
  const body = r.json();
  const now = new Date();
  const midnight = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1);
  assert.equal(body.code, 'quota_exceeded');
  assert.equal(body.type, 'urn:gatehouse:problem:quota_exceeded');
  assert.equal(body.quota, 'requests');
  assert.equal(body.period, 'day');
  assert.equal(body.limit, 3);
  assert.equal(body.resetAt, new Date(midnight).toISOString());
  assert.match(body.detail, /daily requests quota \(3\).*resets at/);
  const ra = Number(r.headers['retry-after']);
  assert.ok(Math.abs(ra - (midnight - Date.now()) / 1000) < 5, `Retry-After ${ra} counts down to midnight UTC`);
  assert.equal((await call(`${g.url}/other`, { headers: KEY })).status, 200, 'routes without quota: are not metered');
  const rep = await usage(g);
  assert.equal(rep.totals.echo.requests, 3);
  assert.equal(rep.quotas[0].used, 3);
});

test('refunds: a 5xx, a connection failure and a client gone before any response cost nothing', async (t) => {
  const { g } = await setup(t, '{ quota: { requests: { limit: 2, period: month } } }', `
  - { name: fail, match: { path: /status/503 }, upstream: chat, auth: apikey, quota: {} }
  - { name: dead, match: { path: /dead }, upstream: dead, auth: apikey, quota: {} }
  - { name: slow, match: { path: /slow }, upstream: chat, auth: apikey, quota: {} }
  - { name: echo, match: { path: /echo }, upstream: chat, auth: apikey, quota: {} }`);
  for (let i = 0; i < 4; i++) assert.equal((await call(`${g.url}/status/503`, { headers: KEY })).status, 503);
  for (let i = 0; i < 3; i++) assert.equal((await call(`${g.url}/dead`, { headers: KEY })).status, 502);
  const ac = new AbortController();
  const pending = request(`${g.url}/slow?ms=3000`, { headers: KEY, signal: ac.signal }).catch((e: Error) => e);
  await eventually(async () => (await used(g, 'requests')) === 1);
  ac.abort();
  assert.ok((await pending) instanceof Error);
  await eventually(async () => (await used(g, 'requests')) === 0);
  assert.equal((await call(`${g.url}/echo`, { headers: KEY })).status, 200);
  assert.equal((await call(`${g.url}/echo`, { headers: KEY })).status, 200);
  assert.equal((await call(`${g.url}/echo`, { headers: KEY })).status, 402);
  const m = await g.gw.metrics.registry.getSingleMetric('gatehouse_usage_settlements_total')!.get();
  const refunded = m.values.filter((v) => v.labels.outcome === 'refunded').reduce((a, v) => a + v.value, 0);
  assert.equal(refunded, 8);
});

test('token quotas settle the usage block of JSON answers; max_tokens in the body sizes the reservation', async (t) => {
  const { g, up } = await setup(t, '{ quota: { tokens: { limit: 200, period: month } } }', `
  - { name: chat, match: { path: /v1/chat/completions, methods: [POST] }, upstream: chat, auth: apikey, quota: { usage: tokens, reserve: 50 } }`);
  const r = await call(`${g.url}/v1/chat/completions`, { method: 'POST', headers: JSON_H, body: chat('one two three') });
  assert.equal(r.status, 200);
  const u = r.json().usage;
  assert.deepEqual(u, { prompt_tokens: 3, completion_tokens: 7, total_tokens: 10 });
  await eventually(async () => (await used(g, 'tokens')) === 10);
  const rep = await usage(g);
  assert.deepEqual(rep.totals.chat, { requests: 1, tokens: 10, input_tokens: 3, output_tokens: 7, bytes: rep.totals.chat.bytes });
  assert.ok(rep.totals.chat.bytes > 100);
  // max_tokens 500 + the prompt can never fit in 190 tokens: refused before reaching the upstream
  const before = up.stats.requests;
  const big = await call(`${g.url}/v1/chat/completions`, { method: 'POST', headers: JSON_H, body: chat('hi', { max_tokens: 500 }) });
  assert.equal(big.status, 402);
  assert.equal(big.json().quota, 'tokens');
  assert.equal(up.stats.requests, before);
  // a small max_tokens fits, and the peeked body still reaches the upstream whole
  const small = await call(`${g.url}/v1/chat/completions`, { method: 'POST', headers: JSON_H, body: chat('four five six seven', { max_tokens: 20 }) });
  assert.equal(small.status, 200);
  assert.equal(small.json().usage.prompt_tokens, 4);
  await eventually(async () => (await used(g, 'tokens')) === 21);
  const metrics = await (await request(`${g.adminUrl}/metrics`)).body.text();
  assert.match(metrics, /gatehouse_tokens_total\{route="chat",type="input",model="other"\} 7/);
  assert.match(metrics, /gatehouse_tokens_total\{route="chat",type="output",model="other"\} 14/);
  assert.doesNotMatch(metrics, /consumer="acme"/, 'consumer ids are not labels by default');
  // the demo names a model this config does not: the label stays bounded

});

test('SSE: the final usage event is settled; a client gone mid-stream is charged an estimate of what it got', async (t) => {
  const { g, up } = await setup(t, '{ quota: { tokens: { limit: 100000, period: day } } }', `
  - { name: stream, match: { path: /v1/chat/stream, methods: [POST] }, upstream: chat, auth: apikey, quota: { usage: tokens, reserve: 5000 } }`);
  const r = await call(`${g.url}/v1/chat/stream?n=12&delay=1`, { method: 'POST', headers: JSON_H, body: chat('a b c') });
  assert.equal(r.status, 200);
  const last = r.text.split('\n').filter((l) => l.includes('"usage"')).pop()!;
  const reported = JSON.parse(last.slice(5)).usage.total_tokens;
  assert.equal(reported, 15);
  await eventually(async () => (await used(g, 'tokens')) === 15);

  const res = await request(`${g.url}/v1/chat/stream?n=200&delay=30`, { method: 'POST', headers: JSON_H, body: chat('a b c') });
  let got = 0;
  for await (const chunk of res.body) { got += (chunk as Buffer).length; if (got > 300) break; }
  res.body.destroy();
  await eventually(() => up.stats.streamsAborted === 1, 3000);
  await eventually(async () => (await used(g, 'tokens')) > 15, 3000);
  const charged = (await used(g, 'tokens')) - 15;
  assert.ok(charged > 0 && charged < 5000, `charged ${charged}: an estimate from the bytes streamed, not the reservation`);
  assert.ok(charged < 200 * 20, 'far less than the whole stream');
  const rep = await usage(g);
  assert.equal(rep.totals.stream.estimated, 1);
  assert.equal(rep.totals.stream.requests, 2);
});
