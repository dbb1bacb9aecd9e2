// Adversarial suite, family "quotas": races. A client that fires many requests at once, on one gateway or spread
// over replicas, must not get more than its quota; refunds racing with admissions must not mint credit; token
// reservations must hold concurrent requests to what the quota can pay for. Memory store and real Redis.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { createHash, randomUUID } from 'node:crypto';
import { request } from 'undici';
import { startDemoServer, type DemoServer } from '../../src/demo/services.ts';
import { call, eventually, startGateway, type TestGateway } from '../helpers.ts';
import { h2connect, h2request } from '../support/h2.ts';

const hash = (k: string) => 'sha256:' + createHash('sha256').update(k).digest('hex');
const KEY = { 'x-api-key': 'key-race' };

function yaml(up: DemoServer, plan: string, store: string): string {
  return `
${store}
upstreams:
  chat: { targets: [ ${up.url} ] }
consumers:
  - { id: racer, plan: p, keys: ["${hash('key-race')}"] }
plans:
  p: ${plan}
routes:
  - { name: echo, match: { path: /echo }, upstream: chat, auth: apikey, quota: {} }
  - { name: status, match: { path: /status, prefix: true }, upstream: chat, auth: apikey, quota: {} }
  - { name: chat, match: { path: /v1/chat/completions, methods: [POST] }, upstream: chat, auth: apikey, quota: { usage: tokens, reserve: 50 } }
`;
}

function redisStore(): string {
  return `state:\n  store: redis\n  redis: { url: "redis://127.0.0.1:6379", keyPrefix: "h11c-quota-${randomUUID().slice(0, 8)}:", timeout: 2s, onError: closed }`;
}

async function burst(urls: string[], n: number, init: { method?: string; body?: string; headers?: Record<string, string> } = {}): Promise<number[]> {
  return Promise.all(Array.from({ length: n }, async (_, i) => {
    const r = await request(`${urls[i % urls.length]}`, { method: (init.method ?? 'GET') as 'GET', headers: { ...KEY, ...init.headers }, body: init.body });
    await r.body.text();
    return r.statusCode;
  }));
}

const count = (xs: number[], s: number) => xs.filter((x) => x === s).length;

test('quota race, memory store: 100 concurrent requests against a quota of 10 → exactly 10 pass, 90 get 402', async (t) => {
  const up = await startDemoServer({ name: 'chat' });
  const g = await startGateway(yaml(up, '{ quota: { requests: { limit: 10, period: day } } }', ''));
  t.after(async () => { await g.close(); await up.close(); });
  const statuses = await burst([`${g.url}/echo`], 100);
  assert.equal(count(statuses, 200), 10, JSON.stringify(statuses));
  assert.equal(count(statuses, 402), 90);
  assert.equal(up.stats.requests, 10);
});

test('quota race across two replicas on Redis: 80 concurrent requests split over both → exactly 25 pass (quota 25)', async (t) => {
  const up = await startDemoServer({ name: 'chat' });
  const store = redisStore();
  const a = await startGateway(yaml(up, '{ quota: { requests: { limit: 25, period: day } } }', store));
  const b = await startGateway(yaml(up, '{ quota: { requests: { limit: 25, period: day } } }', store));
  t.after(async () => { await a.close(); await b.close(); await up.close(); });
  const statuses = await burst([`${a.url}/echo`, `${b.url}/echo`], 80);
  assert.equal(count(statuses, 200), 25, JSON.stringify(statuses));
  assert.equal(count(statuses, 402), 55);
  assert.equal(up.stats.requests, 25);
});

