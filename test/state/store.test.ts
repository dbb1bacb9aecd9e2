import { test, describe, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { MemoryStore } from '../../src/state/memory.ts';
import { RedisStore } from '../../src/state/redis.ts';
import { periodOf, StoreError, type Store, type TierSpec, type QuotaSpec } from '../../src/state/store.ts';

const silent = pino({ level: 'silent' });
const REDIS = process.env.GATEHOUSE_TEST_REDIS ?? 'redis://127.0.0.1:6379';
const await_ = async <T>(v: T | Promise<T>) => v;

function tier(id: string, limit: number, windowMs: number, cost = 1): TierSpec {
  return { id, limit, windowMs, cost };
}

/** The same contract, run against each store. */
function contract(name: string, make: () => Store) {
  describe(`${name} store`, () => {
    const store = make();
    before(async () => { assert.equal(await store.ready(3000), true); });
    after(() => store.close());
    const uniq = () => randomBytes(6).toString('hex');

    test('several tiers are decided together: one refusing tier consumes none', async () => {
      const p = 'c:' + uniq();
      const tiers = [tier('t:short', 3, 60_000), tier('t:long', 10, 3_600_000)];
      for (let i = 0; i < 3; i++) {
        const r = await await_(store.consume([p, p], tiers));
        assert.equal(r.allowed, true);
        assert.equal(r.tiers[0].remaining, 2 - i);
        assert.equal(r.tiers[1].remaining, 9 - i);
      }
      const denied = await await_(store.consume([p, p], tiers));
      assert.equal(denied.allowed, false);
      assert.ok(denied.tiers[0].retryMs > 19_000 && denied.tiers[0].retryMs <= 20_000, `retry ${denied.tiers[0].retryMs}`);
      assert.equal(denied.tiers[1].retryMs, 0);
      // the hour tier was not consumed by the refused request
      assert.equal(denied.tiers[1].remaining, 7);
      const alone = await await_(store.consume([p], [tiers[1]]));
      assert.equal(alone.tiers[0].remaining, 6);
    });

    test('tiers in different partitions: a refusal leaves the other partition untouched', async () => {
      const a = 'c:' + uniq(), b = 'ip:' + uniq();
      const tiers = [tier('t:a', 5, 60_000), tier('t:b', 1, 60_000)];
      assert.equal((await await_(store.consume([a, b], tiers))).allowed, true);
      const r = await await_(store.consume([a, b], tiers));
      assert.equal(r.allowed, false);
      const again = await await_(store.consume([a], [tiers[0]]));
      assert.equal(again.tiers[0].remaining, 3, 'the refused request did not consume partition a');
    });

    test('cost takes several units; a cost above what is left is refused', async () => {
      const p = 'r:' + uniq();
      const t = [tier('t:cost', 10, 10_000, 4)];
      assert.equal((await await_(store.consume([p], t))).tiers[0].remaining, 6);
      assert.equal((await await_(store.consume([p], t))).tiers[0].remaining, 2);
      const r = await await_(store.consume([p], t));
      assert.equal(r.allowed, false);
      assert.ok(r.tiers[0].retryMs > 1000 && r.tiers[0].retryMs <= 2000, `needs 2 more units (1 s each): ${r.tiers[0].retryMs}`);
    });

    test('token tiers admit while not exhausted and are charged afterwards', async () => {
      const p = 'c:' + uniq();
      const t = [tier('t:tok', 100, 60_000, 0)];
      assert.equal((await await_(store.consume([p], t))).allowed, true);
      await await_(store.charge([p], t, 99));
      const r1 = await await_(store.consume([p], t));
      assert.equal(r1.allowed, true);
      assert.equal(r1.tiers[0].remaining, 1);
      await await_(store.charge([p], t, 150)); // past the window: a debt
      const r2 = await await_(store.consume([p], t));
      assert.equal(r2.allowed, false);
      assert.ok(r2.tiers[0].retryMs > 50_000, `debt of ~150 tokens at 0.6 s each: ${r2.tiers[0].retryMs}`);
    });

    test('quotas: reserve is all or nothing; settle replaces the reservation; refund gives it back', async () => {
      const s = 'q-' + uniq();
      const qs: QuotaSpec[] = [{ kind: 'requests', period: 'day', limit: 3 }, { kind: 'tokens', period: 'month', limit: 1000 }];
      const r1 = await await_(store.reserve(s, qs, [1, 600]));
      assert.equal(r1.ok, true);
      assert.deepEqual(r1.periods, [periodOf('day', Date.now()).id, periodOf('month', Date.now()).id]);
      const r2 = await await_(store.reserve(s, qs, [1, 600]));
      assert.equal(r2.ok, false);
      assert.equal(r2.denied!.index, 1);
      assert.equal(r2.denied!.used, 600);
      assert.equal(r2.denied!.resetAt, periodOf('month', Date.now()).end);
      // the refused request did not take a request unit either
      let st = await store.quotaStatus(s, qs);
      assert.deepEqual(st.map((x) => x.used), [1, 600]);
      await await_(store.settle(s, qs, r1.periods, [0, 250 - 600], { route: 'chat', requests: 1, tokens: 250, inputTokens: 50, outputTokens: 200, bytes: 999, estimated: false }));
      st = await store.quotaStatus(s, qs);
      assert.deepEqual(st.map((x) => x.used), [1, 250]);
      assert.equal(st[0].resetAt, new Date(periodOf('day', Date.now()).end).toISOString());
      const r3 = await await_(store.reserve(s, qs, [1, 700]));
      assert.equal(r3.ok, true);
      await await_(store.refund(s, qs, r3.periods, [1, 700]));
      st = await store.quotaStatus(s, qs);
      assert.deepEqual(st.map((x) => x.used), [1, 250]);
      const today = new Date().toISOString().slice(0, 10);
      const rows = await store.usage(s, [today]);
      const get = (type: string) => rows.find((r) => r.route === 'chat' && r.type === type)?.value;
      assert.equal(get('requests'), 1);
      assert.equal(get('tokens'), 250);
      assert.equal(get('input_tokens'), 50);
      assert.equal(get('output_tokens'), 200);
      assert.equal(get('bytes'), 999);
      assert.equal(get('estimated'), undefined);
    });

    test('cost quotas are integer micro-units through the same scripts; usage is kept per route, upstream and model', async () => {
      const s = 'q-' + uniq();
      const qs: QuotaSpec[] = [{ kind: 'cost', period: 'month', limit: 50_000 }];
      const r1 = await await_(store.reserve(s, qs, [30_000]));
      assert.equal(r1.ok, true);
      assert.equal((await await_(store.reserve(s, qs, [20_001]))).ok, false);
      await await_(store.settle(s, qs, r1.periods, [6_000 - 30_000], { route: 'chat', upstream: 'openai', model: 'gpt-4o', requests: 1, tokens: 1500, inputTokens: 1000, outputTokens: 500, bytes: 10, estimated: false, costMicros: 6_000 }));
      assert.deepEqual((await store.quotaStatus(s, qs)).map((x) => x.used), [6_000]);
      const r2 = await await_(store.reserve(s, qs, [44_000]));
      assert.equal(r2.ok, true, '6,000 + 44,000 = 50,000 fits exactly');
      assert.equal((await await_(store.reserve(s, qs, [1]))).ok, false);
      await await_(store.settle(s, qs, r2.periods, [0], { route: 'chat', requests: 1, tokens: 0, inputTokens: 0, outputTokens: 0, bytes: 0, estimated: false, cached: true }));
      const rows = await store.usage(s, [new Date().toISOString().slice(0, 10)]);
      const byModel = rows.filter((r) => r.model === 'gpt-4o');
      assert.deepEqual(byModel.map((r) => [r.route, r.upstream, r.type, r.value]).sort(), [['chat', 'openai', 'bytes', 10], ['chat', 'openai', 'cost_micros', 6000], ['chat', 'openai', 'input_tokens', 1000], ['chat', 'openai', 'output_tokens', 500], ['chat', 'openai', 'requests', 1], ['chat', 'openai', 'tokens', 1500]]);
      const plain = rows.filter((r) => r.upstream === undefined);
      assert.deepEqual(plain.map((r) => [r.route, r.type, r.value]).sort(), [['chat', 'cache_hits', 1], ['chat', 'requests', 1]]);
    });

    test('concurrency leases: at most limit held; release frees one; renewing keeps one alive; an unrenewed one expires', async () => {
      const k = 'cc:' + uniq();
      const got = await Promise.all(Array.from({ length: 8 }, (_, i) => await_(store.acquire(k, 3, `l${i}`, 60_000))));
      assert.equal(got.filter((g) => g.ok).length, 3);
      assert.ok(got.filter((g) => !g.ok).every((g) => g.inFlight === 3));
      const held = got.map((g, i) => (g.ok ? `l${i}` : null)).filter((x): x is string => x !== null);
      await await_(store.release(k, held[0]));
      assert.equal((await await_(store.acquire(k, 3, 'again', 60_000))).ok, true);
      assert.equal((await await_(store.acquire(k, 3, 'more', 60_000))).ok, false);
      // short leases: one renewed, one not. Renewals come 500 ms apart against a 2 s TTL, so a loaded machine
      // (timers late by over a second) cannot let the renewed one lapse; the unrenewed one is gone after 2.5 s.
      const e = 'cc:' + uniq();
      assert.equal((await await_(store.acquire(e, 2, 'kept', 2000))).ok, true);
      assert.equal((await await_(store.acquire(e, 2, 'dies', 2000))).ok, true);
      assert.equal((await await_(store.acquire(e, 2, 'x', 2000))).ok, false);
      for (let i = 0; i < 5; i++) { await new Promise((r) => setTimeout(r, 500)); await await_(store.renew([[e, 'kept']], 2000)); }
      const r = await await_(store.acquire(e, 2, 'x', 2000));
      assert.deepEqual(r, { ok: true, inFlight: 2 }, 'the unrenewed lease expired, the renewed one is still held');
      await await_(store.renew([[e, 'dies']], 2000));
      assert.equal((await await_(store.acquire(e, 2, 'y', 2000))).ok, false, 'renewing an expired lease does not revive it');
    });

    test('cooling: a cooldown is never shortened and runs out', async () => {
      const a = 'up\tm-' + uniq(), b = 'up\tn-' + uniq();
      await await_(store.coolDown(a, 400));
      await await_(store.coolDown(a, 100));
      const [left, none] = await await_(store.cooling([a, b]));
      assert.ok(left > 250 && left <= 400, `left ${left}`);
      assert.equal(none, 0);
      await new Promise((r) => setTimeout(r, 450));
      assert.deepEqual(await await_(store.cooling([a])), [0]);
    });

    test('response cache: an entry is returned byte for byte until its TTL', async () => {
      const k = uniq();
      const v = Buffer.from([0, 1, 2, 255, ...Buffer.from('{"a":1}')]);
      assert.equal(await await_(store.cacheGet(k)), null);
      await await_(store.cachePut(k, v, 200));
      assert.deepEqual(await await_(store.cacheGet(k)), v);
      await new Promise((r) => setTimeout(r, 250));
      assert.equal(await await_(store.cacheGet(k)), null);
    });

    test('concurrent reservations never overspend', async () => {
      const s = 'q-' + uniq();
      const qs: QuotaSpec[] = [{ kind: 'requests', period: 'day', limit: 25 }];
      const rs = await Promise.all(Array.from({ length: 60 }, () => await_(store.reserve(s, qs, [1]))));
      assert.equal(rs.filter((r) => r.ok).length, 25);
    });
  });
}

contract('memory', () => new MemoryStore());

test('memory response cache is a bounded LRU by bytes', () => {
  const m = new MemoryStore({ cacheBytes: 1000 });
  const v = (n: number) => Buffer.alloc(n, 1);
  m.cachePut('a', v(400), 60_000);
  m.cachePut('b', v(400), 60_000);
  assert.ok(m.cacheGet('a') !== null); // a is now the most recently used
  m.cachePut('c', v(400), 60_000);
  assert.equal(m.cacheGet('b'), null, 'the least recently used entry went');
  assert.ok(m.cacheGet('a') !== null && m.cacheGet('c') !== null);
  assert.equal(m.cachedBytes, 800);
  m.cachePut('huge', v(1001), 60_000);
  assert.equal(m.cacheGet('huge'), null, 'an entry larger than the whole cache is not kept');
  void m.close();
});
contract('redis', () => new RedisStore({ url: REDIS, keyPrefix: `ghtest-${randomBytes(4).toString('hex')}:`, timeout: 2000, logger: silent }));

describe('redis specifics', () => {
  const prefix = `ghtest-${randomBytes(4).toString('hex')}:`;
  const store = new RedisStore({ url: REDIS, keyPrefix: prefix, timeout: 2000, logger: silent });
  const raw = new Redis(REDIS);
  before(async () => { assert.equal(await store.ready(3000), true); });
  after(async () => {
    const keys = await raw.keys(`{${prefix}*`);
    if (keys.length) await raw.del(...keys);
    raw.disconnect();
    await store.close();
  });

  test('keys are hash-tagged per partition and every key has a TTL', async () => {
    await store.consume(['c:acme', 'c:acme'], [tier('p:free:0:requests:60000', 60, 60_000), tier('p:free:1:requests:3600000', 1000, 3_600_000)]);
    await store.reserve('acme', [{ kind: 'requests', period: 'day', limit: 10 }], [1]);
    const r = await store.reserve('acme', [{ kind: 'tokens', period: 'month', limit: 10_000 }], [100]);
    await store.settle('acme', [{ kind: 'tokens', period: 'month', limit: 10_000 }], r.periods, [-20], { route: 'chat', requests: 1, tokens: 80, inputTokens: 0, outputTokens: 0, bytes: 0, estimated: true });
    const keys = (await raw.keys(`{${prefix}*`)).sort();
    assert.ok(keys.length >= 5, keys.join(' '));
    for (const k of keys) {
      assert.match(k, new RegExp(`^\\{${prefix}(rl:c:acme|q:acme)\\}:`), k);
      const ttl = await raw.pttl(k);
      assert.ok(ttl > 0, `${k} has a TTL (${ttl})`);
    }
    const hkey = keys.find((k) => k.includes(':u:'))!;
    assert.equal(await raw.hget(hkey, 'chat\testimated'), '1');
  });

  test('the Lua calendar agrees with the JavaScript one (UTC days and months)', async () => {
    const prelude = readFileSync(new URL('../../src/state/lua/calendar.lua', import.meta.url), 'utf8');
    const samples = [Date.UTC(2024, 1, 29, 23, 59, 59, 999), Date.UTC(2024, 11, 31, 12), Date.UTC(2025, 0, 1), Date.UTC(2026, 10, 25, 15, 28), Date.UTC(2100, 1, 28, 23), Date.UTC(2000, 2, 1)];
    for (const ms of samples) {
      const out = (await raw.eval(`${prelude}\nlocal d, de = period_of('day', tonumber(ARGV[1])); local m, me = period_of('month', tonumber(ARGV[1])); return {d, tostring(de), m, tostring(me), day_of(tonumber(ARGV[1]))}`, 0, ms)) as string[];
      const d = periodOf('day', ms), m = periodOf('month', ms);
      assert.deepEqual([out[0], Number(out[1]), out[2], Number(out[3]), out[4]], [d.id, d.end, m.id, m.end, new Date(ms).toISOString().slice(0, 10)], new Date(ms).toISOString());
    }
  });

  test('with Redis unreachable, calls fail fast with a StoreError instead of hanging', async () => {
    const srv = createServer();
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
    const port = (srv.address() as { port: number }).port;
    await new Promise<void>((r) => srv.close(() => r()));
    const dead = new RedisStore({ url: `redis://127.0.0.1:${port}`, keyPrefix: prefix, timeout: 100, logger: silent });
    const t0 = performance.now();
    await assert.rejects(async () => dead.consume(['c:x'], [tier('t', 1, 1000)]), StoreError);
    await assert.rejects(async () => dead.reserve('x', [{ kind: 'requests', period: 'day', limit: 1 }], [1]), StoreError);
    assert.ok(performance.now() - t0 < 1000, 'no waiting for a connection');
    assert.equal(await dead.ready(50), false);
    await dead.close();
  });
});
