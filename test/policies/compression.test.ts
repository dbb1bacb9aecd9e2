// Response compression (route key `compression:`), over real sockets: negotiation, what is never compressed,
// Vary, streaming, and event streams that must not be held back.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request as httpRequest, type Server } from 'node:http';
import { brotliDecompressSync, constants, gunzipSync, gzipSync } from 'node:zlib';
import { negotiate } from '../../src/policies/compression.ts';
import { startGateway, type TestGateway } from '../helpers.ts';
import { h2connect } from '../support/h2.ts';

const BIG = JSON.stringify({ items: Array.from({ length: 400 }, (_, i) => ({ id: i, text: 'the quick brown fox jumps over the lazy dog' })) });
let upstream: Server;
let gw: TestGateway;

before(async () => {
  upstream = createServer((req, res) => {
    const url = req.url ?? '/';
    if (url.startsWith('/big')) { res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(BIG), etag: '"v1"' }); res.end(BIG); return; }
    if (url.startsWith('/chunked')) { res.writeHead(200, { 'content-type': 'text/plain' }); res.write(BIG.slice(0, 5000)); setTimeout(() => res.end(BIG.slice(5000)), 20); return; }
    if (url.startsWith('/small')) { res.writeHead(200, { 'content-type': 'application/json', 'content-length': 11 }); res.end('{"ok":true}'); return; }
    if (url.startsWith('/image')) { res.writeHead(200, { 'content-type': 'image/png', 'content-length': Buffer.byteLength(BIG) }); res.end(BIG); return; }
    if (url.startsWith('/encoded')) { const z = gzipSync(BIG); res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip', 'content-length': z.length }); res.end(z); return; }
    if (url.startsWith('/no-transform')) { res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-transform', vary: 'Origin' }); res.end(BIG); return; }
    if (url.startsWith('/sse')) {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      let i = 0;
      const send = () => { res.write(`data: {"i":${i},"pad":"${'x'.repeat(200)}"}\n\n`); if (++i < 5) setTimeout(send, 60); else res.end(); };
      send();
      return;
    }
    res.writeHead(404); res.end();
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', () => r()));
  const url = `http://127.0.0.1:${(upstream.address() as { port: number }).port}`;
  gw = await startGateway(`
upstreams: { u: { targets: [ ${url} ] } }
defaults: { auth: public }
routes:
  - { name: plain-sse, match: { path: /plain/sse }, upstream: u, rewrite: { stripPrefix: /plain } }
  - { name: sse-flushed, match: { path: /flushed/sse }, upstream: u, rewrite: { stripPrefix: /flushed }, compression: { types: [text/event-stream] } }
  - { name: default, match: { path: /, prefix: true }, upstream: u, compression: true }
`);
});
after(async () => { await gw.close(); await new Promise((r) => upstream.close(r)); });

interface Got { status: number; headers: Record<string, string | string[] | undefined>; raw: Buffer; chunks: Array<{ at: number; data: Buffer }> }
function get(path: string, ae?: string): Promise<Got> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const chunks: Got['chunks'] = [];
    httpRequest(`${gw.url}${path}`, { headers: ae === undefined ? {} : { 'accept-encoding': ae } }, (res) => {
      res.on('data', (c: Buffer) => chunks.push({ at: performance.now() - t0, data: c }));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, raw: Buffer.concat(chunks.map((c) => c.data)), chunks }));
    }).on('error', reject).end();
  });
}

test('Accept-Encoding negotiation: q-values, server preference on ties, * and q=0, nothing means identity', () => {
  const both = ['br', 'gzip'] as const;
  assert.equal(negotiate('gzip, deflate, br', both), 'br');
  assert.equal(negotiate('gzip', both), 'gzip');
  assert.equal(negotiate('br;q=0, gzip', both), 'gzip');
  assert.equal(negotiate('gzip;q=0.5, br;q=0.9', ['gzip', 'br']), 'br');
  assert.equal(negotiate('*', both), 'br');
  assert.equal(negotiate('*;q=0', both), 'identity');
  assert.equal(negotiate('identity', both), 'identity');
  assert.equal(negotiate(undefined, both), 'identity');
  assert.equal(negotiate('x-gzip', both), 'gzip');
});

test('brotli and gzip are negotiated; the body decodes to what the upstream sent; Content-Length goes, Vary and a weak ETag come', async () => {
  const br = await get('/big', 'gzip, deflate, br');
  assert.equal(br.headers['content-encoding'], 'br');
  assert.equal(brotliDecompressSync(br.raw).toString(), BIG);
  assert.ok(br.raw.length < BIG.length / 5, `compressed to ${br.raw.length} of ${BIG.length}`);
  assert.equal(br.headers['content-length'], undefined);
  assert.equal(br.headers.vary, 'Accept-Encoding');
  assert.equal(br.headers.etag, 'W/"v1"');

  const gz = await get('/big', 'gzip');
  assert.equal(gz.headers['content-encoding'], 'gzip');
  assert.equal(gunzipSync(gz.raw).toString(), BIG);

  const none = await get('/big');
  assert.equal(none.headers['content-encoding'], undefined);
  assert.equal(none.raw.toString(), BIG);
  assert.equal(none.headers['content-length'], String(Buffer.byteLength(BIG)));
  assert.equal(none.headers.vary, 'Accept-Encoding', 'the identity answer varies by Accept-Encoding too');
  assert.equal(none.headers.etag, '"v1"');

  // A body of unknown length (chunked) is compressed as it streams.
  const chunked = await get('/chunked', 'gzip');
  assert.equal(chunked.headers['content-encoding'], 'gzip');
  assert.equal(gunzipSync(chunked.raw).toString(), BIG);
});