test('refunds racing admissions (Redis): failed requests refund exactly, no credit is minted', async (t) => {
  const up = await startDemoServer({ name: 'chat' });
  const g = await startGateway(yaml(up, '{ quota: { requests: { limit: 20, period: day } } }', redisStore()));
  t.after(async () => { await g.close(); await up.close(); });
  // 40 at once, half of them answered 503 by the upstream (refunded), half 200 (charged)
  const statuses = await Promise.all(Array.from({ length: 40 }, async (_, i) => {
    const r = await request(`${g.url}${i % 2 ? '/status/503' : '/echo'}`, { headers: KEY });
    await r.body.text();
    return r.statusCode;
  }));
  const ok = count(statuses, 200);
  assert.ok(ok <= 20, `at most the quota passes: ${ok}`);
  const report = async () => (await call(`${g.adminUrl}/admin/usage?consumer=racer`)).json() as Promise<{ quotas: Array<{ kind: string; used: number }> }>;
  await eventually(async () => (await report()).quotas.find((q) => q.kind === 'requests')!.used === ok, 3000);
  // what is left is exactly what was refunded: filling it up admits 20 - ok more, and not one beyond
  const more = await burst([`${g.url}/echo`], 30);
  assert.equal(count(more, 200), 20 - ok, JSON.stringify({ ok, more }));
});

test('token reservations under a burst: concurrent max_tokens requests are admitted only as far as the quota can pay', async (t) => {
  // An upstream that holds every answer 600 ms: the whole burst is in flight at once.
  let seen = 0;
  const slow = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => setTimeout(() => {
      seen++;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ id: 'x', object: 'chat.completion', choices: [{ index: 0, message: { role: 'assistant', content: 'ok' } }], usage: { prompt_tokens: 5, completion_tokens: 45, total_tokens: 50 } }));
    }, 600));
  });
  await new Promise<void>((r) => slow.listen(0, '127.0.0.1', r));
  const up = { url: `http://127.0.0.1:${(slow.address() as { port: number }).port}` } as DemoServer;
  const g = await startGateway(yaml(up, '{ quota: { tokens: { limit: 300, period: day } } }', redisStore()));
  t.after(async () => { await g.close(); slow.closeAllConnections(); await new Promise<void>((r) => slow.close(() => r())); });
  const body = JSON.stringify({ messages: [{ role: 'user', content: 'one two three' }], max_tokens: 90 });
  const statuses = await burst([`${g.url}/v1/chat/completions`], 20, { method: 'POST', body, headers: { 'content-type': 'application/json' } });
  const ok = count(statuses, 200);
  // each reservation is at least max_tokens (90): no more than 3 fit in 300 at once
  assert.ok(ok >= 1 && ok <= 3, `admitted ${ok}: ${JSON.stringify(statuses)}`);
  assert.equal(count(statuses, 402), 20 - ok);
  assert.equal(seen, ok);
  const report = await (await call(`${g.adminUrl}/admin/usage?consumer=racer`)).json() as { quotas: Array<{ kind: string; used: number; limit: number }> };
  const tokens = report.quotas.find((q) => q.kind === 'tokens')!;
  assert.ok(tokens.used <= tokens.limit, `settled usage ${tokens.used} within the limit`);
});

test('the quota is per consumer, not per key spelling: header case and a duplicate key header do not open a second counter', async (t) => {
  const up = await startDemoServer({ name: 'chat' });
  const g = await startGateway(yaml(up, '{ quota: { requests: { limit: 3, period: day } } }', ''));
  t.after(async () => { await g.close(); await up.close(); });
  const statuses: number[] = [];
  for (const h of [{ 'x-api-key': 'key-race' }, { 'X-API-KEY': 'key-race' }, { 'X-Api-Key': 'key-race' }, { 'x-api-key': 'key-race' }]) {
    const r = await request(`${g.url}/echo`, { headers: h });
    await r.body.text();
    statuses.push(r.statusCode);
  }
  assert.deepEqual(statuses, [200, 200, 200, 402]);
});

test('quota race over one HTTP/2 connection: 60 multiplexed streams against a quota of 12 → exactly 12 pass', async (t) => {
  const up = await startDemoServer({ name: 'chat' });
  const g = await startGateway(yaml(up, '{ quota: { requests: { limit: 12, period: day } } }', 'server:\n  http2: { cleartext: true }'));
  const s = await h2connect(`http://127.0.0.1:${g.port}`);
  t.after(async () => { s.destroy(); await g.close(); await up.close(); });
  const statuses = await Promise.all(Array.from({ length: 60 }, async () => (await h2request(s, '/echo', { headers: KEY })).status));
  assert.equal(count(statuses, 200), 12, JSON.stringify(statuses));
  assert.equal(count(statuses, 402), 48);
  assert.equal(up.stats.requests, 12);
});
