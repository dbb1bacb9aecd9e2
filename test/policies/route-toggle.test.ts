// Route toggles, health aliases and the info page, over real sockets; `gatehouse routes` shows a disabled route.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { call, startGateway } from '../helpers.ts';
import { startStub } from '../e2e/stubs.ts';
import { assertProblem } from '../support/problem.ts';
import { loadConfigText } from '../../src/config/load.ts';
import { ConfigError, formatIssue } from '../../src/config/errors.ts';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'gatehouse.mjs');

const yaml = (url: string) => `
upstreams: { files: { targets: [ "${url}" ] } }
routes:
  - name: upload
    match: { path: /v1/upload, methods: [POST] }
    upstream: files
    auth: public
    enabled: \${ENABLE_FILE_UPLOAD:-true}
  - name: upload-503
    match: { path: /v1/upload2, methods: [POST] }
    upstream: files
    auth: public
    enabled: "\${ENABLE_FILE_UPLOAD:-true}"
    whenDisabled: { status: 503, message: "File uploads are turned off for maintenance.", retryAfter: 10m }
    cors: { origins: [https://app.example.com] }
  - name: other
    match: { path: /v1/other }
    upstream: files
    auth: public
`;

test('enabled: false answers 404 exactly like an unknown path (or its configured 503) and never reaches the upstream', async (t) => {
  const stub = await startStub('files');
  const g = await startGateway(yaml(stub.url), { env: { ENABLE_FILE_UPLOAD: 'false' } });
  t.after(async () => { await g.close(); await stub.close(); });
  const r = await call(`${g.url}/v1/upload`, { method: 'POST', body: 'x', headers: { 'content-type': 'text/plain' } });
  const p = assertProblem(r.status, r.headers, r.text, { status: 404, code: 'not_found' });
  const unknown = await call(`${g.url}/v1/nothing-here`, { method: 'POST', body: 'x' });
  assert.equal(p.detail, 'No route matches POST /v1/upload.');
  assert.equal(unknown.json().detail, 'No route matches POST /v1/nothing-here.', 'the same answer: a disabled route does not announce itself');
  const s = await call(`${g.url}/v1/upload2`, { method: 'POST', body: 'x', headers: { origin: 'https://app.example.com' } });
  const p2 = assertProblem(s.status, s.headers, s.text, { status: 503, code: 'route_disabled' });
  assert.equal(p2.detail, 'File uploads are turned off for maintenance.');
  assert.equal(s.headers['retry-after'], '600');
  assert.equal(s.headers['access-control-allow-origin'], 'https://app.example.com', 'CORS still runs, so a browser can read the message');
  assert.equal(stub.seen.length, 0, 'the upstream saw nothing');
  assert.equal((await call(`${g.url}/v1/other`)).status, 200);
  const up = g.gw.table.routes.find((x) => x.name === 'upload')!;
  assert.equal(up.enabled, false);
  assert.deepEqual(up.policies, ['security-headers', 'disabled'], 'a disabled route compiles nothing but its edge headers');
});

test('enabled defaults to true and follows the variable', async (t) => {
  const stub = await startStub('files');
  const g = await startGateway(yaml(stub.url), { env: { ENABLE_FILE_UPLOAD: 'true' } });
  t.after(async () => { await g.close(); await stub.close(); });
  for (const p of ['/v1/upload', '/v1/upload2']) assert.equal((await call(`${g.url}${p}`, { method: 'POST', body: 'x' })).status, 200);
  assert.equal(stub.seen.length, 2);
});

test('gatehouse routes shows a disabled route as DISABLED (table and --json)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'gh-toggle-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'g.yaml');
  writeFileSync(file, yaml('http://127.0.0.1:9'));
  const run = (args: string[]) => new Promise<string>((resolve, reject) => execFile(process.execPath, [BIN, ...args], { env: { ...process.env, ENABLE_FILE_UPLOAD: 'false' }, timeout: 90_000 }, (e, out, err) => (e ? reject(new Error(err)) : resolve(out))));
  const table = await run(['routes', file]);
  assert.match(table, /^upload\s.*DISABLED/m);
  assert.match(table, /^other\s.*-\s/m);
  const rows = JSON.parse(await run(['routes', file, '--json'])) as Array<{ name: string; enabled: boolean }>;
  assert.deepEqual(rows.map((r) => [r.name, r.enabled]), [['upload', false], ['upload-503', false], ['other', true]]);
});

