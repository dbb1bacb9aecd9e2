// Every status the gateway itself produces, over real sockets, as problem+json with no upstream internals.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { startDemoServer, type DemoServer } from '../../src/demo/services.ts';
import { startGateway, type TestGateway } from '../helpers.ts';
import { assertProblem, assertNoInternals } from '../support/problem.ts';
import { badUpstream, deadPort, openSocket, readUntilClose, rawRequest, parseResponse, rawExchange } from '../support/raw-http.ts';

let up: DemoServer;
let g: TestGateway;
let garbage: Awaited<ReturnType<typeof badUpstream>>;
let reset: Awaited<ReturnType<typeof badUpstream>>;
let dead: number;

before(async () => {
  up = await startDemoServer({ name: 'demo' });
  garbage = await badUpstream('garbage');
  reset = await badUpstream('reset');
  dead = await deadPort();
  g = await startGateway(`
server:
  limits: { maxHeaderSize: 2kb }
upstreams:
  demo: { targets: [ ${up.url} ] }
  sick: { targets: [ ${up.url} ] }
  refused: { targets: [ http://127.0.0.1:${dead} ] }
  garbage: { targets: [ http://127.0.0.1:${garbage.port} ] }
  reset: { targets: [ http://127.0.0.1:${reset.port} ] }
defaults: { auth: public }
routes:
  - { name: chat, match: { path: /v1/chat, methods: [POST] }, upstream: demo }
  - { name: upload, match: { path: /v1/upload, methods: [POST] }, upstream: demo, limits: { maxBodySize: 16kb } }
  - { name: refused, match: { path: /refused }, upstream: refused }
  - { name: garbage, match: { path: /garbage }, upstream: garbage }
  - { name: reset, match: { path: /reset }, upstream: reset }
  - { name: sick, match: { path: /sick }, upstream: sick }
  - { name: slow, match: { path: /slow }, upstream: demo, timeout: 300ms }
  - { name: drip, match: { path: /drip }, upstream: demo, timeout: { idle: 300ms } }
`);
});
after(async () => {
  await g.close();
  await up.close();
  await garbage.close();
  await reset.close();
});

async function get(path: string, init: Parameters<typeof request>[1] = {}) {
  const r = await request(`${g.url}${path}`, init);
  return { status: r.statusCode, headers: r.headers, text: await r.body.text() };
}

test('400: an encoded slash, backslash, NUL or bad escape in the path is refused before routing', async () => {
  for (const path of ['/v1/chat%2F..%2Fadmin', '/v1%5Cchat', '/v1/chat%00', '/v1/%C3%28', '/v1/%zz']) {
    const r = await get(path);
    assertProblem(r.status, r.headers, r.text, { status: 400, code: 'bad_path' });
  }
  const raw = await rawRequest(g.port, 'GET /v1\\chat HTTP/1.1\r\nHost: x');
  assertProblem(raw.status, raw.headers, raw.body, { status: 400, code: 'bad_path' });
  assert.equal(up.stats.requests, 0, 'nothing malformed reached the upstream');
});

test('404: no route, as problem+json with the request id', async () => {
  const r = await get('/nowhere', { headers: { 'x-request-id': 'probe-404' } });
  const p = assertProblem(r.status, r.headers, r.text, { status: 404, code: 'not_found' });
  assert.equal(p.requestId, 'probe-404');
});

test('405: the path exists for other methods, with Allow', async () => {
  const r = await get('/v1/chat');
  assertProblem(r.status, r.headers, r.text, { status: 405, code: 'method_not_allowed' });
  assert.equal(r.headers.allow, 'POST');
});

test('413: a declared Content-Length over the route limit is refused before any byte goes up', async () => {
  const before = up.stats.requests;
  // The body is never sent: the answer must not wait for it.
  const r = await rawRequest(g.port, 'POST /v1/upload HTTP/1.1\r\nHost: x\r\nContent-Length: 20000');
  assertProblem(r.status, r.headers, r.body, { status: 413, code: 'payload_too_large' });
  assert.equal(up.stats.requests, before);
});

