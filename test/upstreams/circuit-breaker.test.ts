import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { CircuitBreaker, CLOSED, HALF_OPEN, OPEN } from '../../src/upstreams/circuit-breaker.ts';
import { startGateway, eventually } from '../helpers.ts';
import { startFaulty, metric, sleep } from './faulty-upstream.ts';

async function get(url: string) {
  const r = await request(url);
  const text = await r.body.text();
  return { status: r.statusCode, headers: r.headers, body: text ? JSON.parse(text) : null };
}

test('5xx burst: the circuit opens after N failures, then answers 503 circuit_open with Retry-After and makes no upstream call; after resetAfter one probe closes it', async (t) => {
  const up = await startFaulty('svc', { mode: 'status', status: 503 });
  const g = await startGateway(`
upstreams:
  svc:
    targets: [ ${up.url} ]
    circuitBreaker: { failures: 3, resetAfter: 1500ms }
routes:
  - { match: { path: /x }, upstream: svc, auth: public }
`);
  t.after(async () => { await g.close(); await up.close(); });

  for (let i = 0; i < 3; i++) assert.equal((await get(`${g.url}/x`)).status, 503, 'the upstream answers are relayed while the circuit is closed');
  assert.equal(up.calls, 3);

  const openedAt = performance.now();
  for (let i = 0; i < 5; i++) {
    const r = await get(`${g.url}/x`);
    assert.equal(r.status, 503);
    assert.equal(r.headers['content-type'], 'application/problem+json');
    assert.equal(r.body.code, 'circuit_open');
    const retryAfter = Number(r.headers['retry-after']);
    assert.ok(retryAfter >= 1 && retryAfter <= 2, `Retry-After ${r.headers['retry-after']} = seconds until half-open`);
  }
  assert.equal(up.calls, 3, 'no upstream call while the circuit is open');

  const m = await (await request(`${g.adminUrl}/metrics`)).body.text();
  assert.equal(metric(m, 'gatehouse_circuit_state', { upstream: 'svc', target: '*' }), 2);
  assert.equal(metric(m, 'gatehouse_circuit_state', { upstream: 'svc', target: up.url }), 2);
  assert.equal(metric(m, 'gatehouse_circuit_transitions_total', { upstream: 'svc', target: up.url, to: 'open' }), 1);
  assert.ok(g.logs.some((l) => l.msg === 'circuit opened' && l.upstream === 'svc' && l.target === up.url));

  up.mode = 'ok';
  // half-open on time (a timer, not the next request), and not before resetAfter
  // both circuits (the target's and the upstream's '*') opened, each on its own timer: wait for both to half-open
  await eventually(() => g.logs.filter((l) => l.msg === 'circuit half-open: letting probes through').length >= 2, 4000);
  assert.ok(performance.now() - openedAt >= 1400, 'half-open came after resetAfter');
  const probe = await get(`${g.url}/x`);
  assert.equal(probe.status, 200);
  assert.equal(up.calls, 4, 'exactly one probe');
  for (let i = 0; i < 5; i++) assert.equal((await get(`${g.url}/x`)).status, 200);
  assert.equal(up.calls, 9);
  assert.ok(g.logs.some((l) => l.msg === 'circuit closed' && l.target === '*'));
  const m2 = await (await request(`${g.adminUrl}/metrics`)).body.text();
  assert.equal(metric(m2, 'gatehouse_circuit_state', { upstream: 'svc', target: '*' }), 0);
  assert.equal(metric(m2, 'gatehouse_circuit_transitions_total', { upstream: 'svc', target: '*', to: 'closed' }), 1);
});

test('half-open lets only halfOpenRequests probes through at once; a failing probe opens the circuit again', async (t) => {
  const up = await startFaulty('svc', { mode: 'status', status: 500 });
  const g = await startGateway(`
upstreams:
  svc:
    targets: [ ${up.url} ]
    circuitBreaker: { failures: 2, resetAfter: 300ms, halfOpenRequests: 1 }
routes:
  - { match: { path: /x }, upstream: svc, auth: public }
`);
  t.after(async () => { await g.close(); await up.close(); });
  await get(`${g.url}/x`);
  await get(`${g.url}/x`);
  assert.equal((await get(`${g.url}/x`)).body.code, 'circuit_open');
  assert.equal(up.calls, 2);

  // the probe fails: open again, for another resetAfter
  await sleep(400);
  assert.equal((await get(`${g.url}/x`)).status, 500, 'the probe reached the upstream');
  assert.equal(up.calls, 3);
  const again = await get(`${g.url}/x`);
  assert.equal(again.body.code, 'circuit_open');
  assert.equal(up.calls, 3);

  // a slow upstream while half-open: of 5 concurrent requests, one is the probe and four are refused at the gateway
  up.mode = 'slow';
  up.delayMs = 600; // long enough that all five arrive while the probe is out, even on a loaded machine
  await sleep(400);
  const results = await Promise.all(Array.from({ length: 5 }, () => get(`${g.url}/x`)));
  assert.equal(results.filter((r) => r.status === 200).length, 1);
  assert.equal(results.filter((r) => r.body?.code === 'circuit_open').length, 4);
  assert.equal(up.calls, 4);
  assert.equal((await get(`${g.url}/x`)).status, 200, 'the probe closed the circuit');
});

