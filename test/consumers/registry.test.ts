// The consumer registry over each backend: one contract, run against memory and against a real Redis (random key
// prefix), then what only Redis has (a lossy feed, outages, a counter that goes back, hash-tagged keys).
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer, type Socket } from 'node:net';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { MemoryConsumers } from '../../src/consumers/memory.ts';
import { RedisConsumers } from '../../src/consumers/redis.ts';
import { ConsumerRegistry, MAX_KEYS, RegistryError } from '../../src/consumers/registry.ts';
import { createConsumerRegistry } from '../../src/consumers/index.ts';
import { stateSchema } from '../../src/state/schema.ts';
import type { ChangeEvent, ConsumerBackend, ConsumerRecord } from '../../src/consumers/backend.ts';
import { keyDigest } from '../../src/auth/api-keys.ts';
import type { PlanView } from '../../src/pipeline/policy.ts';
import { eventually } from '../helpers.ts';
import { startRedis } from '../support/redis-server.ts';

const silent = pino({ level: 'silent' });
const REDIS = process.env.GATEHOUSE_TEST_REDIS ?? 'redis://127.0.0.1:6379';
const VIEW: PlanView = { known: new Set(['free', 'pro']), defaultPlan: 'free' };
const uniq = () => randomBytes(5).toString('hex');
const prefix = () => `ghc-${uniq()}:`;
const record = (id: string, over: Partial<ConsumerRecord> = {}): ConsumerRecord => ({ id, createdAt: 'x', updatedAt: 'x', keys: [], ...over });
const lookup = (r: ConsumerRegistry, key: string) => r.lookupDigest(keyDigest(key), VIEW);

async function rejects(p: Promise<unknown>, kind: RegistryError['kind'], re?: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => e instanceof RegistryError && e.kind === kind && (re === undefined || re.test(e.message)));
}

