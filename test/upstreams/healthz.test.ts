import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { startGateway, eventually, type TestGateway } from '../helpers.ts';
import { startFaulty, hangingServer } from './faulty-upstream.ts';

interface Healthz {
  status: string;
  timestamp: string;
  services: Record<string, { status: string; status_code?: number; response_time_ms?: number; critical: boolean; targets: { up: number; serving: number } }>;
  gateway: { uptime_seconds: number; environment: string; response_time_ms: number };
}

async function healthz(g: TestGateway): Promise<{ status: number; ms: number; body: Healthz }> {
  const t0 = performance.now();
  const r = await request(`${g.url}/healthz`);
  const body = (await r.body.json()) as Healthz;
  return { status: r.statusCode, ms: performance.now() - t0, body };
}

test('/healthz answers in well under 100 ms from cached state while every upstream hangs, and turns unhealthy once the checks time out', async (t) => {
  const hung = await Promise.all([hangingServer(), hangingServer(), hangingServer()]);
  const g = await startGateway(`
upstreams:
  chat: { targets: [ ${hung[0].url}, ${hung[1].url} ], health: { path: /health, interval: 100ms, timeout: 300ms, unhealthyThreshold: 1 } }
  voice: { targets: [ ${hung[2].url} ], health: { path: /health, interval: 100ms, timeout: 300ms, unhealthyThreshold: 1 } }
routes:
  - { match: { path: /x }, upstream: chat, auth: public }
`);
  t.after(async () => { await g.close(); for (const h of hung) await h.close(); });

  // while the first checks are still hanging, and after they have timed out
  const samples: number[] = [];
  const internal: number[] = [];
  let last: Healthz | undefined;
  const end = performance.now() + 900;
  while (performance.now() < end) {
    const r = await healthz(g);
    samples.push(r.ms);
    internal.push(r.body.gateway.response_time_ms);
    last = r.body;
  }
  assert.ok(hung.every((h) => h.connections > 0), 'the background checks did reach the hanging upstreams');
  samples.sort((a, b) => a - b);
  const p50 = samples[Math.floor(samples.length / 2)];
  const p95 = samples[Math.floor(samples.length * 0.95)];
  assert.ok(p50 < 100 && p95 < 100, `/healthz wall-clock p50 ${p50.toFixed(1)} ms, p95 ${p95.toFixed(1)} ms over ${samples.length} calls`);
  assert.ok(Math.max(...internal) < 100, 'time spent inside the gateway');
  t.diagnostic(`healthz with all upstreams hanging: ${samples.length} calls, p50 ${p50.toFixed(2)} ms, p95 ${p95.toFixed(2)} ms, max ${samples[samples.length - 1].toFixed(2)} ms; internal max ${Math.max(...internal).toFixed(3)} ms`);

  assert.equal(last!.status, 'unhealthy');
  assert.equal(last!.services.chat.status, 'unhealthy');
  assert.deepEqual(last!.services.chat.targets, { up: 0, serving: 2 });
  assert.ok(last!.services.chat.response_time_ms! >= 250, 'the response time of the last (timed-out) check');
  assert.equal(last!.gateway.environment, 'development');
  assert.equal(typeof last!.gateway.uptime_seconds, 'number');
  assert.ok(!Number.isNaN(Date.parse(last!.timestamp)));
  assert.equal((await healthz(g)).status, 503);
});

test('/healthz: a non-critical upstream down makes the gateway degraded (200); a critical one makes it unhealthy (503)', async (t) => {
  const core = await startFaulty('core');
  const extra = await startFaulty('extra');
  const g = await startGateway(`
upstreams:
  core: { targets: [ ${core.url} ], health: { path: /health, interval: 50ms, timeout: 500ms, unhealthyThreshold: 1 } }
  extras: { targets: [ ${extra.url} ], critical: false, health: { path: /health, interval: 50ms, timeout: 500ms, unhealthyThreshold: 1 } }
routes:
  - { match: { path: /x }, upstream: core, auth: public }
`);
  t.after(async () => { await g.close(); await core.close(); await extra.close(); });
  await eventually(async () => (await healthz(g)).body.services.core.status_code === 200, 3000);
  const ok = await healthz(g);
  assert.equal(ok.status, 200);
  assert.equal(ok.body.status, 'healthy');
  assert.deepEqual(ok.body.services.core, { ...ok.body.services.core, status: 'healthy', status_code: 200, critical: true });

  extra.healthMode = 'fail';
  await eventually(async () => (await healthz(g)).body.services.extras.status === 'unhealthy', 3000);
  const deg = await healthz(g);
  assert.equal(deg.status, 200);
  assert.equal(deg.body.status, 'degraded');
  assert.equal(deg.body.services.extras.status_code, 503);
  assert.equal(deg.body.services.extras.critical, false);

  core.healthMode = 'fail';
  await eventually(async () => (await healthz(g)).body.services.core.status === 'unhealthy', 3000);
  const down = await healthz(g);
  assert.equal(down.status, 503);
  assert.equal(down.body.status, 'unhealthy');
});

test('/healthz: one of two targets down is a degraded service; a standby (weight 0) does not count', async (t) => {
  const a = await startFaulty('a');
  const b = await startFaulty('b');
  const standby = await startFaulty('standby');
  const g = await startGateway(`
upstreams:
  svc:
    balance: weighted
    targets: [ ${a.url}, ${b.url}, { url: ${standby.url}, weight: 0 } ]
    health: { path: /health, interval: 50ms, timeout: 500ms, unhealthyThreshold: 1 }
routes:
  - { match: { path: /x }, upstream: svc, auth: public }
`);
  t.after(async () => { await g.close(); await a.close(); await b.close(); await standby.close(); });
  standby.healthMode = 'fail';
  await eventually(async () => ((await (await request(`${g.adminUrl}/admin/upstreams/svc`)).body.json()) as { targets: Array<{ state: string }> }).targets[2].state === 'unhealthy', 3000);
  assert.equal((await healthz(g)).body.services.svc.status, 'healthy');
  b.healthMode = 'fail';
  await eventually(async () => (await healthz(g)).body.services.svc.status === 'degraded', 3000);
  assert.deepEqual((await healthz(g)).body.services.svc.targets, { up: 1, serving: 2 });
});
