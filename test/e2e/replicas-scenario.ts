// The exactness scenario of test/e2e/replicas.test.ts, shared by every Redis topology (single, Cluster, Sentinel).
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Pool } from 'undici';
import type { Cluster, Redis } from 'ioredis';
import { startDemoServer } from '../../src/demo/services.ts';
import { periodOf } from '../../src/state/store.ts';
import { startChildGateway, type ChildGateway } from '../support/child-gateway.ts';

const hash = (k: string) => 'sha256:' + createHash('sha256').update(k).digest('hex');

/**
 * Exactness across replicas: three `gatehouse start` processes share one Redis (`redisYaml`: the connection keys of `state.redis`). Whatever replica a
 * request lands on, the limit and the quota are one.
 */
export async function exactAcrossReplicas(t: TestContext, redisYaml: string, raw: Redis | Cluster): Promise<void> {
  const up = await startDemoServer({ name: 'chat' });
  const prefix = `ghx-${randomBytes(3).toString('hex')}:`;
  const yaml = `
server: { listen: 127.0.0.1:0, environment: development }
admin: { listen: 127.0.0.1:0 }
observability: { log: { level: info, format: json, accessLog: false } }
state:
  store: redis
  redis: { ${redisYaml}, keyPrefix: "${prefix}", timeout: 5s, onError: closed }
upstreams:
  chat: { targets: [ ${up.url} ], pool: { connections: 64 } }
consumers:
  - { id: acme, plan: metered, keys: ["${hash('key-acme')}"] }
plans:
  metered: { quota: { tokens: { limit: 3000, period: day } } }
routes:
  - { name: limited, match: { path: /echo }, upstream: chat, auth: public, rateLimit: [ { limit: 100, window: 1h, by: route } ] }
  - { name: stream, match: { path: /v1/chat/stream, methods: [POST] }, upstream: chat, auth: apikey, quota: { usage: tokens, reserve: 60 } }
`;
  const gws: ChildGateway[] = await Promise.all([0, 1, 2].map(() => startChildGateway(yaml)));
  const pools = gws.map((g) => new Pool(g.url, { connections: 64 }));
  t.after(async () => {
    await Promise.all(pools.map((p) => p.close()));
    await Promise.all(gws.map((g) => g.kill()));
    await up.close();
  });

  // --- 1,000 concurrent requests at a limit of 100 ---
  const statuses = await Promise.all(Array.from({ length: 1000 }, async (_, i) => {
    const r = await pools[i % 3].request({ path: '/echo', method: 'GET' });
    await r.body.dump();
    return r.statusCode;
  }));
  const ok = statuses.filter((s) => s === 200).length;
  const limited = statuses.filter((s) => s === 429).length;
  assert.equal(ok, 100, `allowed ${ok}`);
  assert.equal(limited, 900);
  // Every replica answered its third, each from the shared count: three separate counts would admit up to 300.
  // Which replicas admit the first 100 is a race (on a loaded machine one replica's answers may all come after the
  // limit was reached: 37, 63, 0 was seen in a full run on this 2-core machine), so the split is not asserted.
  const perGateway = [0, 1, 2].map((g) => statuses.filter((s, i) => i % 3 === g && (s === 200 || s === 429)).length);
  assert.deepEqual(perGateway, [334, 333, 333], `answers per replica: ${perGateway}`);

  // --- a token quota with streamed answers: what is settled is what the upstream reported ---
  const results = await Promise.all(Array.from({ length: 120 }, async (_, i) => {
    const words = 1 + (i % 7);
    const n = 3 + (i % 5);
    const r = await pools[i % 3].request({
      path: `/v1/chat/stream?n=${n}&delay=2`, method: 'POST',
      headers: { 'x-api-key': 'key-acme', 'content-type': 'application/json' },
      body: JSON.stringify({ messages: [{ role: 'user', content: Array(words).fill('w').join(' ') }] }),
    });
    const text = await r.body.text();
    if (r.statusCode !== 200) return { status: r.statusCode, tokens: 0 };
    const last = text.split('\n').filter((l) => l.includes('"usage"')).pop()!;
    return { status: 200, tokens: JSON.parse(last.slice(5)).usage.total_tokens as number };
  }));
  const streamed = results.filter((r) => r.status === 200);
  assert.ok(results.every((r) => r.status === 200 || r.status === 402), `statuses: ${[...new Set(results.map((r) => r.status))]}`);
  assert.ok(streamed.length >= 30, `streams admitted: ${streamed.length}`);
  const reported = streamed.reduce((a, r) => a + r.tokens, 0);
  const key = `{${prefix}q:acme}:tokens:${periodOf('day', Date.now()).id}`;
  // settlement happens as each exchange closes; wait for the last one
  let settled = -1;
  for (let i = 0; i < 100 && settled !== reported; i++) {
    settled = Number(await raw.get(key));
    if (settled !== reported) await new Promise((r) => setTimeout(r, 50));
  }
  assert.equal(settled, reported, 'sum of settled tokens equals the upstream-reported usage');
  assert.ok(settled <= 3000, 'never overspent');
  // usage records agree
  const h = await raw.hgetall(`{${prefix}q:acme}:u:${new Date().toISOString().slice(0, 10)}`);
  assert.equal(Number(h['stream\ttokens']), reported);
  assert.equal(Number(h['stream\trequests']), streamed.length);
}