/** The same contract, run against each backend. */
function contract(name: string, make: () => ConsumerBackend) {
  describe(`${name} backend`, () => {
    const opened: ConsumerRegistry[] = [];
    after(() => Promise.all(opened.map((r) => r.close())));
    const registry = async () => {
      const r = new ConsumerRegistry(make(), { logger: silent });
      opened.push(r);
      assert.equal(await r.start(3000), true, 'loads');
      return r;
    };

    test('compare-and-set per record: a stale version writes nothing; every change bumps the counter once and is reported in order', async () => {
      const b = make();
      const seen: ChangeEvent[] = [];
      let subscribed = 0;
      b.start({ change: (ev) => seen.push(ev), subscribed: () => { subscribed++; } });
      try {
        await eventually(() => subscribed === 1, 3000);
        const v0 = await b.version();
        const id = 'c-' + uniq();
        const w1 = await b.put(id, record(id, { plan: 'free' }), 0);
        assert.ok(w1.ok);
        assert.equal(w1.version, v0 + 1);
        assert.deepEqual(await b.put(id, record(id), 0), { ok: false }, 'create over an existing record');
        assert.deepEqual(await b.put(id, record(id), w1.version + 7), { ok: false }, 'a version that is not the stored one');
        assert.equal(await b.version(), v0 + 1, 'refused writes do not count');
        const got = await b.get(id);
        assert.equal(got?.version, w1.version);
        assert.equal(got?.record.plan, 'free');
        const w2 = await b.put(id, record(id, { plan: 'pro' }), w1.version);
        assert.ok(w2.ok && w2.version === v0 + 2);
        const w3 = await b.put(id, null, w2.version);
        assert.ok(w3.ok && w3.version === v0 + 3);
        assert.equal(await b.get(id), null);
        await eventually(() => seen.length >= 3, 3000);
        assert.deepEqual(seen.filter((e) => e.id === id), [
          { op: 'put', id, version: v0 + 1 }, { op: 'put', id, version: v0 + 2 }, { op: 'delete', id, version: v0 + 3 },
        ]);
      } finally {
        await b.close();
      }
    });

    test('all() is every record with the counter, as one picture', async () => {
      const b = make();
      let subscribed = false;
      b.start({ change: () => {}, subscribed: () => { subscribed = true; } });
      try {
        await eventually(() => subscribed, 3000);
        const ids = [uniq(), uniq(), uniq()];
        for (const id of ids) assert.ok((await b.put(id, record(id), 0)).ok);
        const all = await b.all();
        assert.equal(all.version, await b.version());
        const got = all.records.map((r) => r.record.id);
        for (const id of ids) assert.ok(got.includes(id), `${id} in all()`);
        assert.ok(all.records.every((r) => r.version > 0 && r.version <= all.version));
      } finally {
        await b.close();
      }
    });

    test('create, add a key: it resolves to the consumer at once; revoke: refused at once; a key that matches nothing stays in memory', async () => {
      const r = await registry();
      const id = 'acme-' + uniq();
      const created = await r.create(id, 'pro');
      assert.equal(created.record.plan, 'pro');
      const k = await r.addKey(id);
      assert.match(k.key, /^gh_[A-Za-z0-9_-]{43}$/);
      assert.match(k.keyId, /^key_[A-Za-z0-9_-]{8}$/);
      assert.match(k.fingerprint, /^[0-9a-f]{8}$/);
      const hit = lookup(r, k.key);
      assert.deepEqual(hit?.identity, { kind: 'apikey', id, consumer: id, plan: 'pro' });
      assert.deepEqual(hit?.headers, ['x-consumer-id', id, 'x-consumer-plan', 'pro']);
      assert.equal(r.get(id)?.record.keys[0].hash.length, 'sha256:'.length + 64, 'only the hash is kept');
      assert.ok(!JSON.stringify(r.list()).includes(k.key), 'the plaintext is nowhere in the registry');

      await r.revokeKey(id, k.keyId);
      assert.equal(lookup(r, k.key), null, 'refused as soon as the revoke returns');
      await rejects(r.revokeKey(id, k.keyId), 'not_found');
    });

    test('a lookup is synchronous and never reaches the backend, known key or not', async () => {
      const b = make();
      let calls = 0;
      const counting = new Proxy(b, { get: (t, p, rcv) => { const v = Reflect.get(t, p, rcv); return typeof v === 'function' ? (...a: unknown[]) => { calls++; return v.apply(t, a); } : v; } });
      const r = new ConsumerRegistry(counting, { logger: silent, checkEveryMs: 60_000 });
      opened.push(r);
      assert.equal(await r.start(3000), true);
      const id = uniq();
      await r.create(id, undefined);
      const k = await r.addKey(id);
      await new Promise((res) => setTimeout(res, 50)); // let the feed settle
      const before = calls;
      for (let i = 0; i < 1000; i++) {
        const miss = lookup(r, 'gh_nothing-' + i);
        assert.equal(miss, null);
        const hit = lookup(r, k.key);
        assert.ok(hit !== null && !(hit instanceof Promise));
      }
      assert.equal(calls, before, 'no backend call for 2,000 lookups');
    });

    test('rotation: without grace the old key stops at once; with grace both work until the grace ends', async () => {
      const r = await registry();
      const id = uniq();
      await r.create(id, undefined);
      const a = await r.addKey(id);
      const now = await r.rotateKey(id, a.keyId, 0);
      assert.equal(now.oldExpiresAt, undefined);
      assert.equal(lookup(r, a.key), null, 'rotated without grace: refused');
      assert.equal(lookup(r, now.issued.key)?.identity.id, id);
      assert.equal(lookup(r, now.issued.key)?.identity.plan, 'free', 'no plan: the view\'s defaults.plan');

      const t0 = Date.now();
      const later = await r.rotateKey(id, now.issued.keyId, 400);
      assert.ok(later.oldExpiresAt! >= t0 + 400 && later.oldExpiresAt! <= Date.now() + 400);
      assert.equal(lookup(r, now.issued.key)?.identity.id, id, 'the old key works during the grace');
      assert.equal(lookup(r, later.issued.key)?.identity.id, id);
      await new Promise((res) => setTimeout(res, later.oldExpiresAt! - Date.now() + 20));
      assert.equal(lookup(r, now.issued.key), null, 'refused once the grace has passed');
      assert.equal(lookup(r, later.issued.key)?.identity.id, id);
      // the expired key is dropped at the next write of this consumer
      await r.setPlan(id, 'pro');
      assert.deepEqual(r.get(id)!.record.keys.map((k) => k.id), [later.issued.keyId]);
    });

    test('a plan change moves the identity at once; a plan the serving config no longer has reads as its defaults.plan', async () => {
      const r = await registry();
      const id = uniq();
      await r.create(id, 'free');
      const k = await r.addKey(id);
      assert.equal(lookup(r, k.key)?.identity.plan, 'free');
      const { previous } = await r.setPlan(id, 'pro');
      assert.equal(previous, 'free');
      assert.equal(lookup(r, k.key)?.identity.plan, 'pro');
      const reloaded: PlanView = { known: new Set(['free']), defaultPlan: 'free' };
      assert.equal(r.lookupDigest(keyDigest(k.key), reloaded)?.identity.plan, 'free');
      assert.deepEqual(r.lookupDigest(keyDigest(k.key), reloaded)?.headers, ['x-consumer-id', id, 'x-consumer-plan', 'free']);
      await r.setPlan(id, undefined);
      assert.equal(r.get(id)?.record.plan, undefined);
    });

    test('deleting a consumer revokes every key it had', async () => {
      const r = await registry();
      const id = uniq();
      await r.create(id, undefined);
      const keys = [await r.addKey(id), await r.addKey(id), await r.addKey(id)];
      assert.equal(await r.remove(id), 3);
      for (const k of keys) assert.equal(lookup(r, k.key), null);
      assert.equal(r.get(id), undefined);
      await rejects(r.remove(id), 'not_found');
      await rejects(r.addKey(id), 'not_found');
    });

    test('refusals: an existing id, a missing consumer or key, too many keys', async () => {
      const r = await registry();
      const id = uniq();
      await r.create(id, undefined);
      await rejects(r.create(id, undefined), 'conflict', /already exists/);
      await rejects(r.setPlan('nobody-' + uniq(), 'pro'), 'not_found');
      await rejects(r.rotateKey(id, 'key_nothere', 0), 'not_found');
      for (let i = 0; i < MAX_KEYS; i++) await r.addKey(id);
      await rejects(r.addKey(id), 'conflict', new RegExp(`already has ${MAX_KEYS} keys`));
      const some = r.get(id)!.record.keys[0].id;
      await rejects(r.rotateKey(id, some, 60_000), 'conflict', /revoke one first/);
      await r.rotateKey(id, some, 0); // without grace the old key makes room
      assert.equal(r.get(id)!.record.keys.length, MAX_KEYS);
    });

    test('concurrent writes to one consumer lose nothing (compare-and-set, then again)', async () => {
      const r = await registry();
      const id = uniq();
      await r.create(id, undefined);
      const issued = await Promise.all([r.addKey(id), r.addKey(id), r.addKey(id), r.addKey(id)]);
      assert.equal(r.get(id)!.record.keys.length, 4);
      for (const k of issued) assert.equal(lookup(r, k.key)?.identity.id, id);
    });

    test('two registries on one store: a change made through one reaches the other', { skip: name === 'memory' && 'a memory store is one process\'s own' }, async () => {
      const a = await registry();
      const b = await registry();
      const id = uniq();
      await a.create(id, 'free');
      const k = await a.addKey(id);
      await eventually(() => lookup(b, k.key) !== null, 1000);
      await a.setPlan(id, 'pro');
      await eventually(() => lookup(b, k.key)?.identity.plan === 'pro', 1000);
      await a.revokeKey(id, k.keyId);
      await eventually(() => lookup(b, k.key) === null, 1000);
      await b.remove(id);
      await eventually(() => a.get(id) === undefined, 1000);
    });
  });
}

