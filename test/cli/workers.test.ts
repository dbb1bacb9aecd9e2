// `gatehouse start --workers N|auto` in a real process tree: a crashed worker is replaced (with backoff), SIGTERM
// drains every worker and the primary exits 0, the memory store warning is given. (Reloads reaching every
// worker: test/runtime/reload-process.test.ts.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { availableParallelism } from 'node:os';
import { request } from 'undici';
import { startDemoServer } from '../../src/demo/services.ts';
import { startChildGateway } from '../support/child-gateway.ts';
import { call, eventually } from '../helpers.ts';

const config = (up: string) => `server: { listen: 127.0.0.1:0, shutdownGrace: 10s }
admin: { listen: 127.0.0.1:0 }
observability: { log: { level: info, format: json } }
upstreams: { svc: { targets: [ ${up} ], timeout: 30s } }
routes:
  - { name: slow, match: { path: /v1/slow }, upstream: svc, auth: public }
  - { name: echo, match: { path: /echo }, upstream: svc, auth: public, rateLimit: [ { limit: 1000, window: 1m, by: ip } ] }
`;
const listening = (lines: Array<Record<string, unknown>>) => lines.filter((l) => typeof l.port === 'number' && typeof l.pid === 'number');

test('--workers 2: a worker that crashes is replaced and the port keeps serving; the memory store warning is given', async (t) => {
  const up = await startDemoServer();
  const gw = await startChildGateway(config(up.url), 60_000, ['--workers', '2']);
  t.after(async () => { await gw.kill(); await up.close(); });
  await eventually(() => listening(gw.lines()).length === 2, 30_000);
  assert.match(gw.stderr(), /warning: state\.store is memory: rate limits and quotas are per worker \(2 workers\)/);
  assert.ok(gw.lines().some((l) => /state\.store is memory but this gateway runs as one of several workers/.test(String(l.msg))), 'each worker warns too');

  const [victim] = listening(gw.lines()).map((l) => l.pid as number);
  process.kill(victim, 'SIGKILL');
  await eventually(() => gw.stderr().includes(`worker ${victim} exited (SIGKILL); starting a new one in`), 10_000);
  const fresh = await eventually(() => listening(gw.lines()).find((l) => l.pid !== victim && !listening(gw.lines()).slice(0, 2).some((o) => o.pid === l.pid)), 20_000);
  assert.ok(fresh, 'a new worker started');
  // New connections land on both workers (round-robin): all are served.
  for (let i = 0; i < 8; i++) assert.equal((await call(`${gw.url}/echo`, { headers: { connection: 'close' } })).status, 200);
});

test('SIGTERM: every worker drains its requests in flight, then the primary exits 0', async (t) => {
  const up = await startDemoServer();
  const gw = await startChildGateway(config(up.url), 60_000, ['--workers', '2']);
  t.after(async () => { await gw.kill(); await up.close(); });
  await eventually(() => listening(gw.lines()).length === 2, 30_000);
  const pids = listening(gw.lines()).map((l) => l.pid);

  // Four slow requests on four connections: round-robin puts them on both workers.
  const inflight = Array.from({ length: 4 }, async () => {
    const r = await request(`${gw.url}/v1/slow?ms=1500`, { headers: { connection: 'close' } });
    await r.body.text();
    return r.statusCode;
  });
  await new Promise((r) => setTimeout(r, 400));
  gw.proc.kill('SIGTERM');
  assert.deepEqual(await Promise.all(inflight), [200, 200, 200, 200]);
  const exit = await gw.exited;
  assert.deepEqual(exit, { code: 0, signal: null });
  const lines = gw.lines();
  assert.equal(new Set(pids).size, 2);
  assert.equal(lines.filter((l) => l.msg === 'draining').length, 2, 'both workers drained');
  assert.equal(lines.filter((l) => l.msg === 'stopped').length, 2, 'both workers stopped after draining');
  const served = lines.filter((l) => l.type === 'access' && l.route === 'slow' && l.status === 200);
  assert.equal(served.length, 4);
});

test('--workers auto starts one worker per available core', async (t) => {
  const up = await startDemoServer();
  const gw = await startChildGateway(config(up.url), 60_000, ['--workers', 'auto']);
  t.after(async () => { await gw.kill(); await up.close(); });
  const n = availableParallelism();
  await eventually(() => listening(gw.lines()).length === n, 30_000);
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(new Set(listening(gw.lines()).map((l) => l.pid)).size, n);
});