test('413: a chunked body is cut off once it streams past the limit, and the upstream never sees it complete', async () => {
  const uploads = up.stats.uploads;
  const s = await openSocket(g.port);
  const done = readUntilClose(s);
  s.write('POST /v1/upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n');
  const chunk = Buffer.alloc(4096, 0x61);
  for (let i = 0; i < 6 && !s.destroyed; i++) {
    s.write(`1000\r\n`);
    s.write(chunk);
    s.write('\r\n');
    await new Promise((r) => setTimeout(r, 20));
  }
  const r = parseResponse(await done);
  assertProblem(r.status, r.headers, r.body, { status: 413, code: 'payload_too_large' });
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(up.stats.uploads, uploads, 'the upload sink never completed an oversized upload');
});

test('a chunked body under the limit arrives whole', async () => {
  // Bytes of a chunked body must not be lost while the upstream connection is being set up.
  const s = await openSocket(g.port);
  const done = readUntilClose(s);
  s.write('POST /v1/upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n');
  for (let i = 0; i < 3; i++) { s.write(`1000\r\n${'b'.repeat(4096)}\r\n`); await new Promise((r) => setTimeout(r, 5)); }
  s.write('0\r\n\r\n');
  const r = parseResponse(await done);
  assert.equal(r.status, 200, r.body);
  assert.equal(JSON.parse(r.body).bytes, 3 * 4096);
});

test('431: headers larger than server.limits.maxHeaderSize', async () => {
  const text = await rawExchange(g.port, `GET /v1/chat HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(4000)}\r\n\r\n`);
  const r = parseResponse(text);
  assertProblem(r.status, r.headers, r.body, { status: 431, code: 'headers_too_large' });
  assert.match(r.headers['x-request-id'] ?? '', /^[0-9a-f-]{36}$/, 'even a request that never reached the handler gets an id');
});

test('502: connection refused, without the address in the body', async () => {
  const r = await get('/refused');
  const p = assertProblem(r.status, r.headers, r.text, { status: 502, code: 'upstream_failed' });
  assert.equal(p.cause, 'connect_failed');
  assertNoInternals(r.text, [dead]);
});

test('502: an upstream that answers garbage, or resets the connection', async () => {
  const bad = await get('/garbage');
  const p = assertProblem(bad.status, bad.headers, bad.text, { status: 502, code: 'upstream_failed' });
  assert.equal(p.cause, 'invalid_response');
  assertNoInternals(bad.text, [garbage.port]);

  const rst = await get('/reset');
  const q = assertProblem(rst.status, rst.headers, rst.text, { status: 502, code: 'upstream_failed' });
  assert.equal(q.cause, 'connection_lost');
  assertNoInternals(rst.text, [reset.port]);
});

test('503: no target can serve (every target unhealthy), with Retry-After', async () => {
  const target = g.gw.upstreams.get('sick')!.targets[0];
  target.setHealthy(false); // what an active health check does when the target fails
  try {
    const before = up.stats.requests;
    const r = await get('/sick');
    assertProblem(r.status, r.headers, r.text, { status: 503, code: 'upstream_unavailable' });
    assert.match(String(r.headers['retry-after']), /^\d+$/);
    assertNoInternals(r.text, [up.port]);
    assert.equal(up.stats.requests, before);
  } finally {
    target.setHealthy(true);
  }
  assert.equal((await get('/sick')).status, 200, 'serves again once the target is healthy');
});

test('504: the upstream sends no response headers within the route timeout', async () => {
  const t0 = performance.now();
  const r = await get('/slow?ms=5000');
  const ms = performance.now() - t0;
  const p = assertProblem(r.status, r.headers, r.text, { status: 504, code: 'upstream_timeout' });
  assert.equal(p.cause, 'response_timeout');
  assertNoInternals(r.text, [up.port]);
  // undici checks its timers about every 500 ms: the bound is loose on purpose.
  assert.ok(ms >= 250 && ms < 4500, `answered after ${ms} ms`);
});

test('504: the upstream sent headers but its body went idle past timeout.idle before the first byte', async () => {
  const t0 = performance.now();
  const r = await get('/drip?chunks=2&ms=6000');
  const ms = performance.now() - t0;
  const p = assertProblem(r.status, r.headers, r.text, { status: 504, code: 'upstream_timeout' });
  assert.equal(p.cause, 'idle_timeout');
  assertNoInternals(r.text, [up.port]);
  assert.ok(ms < 5500, `answered after ${ms} ms (the first chunk was due at 6000)`);
});
