import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { request } from 'undici';
import WebSocket from 'ws';
import { startDemoServer } from '../../src/demo/services.ts';
import { loadConfigText } from '../../src/config/load.ts';
import { ConfigError } from '../../src/config/errors.ts';
import { compileCors, originAllowed } from '../../src/policies/cors.ts';
import { corsSchema } from '../../src/policies/cors.ts';
import { startGateway } from '../helpers.ts';

/** An upstream that answers CORS itself, as the seeds' FastAPI services do (allow_origins=["*"]). */
async function corsHappyUpstream(): Promise<{ url: string; requests: () => number; close(): Promise<void> }> {
  let n = 0;
  const server = http.createServer((req, res) => {
    n++;
    req.resume();
    res.writeHead(200, { 'content-type': 'application/json', 'access-control-allow-origin': '*', 'access-control-allow-methods': '*', vary: 'Accept-Encoding' });
    res.end('{"ok":true}');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    requests: () => n,
    close: () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}

const APP = 'https://app.example.com';

async function setup(t: { after(fn: () => Promise<void>): void }) {
  const up = await corsHappyUpstream();
  const demo = await startDemoServer({ name: 'ws' });
  const g = await startGateway(`
server:
  cors:
    origins: [${APP}, "https://*.preview.example.com", "http://localhost:3000"]
    credentials: true
    headers: [authorization, content-type, x-api-key]
    methods: [GET, POST]
    maxAge: 10m
upstreams:
  api: { targets: [ ${up.url} ] }
  demo: { targets: [ ${demo.url} ] }
routes:
  - { name: chat, match: { path: /v1/chat, methods: [POST] }, upstream: api, auth: public, contentTypes: [application/json] }
  - { name: items, match: { path: "/v1/items/:id", methods: [GET, DELETE] }, upstream: api, auth: public }
  - { name: open, match: { path: /v1/open, methods: [GET] }, upstream: api, auth: public, cors: { origins: ["*"] } }
  - { name: nocors, match: { path: /v1/nocors, methods: [GET, OPTIONS] }, upstream: api, auth: public, cors: false }
  - { name: socket, match: { path: /ws }, upstream: demo, auth: public, websocket: true }
`);
  t.after(async () => { await g.close(); await up.close(); await demo.close(); });
  return { g, up };
}

const preflight = (url: string, origin: string, method: string, headers?: string) =>
  request(url, { method: 'OPTIONS', headers: { origin, 'access-control-request-method': method, ...(headers ? { 'access-control-request-headers': headers } : {}) } });

test('origin patterns: exact, *.suffix, default ports; nothing that merely looks similar', () => {
  const cc = compileCors(corsSchema.parse({ origins: ['https://App.Example.com:443', 'https://*.example.com', 'http://localhost:3000'] }));
  for (const o of ['https://app.example.com', 'https://a.example.com', 'https://a.b.example.com', 'http://localhost:3000']) assert.ok(originAllowed(cc, o), o);
  for (const o of ['https://example.com', 'https://evil-example.com', 'https://a.example.com.evil.io', 'http://a.example.com',
    'https://a.example.com:8443', 'https://evil.io/.example.com', 'https://evil.io#.example.com', 'https://.example.com', 'null', 'http://localhost:3001']) {
    assert.ok(!originAllowed(cc, o), o);
  }
});

test('a preflight from an allowed origin is answered at the gateway with 204, even though the route does not list OPTIONS', async (t) => {
  const { g, up } = await setup(t);
  const r = await preflight(`${g.url}/v1/chat`, APP, 'POST', 'Content-Type, Authorization');
  assert.equal(r.statusCode, 204);
  assert.equal(r.headers['access-control-allow-origin'], APP);
  assert.equal(r.headers['access-control-allow-credentials'], 'true');
  assert.equal(r.headers['access-control-allow-methods'], 'GET, POST');
  assert.equal(r.headers['access-control-allow-headers'], 'authorization, content-type, x-api-key');
  assert.equal(r.headers['access-control-max-age'], '600');
  assert.match(String(r.headers.vary), /Origin, Access-Control-Request-Method, Access-Control-Request-Headers/);
  assert.equal(r.headers['x-content-type-options'], 'nosniff');
  assert.ok(r.headers['x-request-id']);
  assert.equal(up.requests(), 0, 'the upstream never sees a preflight');

  const wild = await preflight(`${g.url}/v1/items/7`, 'https://pr-12.preview.example.com', 'GET');
  assert.equal(wild.statusCode, 204);
  assert.equal(wild.headers['access-control-allow-origin'], 'https://pr-12.preview.example.com');
});

test('a preflight from a disallowed origin, or for a disallowed header or method, gets 403 cors_rejected and no CORS headers', async (t) => {
  const { g, up } = await setup(t);
  for (const [origin, method, headers] of [['https://evil.io', 'POST', undefined], [APP, 'POST', 'x-secret-header'], ['https://preview.example.com', 'POST', undefined], [APP, 'DELETE', undefined]] as const) {
    const r = await preflight(`${g.url}${method === 'DELETE' ? '/v1/items/7' : '/v1/chat'}`, origin, method, headers);
    assert.equal(r.statusCode, 403, `${origin} ${headers}`);
    assert.equal(r.headers['content-type'], 'application/problem+json');
    assert.equal(((await r.body.json()) as { code: string }).code, 'cors_rejected');
    assert.equal(r.headers['access-control-allow-origin'], undefined);
    assert.equal(r.headers['access-control-allow-credentials'], undefined);
  }
  // No route serves PUT /v1/chat: the preflight takes the ordinary path (405).
  const put = await preflight(`${g.url}/v1/chat`, APP, 'PUT');
  assert.equal(put.statusCode, 405);
  await put.body.dump();
  assert.equal(up.requests(), 0);
});

test('actual requests: allowed origins get the headers (the upstream\'s own CORS headers are replaced), others none, Vary always', async (t) => {
  const { g } = await setup(t);
  const ok = await request(`${g.url}/v1/items/1`, { headers: { origin: APP } });
  await ok.body.dump();
  assert.equal(ok.statusCode, 200);
  assert.equal(ok.headers['access-control-allow-origin'], APP, 'one value: the upstream\'s "*" is gone');
  assert.equal(ok.headers['access-control-allow-methods'], undefined);
  assert.equal(ok.headers['access-control-allow-credentials'], 'true');
  assert.equal(ok.headers['access-control-expose-headers'], 'x-request-id, ratelimit, ratelimit-policy, retry-after');
  assert.deepEqual(String(ok.headers.vary).split(/,\s*/).sort(), ['Accept-Encoding', 'Origin']);

  const evil = await request(`${g.url}/v1/items/1`, { headers: { origin: 'https://evil.io' } });
  await evil.body.dump();
  assert.equal(evil.statusCode, 200, 'CORS does not block the request, the browser blocks the read');
  for (const h of Object.keys(evil.headers)) assert.ok(!h.startsWith('access-control-'), `unexpected ${h}`);
  assert.match(String(evil.headers.vary), /Origin/);

  const none = await request(`${g.url}/v1/items/1`);
  await none.body.dump();
  assert.equal(none.headers['access-control-allow-origin'], undefined);
  assert.match(String(none.headers.vary), /Origin/);
});

test('per-route settings: "*" without credentials answers "*", cors: false leaves CORS to the upstream', async (t) => {
  const { g, up } = await setup(t);
  const open = await request(`${g.url}/v1/open`, { headers: { origin: 'https://anyone.io' } });
  await open.body.dump();
  assert.equal(open.headers['access-control-allow-origin'], '*');
  assert.equal(open.headers['access-control-allow-credentials'], undefined);

  const before = up.requests();
  const pf = await preflight(`${g.url}/v1/nocors`, APP, 'GET');
  await pf.body.dump();
  assert.equal(pf.statusCode, 200, 'the OPTIONS request went to the upstream');
  assert.equal(pf.headers['access-control-allow-origin'], '*', "the upstream's own answer passes");
  assert.equal(up.requests(), before + 1);
});

test('the gateway\'s own errors carry CORS headers for allowed origins, so the browser can read them', async (t) => {
  const { g } = await setup(t);
  const unsupported = await request(`${g.url}/v1/chat`, { method: 'POST', headers: { origin: APP, 'content-type': 'text/plain' }, body: 'hi' });
  assert.equal(unsupported.statusCode, 415);
  assert.equal(unsupported.headers['access-control-allow-origin'], APP);
  assert.equal(unsupported.headers['access-control-allow-credentials'], 'true');
  await unsupported.body.dump();

  const missing = await request(`${g.url}/nowhere`, { headers: { origin: APP } });
  assert.equal(missing.statusCode, 404);
  assert.equal(missing.headers['access-control-allow-origin'], APP, 'route-less errors use server.cors');
  assert.equal(missing.headers['x-frame-options'], 'DENY');
  await missing.body.dump();

  const evil = await request(`${g.url}/nowhere`, { headers: { origin: 'https://evil.io' } });
  assert.equal(evil.headers['access-control-allow-origin'], undefined);
  await evil.body.dump();
});

test('a WebSocket handshake from a disallowed origin is refused; an allowed one opens', async (t) => {
  const { g } = await setup(t);
  const wsUrl = g.url.replace('http', 'ws') + '/ws';
  const refused = await new Promise<number>((resolve, reject) => {
    const ws = new WebSocket(wsUrl, { origin: 'https://evil.io' });
    ws.on('unexpected-response', (_req, res) => { resolve(res.statusCode ?? 0); ws.terminate(); });
    ws.on('open', () => { ws.close(); reject(new Error('opened')); });
    ws.on('error', () => {});
  });
  assert.equal(refused, 403);
  const echoed = await new Promise<string>((resolve, reject) => {
    const ws = new WebSocket(wsUrl, { origin: APP });
    ws.on('open', () => ws.send('ping'));
    ws.on('message', (m) => { if (String(m).includes('ping')) { resolve(String(m)); ws.close(); } });
    ws.on('error', reject);
  });
  assert.match(echoed, /ping/);
});

test('"*" together with credentials does not load', () => {
  assert.throws(() => loadConfigText(`
server: { cors: { origins: ["*"], credentials: true } }
upstreams: { a: { targets: [ "http://127.0.0.1:1" ] } }
routes:
  - { match: { path: /a }, upstream: a, auth: public, cors: { origins: ["*", "https://x.io"], credentials: true } }
`, 't.yaml', { env: {} }), (e: unknown) => {
    assert.ok(e instanceof ConfigError);
    const text = e.issues.map((i) => `${i.path}: ${i.message}`).join('\n');
    assert.match(text, /server\.cors\.origins: "\*" together with credentials/);
    assert.match(text, /routes\[0\]\.cors\.origins: "\*" together with credentials/);
    return true;
  });
  assert.throws(() => loadConfigText(`
upstreams: { a: { targets: [ "http://127.0.0.1:1" ] } }
routes:
  - { match: { path: /a }, upstream: a, auth: public, cors: { origins: ["https://x.io"], headers: ["bad header"] } }
`, 't.yaml', { env: {} }), /not a header name/);
});
