import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { upstreamSchema, DEFAULT_TIMEOUTS } from '../../src/upstreams/schema.ts';
import { Upstream } from '../../src/upstreams/upstream.ts';
import { startGateway } from '../helpers.ts';
import { startFaulty } from './faulty-upstream.ts';

function upstream(balance: string, weights: number[]): Upstream {
  const cfg = upstreamSchema.parse({ balance, targets: weights.map((weight, i) => ({ url: `http://127.0.0.1:${10_000 + i}`, weight })) });
  return new Upstream('u', { ...cfg, targets: cfg.targets!, timeouts: DEFAULT_TIMEOUTS });
}

const letters = (up: Upstream, n: number, exclude = 0) => Array.from({ length: n }, () => 'abcdefgh'[up.pick(exclude)!.index]).join('');

test('round-robin rotates over serving targets and never picks a standby (weight 0)', async (t) => {
  const up = upstream('round-robin', [100, 0, 100, 100]);
  t.after(() => up.close());
  assert.equal(letters(up, 6), 'acdacd');
  up.targets[2].setHealthy(false);
  assert.equal(letters(up, 4), 'adad');
});

test('weighted is nginx smooth weighted round-robin: 5,1,1 gives a a b a c a a; a canary at 10% gets exactly 10 of 100', async (t) => {
  const up = upstream('weighted', [5, 1, 1]);
  t.after(() => up.close());
  assert.equal(letters(up, 7), 'aabacaa');
  assert.equal(letters(up, 7), 'aabacaa');
  up.setWeights([90, 10, 0]);
  const seq = letters(up, 100);
  assert.equal([...seq].filter((c) => c === 'b').length, 10);
  assert.ok(!seq.includes('c'), 'the standby gets nothing');
  assert.ok(!seq.includes('bb'), 'the canary turns are spread out');
});

test('least-request (power of two choices) prefers the target with fewer in-flight requests, per unit of weight', async (t) => {
  const up = upstream('least-request', [100, 100]);
  t.after(() => up.close());
  up.targets[0].inflight = 5;
  up.targets[1].inflight = 1;
  assert.equal(letters(up, 50), 'b'.repeat(50));
  // weighted sampling: an idle 90/10 pair splits about 90/10
  up.targets[0].inflight = 0;
  up.targets[1].inflight = 0;
  up.setWeights([90, 10]);
  const seq = letters(up, 4000);
  const share = [...seq].filter((c) => c === 'b').length / seq.length;
  assert.ok(share > 0.06 && share < 0.14, `canary share ${share}`);
  // in-flight per unit of weight: 9 in flight on a weight-90 target is lighter than 2 on a weight-10 one
  up.targets[0].inflight = 9;
  up.targets[1].inflight = 2;
  assert.ok(!letters(up, 200).includes('b'));
});

test('every balancer honours exclusion (a retry goes elsewhere) and falls back to an excluded target when it is the only one', async (t) => {
  for (const kind of ['round-robin', 'least-request', 'weighted']) {
    const up = upstream(kind, [100, 100, 100]);
    t.after(() => up.close());
    const tried = up.targets[0].bit | up.targets[1].bit;
    assert.equal(letters(up, 10, tried), 'c'.repeat(10), kind);
    up.targets[2].setHealthy(false);
    assert.ok(/^[ab]+$/.test(letters(up, 10, tried)), `${kind}: excluded targets are still better than none`);
    up.targets[0].setHealthy(false);
    up.targets[1].setHealthy(false);
    assert.equal(up.pick(), null, kind);
  }
});

test('least-request steers traffic away from a slow target through the gateway; round-robin does not', async (t) => {
  const fast = await startFaulty('fast');
  const slow = await startFaulty('slow', { mode: 'slow', delayMs: 200 });
  t.after(async () => { await fast.close(); await slow.close(); });
  for (const balance of ['least-request', 'round-robin'] as const) {
    const g = await startGateway(`
upstreams:
  svc: { balance: ${balance}, targets: [ ${fast.url}, ${slow.url} ] }
routes:
  - { match: { path: /x }, upstream: svc, auth: public }
`);
    fast.calls = 0;
    slow.calls = 0;
    // 6 clients, 60 requests: the slow target holds its requests 200 ms, so its in-flight count stays high
    let next = 0;
    await Promise.all(Array.from({ length: 6 }, async () => {
      while (next++ < 60) {
        const r = await request(`${g.url}/x`);
        assert.equal(r.statusCode, 200);
        await r.body.dump();
      }
    }));
    await g.close();
    const share = slow.calls / (fast.calls + slow.calls);
    if (balance === 'least-request') assert.ok(share < 0.3, `least-request sent ${slow.calls} of ${fast.calls + slow.calls} to the slow target`);
    else assert.ok(share > 0.4, `round-robin sent ${slow.calls} of ${fast.calls + slow.calls} to the slow target`);
  }
});
