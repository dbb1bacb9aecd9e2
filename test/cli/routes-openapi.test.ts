// `gatehouse routes --openapi`: the public routes as an OpenAPI 3.1 document.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { loadConfigFile } from '../../src/config/load.ts';
import { hashApiKey } from '../../src/auth/api-keys.ts';
import { routesOpenApi } from '../../src/cli/routes-openapi.ts';
import { ERRORS } from '../../src/errors.ts';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'gatehouse.mjs');
const DOC = resolve(import.meta.dirname, '..', 'fixtures', 'fastapi-openapi.json');
let dir: string;

type Json = Record<string, any>;

function run(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(process.execPath, [BIN, ...args], { timeout: 90_000, maxBuffer: 64 << 20, env: { ...process.env, ...env } }, (err, stdout, stderr) => {
      done({ code: err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1) : 0, stdout, stderr });
    });
  });
}

/** What a client generator relies on: every $ref resolves, path templates and path parameters agree, ids are unique, security names exist. */
function assertWellFormed(doc: Json, label: string): void {
  assert.equal(doc.openapi, '3.1.0', label);
  assert.equal(typeof doc.info?.title, 'string');
  assert.equal(typeof doc.info?.version, 'string');
  const ids = new Set<string>();
  const schemes = doc.components?.securitySchemes ?? {};
  const refs: string[] = [];
  (function walk(v: unknown) {
    if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) { if (k === '$ref') refs.push(x as string); else walk(x); }
  })(doc);
  for (const ref of refs) {
    assert.ok(ref.startsWith('#/'), `${label}: external $ref ${ref}`);
    const target = ref.slice(2).split('/').reduce<any>((o, k) => o?.[k.replace(/~1/g, '/').replace(/~0/g, '~')], doc);
    assert.ok(target, `${label}: $ref ${ref} resolves`);
  }
  for (const [path, item] of Object.entries<Json>(doc.paths)) {
    assert.ok(path.startsWith('/'), path);
    assert.doesNotMatch(path, /\/:|\*/, `${label}: ${path} still has find-my-way syntax`);
    const templated = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]).sort();
    for (const [method, op] of Object.entries<Json>(item)) {
      assert.ok(['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'].includes(method), `${label}: ${method}`);
      assert.ok(!ids.has(op.operationId), `${label}: duplicate operationId ${op.operationId}`);
      ids.add(op.operationId);
      const declared = (op.parameters ?? []).filter((p: Json) => p.in === 'path').map((p: Json) => p.name).sort();
      assert.deepEqual(declared, templated, `${label}: ${method.toUpperCase()} ${path} path parameters`);
      for (const p of op.parameters ?? []) assert.ok(p.schema || p.content, `${label}: parameter ${p.name} has a schema`);
      assert.ok(Array.isArray(op.security), `${label}: ${op.operationId} states its security`);
      for (const req of op.security) for (const name of Object.keys(req)) assert.ok(schemes[name], `${label}: security scheme ${name} is declared`);
      assert.ok(Object.keys(op.responses).length > 0);
      for (const [status, res] of Object.entries<Json>(op.responses)) {
        assert.match(status, /^([1-5](\d\d|XX)|default)$/, `${label}: response key ${status}`);
        assert.equal(typeof res.description, 'string');
      }
    }
  }
}

before(() => { dir = mkdtempSync(join(tmpdir(), 'gh-oas-')); });
after(() => rmSync(dir, { recursive: true, force: true }));

