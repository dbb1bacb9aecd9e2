import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { request } from 'undici';
import { startDemoServer } from '../../src/demo/services.ts';
import { startGateway, eventually } from '../helpers.ts';
import { startRedis } from '../support/redis-server.ts';

const hash = (k: string) => 'sha256:' + createHash('sha256').update(k).digest('hex');

async function get(url: string, headers: Record<string, string> = {}) {
  const t0 = performance.now();
  const r = await request(url, { headers });
  const text = await r.body.text();
  return { status: r.statusCode, headers: r.headers, text, ms: performance.now() - t0 };
}

test('Redis stopped mid-test: onError open lets requests through, closed answers 503; one warn line, a metric, and recovery on its own', async (t) => {
  const redis = await startRedis();
  const up = await startDemoServer({ name: 'chat' });
  const g = await startGateway(`
state:
  store: redis
  redis: { url: ${redis.url}, keyPrefix: "gho-${randomBytes(3).toString('hex')}:", timeout: 200ms, onError: open }
upstreams:
  chat: { targets: [ ${up.url} ] }
consumers:
  - { id: acme, plan: free, keys: ["${hash('key-acme')}"] }
plans:
  free: { quota: { requests: { limit: 100, period: day } } }
routes:
  - { name: open, match: { path: /open }, upstream: chat, auth: public, rateLimit: [ { limit: 1, window: 1h, by: route } ] }
  - { name: closed, match: { path: /closed }, upstream: chat, auth: public, rateLimit: [ { limit: 1, window: 1h, by: route, onError: closed } ] }
  - { name: quota-closed, match: { path: /quota }, upstream: chat, auth: apikey, quota: { onError: closed } }
`);
  t.after(async () => { await g.close(); await up.close(); await redis.stop(); });

  assert.equal((await get(`${g.url}/open`)).status, 200);
  assert.equal((await get(`${g.url}/open`)).status, 429, 'Redis decides while it is up');
  assert.equal((await get(`${g.url}/closed`)).status, 200);
  assert.equal((await get(`${g.url}/quota`, { 'x-api-key': 'key-acme' })).status, 200);

  await redis.stop();
  const open: number[] = [];
  for (let i = 0; i < 10; i++) {
    const r = await get(`${g.url}/open`);
    open.push(r.status);
    assert.ok(r.ms < 2000, `no hang: ${r.ms} ms`);
    assert.equal(r.headers['ratelimit'], undefined, 'no numbers to report without the store');
  }
  assert.deepEqual(open, Array(10).fill(200), 'fail open: every request passes');
  for (let i = 0; i < 10; i++) {
    const r = await get(`${g.url}/closed`);
    assert.equal(r.status, 503);
    assert.equal(JSON.parse(r.text).code, 'store_unavailable');
    assert.equal(r.headers['retry-after'], '1');
    assert.ok(r.ms < 2000, `no hang: ${r.ms} ms`);
  }
  const q = await get(`${g.url}/quota`, { 'x-api-key': 'key-acme' });
  assert.equal(q.status, 503, 'the quota route declared onError: closed');

  const warns = g.logs.filter((l) => l.level === 40 && String(l.msg).includes('store'));
  assert.ok(warns.length >= 1 && warns.length <= 6, `rate-limited warnings, not one per request: ${warns.length}`);
  assert.ok(!g.rawLogs().includes('key-acme'), 'no API key in any log line');
  const metrics = await (await request(`${g.adminUrl}/metrics`)).body.text();
  assert.match(metrics, /gatehouse_store_errors_total\{op="consume",outcome="open"\} 10/);
  assert.match(metrics, /gatehouse_store_errors_total\{op="consume",outcome="closed"\} 10/);
  assert.match(metrics, /gatehouse_store_errors_total\{op="reserve",outcome="closed"\} 1/);

  // Redis comes back (empty: it kept nothing); ioredis reconnects without help.
  await redis.start();
  await eventually(async () => (await get(`${g.url}/closed`)).status === 200, 8000);
  assert.equal((await get(`${g.url}/closed`)).status, 429);
  assert.ok(g.logs.some((l) => l.msg === 'redis store: reconnected'));
});
