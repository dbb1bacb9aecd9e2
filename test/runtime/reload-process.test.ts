// Reload triggers of a real `gatehouse start` process: SIGHUP, --watch (file change, debounced), and under
// --workers N, where the primary validates once and every worker reloads (SIGHUP or the admin API).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { startDemoServer } from '../../src/demo/services.ts';
import { startChildGateway } from '../support/child-gateway.ts';
import { call, eventually } from '../helpers.ts';

const config = (up: string, extra = '') => `server: { listen: 127.0.0.1:0 }
admin: { listen: 127.0.0.1:0 }
observability: { log: { level: info, format: json } }
upstreams: { svc: { targets: [ ${up} ] } }
routes:
  - { name: one, match: { path: /one }, upstream: svc, auth: public }
${extra}`;
const TWO = '  - { name: two, match: { path: /two }, upstream: svc, auth: public }\n';
const BAD = '  - { name: two, match: { path: /two }, upstream: nope, auth: public }\n';

test('SIGHUP reloads the file; a bad file is logged with its problems and the running config keeps serving', async (t) => {
  const up = await startDemoServer();
  const gw = await startChildGateway(config(up.url));
  t.after(async () => { await gw.kill(); await up.close(); });
  assert.equal((await call(`${gw.url}/two`)).status, 404);

  writeFileSync(gw.file, config(up.url, BAD));
  gw.proc.kill('SIGHUP');
  const refused = await eventually(() => gw.lines().find((l) => l.msg === 'config reload refused; the running config keeps serving'), 10_000);
  assert.match(String((refused!.problems as string[])[0]), /gatehouse\.yaml:\d+:\d+ routes\[1\]\.upstream: unknown upstream "nope"/);
  assert.equal((await call(`${gw.url}/one`)).status, 200);

  writeFileSync(gw.file, config(up.url, TWO));
  gw.proc.kill('SIGHUP');
  await eventually(async () => (await call(`${gw.url}/two`)).status === 200, 10_000);
  const done = gw.lines().find((l) => l.msg === 'config reloaded');
  assert.equal(done?.generation, 2);
  assert.deepEqual((done?.changes as { routes: { added: string[] } }).routes.added, ['two']);
});

test('--watch reloads when the file changes (one reload for a burst of writes)', async (t) => {
  const up = await startDemoServer();
  const gw = await startChildGateway(config(up.url), 60_000, ['--watch']);
  t.after(async () => { await gw.kill(); await up.close(); });
  for (let i = 0; i < 5; i++) writeFileSync(gw.file, config(up.url, TWO));
  await eventually(async () => (await call(`${gw.url}/two`)).status === 200, 10_000);
  await new Promise((r) => setTimeout(r, 600));
  assert.equal(gw.lines().filter((l) => l.msg === 'config reloaded').length, 1);
});

test('--workers 2: the primary validates a SIGHUP reload first; then every worker reloads, and the admin API reloads them all too', async (t) => {
  const up = await startDemoServer();
  const gw = await startChildGateway(config(up.url), 60_000, ['--workers', '2']);
  t.after(async () => { await gw.kill(); await up.close(); });
  await eventually(() => gw.lines().filter((l) => typeof l.port === 'number').length === 2, 30_000);

  writeFileSync(gw.file, config(up.url, BAD));
  gw.proc.kill('SIGHUP');
  await eventually(() => gw.stderr().includes('reload refused'), 10_000);
  assert.match(gw.stderr(), /routes\[1\]\.upstream: unknown upstream "nope"/);
  assert.equal(gw.lines().filter((l) => l.msg === 'config reloaded' || l.msg === 'config reload refused; the running config keeps serving').length, 0, 'no worker saw the bad file');

  writeFileSync(gw.file, config(up.url, TWO));
  gw.proc.kill('SIGHUP');
  await eventually(() => gw.lines().filter((l) => l.msg === 'config reloaded').length === 2, 10_000);
  // New connections are spread over both workers: every one of them serves the new route.
  for (let i = 0; i < 10; i++) assert.equal((await call(`${gw.url}/two`, { headers: { connection: 'close' } })).status, 200);

  writeFileSync(gw.file, config(up.url, TWO.replace('/two', '/three').replace('name: two', 'name: three')));
  const viaAdmin = await call(`${gw.adminUrl}/admin/reload`, { method: 'POST' });
  assert.equal(viaAdmin.status, 200, viaAdmin.text);
  const body = viaAdmin.json();
  assert.equal(body.ok, true);
  assert.equal(body.workers.length, 2);
  assert.ok(body.workers.every((w: { ok: boolean; generation: number }) => w.ok && w.generation === 3));
  for (let i = 0; i < 6; i++) assert.equal((await call(`${gw.url}/three`, { headers: { connection: 'close' } })).status, 200);
});
