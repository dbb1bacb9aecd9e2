import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { startDemoServer, type DemoServer } from '../../src/demo/services.ts';
import { startGateway } from '../helpers.ts';
import { metric, sleep } from './faulty-upstream.ts';

// The small version of bench/chaos.ts: steady idempotent load on three targets while one is killed (every
// connection cut, including requests in flight) and restarted on the same port.
test('chaos: one of three targets killed and restarted under steady GET load: no client error, and the target takes traffic again after its restart', async (t) => {
  const targets: DemoServer[] = await Promise.all(['a', 'b', 'c'].map((name) => startDemoServer({ name })));
  const port = targets[2].port;
  const g = await startGateway(`
upstreams:
  chat:
    balance: least-request
    targets: [ ${targets.map((s) => s.url).join(', ')} ]
    retry: { attempts: 2, budget: 20%, backoff: 10ms }
    passiveHealth: { failures: 3, ejectFor: 300ms, maxEjectFor: 2s }
    health: { path: /health, interval: 100ms, timeout: 200ms, unhealthyThreshold: 2, healthyThreshold: 1 }
routes:
  - { match: { path: /v1, prefix: true }, upstream: chat, auth: public }
`);
  t.after(async () => { await g.close(); for (const s of targets) await s.close(); });

  const failures: string[] = [];
  const served: Array<{ at: number; service: string }> = [];
  let ok = 0;
  let stop = false;
  const worker = async () => {
    while (!stop) {
      try {
        // 20 ms of upstream work: requests are always in flight on every target when one is killed
        const r = await request(`${g.url}/v1/slow?ms=20`);
        const text = await r.body.text();
        if (r.statusCode !== 200) failures.push(`status ${r.statusCode} ${text}`);
        else ok++;
      } catch (e) {
        failures.push((e as Error).message);
      }
    }
  };
  // which target answers: the demo echo names itself (the slow endpoint does not), so one client samples it
  const sampler = async () => {
    while (!stop) {
      try {
        const r = await request(`${g.url}/v1/echo`);
        const body = (await r.body.json()) as { service: string };
        if (r.statusCode !== 200) failures.push(`echo status ${r.statusCode}`);
        else served.push({ at: performance.now(), service: body.service });
      } catch (e) {
        failures.push((e as Error).message);
      }
    }
  };
  const load = [...Array.from({ length: 4 }, worker), sampler()];
  await sleep(400);
  const killedAt = performance.now();
  await targets[2].close();
  await sleep(800);
  const restartedAt = performance.now();
  targets[2] = await startDemoServer({ name: 'c', port });
  await sleep(1200);
  stop = true;
  await Promise.all(load);

  const m = await (await request(`${g.adminUrl}/metrics`)).body.text();
  assert.deepEqual(failures, [], `no client saw an error (retries ${metric(m, 'gatehouse_upstream_retries_total', { upstream: 'chat' })}, budget exhausted ${metric(m, 'gatehouse_upstream_retry_budget_exhausted_total', { upstream: 'chat' })})`);
  assert.ok(ok > 30 && served.length > 15, `steady load (${ok} + ${served.length} responses)`);
  const duringOutage = served.filter((s) => s.at > killedAt + 300 && s.at < restartedAt);
  assert.ok(duringOutage.length > 0 && duringOutage.every((s) => s.service !== 'c'), 'the dead target was out of rotation');
  const back = served.find((s) => s.at > restartedAt && s.service === 'c');
  assert.ok(back, 'the restarted target served again');
  t.diagnostic(`chaos: ${ok + served.length} responses, 0 errors, ${metric(m, 'gatehouse_upstream_retries_total', { upstream: 'chat' }) ?? 0} retries; restarted target back after ${(back!.at - restartedAt).toFixed(0)} ms`);
});
