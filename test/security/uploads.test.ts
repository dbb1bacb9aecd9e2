// Adversarial suite, family "uploads": bodies over the limit (declared or streamed), what happens to the connection
// afterwards (RFC 9112 §9.6, nginx CVE-2019-20372), and uploads the client abandons halfway (HTTP/1.1 and HTTP/2):
// the service behind the gateway must never see a body that is not the one the client sent, complete.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect as h2raw, constants as h2 } from 'node:http2';
import { startGateway, type TestGateway } from '../helpers.ts';
import { assertProblem } from '../support/problem.ts';
import { openSocket, parseResponse, readUntilClose, rawExchange } from '../support/raw-http.ts';
import { startAppGateway, startRecordingUpstream, type RecordingUpstream } from '../support/recording-upstream.ts';
import { request } from 'undici';
import { hs256 } from '../e2e/harness.ts';

let up: RecordingUpstream;
let g: TestGateway;

before(async () => {
  ({ up, g } = await startAppGateway(`
  - { name: upload, match: { path: /v1/upload, methods: [POST] }, upstream: app, limits: { maxBodySize: 16kb } }
  - { name: big, match: { path: /v1/big, methods: [POST] }, upstream: app, limits: { maxBodySize: 100mb } }`));
});
after(async () => {
  await g.close();
  await up.close();
});

const settle = () => new Promise((r) => setTimeout(r, 100));

test('item 13 / RFC 9112 §9.6: a declared Content-Length over the limit → 413 with Connection: close, and the connection closes without the body being read', async () => {
  up.reset();
  const s = await openSocket(g.port);
  const closed = readUntilClose(s, 8000);
  const total = 64 * 1024 * 1024;
  s.write(`POST /v1/upload HTTP/1.1\r\nHost: x\r\nContent-Length: ${total}\r\n\r\n`);
  // Keep offering the body: a gateway that reads (and discards) it lets all 64 MiB through; one that stops reading
  // lets only what the socket buffers hold.
  const chunk = Buffer.alloc(256 * 1024, 0x61);
  let accepted = 0;
  const writer = (async () => {
    while (accepted < total && !s.destroyed && s.writable) {
      const more = s.write(chunk);
      accepted += chunk.length;
      if (!more) {
        const drained = await Promise.race([new Promise((r) => s.once('drain', () => r(true))), new Promise((r) => s.once('close', () => r(false)))]);
        if (!drained) break;
      }
    }
  })().catch(() => {});
  const text = await closed;
  await writer;
  const r = parseResponse(text);
  assertProblem(r.status, r.headers, r.body, { status: 413, code: 'payload_too_large' });
  assert.equal(r.headers.connection, 'close');
  assert.ok(accepted < total / 2, `the gateway stopped reading (the client got ${accepted} bytes into the socket)`);
  assert.equal(up.heads, 0);
});

test('nginx CVE-2019-20372 class: the body of a refused request is never parsed as a request of its own', async () => {
  up.reset();
  const inner = 'GET /v1/upload HTTP/1.1\r\nHost: x\r\n\r\n';
  const body = inner.repeat(Math.ceil(20000 / inner.length)).slice(0, 20000);
  const text = await rawExchange(g.port, `POST /v1/upload HTTP/1.1\r\nHost: x\r\nContent-Length: 20000\r\n\r\n${body}`, 8000);
  assert.equal((text.match(/HTTP\/1\.1 \d{3} /g) ?? []).length, 1, 'one answer');
  assert.equal(parseResponse(text).status, 413);
  await settle();
  assert.equal(up.heads, 0);
});

test('RFC 9112 §9.6: a chunked body cut off past the limit is answered 413 every time, never a reset in place of the answer (20 in a row)', async () => {
  for (let i = 0; i < 20; i++) {
    const s = await openSocket(g.port);
    const done = readUntilClose(s, 8000);
    s.write('POST /v1/upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n');
    const chunk = `4000\r\n${'a'.repeat(0x4000)}\r\n`;
    // Keep sending well past the limit, without waiting: the client is still writing when the answer comes.
    for (let j = 0; j < 16 && !s.destroyed; j++) s.write(chunk);
    const text = await done;
    assert.ok(text.length > 0, `round ${i}: the client read an answer before the connection went`);
    const r = parseResponse(text);
    assert.equal(r.status, 413, `round ${i}`);
    assert.equal(r.headers.connection, 'close');
  }
  await settle();
  assert.ok(up.received.every((x) => x.body.length <= 16 * 1024), 'no oversized body completed upstream');
});

