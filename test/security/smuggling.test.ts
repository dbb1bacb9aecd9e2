// Adversarial suite, family "smuggling and framing" (RFC 9112 §2-§7, RFC 9110 §7.2/§8.6, RFC 9113 §8): raw bytes
// over node:net, because a client library would refuse to send any of this. For every case the question is the
// same: does the gateway refuse it (and close where the framing is in doubt), and does the service behind it see
// nothing, or exactly the one request the client meant?
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { TestGateway } from '../helpers.ts';
import { assertProblem } from '../support/problem.ts';
import { openSocket, parseResponse, rawExchange, readUntilClose } from '../support/raw-http.ts';
import { startAppGateway, type RecordingUpstream } from '../support/recording-upstream.ts';
import { h2connect, h2request } from '../support/h2.ts';

let up: RecordingUpstream;
let g: TestGateway;

before(async () => {
  ({ up, g } = await startAppGateway(`
  - { name: v1, match: { path: /v1, prefix: true }, upstream: app }`));
});
after(async () => {
  await g.close();
  await up.close();
});

/** Sends raw bytes, returns every response the gateway wrote before closing, and how many requests reached the upstream. */
async function send(bytes: string): Promise<{ text: string; responses: number; upstream: number; wire: string }> {
  up.reset();
  const text = await rawExchange(g.port, bytes, 6000);
  // An exchange that did reach the upstream has finished by the time the client saw its answer; a beat for stragglers.
  await new Promise((r) => setTimeout(r, 50));
  return { text, responses: (text.match(/HTTP\/1\.[01] \d{3} /g) ?? []).length, upstream: up.heads, wire: up.wire() };
}

/** The request is refused with `status`/`code`, the connection closed, and nothing reached the upstream. */
async function refused(bytes: string, status = 400, code = 'bad_request'): Promise<void> {
  const r = await send(bytes);
  assert.ok(r.text.length > 0, 'the gateway answers rather than dropping the connection');
  const res = parseResponse(r.text);
  assertProblem(res.status, res.headers, res.body, { status, code });
  assert.equal(r.responses, 1, `exactly one answer: ${r.text}`);
  assert.equal(r.upstream, 0, `nothing reached the upstream: ${r.wire}`);
}

const SMUGGLED = 'GET /v1/smuggled HTTP/1.1\r\nHost: x\r\n\r\n';

// ---- Content-Length and Transfer-Encoding (RFC 9112 §6.1, §6.3) ----------------------------------------------

test('RFC 9112 §6.3 CL.TE: Content-Length and Transfer-Encoding together → 400, the smuggled request never runs', async () => {
  await refused(`POST /v1/a HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${SMUGGLED}`);
});

test('RFC 9112 §6.3 TE.CL: Transfer-Encoding before Content-Length → 400', async () => {
  await refused(`POST /v1/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n5c\r\n${SMUGGLED}\r\n0\r\n\r\n`);
});

test('RFC 9112 §6.3 TE obfuscation: "Transfer-Encoding: xchunked" (chunked not the final coding) → 400, never forwarded', async () => {
  await refused(`POST /v1/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`);
});

test('RFC 9112 §6.3 TE obfuscation: "xchunked" beside a Content-Length → 400', async () => {
  await refused(`POST /v1/a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: xchunked\r\n\r\nhello`);
});

test('RFC 9112 §6.3: "Transfer-Encoding: chunked, identity" (chunked not final) → 400', async () => {
  await refused(`POST /v1/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n5\r\nhello\r\n0\r\n\r\n`);
});

test('RFC 9112 §6.1: a transfer coding the gateway does not implement ("gzip, chunked") → 501, never forwarded without its coding', async () => {
  await refused(`POST /v1/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`, 501, 'transfer_coding_unsupported');
});

test('RFC 9112 §6.1 (Envoy PR 9316): Transfer-Encoding sent twice → 400', async () => {
  await refused(`POST /v1/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`);
});

test('RFC 9112 §5.1: whitespace between the field name and the colon ("Transfer-Encoding : chunked") → 400', async () => {
  await refused(`POST /v1/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\nContent-Length: 5\r\n\r\nhello`);
});

