// `gatehouse check --live` as an operator runs it: a child process against real services on ephemeral ports.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import http from 'node:http';
import https from 'node:https';
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDemoServices } from '../../src/demo/services.ts';
import { demoConfig } from '../../src/cli/demo.ts';
import { startGateway, type TestGateway } from '../helpers.ts';
import { deadPort } from '../support/raw-http.ts';
import { makeCa, type TestCa } from '../support/certs.ts';
import { loadConfigText } from '../../src/config/load.ts';
import { ConfigError, formatIssue } from '../../src/config/errors.ts';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'gatehouse.mjs');
let dir: string;
let demo: Awaited<ReturnType<typeof startDemoServices>>;

function run(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { timeout: 90_000, env: { ...process.env, NO_COLOR: '1', ...env } }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

function file(name: string, yaml: string): string {
  const p = join(dir, name);
  writeFileSync(p, yaml);
  return p;
}

/** Rows of the table: verdict, check, subject. */
function rows(stdout: string): Array<{ verdict: string; kind: string; subject: string; line: string }> {
  return stdout.split('\n').slice(1).filter((l) => /^(ok|warn|FAIL|skip) /.test(l)).map((line) => {
    const m = /^(\S+)\s+(.+?)\s{2,}((?:upstream|route) \S+)/.exec(line)!;
    return { verdict: m[1]!, kind: m[2]!, subject: m[3]!, line };
  });
}

/** An upstream that records every request it gets and answers 200 (or 404 on /missing, 503 on /health-bad). */
function recorder(): Promise<{ url: string; seen: Array<{ method: string; url: string; body: string }>; close(): Promise<void> }> {
  const seen: Array<{ method: string; url: string; body: string }> = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      seen.push({ method: req.method!, url: req.url!, body });
      res.writeHead(req.url === '/health-bad' ? 503 : 200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => {
    const { port } = server.address() as { port: number };
    resolve({ url: `http://127.0.0.1:${port}`, seen, close: () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); }) });
  }));
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gh-check-'));
  demo = await startDemoServices({ host: '127.0.0.1' });
});
after(async () => {
  await demo.close();
  rmSync(dir, { recursive: true, force: true });
});

