// Listener-level defences: slow headers, and framing that request smuggling relies on.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startDemoServer, type DemoServer } from '../../src/demo/services.ts';
import { startGateway, type TestGateway } from '../helpers.ts';
import { assertProblem } from '../support/problem.ts';
import { openSocket, parseResponse, rawExchange, readUntilClose } from '../support/raw-http.ts';
import { h2connect, h2request } from '../support/h2.ts';

let up: DemoServer;
let g: TestGateway;

before(async () => {
  up = await startDemoServer({ name: 'demo' });
  g = await startGateway(`
server:
  limits: { headersTimeout: 500ms }
upstreams:
  demo: { targets: [ ${up.url} ] }
routes:
  - { name: echo, match: { path: /echo, prefix: true }, upstream: demo, auth: public }
`);
});
after(async () => {
  await g.close();
  await up.close();
});

test('slowloris: headers trickled slower than headersTimeout are cut off in bounded time', async () => {
  const s = await openSocket(g.port);
  const t0 = performance.now();
  const closed = readUntilClose(s, 9000);
  const head = 'GET /echo HTTP/1.1\r\nHost: x\r\nX-Slow: ' + 'a'.repeat(200);
  let sent = 0;
  // One byte every 50 ms: the head would take 10 s to finish.
  const timer = setInterval(() => { if (!s.destroyed && sent < head.length) s.write(head[sent++]); }, 50);
  try {
    const text = await closed;
    const ms = performance.now() - t0;
    assert.ok(sent < head.length, 'the connection was closed before the head was complete');
    // Node checks the timeout on an interval; allow generous slack on a shared machine.
    assert.ok(ms >= 400 && ms < 6000, `closed after ${ms} ms`);
    if (text.length > 0) assert.equal(parseResponse(text).status, 408);
  } finally {
    clearInterval(timer);
  }
  assert.equal(up.stats.requests, 0, 'nothing reached the upstream');
});

test('Content-Length together with Transfer-Encoding is refused with 400', async () => {
  const text = await rawExchange(g.port, 'POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /echo/smuggled HTTP/1.1\r\nHost: x\r\n\r\n');
  const r = parseResponse(text);
  assertProblem(r.status, r.headers, r.body, { status: 400, code: 'bad_request' });
  assert.equal(up.stats.requests, 0);
  assert.equal((text.match(/^HTTP\/1\.1 \d{3}/gm) ?? []).length, 1, 'one answer, no smuggled second request');
});

test('two different Content-Length values are refused with 400', async () => {
  const text = await rawExchange(g.port, 'POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 11\r\n\r\nhello world');
  const r = parseResponse(text);
  assertProblem(r.status, r.headers, r.body, { status: 400, code: 'bad_request' });
  assert.equal(up.stats.requests, 0);
});

test('a request without Host is refused with 400', async () => {
  const text = await rawExchange(g.port, 'GET /echo HTTP/1.1\r\n\r\n');
  assert.equal(parseResponse(text).status, 400);
  assert.equal(up.stats.requests, 0);
});

test('item 9: more header fields than server.limits.maxHeaderCount (default 100) → 431, never forwarded with fields dropped', async () => {
  const before = up.stats.requests;
  const fields = (n: number) => Array.from({ length: n }, (_, i) => `X-Fld${i}: v\r\n`).join('');
  // node alone keeps the first 2,000 fields and silently drops the rest; 2,100 was forwarded before the limit existed
  // 2,100 one-letter fields fit in maxHeaderSize (16kb): node's own 2,000 cap is what they meet first
  for (const many of [fields(100), 'a:b\r\n'.repeat(2099)]) {
    const text = await rawExchange(g.port, `GET /echo HTTP/1.1\r\nHost: x\r\n${many}\r\n`);
    const r = parseResponse(text);
    assertProblem(r.status, r.headers, r.body, { status: 431, code: 'headers_too_large' });
    assert.match(r.body, /maxHeaderCount/);
    assert.equal(r.headers.connection, 'close');
  }
  assert.equal(up.stats.requests, before, 'nothing reached the upstream');
  const ok = parseResponse(await rawExchange(g.port, `GET /echo HTTP/1.1\r\nHost: x\r\n${fields(98)}Connection: close\r\n\r\n`));
  assert.equal(ok.status, 200, '100 fields are fine');
  assert.equal(Object.keys(up.stats.lastHeaders ?? {}).filter((k) => k.startsWith('x-fld')).length, 98, 'every field arrived');
});

test('item 9 over HTTP/2: past maxHeaderCount → 431; far past it the stream is refused; never truncated', async (t) => {
  const h2g = await startGateway(`
server:
  http2: { cleartext: true }
  limits: { maxHeaderCount: 20 }
upstreams:
  demo: { targets: [ ${up.url} ] }
routes:
  - { name: echo, match: { path: /echo, prefix: true }, upstream: demo, auth: public }
`);
  const s = await h2connect(`http://127.0.0.1:${h2g.port}`);
  t.after(async () => { s.destroy(); await h2g.close(); });
  const fields = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`x-fld${i}`, 'v']));
  const before = up.stats.requests;
  const ok = await h2request(s, '/echo', { headers: fields(19) });
  assert.equal(ok.status, 200, '19 fields + host (pseudo-headers do not count)');
  const over = await h2request(s, '/echo', { headers: fields(25) });
  assertProblem(over.status, over.headers as Record<string, string>, over.body, { status: 431, code: 'headers_too_large' });
  await assert.rejects(h2request(s, '/echo', { headers: fields(200) }), 'far past the limit nghttp2 refuses the stream');
  assert.equal(up.stats.requests, before + 1);
});