test('RFC 9112 §5.1: " chunked" (optional whitespace) and "Chunked" are chunked: the body arrives whole, once', async () => {
  for (const te of [' chunked', '  Chunked', '\tchunked']) {
    const r = await send(`POST /v1/ows HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:${te}\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n`);
    assert.equal(parseResponse(r.text).status, 200, JSON.stringify(te));
    assert.equal(up.received.length, 1);
    assert.equal(up.received[0].body.toString(), 'hello');
  }
});

test('RFC 9112 §5.2 obs-fold: a folded Transfer-Encoding ("identity\\r\\n chunked") → 400', async () => {
  await refused(`POST /v1/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`);
});

test('RFC 9112 §5.2 obs-fold in any field → 400 (never joined into one value the upstream might split)', async () => {
  await refused(`GET /v1/a HTTP/1.1\r\nHost: x\r\nX-Note: a\r\n b\r\n\r\n`);
});

test('RFC 9112 §6.1: Transfer-Encoding in an HTTP/1.0 request is faulty framing → 400', async () => {
  await refused(`POST /v1/a HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`);
});

test('RFC 9110 §8.6: Content-Length "+5", "-1", "0x5", "5, 5", "1e1", "5 5", past 2^64, and two equal copies → 400', async () => {
  for (const cl of ['+5', '-1', '0x5', '5, 5', '1e1', '5 5', '99999999999999999999999']) await refused(`POST /v1/a HTTP/1.1\r\nHost: x\r\nContent-Length: ${cl}\r\n\r\nhello`);
  await refused(`POST /v1/a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello`);
});