test('routes --openapi: paths, methods, auth as security schemes, problem+json errors, validate schemas', async () => {
  const cfg = join(dir, 'gatehouse.yaml');
  writeFileSync(cfg, `auth:
  jwt: [ { name: main, secret: "\${JWT_SECRET}", queryParam: access_token } ]
  apiKeys: { header: X-Api-Key }
plans:
  free: { rateLimit: [ { limit: 10, window: 1m } ] }
upstreams:
  docs: { targets: [ http://10.1.2.3:8000 ] }
  chat: { targets: [ http://10.1.2.4:8002 ] }
defaults: { auth: public, plan: free }
routes:
  - { name: doc, match: { path: /api/v2/documents/:id, methods: [GET, PUT, DELETE] }, upstream: docs, rewrite: { stripPrefix: /api }, auth: jwt, validate: { openapi: ${DOC} } }
  - { name: pdf, match: { path: /upload, methods: [POST] }, upstream: docs, auth: apikey, contentTypes: [multipart/form-data], validate: { openapi: ${DOC}, operation: "POST /v2/fetch-pdf" } }
  - { name: chat, match: { path: /v1/chat/completions, methods: [POST] }, upstream: chat, auth: any, rateLimit: [ { limit: 5, window: 1s } ] }
  - { name: chat-beta, match: { path: /v1/chat/completions, methods: [POST], headers: { x-beta: "yes" } }, upstream: chat, auth: any }
  - { name: socket, match: { path: /ws/:room }, upstream: chat, websocket: true, auth: jwt }
  - { name: files, match: { path: /files, prefix: true, methods: [GET] }, upstream: docs }
  - { name: off, match: { path: /old, methods: [GET] }, upstream: docs, enabled: false }
  - { name: health, match: { path: /status, methods: [GET] }, upstream: docs }
`);
  const r = await run(['routes', '--openapi', '--config', cfg], { JWT_SECRET: randomBytes(32).toString('base64url') });
  assert.equal(r.code, 0, r.stderr);
  const doc = JSON.parse(r.stdout) as Json;
  assertWellFormed(doc, 'example');

  // paths from the route table; the disabled route is not published; a prefix route gets /{rest}
  assert.deepEqual(Object.keys(doc.paths).sort(), ['/api/v2/documents/{id}', '/files', '/files/{rest}', '/status', '/upload', '/v1/chat/completions', '/ws/{room}']);
  assert.deepEqual(Object.keys(doc.paths['/api/v2/documents/{id}']).sort(), ['delete', 'get', 'put']);

  // security: JWT bearer (and the query parameter for WebSocket clients), API key by its configured header
  const s = doc.components.securitySchemes;
  assert.deepEqual(s.bearerJwt, { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' });
  assert.equal(s.apiKey.type, 'apiKey');
  assert.equal(s.apiKey.in, 'header');
  assert.equal(s.apiKey.name, 'X-Api-Key');
  assert.deepEqual(s.jwtQuery, { type: 'apiKey', in: 'query', name: 'access_token', description: s.jwtQuery.description });
  assert.deepEqual(doc.paths['/upload'].post.security, [{ apiKey: [] }]);
  assert.deepEqual(doc.paths['/v1/chat/completions'].post.security, [{ bearerJwt: [] }, { jwtQuery: [] }, { apiKey: [] }]);
  assert.deepEqual(doc.paths['/status'].get.security, []);

  // errors: problem+json with the shared Problem schema, by what the route runs
  const problem = { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } };
  const chat = doc.paths['/v1/chat/completions'].post;
  assert.deepEqual(chat.responses['401'].content, problem);
  assert.deepEqual(chat.responses['429'].content, problem);
  assert.ok(chat.responses['429'].headers['Retry-After']);
  assert.match(chat.description, /Also served by route `chat-beta` when header `x-beta` is "yes"/);
  assert.equal(doc.paths['/status'].get.responses['401'], undefined, 'a public route has no 401');
  assert.deepEqual(doc.paths['/upload'].post.responses['415'].content, problem);
  assert.deepEqual(doc.components.schemas.Problem.properties.code.enum, Object.keys(ERRORS));
  assert.deepEqual(doc.components.schemas.Problem.required, ['type', 'title', 'status', 'code', 'requestId']);

  // validate: the service's parameters (renamed to the route's), request body and responses, $refs inlined
  const put = doc.paths['/api/v2/documents/{id}'].put;
  assert.ok(put.parameters.some((p: Json) => p.in === 'path' && p.name === 'id' && p.schema));
  assert.ok(put.requestBody.content['application/json'].schema.properties, 'the body schema is inlined');
  assert.deepEqual(put.responses['400'].content, problem, 'request_invalid');
  assert.match(put.responses['400'].description, /request_invalid/);
  const pdf = doc.paths['/upload'].post;
  assert.ok(pdf.requestBody.content['multipart/form-data'].schema, 'multipart body from the document');

  // websocket: a GET with 101; nothing internal (addresses, secrets) anywhere
  assert.ok(doc.paths['/ws/{room}'].get.responses['101']);
  assert.doesNotMatch(r.stdout, /10\.1\.2\.|8000|8002|JWT_SECRET/);
});

test('routes --openapi over every example config is well-formed', () => {
  const secret = () => randomBytes(32).toString('base64url');
  const env: Record<string, Record<string, string>> = {
    machineagents: { JWT_SECRET: secret(), RECAPTCHA_SECRET_KEY: `6L${randomBytes(19).toString('hex')}` },
    'ai-workflow': { JWT_SECRET_KEY: secret() },
    automation: { JWT_SECRET_KEY: secret() },
    aivillage: { API_KEY_SHA256: hashApiKey(secret()) },
    'llm-providers': { OPENAI_API_KEY: `sk-proj-${secret()}`, ANTHROPIC_API_KEY: `sk-ant-${secret()}`, ANTHROPIC_BACKUP_API_KEY: `sk-ant-${secret()}`, CHAT_SERVICE_KEY_SHA256: hashApiKey(secret()), RAG_SERVICE_KEY_SHA256: hashApiKey(secret()) },
  };
  for (const [name, vars] of Object.entries(env)) {
    const { config } = loadConfigFile(`examples/${name}/gatehouse.yaml`, { env: vars });
    const doc = routesOpenApi(config) as Json;
    assertWellFormed(doc, name);
    assert.ok(Object.keys(doc.paths).length > 0, name);
    for (const v of Object.values(vars)) assert.ok(!JSON.stringify(doc).includes(v), `${name}: no secret in the document`);
  }
});

test('the documents pass the official OpenAPI 3.1 schema (openapi-spec-validator, where Python has it)', (t) => {
  const probe = spawnSync('python3', ['-c', 'import openapi_spec_validator'], { encoding: 'utf8' });
  if (probe.status !== 0) { t.skip('python3 with openapi-spec-validator is not installed (pip install openapi-spec-validator)'); return; }
  const { config } = loadConfigFile('examples/machineagents/gatehouse.yaml', { env: { JWT_SECRET: randomBytes(32).toString('base64url'), RECAPTCHA_SECRET_KEY: `6L${randomBytes(19).toString('hex')}` } });
  const file = join(dir, 'machineagents.openapi.json');
  writeFileSync(file, JSON.stringify(routesOpenApi(config)));
  const r = spawnSync('python3', ['-c', 'import json,sys; from openapi_spec_validator import validate; validate(json.load(open(sys.argv[1]))); print("valid")', file], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /valid/);
});
