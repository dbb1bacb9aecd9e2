// Two `gatehouse start` processes sharing one Redis: a key revoked through replica A's admin API is refused by
// replica B within 1 s (pub/sub, not per-request polling; the observed delays are printed), a plan change on A
// moves the consumer's rate limits on B at once, and a Redis outage leaves known keys working, refuses writes
// with 503, and ends with both replicas reloaded from Redis.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Pool, request } from 'undici';
import { startDemoServer } from '../../src/demo/services.ts';
import { startChildGateway, type ChildGateway } from '../support/child-gateway.ts';
import { startRedis } from '../support/redis-server.ts';
import { eventually } from '../helpers.ts';

const TOKEN = 'adm-5e0d3b9a7c214f6e8b1a9d2c4f7e6a30';
type Json = any; // eslint-disable-line @typescript-eslint/no-explicit-any

async function admin(g: ChildGateway, method: string, path: string, body?: unknown) {
  const r = await request(`${g.adminUrl}${path}`, { method: method as 'GET', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.body.text();
  return { status: r.statusCode, headers: r.headers, text, body: JSON.parse(text) as Json };
}

function yaml(redisUrl: string, prefix: string, upUrl: string): string {
  return `
server: { listen: 127.0.0.1:0, environment: development }
admin: { listen: 127.0.0.1:0, token: "${TOKEN}" }
observability: { log: { level: info, format: json, accessLog: false } }
state:
  store: redis
  redis: { url: ${redisUrl}, keyPrefix: "${prefix}", timeout: 500ms, onError: open }
upstreams: { echo: { targets: [ ${upUrl} ] } }
plans:
  free: { rateLimit: [ { limit: 2, window: 1m } ] }
  pro: { rateLimit: [ { limit: 100, window: 1m } ] }
defaults: { plan: free }
routes:
  - { name: keyed, match: { path: /keyed }, upstream: echo, auth: apikey }
`;
}

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.ceil((p / 100) * xs.length) - 1)];
const round = (n: number) => Math.round(n * 10) / 10;

test('two replicas, one Redis: a revoke on A is refused on B within 1 s (20 trials); a plan change on A moves the limits on B at once', async (t) => {
  const redis = await startRedis();
  const up = await startDemoServer({ name: 'echo' });
  const config = yaml(redis.url, `ghr-${randomBytes(3).toString('hex')}:`, up.url);
  const [a, b] = await Promise.all([startChildGateway(config), startChildGateway(config)]);
  const poolA = new Pool(a.url, { connections: 2 });
  const poolB = new Pool(b.url, { connections: 2 });
  t.after(async () => { await poolA.close(); await poolB.close(); await a.kill(); await b.kill(); await up.close(); await redis.stop(); });
  const status = async (pool: Pool, key: string) => { const r = await pool.request({ path: '/keyed', method: 'GET', headers: { 'x-api-key': key } }); await r.body.dump(); return r.statusCode; };

  assert.equal((await admin(a, 'POST', '/admin/consumers', { id: 'acme', plan: 'pro' })).status, 201);
  const sinceSend: number[] = [];
  const sinceAck: number[] = [];
  const issued: string[] = [];
  for (let trial = 0; trial < 20; trial++) {
    const k = (await admin(a, 'POST', '/admin/consumers/acme/keys')).body;
    issued.push(k.key);
    await eventually(async () => (await status(poolB, k.key)) === 200, 1000);
    // B is asked back to back from the moment the revoke is sent to A until it refuses
    const t0 = performance.now();
    let acked = 0;
    const revoke = admin(a, 'DELETE', `/admin/consumers/acme/keys/${k.keyId}`).then((r) => { acked = performance.now(); return r; });
    let refusedAt = 0;
    while (refusedAt === 0 && performance.now() - t0 < 3000) if ((await status(poolB, k.key)) === 401) refusedAt = performance.now();
    assert.equal((await revoke).status, 200);
    assert.ok(refusedAt > 0, 'B never refused the revoked key');
    assert.equal(await status(poolA, k.key), 401, 'A refuses it from the request after the revoke returns');
    sinceSend.push(refusedAt - t0);
    sinceAck.push(Math.max(0, refusedAt - acked));
  }
  t.diagnostic(`revoke A → refused on B, ms from the DELETE being sent (20 trials): median ${round(pct(sinceSend, 50))}, p95 ${round(pct(sinceSend, 95))}, max ${round(Math.max(...sinceSend))}; from A's 200: median ${round(pct(sinceAck, 50))}, max ${round(Math.max(...sinceAck))}`);
  assert.ok(Math.max(...sinceSend) < 1000, `a revoke took ${Math.max(...sinceSend)} ms to reach B`);

  // plan change: free (2/min) on B until refused, then pro (100/min) through A
  await admin(a, 'POST', '/admin/consumers', { id: 'metered', plan: 'free' });
  const { key } = (await admin(a, 'POST', '/admin/consumers/metered/keys')).body;
  await eventually(async () => (await status(poolB, key)) === 200, 1000);
  assert.equal(await status(poolB, key), 200);
  assert.equal(await status(poolB, key), 429, 'free: 2 per minute, counted in Redis');
  const t0 = performance.now();
  assert.equal((await admin(a, 'PATCH', '/admin/consumers/metered', { plan: 'pro' })).status, 200);
  let moved = 0;
  while (moved === 0 && performance.now() - t0 < 3000) if ((await status(poolB, key)) === 200) moved = performance.now();
  assert.ok(moved > 0 && moved - t0 < 1000, `plan change reached B after ${moved - t0} ms`);
  t.diagnostic(`plan change on A → pro limits on B after ${round(moved - t0)} ms`);
  const r = await poolB.request({ path: '/keyed', method: 'GET', headers: { 'x-api-key': key } });
  assert.equal(r.headers['ratelimit-policy'], '"1m";q=100;w=60');
  assert.equal(((await r.body.json()) as { headers: Record<string, string> }).headers['x-consumer-plan'], 'pro');

  // audit lines on A only (the replica that took the changes), none with a key or a hash
  // (a child's stdout is buffered up to a second)
  await eventually(() => a.lines().filter((l) => l.type === 'audit').length === 1 + 20 * 2 + 3, 3000);
  assert.equal(b.lines().filter((l) => l.type === 'audit').length, 0);
  const raw = JSON.stringify(a.lines()) + JSON.stringify(b.lines()) + a.stderr() + b.stderr();
  for (const k of [...issued, key]) {
    assert.ok(!raw.includes(k) && !raw.includes(createHash('sha256').update(k).digest('hex')), 'a key or its hash reached a log');
  }
});

