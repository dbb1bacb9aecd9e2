// Shared state on Redis Cluster (3 masters, 3 replicas) and Redis Sentinel, started by the tests on local ports:
// limits and quotas stay exact across three gateway processes on the cluster, and a failover of the master that
// holds a key is survived under the route's declared onError.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Cluster } from 'ioredis';
import { startDemoServer } from '../../src/demo/services.ts';
import { startGateway, eventually } from '../helpers.ts';
import { startRedisCluster, startRedisSentinel } from '../support/redis-cluster.ts';
import { exactAcrossReplicas } from './replicas-scenario.ts';

test('Redis Cluster: three gateways, exactly 100 of 1,000 concurrent requests pass a limit of 100; streamed token usage settles exactly', async (t) => {
  const cluster = await startRedisCluster(3);
  const raw = new Cluster(cluster.seeds.map((s) => ({ host: '127.0.0.1', port: Number(s.split(':')[1]) })));
  t.after(async () => { raw.disconnect(); await cluster.stop(); });
  await exactAcrossReplicas(t, `cluster: [ ${cluster.seeds.join(', ')} ]`, raw);
});

/** Sends requests until `want` answers are seen (or `ms` passes); returns every status. */
async function until(url: string, want: (s: number) => boolean, ms: number): Promise<number[]> {
  const seen: number[] = [];
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const r = await fetch(url);
    await r.text();
    seen.push(r.status);
    if (want(r.status)) return seen;
    await new Promise((res) => setTimeout(res, 25));
  }
  throw new Error(`not seen in ${ms} ms; statuses: ${[...new Set(seen)]}`);
}

async function failoverScenario(t: { after(fn: () => unknown): void }, redisYaml: string, killMaster: (prefix: string) => Promise<void>): Promise<void> {
  const up = await startDemoServer({ name: 'chat' });
  const prefix = `ghf-${randomBytes(3).toString('hex')}:`;
  const gw = await startGateway(`
state:
  store: redis
  redis: { ${redisYaml}, keyPrefix: "${prefix}", timeout: 200ms }
upstreams: { chat: { targets: [ ${up.url} ] } }
routes:
  # one partition (by: ip) for both routes: the same hash tag, slot and master
  - { name: open, match: { path: /open }, upstream: chat, auth: public, rateLimit: [ { limit: 3, window: 1h, by: ip, onError: open } ], rewrite: { path: /echo } }
  - { name: closed, match: { path: /closed }, upstream: chat, auth: public, rateLimit: [ { limit: 3, window: 1h, by: ip, onError: closed } ], rewrite: { path: /echo } }
`);
  t.after(async () => { await gw.close(); await up.close(); });
  // Before: exact limits on both routes.
  for (const path of ['/open', '/closed']) {
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) { const r = await fetch(gw.url + path); await r.text(); statuses.push(r.status); }
    assert.deepEqual(statuses, [200, 200, 200, 429, 429], path);
  }
  await killMaster(prefix);
  // During the failover: onError open lets requests through, onError closed refuses them (503 store_unavailable).
  const during = await until(`${gw.url}/open`, (s) => s === 200, 10_000);
  assert.equal(during.at(-1), 200, 'open: served while the store is away');
  const closed = await fetch(`${gw.url}/closed`);
  const closedBody = await closed.text();
  assert.equal(closed.status, 503, closedBody);
  assert.equal(JSON.parse(closedBody).code, 'store_unavailable');
  // After: the promoted replica serves the slot and the limits hold again (the counters it replicated included).
  // (generous: on a loaded machine the election and the client's reconnection with backoff take a while)
  await until(`${gw.url}/closed`, (s) => s === 429, 45_000);
  await until(`${gw.url}/open`, (s) => s === 429, 10_000); // the same slot and master: already back
  assert.ok(gw.logs.some((l) => /store/.test(String(l.msg))), 'the store failure was logged (throttled)');
}

test('Redis Cluster: the master holding a key fails over; requests follow onError meanwhile, then the limit holds again', async (t) => {
  const cluster = await startRedisCluster(3);
  t.after(() => cluster.stop());
  await failoverScenario(t, `cluster: [ ${cluster.seeds.join(', ')} ]`, async (prefix) => {
    // Both routes limit by client IP: one partition, one hash tag, one slot, one master.
    await cluster.kill(await cluster.masterFor(`{${prefix}rl:ip:127.0.0.1}`));
  });
});

test('Redis Sentinel: the master fails over to the replica; requests follow onError meanwhile, then the limit holds again', async (t) => {
  const set = await startRedisSentinel();
  t.after(() => set.stop());
  await failoverScenario(t, `sentinels: [ ${set.sentinels.join(', ')} ], masterName: ${set.masterName}`, async () => {
    const before = await set.master();
    await set.kill(before);
    await eventually(async () => (await set.master()) !== before, 20_000);
  });
});