test('a body of exactly the limit passes; one byte more is 413 (Content-Length and chunked)', async () => {
  up.reset();
  const exact = 'b'.repeat(16 * 1024);
  const ok = parseResponse(await rawExchange(g.port, `POST /v1/upload HTTP/1.1\r\nHost: x\r\nContent-Length: ${exact.length}\r\nConnection: close\r\n\r\n${exact}`));
  assert.equal(ok.status, 200);
  assert.equal(up.received[0].body.length, exact.length);
  const over = parseResponse(await rawExchange(g.port, `POST /v1/upload HTTP/1.1\r\nHost: x\r\nContent-Length: ${exact.length + 1}\r\n\r\n${exact}b`));
  assert.equal(over.status, 413);
  const chunked = parseResponse(await rawExchange(g.port, `POST /v1/upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n${(exact.length + 1).toString(16)}\r\n${exact}b\r\n0\r\n\r\n`));
  assert.equal(chunked.status, 413);
});

test('HTTP/1.1: a client that disconnects halfway through a Content-Length upload → the upstream never sees a complete request', async () => {
  up.reset();
  const s = await openSocket(g.port);
  s.on('error', () => {});
  s.write('POST /v1/big HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n');
  s.write(Buffer.alloc(300_000, 0x63));
  await new Promise((r) => setTimeout(r, 200));
  s.destroy();
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(up.received.length, 0, `complete upstream requests: ${up.received.map((x) => x.body.length)}`);
});

test('HTTP/1.1: a client that disconnects halfway through a chunked upload → the upstream never sees a complete request', async () => {
  up.reset();
  const s = await openSocket(g.port);
  s.on('error', () => {});
  s.write('POST /v1/big HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n');
  for (let i = 0; i < 10; i++) s.write(`1000\r\n${'c'.repeat(0x1000)}\r\n`);
  await new Promise((r) => setTimeout(r, 200));
  s.destroy();
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(up.received.length, 0, `complete upstream requests: ${up.received.map((x) => x.body.length)}`);
});

test('RFC 9113 §8.1 / §5.4.2: an HTTP/2 upload the client cancels (RST_STREAM) halfway is never delivered upstream as complete', async () => {
  up.reset();
  const session = h2raw(`http://127.0.0.1:${g.port}`);
  session.on('error', () => {});
  try {
    await new Promise<void>((r, j) => { session.once('connect', () => r()); session.once('error', j); });
    const stream = session.request({ ':method': 'POST', ':path': '/v1/big', 'content-type': 'application/octet-stream' }, { endStream: false });
    stream.on('error', () => {});
    stream.write(Buffer.alloc(40_000, 0x64));
    await new Promise((r) => setTimeout(r, 200));
    stream.close(h2.NGHTTP2_CANCEL);
    await new Promise((r) => setTimeout(r, 400));
    assert.equal(up.received.length, 0, `complete upstream requests with bodies of ${up.received.map((x) => x.body.length)} bytes`);
  } finally { session.destroy(); }
});

test('RFC 9113 §8.1.1: HTTP/2 DATA beyond the declared content-length → the stream is refused and nothing complete goes up', async () => {
  up.reset();
  const session = h2raw(`http://127.0.0.1:${g.port}`);
  session.on('error', () => {});
  try {
    await new Promise<void>((r, j) => { session.once('connect', () => r()); session.once('error', j); });
    const stream = session.request({ ':method': 'POST', ':path': '/v1/big', 'content-length': '10' }, { endStream: false });
    const failed = new Promise<boolean>((r) => { stream.on('error', () => r(true)); stream.on('close', () => r(stream.rstCode !== h2.NGHTTP2_NO_ERROR)); });
    stream.end(Buffer.alloc(5000, 0x65));
    assert.ok(await failed);
    await new Promise((r) => setTimeout(r, 300));
    assert.ok(up.received.every((x) => x.body.length === 10), `upstream bodies: ${up.received.map((x) => x.body.length)}`);
  } finally { session.destroy(); }
});

test('RFC 9110 §10.1.1: Expect: 100-continue with a Content-Length over the limit → 413 without a 100 Continue first', async () => {
  up.reset();
  const text = await rawExchange(g.port, 'POST /v1/upload HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\nExpect: 100-continue\r\n\r\n', 8000);
  assert.ok(!text.startsWith('HTTP/1.1 100'), `the client was told to send the body it would be refused for: ${text.slice(0, 40)}`);
  assert.equal(parseResponse(text).status, 413);
  assert.equal(up.heads, 0);
});

test('RFC 9110 §10.1.1: Expect: 100-continue on an accepted upload gets 100 Continue, then the body goes through whole', async () => {
  up.reset();
  const s = await openSocket(g.port);
  const done = readUntilClose(s, 8000);
  let sawContinue = false;
  s.once('data', (c: Buffer) => {
    sawContinue = c.toString('latin1').startsWith('HTTP/1.1 100');
    s.write('hello world');
  });
  s.write('POST /v1/upload HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n');
  const text = await done;
  assert.ok(sawContinue, text.slice(0, 80));
  const final = text.slice(text.indexOf('\r\n\r\n') + 4);
  assert.equal(parseResponse(final).status, 200);
  assert.equal(up.received[0]?.body.toString(), 'hello world');
});