test('a circuit per target: one target failing is cut off while the others keep serving', async (t) => {
  const bad = await startFaulty('bad', { mode: 'status', status: 502 });
  const good = await startFaulty('good');
  const g = await startGateway(`
upstreams:
  svc:
    targets: [ ${bad.url}, ${good.url} ]
    circuitBreaker: { failures: 3, resetAfter: 10s }
routes:
  - { match: { path: /x }, upstream: svc, auth: public }
`);
  t.after(async () => { await g.close(); await bad.close(); await good.close(); });
  const statuses: number[] = [];
  for (let i = 0; i < 20; i++) statuses.push((await get(`${g.url}/x`)).status);
  assert.equal(bad.calls, 3, 'the failing target got N requests, then none');
  assert.equal(statuses.filter((s) => s === 502).length, 3);
  assert.equal(statuses.slice(6).every((s) => s === 200), true);
  const admin = (await (await request(`${g.adminUrl}/admin/upstreams/svc`)).body.json()) as { status: string; circuit: { state: string }; targets: Array<{ circuit: { state: string }; state: string }> };
  assert.equal(admin.targets[0].circuit.state, 'open');
  assert.equal(admin.targets[0].state, 'circuit_open');
  assert.equal(admin.targets[1].circuit.state, 'closed');
  assert.equal(admin.circuit.state, 'closed', 'failures interleaved with successes never open the upstream-wide circuit');
  assert.equal(admin.status, 'degraded');
});

test('failure ratio: the circuit opens when the share of failures over the last minRequests reaches the ratio; stale outcomes are ignored', () => {
  const transitions: string[] = [];
  const b = new CircuitBreaker({ failures: 100, failureRatio: 0.5, minRequests: 10, resetAfter: 1000, halfOpenRequests: 2 }, (_f, to) => transitions.push(['closed', 'half_open', 'open'][to]));
  let now = 1000;
  for (let i = 0; i < 9; i++) b.record(i % 2 === 0, now++, now);
  assert.equal(b.state, CLOSED, 'fewer than minRequests outcomes: no verdict yet');
  b.record(false, now++, now);
  assert.equal(b.state, CLOSED, 'a success never opens the circuit, even with the window at 5 of 10');
  b.record(true, now++, now); // the oldest failure slides out, this one comes in: still 5 of 10, and a failure decides
  assert.equal(b.state, OPEN);
  assert.equal(b.canPass(now + 500), false);
  assert.ok(b.retryAfterMs(now + 500) > 400);
  // a request that started before the circuit opened fails late: ignored, no extra transition
  b.record(true, now - 5, now + 600);
  assert.equal(transitions.length, 1);
  assert.equal(b.canPass(now + 1001), true);
  assert.equal(b.state, HALF_OPEN);
  b.acquire();
  assert.equal(b.canPass(now + 1002), true);
  b.acquire();
  assert.equal(b.canPass(now + 1003), false, 'halfOpenRequests: 2 probes at once');
  b.record(false, now + 1001, now + 1100);
  assert.equal(b.state, HALF_OPEN, 'one success of two');
  b.record(false, now + 1002, now + 1101);
  assert.equal(b.state, CLOSED);
  assert.deepEqual(transitions, ['open', 'half_open', 'closed']);
});

test('a probe that never reports (its client left) does not wedge the circuit half-open', () => {
  const b = new CircuitBreaker({ failures: 1, minRequests: 20, resetAfter: 100, halfOpenRequests: 1 });
  b.record(true, 0, 1);
  assert.equal(b.canPass(102), true);
  b.acquire();
  assert.equal(b.canPass(150), false);
  b.record(null, 102, 160); // neutral outcome: frees the slot
  assert.equal(b.canPass(161), true);
  b.acquire(); // this one is lost for good
  assert.equal(b.canPass(200), false);
  assert.equal(b.canPass(262), true, 'after another resetAfter a new probe round starts');
});