test('CL.0: a body that looks like a request is forwarded as the body of one request, never as a second one', async () => {
  const body = SMUGGLED;
  const r = await send(`POST /v1/cl0 HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
  assert.equal(parseResponse(r.text).status, 200);
  assert.equal(r.responses, 1);
  assert.equal(up.received.length, 1);
  assert.equal(up.received[0].url, '/v1/cl0');
  assert.equal(up.received[0].body.toString(), body);
});

test('pipelining (RFC 9112 §9.3): two requests on one connection are two exchanges, answered in order', async () => {
  const r = await send(`GET /v1/one HTTP/1.1\r\nHost: x\r\n\r\nGET /v1/two HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
  assert.equal(r.responses, 2);
  assert.deepEqual(up.received.map((x) => x.url), ['/v1/one', '/v1/two']);
  assert.ok(r.text.indexOf('/v1/one') < r.text.indexOf('/v1/two'));
});

// ---- chunked coding (RFC 9112 §7.1) -----------------------------------------------------------------------------

test('RFC 9112 §7.1: a chunk size that overflows 64 bits → 400, the upstream never sees a complete body', async () => {
  const r = await send(`POST /v1/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000005\r\nhello\r\n0\r\n\r\n`);
  if (r.text.length > 0) assert.equal(parseResponse(r.text).status, 400);
  assert.equal(up.received.length, 0, 'no request completed upstream');
});

test('RFC 9112 §7.1.1: chunk extensions are accepted and not forwarded; the body arrives byte for byte', async () => {
  const r = await send(`POST /v1/ext HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5;name=value;x="q"\r\nhello\r\n0\r\n\r\n`);
  assert.equal(parseResponse(r.text).status, 200);
  assert.equal(up.received[0].body.toString(), 'hello');
  assert.ok(!r.wire.includes('name=value'), 'the extension stayed at the gateway');
});

test('RFC 9112 §7.1: a chunk whose data is longer than its size → 400, nothing complete upstream, nothing smuggled', async () => {
  const r = await send(`POST /v1/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n${SMUGGLED}`);
  if (r.text.length > 0) assert.equal(parseResponse(r.text).status, 400);
  assert.equal(up.received.length, 0);
  assert.ok(!r.wire.includes('/v1/smuggled'));
});

test('RFC 9112 §7.1 + §2.2: bare LF as a chunk line ending → 400, nothing complete upstream', async () => {
  const r = await send(`POST /v1/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\n0\n\n`);
  if (r.text.length > 0) assert.equal(parseResponse(r.text).status, 400);
  assert.equal(up.received.length, 0);
});

test('RFC 9112 §7.1.1: a chunk extension with a bare LF inside (the 2023 "chunk-ext" desync) → 400', async () => {
  const r = await send(`POST /v1/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;a\nb\r\nhello\r\n0\r\n\r\n`);
  if (r.text.length > 0) assert.equal(parseResponse(r.text).status, 400);
  assert.equal(up.received.length, 0);
});

test('RFC 9112 §7.1.2: trailer fields are not a way to add headers: the upstream gets none of them as headers', async () => {
  const r = await send(`POST /v1/trailer HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\nX-User-Id: admin\r\n\r\n`);
  assert.equal(parseResponse(r.text).status, 200);
  assert.equal(up.received[0].headers['x-user-id'], undefined);
  assert.ok(!r.wire.includes('admin'));
});

// ---- the request line and header syntax (RFC 9112 §2-§5, RFC 9110 §5.5) ----------------------------------------

test('RFC 9112 §2.2: bare LF line endings in the head → 400', async () => {
  const r = await send('GET /v1/a HTTP/1.1\nHost: x\n\n');
  assert.equal(parseResponse(r.text).status, 400);
  assert.equal(r.upstream, 0);
});

test('RFC 9110 §5.5: NUL, bare CR in a field value → 400', async () => {
  await refused('GET /v1/a HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n');
  await refused('GET /v1/a HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n');
});

test('RFC 9110 §5.1: a field name with a space, or an empty field name → 400', async () => {
  await refused('GET /v1/a HTTP/1.1\r\nHost: x\r\nX Foo: a\r\n\r\n');
  await refused('GET /v1/a HTTP/1.1\r\nHost: x\r\n: a\r\n\r\n');
});

test('RFC 9112 §3: request-line garbage, a lower-case method, spaces or controls in the target → 400', async () => {
  for (const line of ['GARBAGE', 'get /v1/a HTTP/1.1', 'GET /v1/a b HTTP/1.1', 'GET /v1/a\tb HTTP/1.1', 'GET /v1/a\x01 HTTP/1.1', 'GET /v1/a HTTP/1.1 extra']) {
    const r = await send(`${line}\r\nHost: x\r\n\r\n`);
    assert.equal(parseResponse(r.text).status, 400, JSON.stringify(line));
    assert.equal(r.upstream, 0);
  }
});

test('RFC 9112 §2.3: HTTP/0.9 (a request line without a version) → 400, not a headerless request', async () => {
  await refused('GET /v1/a\r\n\r\n');
});

test('RFC 9112 §2.3: a request line claiming HTTP/2.0 or HTTP/1.2 on an HTTP/1.1 connection → 400', async () => {
  await refused('GET /v1/a HTTP/2.0\r\nHost: x\r\n\r\n');
  const r = await send('GET /v1/a HTTP/1.2\r\nHost: x\r\n\r\n');
  assert.equal(parseResponse(r.text).status, 400);
  assert.equal(r.upstream, 0);
});

test('RFC 9112 §3.2.4: the asterisk-form target ("OPTIONS *") → 400 before routing', async () => {
  await refused('OPTIONS * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', 400, 'bad_path');
});

// ---- the target and Host (RFC 9112 §3.2, RFC 3986 §3.2, RFC 9110 §7.2) ------------------------------------------

test('RFC 3986 §3.5: a raw "#" in the request target → 400 (a fragment is never sent; a path character it is not)', async () => {
  await refused('GET /v1/a#/../admin HTTP/1.1\r\nHost: x\r\n\r\n');
  await refused('GET /v1/a?x=1#frag HTTP/1.1\r\nHost: x\r\n\r\n');
  const ok = await send('GET /v1/a?x=%23 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  assert.equal(parseResponse(ok.text).status, 200, 'an encoded "#" is data, and fine');
});

test('RFC 3986 §3.2.1 / RFC 9110 §7.2: Host with userinfo ("gw@evil") → 400', async () => {
  await refused('GET /v1/a HTTP/1.1\r\nHost: gw@evil\r\n\r\n');
  await refused('GET /v1/a HTTP/1.1\r\nHost: user:pass@x\r\n\r\n');
});

test('RFC 3986 §3.2.3: Host with an invalid port ("x:99999", "x:abc", "x:", "x:80:81") or an invalid name → 400', async () => {
  for (const host of ['x:99999', 'x:abc', 'x:', 'x:80:81', 'a b', 'x/y', 'x\\y', '[::1', 'x?y', '']) {
    await refused(`GET /v1/a HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
  }
});

test('RFC 3986 §3.2.2: valid Host forms are accepted (name, name:port, IPv4, IPv6 literal)', async () => {
  for (const host of ['api.example.com', 'API.Example.com:8443', '127.0.0.1:8000', '[::1]:8000', '[2001:db8::1]', 'xn--bcher-kva.example']) {
    const r = await send(`GET /v1/a HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
    assert.equal(parseResponse(r.text).status, 200, host);
  }
});

test('RFC 9112 §3.2.2: absolute-form whose authority differs from Host → 400; the same authority routes by its path', async () => {
  await refused('GET http://evil.example/v1/a HTTP/1.1\r\nHost: api.example\r\n\r\n');
  await refused('GET http://user@api.example/v1/a HTTP/1.1\r\nHost: api.example\r\n\r\n');
  const r = await send('GET http://API.example/v1/abs?q=1 HTTP/1.1\r\nHost: api.example\r\nConnection: close\r\n\r\n');
  assert.equal(parseResponse(r.text).status, 200);
  assert.equal(up.received[0].url, '/v1/abs?q=1');
});

test('RFC 9110 §7.2: two Host fields → 400', async () => {
  await refused('GET /v1/a HTTP/1.1\r\nHost: api.example\r\nHost: evil.example\r\n\r\n');
});

// ---- CONNECT (RFC 9110 §9.3.6) ----------------------------------------------------------------------------------

test('RFC 9110 §9.3.6: CONNECT → 405 problem+json with Allow, then the connection closes (no tunnel, no bare close)', async () => {
  const s = await openSocket(g.port);
  const closed = readUntilClose(s, 6000);
  s.write('CONNECT internal.example:443 HTTP/1.1\r\nHost: internal.example:443\r\n\r\n');
  const text = await closed;
  const res = parseResponse(text);
  assertProblem(res.status, res.headers, res.body, { status: 405, code: 'method_not_allowed' });
  assert.match(res.headers.allow ?? '', /\bGET\b/);
  assert.ok(!/\bCONNECT\b/.test(res.headers.allow ?? ''));
  assert.equal(res.headers.connection, 'close');
  assert.equal(up.heads, 0);
});

test('RFC 9113 §8.5: CONNECT over HTTP/2 → 405 problem+json with Allow', async () => {
  const s = await h2connect(`http://127.0.0.1:${g.port}`);
  try {
    const r = await h2request(s, '', { method: 'CONNECT', headers: { ':authority': 'internal.example:443', ':path': undefined as never, ':scheme': undefined as never } });
    assertProblem(r.status, r.headers as Record<string, string>, r.body, { status: 405, code: 'method_not_allowed' });
    assert.match(String(r.headers.allow), /\bGET\b/);
  } finally { s.destroy(); }
});

// ---- HTTP/2 (RFC 9113 §8.2, §8.3) --------------------------------------------------------------------------------

test('RFC 9113 §8.3.1: over HTTP/2, a Host that differs from :authority → 400, and :authority with userinfo → 400', async () => {
  const s = await h2connect(`http://127.0.0.1:${g.port}`);
  try {
    up.reset();
    const differ = await h2request(s, '/v1/a', { headers: { ':authority': 'api.example', host: 'evil.example' } });
    assertProblem(differ.status, differ.headers as Record<string, string>, differ.body, { status: 400, code: 'bad_request' });
    const userinfo = await h2request(s, '/v1/a', { headers: { ':authority': 'gw@evil' } });
    assertProblem(userinfo.status, userinfo.headers as Record<string, string>, userinfo.body, { status: 400, code: 'bad_request' });
    const frag = await h2request(s, '/v1/a#x');
    assertProblem(frag.status, frag.headers as Record<string, string>, frag.body, { status: 400, code: 'bad_request' });
    assert.equal(up.heads, 0);
    const ok = await h2request(s, '/v1/fine', { headers: { ':authority': 'api.example:443' } });
    assert.equal(ok.status, 200);
  } finally { s.destroy(); }
});

test('RFC 9113 §8.2.2 (H2.TE): connection-specific fields over HTTP/2 never reach the upstream', async () => {
  const s = await h2connect(`http://127.0.0.1:${g.port}`);
  try {
    up.reset();
    // node's client refuses to send them; the server must also refuse to accept them if a client does.
    await assert.rejects(h2request(s, '/v1/a', { method: 'POST', headers: { 'transfer-encoding': 'chunked' }, body: '5\r\nhello\r\n0\r\n\r\n' }));
    assert.equal(up.heads, 0);
  } finally { s.destroy(); }
});

test('RFC 9113 §8.1.1 (H2.CL): a content-length that disagrees with the DATA sent is not forwarded as a complete request', async () => {
  const s = await h2connect(`http://127.0.0.1:${g.port}`);
  try {
    up.reset();
    const r = await h2request(s, '/v1/a', { method: 'POST', headers: { 'content-length': '3' }, body: `abc${SMUGGLED}` }).catch((e: Error) => e);
    if (!(r instanceof Error)) assert.notEqual(r.status, 200);
    await new Promise((res) => setTimeout(res, 100));
    assert.ok(up.received.every((x) => x.body.length === 3 && !x.url.includes('smuggled')), JSON.stringify(up.received.map((x) => [x.url, x.body.length])));
    assert.ok(!up.wire().includes('/v1/smuggled'));
  } finally { s.destroy(); }
});

// ---- hop-by-hop (RFC 9110 §7.6.1) --------------------------------------------------------------------------------

test('Traefik CVE-2024-45410 / RFC 9110 §7.6.1: "Connection: X-Forwarded-For, X-Real-IP" cannot remove the fields the gateway sets', async () => {
  const r = await send('GET /v1/hop HTTP/1.1\r\nHost: x\r\nConnection: close, X-Forwarded-For, X-Forwarded-Proto, X-Real-IP, X-Request-Id\r\n\r\n');
  assert.equal(parseResponse(r.text).status, 200);
  const h = up.received[0].headers;
  assert.equal(h['x-forwarded-for'], '127.0.0.1');
  assert.equal(h['x-forwarded-proto'], 'http');
  assert.ok(typeof h['x-request-id'] === 'string' && h['x-request-id'].length > 0);
});

test('h2c smuggling (Bishop Fox 2020; Traefik, Envoy, nginx): "Upgrade: h2c" is refused, never tunnelled past the route rules', async () => {
  const r = await send('GET /v1/a HTTP/1.1\r\nHost: x\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\nConnection: Upgrade, HTTP2-Settings\r\n\r\n');
  assert.ok(r.text.length > 0);
  const res = parseResponse(r.text);
  assert.notEqual(res.status, 101);
  assert.equal(res.status, 400);
  assert.equal(r.upstream, 0);
  assert.ok(!r.wire.toLowerCase().includes('h2c'));
});

test('RFC 9110 §7.6.1: "Connection: Upgrade" without an Upgrade field is an ordinary request; nothing hop-by-hop reaches the upstream', async () => {
  const r = await send('GET /v1/hop2 HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, close, TE, X-Secret\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\nX-Secret: 1\r\n\r\n');
  assert.equal(parseResponse(r.text).status, 200);
  const h = up.received[0].headers;
  for (const k of ['keep-alive', 'te', 'x-secret', 'upgrade']) assert.equal(h[k], undefined, k);
});
