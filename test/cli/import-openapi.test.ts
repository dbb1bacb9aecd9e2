import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createServer } from 'node:http';
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { request } from 'undici';
import { routesFromOpenApi, readOpenApi, runImport, toRoutePath, ImportError } from '../../src/cli/import-openapi.ts';
import { loadConfigText } from '../../src/config/load.ts';
import { Gateway } from '../../src/gateway.ts';
import { startDemoServer } from '../../src/demo/services.ts';
import { startGateway } from '../helpers.ts';
import { pino } from 'pino';

const run = promisify(execFile);
const FIXTURE = 'test/fixtures/fastapi-openapi.json';
const doc = JSON.parse(readFileSync(FIXTURE, 'utf8'));
const SECRET = 'k3Yq9v2mZr8TtW1pLx4NcB7sHd0GfJe6';

/** Every operation in the fixture, as (method, concrete path, expected route name). */
const OPERATIONS: Array<[string, string, string]> = [
  ['GET', '/', 'root'],
  ['GET', '/health', 'health_check'],
  ['POST', '/v2/token', 'login_for_access_token'],
  ['POST', '/v2/fetch-pdf', 'upload_pdf'],
  ['POST', '/v2/fetch-text', 'upload_text'],
  ['POST', '/v2/fetch-qa', 'upload_qa'],
  ['GET', '/v2/documents', 'list_documents'],
  ['GET', '/v2/documents/doc_1', 'get_document'],
  ['PUT', '/v2/documents/doc_1', 'update_document'],
  ['DELETE', '/v2/documents/doc_1', 'delete_document'],
  ['GET', '/v2/documents/doc_1/chunks/3', 'get_chunk'],
  ['GET', '/v2/task-status', 'get_status_v2_task_status_get'],
  ['GET', '/v2/check-task-status/t_9', 'get_status_v2_check_task_status__task_id__get'],
];

/** A stdout/stderr stand-in for runImport. */
function sink(): { write(s: string): void; text: string } {
  return { text: '', write(s: string) { this.text += s; } };
}

function compileWith(routesYaml: string, extra = ''): Gateway {
  const text = `upstreams:\n  data: { targets: [ "http://127.0.0.1:9" ] }\n${extra}${routesYaml}`;
  const { config } = loadConfigText(text, 'combined.yaml', { env: {} });
  return new Gateway(config, { logger: pino({ level: 'silent' }), defaultMetrics: false });
}