contract('memory', () => new MemoryConsumers());

test('one of several workers with the memory store refuses writes (a consumer would exist in one worker only)', async () => {
  const r = createConsumerRegistry(stateSchema.parse({}), { logger: silent, clustered: true });
  assert.equal(await r.start(1000), true);
  await rejects(r.create('acme', undefined), 'refused', /need state\.store: redis when the gateway runs several workers/);
  const alone = createConsumerRegistry(stateSchema.parse({}), { logger: silent, clustered: false });
  await alone.start(1000);
  assert.equal((await alone.create('acme', undefined)).record.id, 'acme');
  await Promise.all([r.close(), alone.close()]);
});
const redisPrefix = prefix();
contract('redis', () => new RedisConsumers({ url: REDIS, keyPrefix: redisPrefix, logger: silent }));

describe('redis specifics', () => {
  test('keys are hash-tagged into one slot (Redis Cluster), and the stored form holds hashes, never keys', async (t) => {
    const p = prefix();
    const r = new ConsumerRegistry(new RedisConsumers({ url: REDIS, keyPrefix: p, logger: silent }), { logger: silent });
    const raw = new Redis(REDIS);
    t.after(async () => { raw.disconnect(); await r.close(); });
    assert.equal(await r.start(3000), true);
    await r.create('acme', 'pro');
    const k = await r.addKey('acme');
    const keys = (await raw.keys(`*${p}consumers*`)).sort();
    assert.deepEqual(keys, [`{${p}consumers}:all`, `{${p}consumers}:version`]);
    const stored = await raw.hget(`{${p}consumers}:all`, 'acme');
    assert.match(stored!, /^2\|\{/);
    assert.ok(stored!.includes(JSON.stringify('sha256:' + (await import('node:crypto')).createHash('sha256').update(k.key).digest('hex'))));
    assert.ok(!stored!.includes(k.key));
  });

  test('a change that was stored but never published (lost in transit) is caught by the version check', async (t) => {
    const p = prefix();
    const r = new ConsumerRegistry(new RedisConsumers({ url: REDIS, keyPrefix: p, logger: silent }), { logger: silent, checkEveryMs: 100 });
    const raw = new Redis(REDIS);
    t.after(async () => { raw.disconnect(); await r.close(); });
    assert.equal(await r.start(3000), true);
    await r.create('acme', 'free');
    const k = await r.addKey('acme');
    // what a replica would have written, minus the PUBLISH: the same record without its key
    const rec = r.get('acme')!.record;
    const v = await raw.incr(`{${p}consumers}:version`);
    await raw.hset(`{${p}consumers}:all`, 'acme', `${v}|${JSON.stringify({ ...rec, keys: [] })}`);
    assert.ok(lookup(r, k.key) !== null, 'not yet: nothing was published');
    await eventually(() => lookup(r, k.key) === null, 2000);
    assert.equal(r.version, v);
  });

  test('an event past a gap reloads everything', async (t) => {
    const p = prefix();
    const r = new ConsumerRegistry(new RedisConsumers({ url: REDIS, keyPrefix: p, logger: silent }), { logger: silent, checkEveryMs: 60_000 });
    const raw = new Redis(REDIS);
    t.after(async () => { raw.disconnect(); await r.close(); });
    assert.equal(await r.start(3000), true);
    // two unpublished writes, then a published third: the third's version is two past ours
    for (const id of ['a', 'b']) await raw.hset(`{${p}consumers}:all`, id, `${await raw.incr(`{${p}consumers}:version`)}|${JSON.stringify(record(id))}`);
    const other = new ConsumerRegistry(new RedisConsumers({ url: REDIS, keyPrefix: p, logger: silent }), { logger: silent });
    t.after(() => other.close());
    await other.start(3000);
    await other.create('c', undefined);
    await eventually(() => r.version === 3, 2000);
    assert.deepEqual(r.list().map((v) => v.record.id), ['a', 'b', 'c']);
  });

  test('Redis down: known keys keep answering, writes fail fast as unavailable; back (empty): reloaded, and new writes flow again', async (t) => {
    const redis = await startRedis();
    const p = prefix();
    // no version checks here: what brings the registries back in line is the resubscription's reload
    const a = new ConsumerRegistry(new RedisConsumers({ url: redis.url, keyPrefix: p, logger: silent }), { logger: silent, checkEveryMs: 60_000 });
    const b = new ConsumerRegistry(new RedisConsumers({ url: redis.url, keyPrefix: p, logger: silent }), { logger: silent, checkEveryMs: 60_000 });
    t.after(async () => { await a.close(); await b.close(); await redis.stop(); });
    assert.equal(await a.start(3000), true);
    assert.equal(await b.start(3000), true);
    await a.create('acme', 'pro');
    const k = await a.addKey('acme');
    await eventually(() => lookup(b, k.key) !== null, 1000);

    await redis.stop();
    const t0 = performance.now();
    await rejects(a.addKey('acme'), 'unavailable');
    assert.ok(performance.now() - t0 < 1000, 'no hang');
    for (const r of [a, b]) assert.equal(lookup(r, k.key)?.identity.plan, 'pro', 'the snapshot keeps serving');
    await new Promise((res) => setTimeout(res, 300));
    assert.equal(lookup(b, k.key)?.identity.id, 'acme');

    // This redis-server keeps nothing across a restart: the store is the truth, and both registries follow it.
    await redis.start();
    await eventually(() => lookup(a, k.key) === null && lookup(b, k.key) === null, 5000);
    assert.equal(a.synced && b.synced, true);
    // the counter started again from 0: changes after the restart still flow
    await b.create('again', undefined);
    const k2 = await b.addKey('again');
    await eventually(() => lookup(a, k2.key)?.identity.id === 'again', 1000);
  });

  test('built and closed without start(): no connection is opened (gatehouse validate)', async () => {
    const sockets: Socket[] = [];
    const srv = createServer((s) => sockets.push(s));
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
    const port = (srv.address() as { port: number }).port;
    const r = new ConsumerRegistry(new RedisConsumers({ url: `redis://127.0.0.1:${port}`, keyPrefix: 'x:', logger: silent }), { logger: silent });
    await r.close();
    await new Promise((res) => setTimeout(res, 100));
    await new Promise<void>((res) => srv.close(() => res()));
    assert.equal(sockets.length, 0);
  });
});