test('server.health.paths: /health answers like /healthz (GET and HEAD); the info page at / is off by default, and on when enabled', async (t) => {
  const stub = await startStub('svc');
  const base = `upstreams: { svc: { targets: [ "${stub.url}" ] } }
routes: [ { name: api, match: { path: /api, prefix: true }, upstream: svc, auth: public } ]`;
  const g = await startGateway(`server: { health: { paths: [/health, /status/health] } }\n${base}`);
  t.after(async () => { await g.close(); await stub.close(); });
  const hz = await call(`${g.url}/healthz`);
  for (const p of ['/health', '/status/health']) {
    const h = await call(`${g.url}${p}`);
    assert.equal(h.status, hz.status);
    assert.deepEqual(Object.keys(h.json()), Object.keys(hz.json()));
    assert.equal(h.json().gateway.environment, 'development');
    assert.equal(h.headers['content-type'], 'application/json');
    const head = await request(`${g.url}${p}`, { method: 'HEAD' });
    assert.equal(head.statusCode, 200);
    await head.body.dump();
  }
  assert.equal((await call(`${g.url}/`)).status, 404, 'no info page unless enabled');
  assert.equal(stub.seen.length, 0);

  const i = await startGateway(`server: { environment: staging, health: { paths: [/health] }, info: { enabled: true, name: machineagents-gateway, links: { docs: "https://docs.example.com" } } }\n${base}`);
  t.after(() => i.close());
  const page = await call(`${i.url}/`);
  assert.equal(page.status, 200);
  const body = page.json();
  assert.equal(body.name, 'machineagents-gateway');
  assert.match(body.version, /^\d+\.\d+\.\d+/);
  assert.equal(body.environment, 'staging');
  assert.deepEqual(body.links, { health: '/healthz', ready: '/readyz', healthAlias: '/health', docs: 'https://docs.example.com' });
});

test('load-time checks: an alias that shadows a route or a built-in, an info page over a catch-all route', () => {
  const bad = `
server: { health: { paths: [/healthz, /v1/health] }, info: { enabled: true } }
upstreams: { svc: { targets: [ "http://127.0.0.1:1" ] } }
routes:
  - { name: all, match: { path: /, prefix: true }, upstream: svc, auth: public }
  - { name: v1h, match: { path: /v1/health, methods: [GET] }, upstream: svc, auth: public }
  - { name: t, match: { path: /t }, upstream: svc, auth: public, enabled: maybe }
`;
  try { loadConfigText(bad, 'g.yaml', { env: {} }); assert.fail('loaded'); } catch (e) {
    assert.ok(e instanceof ConfigError);
    const lines = e.issues.map((i) => formatIssue(i)).join('\n');
    assert.match(lines, /g\.yaml:7:\d+ routes\[2\]\.enabled: expected true or false, got "maybe"/);
  }
  const bad2 = bad.replace('enabled: maybe', 'enabled: false');
  try { loadConfigText(bad2, 'g.yaml', { env: {} }); assert.fail('loaded'); } catch (e) {
    assert.ok(e instanceof ConfigError);
    const lines = e.issues.map((i) => formatIssue(i)).join('\n');
    assert.match(lines, /g\.yaml:2:\d+ server\.health\.paths\[0\]: \/healthz is already a built-in endpoint/);
    assert.match(lines, /server\.health\.paths\[1\]: routes\[0\] \(all\) also serves GET \/v1\/health/);
    assert.match(lines, /server\.health\.paths\[1\]: routes\[1\] \(v1h\) also serves GET \/v1\/health/);
    assert.match(lines, /server\.info\.enabled: routes\[0\] \(all\) also serves GET \//);
  }
});
