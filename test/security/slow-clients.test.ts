// Adversarial suite, family "slow clients": slowloris (headers), slow body (RUDY), slow read (a client that never
// reads a large response), idle keep-alive connections. The gateway must cut each in bounded time, keep serving
// others meanwhile, and hold bounded memory (backpressure reaches the upstream instead of buffering).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { Socket } from 'node:net';
import { request } from 'undici';
import { connect as h2raw } from 'node:http2';
import { startGateway, type TestGateway } from '../helpers.ts';
import { openSocket, parseResponse, readUntilClose } from '../support/raw-http.ts';
import { startRecordingUpstream, type RecordingUpstream } from '../support/recording-upstream.ts';

let up: RecordingUpstream;
let big: http.Server;
/** Bytes the big-response upstream managed to hand to its socket (it honours backpressure). */
let bigWritten = 0;
let g: TestGateway;
const BIG = 128 * 1024 * 1024;

before(async () => {
  up = await startRecordingUpstream();
  big = http.createServer(async (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': BIG });
    const chunk = Buffer.alloc(64 * 1024, 0x7a);
    let closed = false;
    res.on('close', () => { closed = true; });
    while (bigWritten < BIG && !closed) {
      bigWritten += chunk.length;
      // Both listeners go once either fires (a 'close' listener per drain wait piled up: MaxListenersExceededWarning).
      if (!res.write(chunk)) await new Promise<void>((r) => { const done = () => { res.off('drain', done).off('close', done); r(); }; res.on('drain', done).on('close', done); });
    }
    res.end();
  });
  await new Promise<void>((r) => big.listen(0, '127.0.0.1', r));
  g = await startGateway(`
server:
  http2: { cleartext: true }
  limits: { headersTimeout: 500ms, requestTimeout: 1500ms, keepAliveTimeout: 500ms }
upstreams:
  app: { targets: [ ${up.url} ] }
  big: { targets: [ http://127.0.0.1:${(big.address() as { port: number }).port} ] }
defaults: { auth: public }
routes:
  - { name: app, match: { path: /v1, prefix: true }, upstream: app }
  - { name: big, match: { path: /big }, upstream: big, timeout: { response: 30s, idle: 30s } }
`);
});
after(async () => {
  await g.close();
  await up.close();
  big.closeAllConnections();
  await new Promise<void>((r) => big.close(() => r()));
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('slowloris (CVE-2007-6750 class): 50 connections trickling headers are all cut in bounded time, while a normal request is served at once', async () => {
  const sockets: Socket[] = [];
  const closed: Promise<string>[] = [];
  for (let i = 0; i < 50; i++) {
    const s = await openSocket(g.port);
    sockets.push(s);
    closed.push(readUntilClose(s, 10_000));
    s.write('GET /v1/a HTTP/1.1\r\nHost: x\r\n');
  }
  const timer = setInterval(() => { for (const s of sockets) if (!s.destroyed) s.write('X-a: b\r\n'); }, 100);
  try {
    const t0 = performance.now();
    const r = await request(`${g.url}/v1/normal`);
    await r.body.text();
    assert.equal(r.statusCode, 200);
    assert.ok(performance.now() - t0 < 2000, 'the trickling connections did not starve a normal one');
    const texts = await Promise.all(closed);
    for (const t of texts) if (t.length > 0) assert.equal(parseResponse(t).status, 408);
  } finally {
    clearInterval(timer);
    for (const s of sockets) s.destroy();
  }
  assert.ok(up.received.every((x) => x.url === '/v1/normal'));
});

test('slow body (RUDY): a body trickled slower than requestTimeout is cut, and the upstream never sees it complete', async () => {
  up.reset();
  const s = await openSocket(g.port);
  const closed = readUntilClose(s, 10_000);
  s.write('POST /v1/slow HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n');
  const t0 = performance.now();
  const timer = setInterval(() => { if (!s.destroyed) s.write('a'); }, 100);
  try {
    await closed;
  } finally { clearInterval(timer); }
  const ms = performance.now() - t0;
  assert.ok(ms < 8000, `cut after ${Math.round(ms)} ms`);
  await sleep(100);
  assert.equal(up.received.length, 0, 'no complete request upstream');
});

test('slow read: a client that never reads a 128 MiB response holds the upstream back (backpressure), not the gateway\'s memory', async () => {
  bigWritten = 0;
  const s = await openSocket(g.port);
  s.on('error', () => {});
  s.write('GET /big HTTP/1.1\r\nHost: x\r\n\r\n');
  s.pause();
  await sleep(1500);
  const heapBefore = process.memoryUsage().heapUsed;
  const written = bigWritten;
  await sleep(1000);
  try {
    assert.ok(written < 48 * 1024 * 1024, `the upstream could write ${written} bytes to a client that reads nothing`);
    assert.ok(bigWritten - written < 8 * 1024 * 1024, `still flowing: ${bigWritten - written} more bytes in a second`);
    assert.ok(process.memoryUsage().heapUsed - heapBefore < 32 * 1024 * 1024, 'the gateway did not buffer the response');
  } finally { s.destroy(); }
  // Reading resumes the flow: a reader that comes back gets bytes again.
  bigWritten = 0;
  const s2 = await openSocket(g.port);
  let got = 0;
  s2.on('data', (c: Buffer) => { got += c.length; });
  s2.on('error', () => {});
  s2.write('GET /big HTTP/1.1\r\nHost: x\r\n\r\n');
  s2.pause();
  await sleep(500);
  s2.resume();
  await sleep(500);
  s2.destroy();
  assert.ok(got > 1024 * 1024, `after resuming the client read ${got} bytes`);
});

test('idle keep-alive connections are closed after keepAliveTimeout', async () => {
  const s = await openSocket(g.port);
  const closed = readUntilClose(s, 8000);
  s.write('GET /v1/keep HTTP/1.1\r\nHost: x\r\n\r\n');
  const t0 = performance.now();
  const text = await closed;
  assert.equal(parseResponse(text).status, 200);
  const ms = performance.now() - t0;
  assert.ok(ms >= 400 && ms < 6000, `closed ${Math.round(ms)} ms after the answer`);
});

test('a connection that sends nothing at all is closed within headersTimeout (plus the check interval)', async () => {
  const s = await openSocket(g.port);
  const t0 = performance.now();
  const text = await readUntilClose(s, 8000);
  const ms = performance.now() - t0;
  assert.ok(ms < 6000, `closed after ${Math.round(ms)} ms`);
  if (text.length > 0) assert.equal(parseResponse(text).status, 408);
});

test('slow body over HTTP/2 (RUDY on a stream): a body trickled past requestTimeout is cut, never delivered complete', async () => {
  up.reset();
  const session = h2raw(`http://127.0.0.1:${g.port}`);
  session.on('error', () => {});
  try {
    await new Promise<void>((r, j) => { session.once('connect', () => r()); session.once('error', j); });
    const stream = session.request({ ':method': 'POST', ':path': '/v1/slow-h2', 'content-length': '60' }, { endStream: false });
    stream.on('error', () => {});
    let status = 0;
    stream.on('response', (h) => { status = Number(h[':status']); });
    stream.resume();
    const closed = new Promise<void>((r) => stream.once('close', () => r()));
    let sent = 0;
    const timer = setInterval(() => { if (!stream.destroyed && sent < 60) { stream.write('a'); sent++; } }, 100);
    const t0 = performance.now();
    await Promise.race([closed, sleep(9000)]);
    clearInterval(timer);
    const ms = performance.now() - t0;
    assert.ok(stream.closed, `the stream is still open after ${Math.round(ms)} ms (${sent} bytes trickled)`);
    assert.ok(sent < 60, 'cut before the body was complete');
    if (status !== 0) assert.equal(status, 408);
    await sleep(100);
    assert.equal(up.received.length, 0, 'no complete request upstream');
  } finally { session.destroy(); }
});

test('h2c beside HTTP/1.1: a connection that stops inside the HTTP/2 preface is closed within headersTimeout', async () => {
  const s = await openSocket(g.port);
  const closed = readUntilClose(s, 8000);
  s.write('PRI * HTTP/2.0\r\n'.slice(0, 7));
  const t0 = performance.now();
  await closed;
  assert.ok(performance.now() - t0 < 6000);
});

test('slow read over HTTP/2: a stream whose client never reads (flow-control window exhausted) holds the upstream back', async () => {
  bigWritten = 0;
  const session = h2raw(`http://127.0.0.1:${g.port}`);
  session.on('error', () => {});
  try {
    await new Promise<void>((r, j) => { session.once('connect', () => r()); session.once('error', j); });
    const stream = session.request({ ':method': 'GET', ':path': '/big' });
    stream.on('error', () => {});
    stream.pause();
    await sleep(1500);
    const written = bigWritten;
    await sleep(1000);
    assert.ok(written < 48 * 1024 * 1024, `the upstream could write ${written} bytes to a stream nobody reads`);
    assert.ok(bigWritten - written < 8 * 1024 * 1024, `still flowing: ${bigWritten - written} more bytes in a second`);
  } finally { session.destroy(); }
});