test('Redis down: both replicas keep accepting known keys, admin writes answer 503 store_unavailable; Redis back (empty): both reload from it', async (t) => {
  const redis = await startRedis();
  const up = await startDemoServer({ name: 'echo' });
  const config = yaml(redis.url, `ghd-${randomBytes(3).toString('hex')}:`, up.url).replace(/plans:[\s\S]*?defaults/, 'plans: { free: {} }\ndefaults');
  const [a, b] = await Promise.all([startChildGateway(config), startChildGateway(config)]);
  t.after(async () => { await a.kill(); await b.kill(); await up.close(); await redis.stop(); });
  const status = async (g: ChildGateway, key: string) => { const r = await request(`${g.url}/keyed`, { headers: { 'x-api-key': key } }); await r.body.dump(); return r.statusCode; };

  await admin(a, 'POST', '/admin/consumers', { id: 'acme' });
  const { key } = (await admin(a, 'POST', '/admin/consumers/acme/keys')).body;
  await eventually(async () => (await status(b, key)) === 200, 1000);

  await redis.stop();
  for (let i = 0; i < 5; i++) for (const g of [a, b]) assert.equal(await status(g, key), 200, 'answered from the snapshot');
  const t0 = performance.now();
  const w = await admin(a, 'POST', '/admin/consumers', { id: 'late' });
  assert.equal(w.status, 503, w.text);
  assert.equal(w.body.code, 'store_unavailable');
  assert.equal(w.headers['retry-after'], '1');
  assert.ok(performance.now() - t0 < 1000, 'no hang');
  assert.equal((await admin(b, 'GET', '/admin/consumers')).body.consumers[0].id, 'acme', 'B still lists what it knows');

  // This redis-server persists nothing: it comes back empty, and the replicas follow Redis, not their memory.
  await redis.start();
  await eventually(async () => (await status(a, key)) === 401 && (await status(b, key)) === 401, 8000);
  await eventually(() => [a, b].every((g) => g.lines().some((l) => l.msg === 'runtime consumers reloaded' && l.version === 0)), 3000);
  // the version counter restarted at 0 in the new Redis; changes flow again
  assert.equal((await admin(b, 'POST', '/admin/consumers', { id: 'again' })).status, 201);
  const again = (await admin(b, 'POST', '/admin/consumers/again/keys')).body;
  await eventually(async () => (await status(a, again.key)) === 200, 1000);
  // (a child's stdout is buffered up to a second) four changes went through, the refused one is not audited
  await new Promise((r) => setTimeout(r, 1200));
  assert.deepEqual(a.lines().filter((l) => l.type === 'audit').map((l) => l.consumer), ['acme', 'acme']);
  assert.deepEqual(b.lines().filter((l) => l.type === 'audit').map((l) => l.consumer), ['again', 'again']);
});