test('RFC 9113 §8.1: over HTTP/2 a declared content-length over the limit → 413, and the stream ends (the client is not left sending)', async () => {
  up.reset();
  const session = h2raw(`http://127.0.0.1:${g.port}`);
  session.on('error', () => {});
  try {
    await new Promise<void>((r, j) => { session.once('connect', () => r()); session.once('error', j); });
    const stream = session.request({ ':method': 'POST', ':path': '/v1/upload', 'content-length': String(10 * 1024 * 1024) }, { endStream: false });
    stream.on('error', () => {});
    let status = 0;
    stream.on('response', (h) => { status = Number(h[':status']); });
    const closed = new Promise<void>((r) => stream.once('close', () => r()));
    const chunk = Buffer.alloc(64 * 1024, 0x66);
    for (let i = 0; i < 8 && !stream.destroyed; i++) stream.write(chunk);
    stream.resume();
    const t0 = performance.now();
    await Promise.race([closed, new Promise((r) => setTimeout(r, 5000))]);
    assert.equal(status, 413);
    assert.ok(stream.closed, `the stream was closed (after ${Math.round(performance.now() - t0)} ms)`);
    assert.equal(up.heads, 0);
    // the connection is still good for the next request
    const next = session.request({ ':method': 'GET', ':path': '/v1/upload' });
    next.on('error', () => {});
    const s2 = await new Promise<number>((r) => next.on('response', (h) => r(Number(h[':status']))));
    assert.equal(s2, 405);
    next.resume();
  } finally { session.destroy(); }
});

test('multipart parser differential: a Content-Type naming boundary twice → 400, a boundary hidden in a quoted parameter is data; never forwarded unchecked', async (t) => {
  const secret = 'k'.repeat(32);
  const rec = await startRecordingUpstream();
  const gw = await startGateway(`
auth: { jwt: [ { name: t, secret: "${secret}", algorithms: [HS256] } ] }
upstreams: { app: { targets: [ ${rec.url} ] } }
routes:
  - { name: bound, match: { path: /v1/profile, methods: [POST] }, upstream: app, auth: jwt, bind: { body.user_id: claim.sub } }
`);
  t.after(async () => { await gw.close(); await rec.close(); });
  const token = await hs256(secret, { sub: 'alice' });
  // Framed by AAA the body says alice (what a first-wins parser checks); framed by BBB it says bob (what a
  // last-wins parser such as python-multipart hands the service).
  const body = '--AAA\r\nContent-Disposition: form-data; name="user_id"\r\n\r\nalice\r\n--AAA--\r\n'
    + '--BBB\r\nContent-Disposition: form-data; name="user_id"\r\n\r\nbob\r\n--BBB--\r\n';
  for (const ct of ['multipart/form-data; boundary=AAA; boundary=BBB', 'multipart/form-data; x="; boundary=AAA"; boundary=BBB', 'multipart/form-data; BOUNDARY=AAA; boundary=BBB']) {
    const r = await request(`${gw.url}/v1/profile`, { method: 'POST', body, headers: { authorization: `Bearer ${token}`, 'content-type': ct } });
    const text = await r.body.text();
    // two boundaries: 400; a quoted "; boundary=" is data, so BBB frames the body and bob is refused (403)
    assert.ok(r.statusCode === 400 || r.statusCode === 403, `${ct}: ${r.statusCode} ${text}`);
  }
  // a part naming itself twice: the gateway would check one name, a last-wins service read the other
  const twice = '--AAA\r\nContent-Disposition: form-data; name="note"; name="user_id"\r\n\r\nbob\r\n--AAA\r\nContent-Disposition: form-data; name="user_id"\r\n\r\nalice\r\n--AAA--\r\n';
  const r2 = await request(`${gw.url}/v1/profile`, { method: 'POST', body: twice, headers: { authorization: `Bearer ${token}`, 'content-type': 'multipart/form-data; boundary=AAA' } });
  assert.equal(r2.statusCode, 400, await r2.body.text());
  assert.equal(rec.heads, 0);
  // one boundary: checked as usual
  const ok = await request(`${gw.url}/v1/profile`, { method: 'POST', body: body.slice(0, body.indexOf('--BBB')), headers: { authorization: `Bearer ${token}`, 'content-type': 'multipart/form-data; boundary=AAA' } });
  await ok.body.text();
  assert.equal(ok.statusCode, 200);
});
