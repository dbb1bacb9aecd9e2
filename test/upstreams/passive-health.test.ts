import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { PassiveHealth } from '../../src/upstreams/ejection.ts';
import { startGateway, eventually } from '../helpers.ts';
import { startFaulty, metric, sleep } from './faulty-upstream.ts';

async function status(url: string): Promise<number> {
  try {
    const r = await request(url);
    await r.body.dump();
    return r.statusCode;
  } catch {
    return 0; // the gateway cut the response (a reset mid-response)
  }
}

test('passive health: a target resetting mid-response is ejected after N failures, comes back after ejectFor, is ejected for twice as long when it fails again, and serves again once fixed', async (t) => {
  const bad = await startFaulty('bad', { mode: 'reset-mid' });
  const good = await startFaulty('good');
  const g = await startGateway(`
upstreams:
  svc:
    targets: [ ${bad.url}, ${good.url} ]
    passiveHealth: { failures: 2, ejectFor: 400ms, maxEjectFor: 5s }
routes:
  - { match: { path: /x }, upstream: svc, auth: public }
`);
  t.after(async () => { await g.close(); await bad.close(); await good.close(); });

  // round-robin: bad, good, bad (second failure: ejected), then only good
  for (let i = 0; i < 3; i++) await status(`${g.url}/x`);
  assert.equal(bad.calls, 2);
  const ejected = performance.now();
  for (let i = 0; i < 10; i++) assert.equal(await status(`${g.url}/x`), 200);
  assert.equal(bad.calls, 2, 'no traffic to an ejected target');
  const admin = (await (await request(`${g.adminUrl}/admin/upstreams/svc`)).body.json()) as { targets: Array<{ state: string; passive: { ejected: boolean; ejections: number } }> };
  assert.equal(admin.targets[0].state, 'ejected');
  assert.equal(admin.targets[0].passive.ejections, 1);

  // back after ejectFor: traffic reaches it again (and it fails twice again: a second, longer ejection)
  await eventually(async () => { await status(`${g.url}/x`); return bad.calls > 2; }, 3000);
  assert.ok(performance.now() - ejected >= 380, 'not before ejectFor');
  await eventually(async () => { await status(`${g.url}/x`); return bad.calls >= 4; }, 2000);
  const lengths = g.logs.filter((l) => l.msg === 'target ejected after failures in traffic').map((l) => l.ejectForMs);
  assert.deepEqual(lengths, [400, 800], 'the ejection interval grows');
  const m = await (await request(`${g.adminUrl}/metrics`)).body.text();
  assert.equal(metric(m, 'gatehouse_upstream_ejections_total', { upstream: 'svc', target: bad.url }), 2);
  assert.equal(metric(m, 'gatehouse_upstream_target_up', { upstream: 'svc', target: bad.url }), 0);

  // fixed: after the 800 ms ejection it takes traffic and keeps it
  bad.mode = 'ok';
  const before = bad.calls;
  await sleep(850);
  for (let i = 0; i < 6; i++) assert.equal(await status(`${g.url}/x`), 200);
  assert.equal(bad.calls - before, 3, 'back in the rotation: every other request');
  assert.ok(g.logs.some((l) => l.msg === 'ejected target back in rotation' && l.target === bad.url));
});

test('passive health: a failure ratio ejects a flaky target that never fails N times in a row; an ejected-only upstream answers 503 with Retry-After', async (t) => {
  const flaky = await startFaulty('flaky', { mode: 'status', status: 500 });
  const g = await startGateway(`
upstreams:
  svc:
    targets: [ ${flaky.url} ]
    passiveHealth: { failures: 50, failureRatio: 0.5, minRequests: 6, ejectFor: 2s }
routes:
  - { match: { path: /x }, upstream: svc, auth: public }
`);
  t.after(async () => { await g.close(); await flaky.close(); });
  // fail, ok, fail, ok, fail, ok...: 3 of the last 6 failed once the sixth lands on a failure
  const seen: number[] = [];
  for (let i = 0; i < 8; i++) {
    flaky.mode = i % 2 === 0 ? 'ok' : 'status';
    seen.push(await status(`${g.url}/x`));
  }
  assert.equal(flaky.calls, 6, `ejected at the 6th outcome (seen ${seen.join(',')})`);
  const r = await request(`${g.url}/x`);
  const body = (await r.body.json()) as { code: string };
  assert.equal(r.statusCode, 503);
  assert.equal(body.code, 'upstream_unavailable');
  assert.equal(r.headers['retry-after'], '2', 'seconds until the ejection ends');
});

test('PassiveHealth: the multiplier is forgiven after maxEjectFor in rotation, and capped', () => {
  const p = new PassiveHealth({ failures: 1, minRequests: 20, ejectFor: 100, maxEjectFor: 350 });
  assert.equal(p.record(true, 0, 0), 100);
  p.readmit(100);
  assert.equal(p.record(true, 101, 110), 200);
  p.readmit(310);
  assert.equal(p.record(true, 311, 320), 350, 'capped at maxEjectFor');
  p.readmit(670);
  assert.equal(p.record(true, 50, 680), 0, 'a failure of an exchange started before the return is ignored');
  assert.equal(p.record(true, 671, 680 + 400), 100, 'in rotation for longer than maxEjectFor: starts again from ejectFor');
});
