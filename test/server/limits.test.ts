// Listener-level defences: slow headers, and framing that request smuggling relies on.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startDemoServer, type DemoServer } from '../../src/demo/services.ts';
import { startGateway, type TestGateway } from '../helpers.ts';
import { assertProblem } from '../support/problem.ts';
import { openSocket, parseResponse, rawExchange, readUntilClose } from '../support/raw-http.ts';

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
