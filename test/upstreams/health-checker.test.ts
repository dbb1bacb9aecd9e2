import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { pino } from 'pino';
import { loadConfigText } from '../../src/config/load.ts';
import { Gateway } from '../../src/gateway.ts';
import { startGateway, eventually, type TestGateway } from '../helpers.ts';
import { startFaulty, metric, sleep, type FaultyUpstream } from './faulty-upstream.ts';

interface TargetView { url: string; state: string; health: { healthy: boolean; checks: number; lastStatus: number | null; lastError: string | null } }
async function targets(g: TestGateway): Promise<TargetView[]> {
  return ((await (await request(`${g.adminUrl}/admin/upstreams/svc`)).body.json()) as { targets: TargetView[] }).targets;
}

async function twoTargets(t: { after(fn: () => Promise<void>): void }, health: string): Promise<{ g: TestGateway; a: FaultyUpstream; b: FaultyUpstream }> {
  const a = await startFaulty('a');
  const b = await startFaulty('b');
  const g = await startGateway(`
upstreams:
  svc:
    targets: [ ${a.url}, ${b.url} ]
    health: ${health}
routes:
  - { match: { path: /x }, upstream: svc, auth: public }
`);
  t.after(async () => { await g.close(); await a.close(); await b.close(); });
  return { g, a, b };
}

test('a target whose health endpoint fails leaves the rotation after unhealthyThreshold checks and returns after healthyThreshold passing ones', async (t) => {
  const { g, a, b } = await twoTargets(t, '{ path: /health, interval: 50ms, timeout: 500ms, unhealthyThreshold: 2, healthyThreshold: 3 }');
  await eventually(async () => (await targets(g))[0].health.checks >= 2, 3000);
  a.healthMode = 'fail';
  await eventually(async () => (await targets(g))[0].state === 'unhealthy', 3000);
  const [ta] = await targets(g);
  assert.equal(ta.health.lastStatus, 503);
  assert.equal(ta.health.lastError, 'status 503');
  const before = a.calls;
  for (let i = 0; i < 8; i++) {
    const r = await request(`${g.url}/x`);
    assert.equal(r.statusCode, 200);
    await r.body.dump();
  }
  assert.equal(a.calls, before, 'no traffic to an unhealthy target');
  assert.equal(b.calls, 8);
  const m = await (await request(`${g.adminUrl}/metrics`)).body.text();
  assert.equal(metric(m, 'gatehouse_upstream_target_healthy', { upstream: 'svc', target: a.url }), 0);
  assert.ok(metric(m, 'gatehouse_upstream_health_checks_total', { upstream: 'svc', target: a.url, result: 'fail' })! >= 2);
  assert.ok(g.logs.some((l) => l.msg === 'target unhealthy' && l.target === a.url && l.error === 'status 503'));

  // Counted before the switch: under load a passing check can complete while the admin API is being asked.
  const checksAtRecovery = (await targets(g))[0].health.checks;
  a.healthMode = 'ok';
  await eventually(async () => (await targets(g))[0].state === 'up', 3000);
  assert.ok((await targets(g))[0].health.checks - checksAtRecovery >= 3, 'healthyThreshold passing checks in a row');
  for (let i = 0; i < 4; i++) await (await request(`${g.url}/x`)).body.dump();
  assert.equal(a.calls - before, 2, 'back in rotation');
});

test('flapping health (fail, ok, fail, ok…) never reaches unhealthyThreshold 2, so the target is not flapped in and out', async (t) => {
  const { g, a } = await twoTargets(t, '{ path: /health, interval: 40ms, timeout: 500ms, unhealthyThreshold: 2 }');
  a.healthMode = 'flap';
  await eventually(async () => (await targets(g))[0].health.checks >= 12, 4000);
  assert.equal((await targets(g))[0].health.healthy, true);
  assert.ok(!g.logs.some((l) => l.msg === 'target unhealthy'));
});

test('a hanging health endpoint times out and marks the target unhealthy, while requests keep flowing without waiting on the checks', async (t) => {
  const { g, a } = await twoTargets(t, '{ path: /health, interval: 50ms, timeout: 1500ms, unhealthyThreshold: 1 }');
  await eventually(() => a.healthCalls >= 1, 3000);
  a.healthMode = 'hang';
  const hanging = a.healthCalls;
  await eventually(() => a.healthCalls > hanging, 3000); // a check is now stuck on the endpoint for 1.5 s
  const t0 = performance.now();
  for (let i = 0; i < 6; i++) {
    const r = await request(`${g.url}/x`);
    assert.equal(r.statusCode, 200);
    await r.body.dump();
  }
  assert.ok(performance.now() - t0 < 1200, 'requests (to both targets) never wait for the hanging check');
  assert.ok(a.calls >= 3, 'the target stays in rotation until the check has actually failed');
  await eventually(async () => (await targets(g))[0].state === 'unhealthy', 4000);
  assert.equal((await targets(g))[0].health.lastError, 'timeout');
});

test('expectStatus: a status outside the list fails the check', async (t) => {
  const { g } = await twoTargets(t, '{ path: /health, interval: 50ms, timeout: 500ms, unhealthyThreshold: 1, expectStatus: [204] }');
  await eventually(async () => (await targets(g)).every((x) => x.state === 'unhealthy'), 3000);
  const r = await request(`${g.url}/x`);
  assert.equal(r.statusCode, 503);
  assert.equal(((await r.body.json()) as { code: string }).code, 'upstream_unavailable');
});

test('checks run in the background once the gateway listens, and stop when it closes', async (t) => {
  const a = await startFaulty('a');
  t.after(() => a.close());
  const yaml = `
upstreams:
  svc: { targets: [ ${a.url} ], health: { path: /health, interval: 40ms, timeout: 500ms } }
routes:
  - { match: { path: /x }, upstream: svc, auth: public }
`;
  // compiled but not listening (gatehouse validate / routes): nothing is probed
  const compiled = new Gateway(loadConfigText(yaml, 't.yaml', { env: {} }).config, { logger: pino({ level: 'silent' }), defaultMetrics: false });
  await sleep(150);
  await compiled.close();
  assert.equal(a.healthCalls, 0);
  const g = await startGateway(yaml);
  await eventually(() => a.healthCalls >= 5, 3000);
  await g.close();
  await sleep(20);
  const after = a.healthCalls;
  await sleep(200);
  assert.equal(a.healthCalls, after, 'no check after close');
});