test('never compressed: bodies under minSize, unlisted types, already-encoded responses, no-transform', async () => {
  const small = await get('/small', 'br, gzip');
  assert.equal(small.headers['content-encoding'], undefined);
  assert.equal(small.raw.toString(), '{"ok":true}');
  assert.equal(small.headers.vary, 'Accept-Encoding');

  const image = await get('/image', 'br, gzip');
  assert.equal(image.headers['content-encoding'], undefined);
  assert.equal(image.headers.vary, undefined, 'a type that is never compressed does not vary');

  const encoded = await get('/encoded', 'br, gzip');
  assert.equal(encoded.headers['content-encoding'], 'gzip', 'left as the upstream encoded it (not re-encoded as br)');
  assert.equal(gunzipSync(encoded.raw).toString(), BIG);

  const nt = await get('/no-transform', 'br, gzip');
  assert.equal(nt.headers['content-encoding'], undefined);
  assert.equal(nt.raw.toString(), BIG);
});

test('event streams: never compressed under text/*; compressed and flushed per event when listed by name; the first event is not delayed', async () => {
  // compression: true (text/*) on an event stream: passed through as it is, event by event
  const sse = await get('/sse', 'br, gzip');
  assert.equal(sse.headers['content-encoding'], undefined);
  assert.equal(sse.chunks.length, 5);
  // listed by name: gzip, one flush per event (each chunk decodes on its own to whole events)
  const flushed = await get('/flushed/sse', 'gzip');
  assert.equal(flushed.headers['content-encoding'], 'gzip');
  assert.equal(flushed.chunks.length >= 5, true, `chunks: ${flushed.chunks.length}`);
  // Decode what had arrived at each chunk (a truncated stream decodes up to its last flush): each event is
  // readable when it arrives, about 60 ms after the previous one, not at the end.
  const eventsAt: number[] = [];
  for (let i = 0; i < flushed.chunks.length; i++) {
    const text = gunzipSync(Buffer.concat(flushed.chunks.slice(0, i + 1).map((c) => c.data)), { finishFlush: constants.Z_SYNC_FLUSH }).toString();
    const n = text.split('\n\n').length - 1;
    while (eventsAt.length < n) eventsAt.push(flushed.chunks[i].at);
  }
  assert.equal(eventsAt.length, 5);
  // A compressor that held events back would release them together at the end (gaps ~0); the median gap is
  // robust to one pair squeezed together by a loaded machine.
  const gaps = [1, 2, 3, 4].map((i) => eventsAt[i] - eventsAt[i - 1]).sort((x, y) => x - y);
  assert.ok((gaps[1] + gaps[2]) / 2 > 30, `gaps between readable events ${gaps.map((g) => g.toFixed(0)).join(', ')} ms (the upstream sends every 60 ms): held in the compressor`);
  assert.match(gunzipSync(flushed.raw).toString(), /^data: \{"i":0,.*\n\ndata: \{"i":4,/s);

  // Interleaved, so a change in the machine's load hits all three alike.
  const times: Record<string, number[]> = { '/plain/sse': [], '/sse': [], '/flushed/sse': [] };
  for (let i = 0; i < 7; i++) for (const p of Object.keys(times)) times[p].push((await get(p, 'br, gzip')).chunks[0].at);
  // The fastest of seven: the delay the path itself adds, not the machine's (a thread-pool round trip for zlib
  // waits for a CPU like everything else on a loaded machine).
  const fastest = (a: number[]) => Math.min(...a);
  const plain = fastest(times['/plain/sse']);
  const viaCompressionRoute = fastest(times['/sse']);
  const viaFlushed = fastest(times['/flushed/sse']);
  assert.ok(viaCompressionRoute - plain < 5, `first event ${viaCompressionRoute.toFixed(2)} ms vs ${plain.toFixed(2)} ms on a route without compression`);
  assert.ok(viaFlushed - plain < 5, `first compressed event ${viaFlushed.toFixed(2)} ms vs ${plain.toFixed(2)} ms`);
});

test('compression over HTTP/2 (h2c): negotiated the same way', async () => {
  const h2c = await startGateway(`
server: { http2: { cleartext: true } }
upstreams: { u: { targets: [ http://127.0.0.1:${(upstream.address() as { port: number }).port} ] } }
routes: [ { match: { path: /big }, upstream: u, auth: public, compression: { encodings: [gzip] } } ]
`);
  try {
    const s = await h2connect(`http://127.0.0.1:${h2c.port}`);
    const req = s.request({ ':path': '/big', 'accept-encoding': 'br, gzip' });
    const parts: Buffer[] = [];
    const headers = await new Promise<Record<string, unknown>>((resolve) => req.on('response', resolve));
    req.on('data', (c: Buffer) => parts.push(c));
    await new Promise((r) => req.on('end', r));
    s.close();
    assert.equal(headers['content-encoding'], 'gzip');
    assert.equal(headers.vary, 'Accept-Encoding');
    assert.equal(gunzipSync(Buffer.concat(parts)).toString(), BIG);
  } finally { await h2c.close(); }
});