test('one route per operation: method, {param} → :param, names from operationIds, grouped by tag', () => {
  const r = routesFromOpenApi(doc, { upstream: 'data' });
  assert.equal(r.routes, 13);
  assert.deepEqual(r.warnings, []);
  const routes = (parse(r.yaml) as { routes: Array<{ name: string; match: { path: string; methods: string[] }; upstream: string; auth?: string }> }).routes;
  assert.equal(routes.length, 13);
  for (const route of routes) {
    assert.equal(route.upstream, 'data');
    assert.equal(route.match.methods.length, 1);
    assert.equal(route.auth, undefined, 'without --auth, routes inherit defaults.auth');
  }
  const byName = new Map(routes.map((x) => [x.name, x]));
  // FastAPI's "<function>_<path>_<method>" ids shorten to the function name...
  assert.deepEqual(byName.get('data.get_document')?.match, { path: '/v2/documents/:document_id', methods: ['GET'] });
  assert.deepEqual(byName.get('data.delete_document')?.match, { path: '/v2/documents/:document_id', methods: ['DELETE'] });
  assert.deepEqual(byName.get('data.get_chunk')?.match, { path: '/v2/documents/:doc_id/chunks/:chunk_index', methods: ['GET'] });
  assert.deepEqual(byName.get('data.root')?.match, { path: '/', methods: ['GET'] });
  // ...unless two functions share a name: then both keep the full operationId.
  assert.ok(byName.has('data.get_status_v2_task_status_get'));
  assert.ok(byName.has('data.get_status_v2_check_task_status__task_id__get'));
  // Groups follow the first tag, in document order; untagged operations come last.
  const groups = [...r.yaml.matchAll(/^ {2}# ---- (\S+)/gm)].map((m) => m[1]);
  assert.deepEqual(groups, ['health', 'auth', 'uploads', 'documents', 'tasks', 'untagged']);
  // The multipart upload and the deprecated operation are called out for the reader.
  assert.match(r.yaml, /# POST \/v2\/fetch-pdf: Upload PDF files for a project; multipart upload, streamed/);
  assert.match(r.yaml, /# POST \/v2\/fetch-qa: Upload Q&A pairs \(CSV\); deprecated; multipart/);
});

test('--auth applies to every route except operations the document declares open (security: [])', () => {
  const r = routesFromOpenApi(doc, { upstream: 'data', auth: 'jwt' });
  const routes = (parse(r.yaml) as { routes: Array<{ name: string; auth: string }> }).routes;
  const open = routes.filter((x) => x.auth === 'public').map((x) => x.name);
  assert.deepEqual(open, ['data.login_for_access_token']);
  assert.equal(routes.filter((x) => x.auth === 'jwt').length, 12);
});

test('--prefix mounts the service under a path and strips it before forwarding', () => {
  const r = routesFromOpenApi(doc, { upstream: 'data', prefix: '/data/' });
  const routes = (parse(r.yaml) as { routes: Array<{ name: string; match: { path: string }; rewrite: { stripPrefix: string } }> }).routes;
  for (const x of routes) {
    assert.ok(x.match.path === '/data' || x.match.path.startsWith('/data/'), x.match.path);
    assert.deepEqual(x.rewrite, { stripPrefix: '/data' });
  }
  assert.equal(routes.find((x) => x.name === 'data.root')?.match.path, '/data');
  assert.throws(() => routesFromOpenApi(doc, { upstream: 'data', prefix: 'data' }), ImportError);
  assert.throws(() => routesFromOpenApi(doc, { upstream: 'data', prefix: '/v/{x}' }), ImportError);
});

test('the generated YAML with an upstreams block compiles, and every operation matches its own route', () => {
  const gw = compileWith(routesFromOpenApi(doc, { upstream: 'data', auth: 'public' }).yaml);
  for (const [method, path, name] of OPERATIONS) {
    const m = gw.table.match(method, path);
    assert.equal(m.kind, 'found', `${method} ${path}`);
    if (m.kind === 'found') assert.equal(m.candidates[0].name, `data.${name}`, `${method} ${path}`);
  }
  assert.equal(gw.table.match('PATCH', '/v2/documents/doc_1').kind, 'method_not_allowed');
});

test('with --auth jwt the combined file passes `gatehouse validate`', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'gh-import-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const routes = routesFromOpenApi(doc, { upstream: 'data', auth: 'jwt', source: FIXTURE }).yaml;
  const file = join(dir, 'gatehouse.yaml');
  writeFileSync(file, `auth:\n  jwt:\n    - { name: main, secret: "\${JWT_SECRET}", algorithms: [HS256] }\nupstreams:\n  data: { targets: [ "http://127.0.0.1:8015" ] }\n${routes}`);
  const { stdout } = await run(process.execPath, ['bin/gatehouse.mjs', 'validate', file], { env: { ...process.env, JWT_SECRET: SECRET } });
  assert.match(stdout, /ok \(13 routes, 1 upstreams\)/);
});

test('URL input: fetched from a service serving /openapi.json; unreachable, 404 and missing files are errors with a reason', async (t) => {
  const body = readFileSync(FIXTURE);
  const srv = createServer((req, res) => {
    if (req.url === '/openapi.json') { res.writeHead(200, { 'content-type': 'application/json' }); res.end(body); return; }
    res.writeHead(404, { 'content-type': 'application/json' }); res.end('{"detail":"Not Found"}');
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  t.after(() => new Promise<void>((r) => srv.close(() => r())));
  const base = `http://127.0.0.1:${(srv.address() as { port: number }).port}`;

  // The CLI entry, as `gatehouse import openapi <url> --upstream data --prefix /data` runs it.
  const out = sink();
  assert.equal(await runImport(['openapi', `${base}/openapi.json`], { upstream: 'data', prefix: '/data' }, out, sink()), 0);
  assert.equal(out.text, routesFromOpenApi(doc, { upstream: 'data', prefix: '/data', source: `${base}/openapi.json` }).yaml);

  assert.deepEqual(await readOpenApi(`${base}/openapi.json`), doc);
  await assert.rejects(readOpenApi(`${base}/missing.json`), (e: Error) => e instanceof ImportError && /HTTP 404/.test(e.message));
  await assert.rejects(readOpenApi('http://127.0.0.1:9/openapi.json'), (e: Error) => e instanceof ImportError && /cannot fetch/.test(e.message));
  await assert.rejects(readOpenApi('test/fixtures/no-such-file.json'), (e: Error) => e instanceof ImportError && /ENOENT/.test(e.message));
});

test('imported routes proxy: the prefix is stripped and path params reach the service unchanged', async (t) => {
  const svc = await startDemoServer({ name: 'client-data' });
  const routes = routesFromOpenApi(doc, { upstream: 'data', prefix: '/data', auth: 'public' }).yaml;
  const g = await startGateway(`upstreams:\n  data: { targets: [ "${svc.url}" ] }\n${routes}`);
  t.after(async () => { await g.close(); await svc.close(); });
  const r = await request(`${g.url}/data/v2/documents/doc%201/chunks/7?limit=2`, { method: 'GET' });
  assert.equal(r.statusCode, 200);
  const echo = (await r.body.json()) as { service: string; method: string; path: string; query: string };
  assert.deepEqual([echo.service, echo.method, echo.path, echo.query], ['client-data', 'GET', '/v2/documents/doc%201/chunks/7', 'limit=2']);
  const wrong = await request(`${g.url}/v2/documents/doc_1`);
  assert.equal(wrong.statusCode, 404);
  await wrong.body.dump();
});

test('usage errors exit 2 before reading anything; a document that cannot be read exits 1', async () => {
  const err = sink();
  assert.equal(await runImport(['openapi', FIXTURE], {}, sink(), err), 2);
  assert.equal(await runImport(['swagger', FIXTURE], { upstream: 'data' }, sink(), err), 2);
  assert.equal(await runImport(['openapi'], { upstream: 'data' }, sink(), err), 2);
  assert.equal(await runImport(['openapi', FIXTURE], { upstream: 'data', auth: 'basic' }, sink(), err), 2);
  assert.equal(await runImport(['openapi', 'test/fixtures/no-such-file.json'], { upstream: 'data' }, sink(), err), 1);
  assert.match(err.text, /--upstream NAME is required[\s\S]*only "openapi"[\s\S]*give a FILE or URL[\s\S]*--auth must be one of public, jwt, apikey, any[\s\S]*cannot read test\/fixtures\/no-such-file.json: ENOENT/);
});

test('documents it cannot import are refused with a reason; odd paths are made routable', () => {
  assert.throws(() => routesFromOpenApi({ swagger: '2.0', paths: {} }, { upstream: 'x' }), /Swagger 2.0/);
  assert.throws(() => routesFromOpenApi({ openapi: '4.0.0', paths: {} }, { upstream: 'x' }), /not supported/);
  assert.throws(() => routesFromOpenApi([], { upstream: 'x' }), ImportError);
  assert.throws(() => routesFromOpenApi(doc, { upstream: 'bad name' }), /--upstream/);
  assert.equal(toRoutePath('/models/{model-name}:predict'), '/models/:model_name::predict');
  const r = routesFromOpenApi({
    openapi: '3.0.3',
    info: { title: 't', version: '1' },
    paths: {
      '/a/{id}': { get: { operationId: 'a' } },
      '/a/{item_id}': { delete: { operationId: 'b' } },
      '/t': { trace: { operationId: 'c' }, get: {} },
    },
  }, { upstream: 'data', auth: 'public' });
  assert.equal(r.routes, 3);
  assert.match(r.warnings.join('\n'), /skipped TRACE \/t/);
  // Two spellings of one path shape share the first parameter name, and an operation without an id gets one.
  const gw = compileWith(r.yaml);
  assert.deepEqual(gw.table.routes.map((x) => [x.name, x.paths[0]]), [['data.a', '/a/:id'], ['data.b', '/a/:id'], ['data.get_t', '/t']]);
});