test('against the demo services: every route and target green, exit 0; through a running gateway too', async () => {
  const yaml = demoConfig({ chat: demo.chat.url, ingest: demo.ingest.url, realtime: demo.realtime.url }, '127.0.0.1:0');
  const cfg = file('demo.yaml', yaml);
  const gw = await startGateway(yaml.replace(/^admin:.*$/m, ''));
  try {
    const r = await run(['check', '--live', '--config', cfg, '--gateway', gw.url]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const table = rows(r.stdout);
    assert.deepEqual(table.filter((x) => x.verdict === 'FAIL' || x.verdict === 'warn'), []);
    for (const route of ['chat', 'chat-stream', 'upload', 'realtime', 'slow']) {
      assert.ok(table.some((x) => x.subject === `route ${route}` && x.verdict === 'ok' && !x.kind.includes('via')), `${route} direct`);
      assert.ok(table.some((x) => x.subject === `route ${route}` && x.verdict === 'ok' && x.kind.includes('via gateway')), `${route} via gateway`);
    }
    for (const up of ['chat', 'ingest', 'realtime']) assert.ok(table.some((x) => x.subject === `upstream ${up}` && x.kind === 'connect' && x.verdict === 'ok'), up);
    assert.ok(table.some((x) => x.subject === 'route realtime' && x.kind === 'websocket' && /101/.test(x.line)), 'websocket handshake');
    assert.match(r.stdout, /all \d+ checks passed/);
    // the SSE route was probed with GET and left at its headers, so the stream was abandoned, not read to the end
    assert.ok(demo.chat.stats.streamsStarted >= 2);
  } finally {
    await gw.close();
  }
});

test('one dead upstream: exit 1, the table and stderr name it and the routes on it', async () => {
  const dead = await deadPort();
  const cfg = file('dead.yaml', `upstreams:
  chat: { targets: [ ${demo.chat.url} ] }
  billing: { targets: [ http://127.0.0.1:${dead} ], health: { path: /health } }
defaults: { auth: public }
routes:
  - { name: chat, match: { path: /v1/chat/completions, methods: [POST] }, upstream: chat }
  - { name: invoices, match: { path: /v1/invoices/:id, methods: [GET] }, upstream: billing }
`);
  const r = await run(['check', '--live', '--config', cfg, '--timeout', '5']);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  const failed = rows(r.stdout).filter((x) => x.verdict === 'FAIL');
  assert.deepEqual([...new Set(failed.map((f) => f.subject))].sort(), ['route invoices', 'upstream billing']);
  assert.ok(failed.some((f) => f.kind === 'health' && f.line.includes(`127.0.0.1:${dead}/health`) && /ECONNREFUSED/.test(f.line)));
  assert.ok(failed.some((f) => f.subject === 'route invoices' && f.line.includes('/v1/invoices/gatehouse-check')));
  assert.ok(rows(r.stdout).some((x) => x.subject === 'route chat' && x.verdict === 'ok'));
  assert.match(r.stdout, /2 of \d+ checks failed: .*upstream billing/);
  assert.match(r.stderr, /check failed: .*upstream billing.*route invoices|check failed: .*route invoices.*upstream billing/);
});

test('only safe requests unless the route declares its probe; health paths and expectStatus; header/query conditions', async () => {
  const up = await recorder();
  try {
    const cfg = file('safe.yaml', `upstreams:
  api: { targets: [ ${up.url}/base ], health: { path: /health-bad, expectStatus: [200] } }
defaults: { auth: public }
routes:
  - { name: create, match: { path: /v1/items, methods: [POST, DELETE] }, upstream: api }
  - { name: read, match: { path: /v1/items/:id, methods: [GET] }, upstream: api, rewrite: { stripPrefix: /v1 } }
  - name: beta
    match: { path: /v1/beta, methods: [GET], headers: { x-beta: { in: ["yes"] } }, query: { v: "2" } }
    upstream: api
  - name: declared
    match: { path: /v1/jobs, methods: [POST] }
    upstream: api
    check: { method: post, path: /v1/jobs?dry_run=1, headers: { content-type: application/json }, body: '{"dry":true}', expect: [200, 202] }
`);
    const r = await run(['check', '--live', '--config', cfg]);
    // the health path answers 503 where expectStatus says 200: that upstream fails, the routes pass
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.deepEqual(rows(r.stdout).filter((x) => x.verdict === 'FAIL').map((x) => `${x.kind} ${x.subject}`), ['health upstream api']);
    const methods = up.seen.map((s) => `${s.method} ${s.url}`).sort();
    assert.deepEqual(methods, [
      'GET /base/items/gatehouse-check',
      'GET /base/v1/beta?v=2',
      'GET /health-bad',
      'OPTIONS /base/v1/items',
      'POST /base/v1/jobs?dry_run=1',
    ]);
    assert.equal(up.seen.find((s) => s.method === 'POST')!.body, '{"dry":true}');
  } finally {
    await up.close();
  }
});

test('TLS of a target: an untrusted certificate fails naming the target; a trusted one shows its expiry (warns when near)', async (t) => {
  let ca: TestCa | undefined;
  try {
    ca = makeCa();
  } catch {
    t.skip('openssl CLI not available');
    return;
  }
  const leaf = ca.server('svc', ['localhost']);
  const server = https.createServer({ cert: readFileSync(leaf.cert), key: readFileSync(leaf.key) }, (_req, res) => res.end('ok'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as { port: number };
  try {
    const cfg = file('tls.yaml', `upstreams:
  secure: { targets: [ https://localhost:${port} ] }
defaults: { auth: public }
routes:
  - { name: secure, match: { path: /x, methods: [GET] }, upstream: secure }
`);
    const bad = await run(['check', '--live', '--config', cfg]);
    assert.equal(bad.code, 1);
    const tlsRow = rows(bad.stdout).find((x) => x.kind === 'tls')!;
    assert.equal(tlsRow.verdict, 'FAIL');
    assert.match(tlsRow.line, new RegExp(`localhost:${port}.*not trusted`));
    assert.ok(rows(bad.stdout).some((x) => x.kind === 'dns' && x.verdict === 'ok'), 'localhost resolves');

    const good = await run(['check', '--live', '--config', cfg], { NODE_EXTRA_CA_CERTS: ca.cert });
    assert.equal(good.code, 0, good.stdout + good.stderr);
    const row = rows(good.stdout).find((x) => x.kind === 'tls')!;
    assert.equal(row.verdict, 'warn', row.line); // a 2-day certificate is within the 14-day warning
    assert.match(row.line, /TLSv1\.[23], expires \d{4}-\d\d-\d\d \([0-2] days\)/);
  } finally {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    ca.cleanup();
  }
});

test('--gateway running another config: a route it does not have fails (its own 404 not_found)', async () => {
  const other: TestGateway = await startGateway(`upstreams:
  chat: { targets: [ ${demo.chat.url} ] }
defaults: { auth: public }
routes:
  - { name: elsewhere, match: { path: /elsewhere }, upstream: chat }
`);
  try {
    const cfg = file('missing.yaml', `upstreams:
  chat: { targets: [ ${demo.chat.url} ] }
defaults: { auth: apikey }
routes:
  - { name: status, match: { path: /v1/chat/stream, methods: [GET] }, upstream: chat }
`);
    const r = await run(['check', '--live', '--config', cfg, '--gateway', other.url]);
    assert.equal(r.code, 1, r.stdout);
    const via = rows(r.stdout).find((x) => x.kind === 'route via gateway')!;
    assert.equal(via.verdict, 'FAIL');
    assert.match(via.line, /404 not_found: the gateway .* has no such route/);
  } finally {
    await other.close();
  }
});

test('a declared probe\'s credentials never show in GET /admin/config', async () => {
  const g = await startGateway(`upstreams:
  chat: { targets: [ ${demo.chat.url} ] }
defaults: { auth: public }
routes:
  - name: chat
    match: { path: /v1/chat/completions, methods: [POST] }
    upstream: chat
    check: { method: POST, path: /v1/chat/completions, headers: { authorization: "Bearer probe-t0ken-value", x-api-key: probe-k3y-value, cookie: "sid=probe-c00kie" }, body: "{}" }
`);
  try {
    const text = await (await fetch(`${g.adminUrl}/admin/config`)).text();
    for (const secret of ['probe-t0ken-value', 'probe-k3y-value', 'probe-c00kie']) assert.ok(!text.includes(secret), `${secret} is masked`);
    assert.deepEqual(JSON.parse(text).config.routes[0].check.headers, { authorization: '***', 'x-api-key': '***', cookie: '***' });
  } finally {
    await g.close();
  }
});

test('a check: probe must be a request its route serves (positioned load errors)', () => {
  const yaml = (check: string, match = '{ path: /v1/items/:id, methods: [GET, PUT] }') => `upstreams:
  api: { targets: [ http://127.0.0.1:9 ] }
defaults: { auth: public }
routes:
  - name: item
    match: ${match}
    upstream: api
    check: ${check}
`;
  const errors = (text: string) => {
    try { loadConfigText(text, 'c.yaml'); return []; } catch (e) { if (e instanceof ConfigError) return e.issues.map(formatIssue); throw e; }
  };
  assert.deepEqual(errors(yaml('{ path: /v1/items/42 }')), []);
  assert.deepEqual(errors(yaml('{ method: put, path: "/v1/items/42?dry=1", body: "{}" }')), []);
  assert.deepEqual(errors(yaml('{ method: OPTIONS, path: /v1/items/42 }')), []);
  const bad = errors(yaml('{ method: DELETE, path: /v1/other }'));
  assert.equal(bad.length, 2, bad.join('\n'));
  assert.match(bad[0]!, /c\.yaml:8:\d+ routes\[0\]\.check\.method: this route does not serve DELETE \(it serves GET, PUT\)/);
  assert.match(bad[1]!, /c\.yaml:8:\d+ routes\[0\]\.check\.path: "\/v1\/other" is not a path of this route \(\/v1\/items\/:id\)/);
  assert.deepEqual(errors(yaml('{ path: /files/a/b.txt }', '{ path: /files, prefix: true }')), []);
  assert.deepEqual(errors(yaml('{ path: /static/x/y }', '{ path: "/static/*" }')), []);
  assert.match(errors(yaml('{ path: /v1/items }'))[0]!, /not a path of this route/);
  assert.match(errors(yaml('{ path: v1/items }'))[0]!, /paths start with "\/"/);
});
