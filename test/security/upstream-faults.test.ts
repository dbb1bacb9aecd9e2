// A hostile or broken upstream: what reaches the client is a clean problem+json, or a cut connection once bytes
// went out, never a relayed ambiguity. Framing per RFC 9112 §6; cases from nginx's and Envoy's histories
// (response splitting through upstream headers, duplicate chunked coding, oversized heads, slow and truncating upstreams).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket, type AddressInfo } from 'node:net';
import { startGateway, type TestGateway } from '../helpers.ts';
import { rawRequest, rawExchange } from '../support/raw-http.ts';
import { assertNoInternals } from '../support/problem.ts';

let g: TestGateway;
let fake: Server;
const sockets = new Set<Socket>();
let closedAfterAnswer = 0;

/** What the fake upstream answers for each path (raw bytes, or a function of the socket). */
const answers: Record<string, string | ((s: Socket) => void)> = {
  '/te-double': 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
  '/te-two-lines': 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
  '/te-gzip-chunked': 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
  '/te-identity': 'HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\nConnection: close\r\n\r\nhello',
  '/te-chunked-ok': 'HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
  '/te-cl': 'HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
  '/cl-double': 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\nConnection: close\r\n\r\nhello!',
  '/cl-plus': 'HTTP/1.1 200 OK\r\nContent-Length: +5\r\nConnection: close\r\n\r\nhello',
  '/garbage': 'this is not HTTP at all\r\n\r\n',
  '/bad-status': 'HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n',
  '/bare-lf-split': 'HTTP/1.1 200 OK\r\nX-A: 1\nSet-Cookie: evil=1\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok',
  '/obs-fold': 'HTTP/1.1 200 OK\r\nX-A: 1\r\n X-Injected: yes\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok',
  '/nul-header': 'HTTP/1.1 200 OK\r\nX-A: a\u0000b\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok',
  '/huge-head': `HTTP/1.1 200 OK\r\nX-Big: ${'a'.repeat(80 * 1024)}\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok`,
  '/continue-then-ok': 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok',
  '/truncated': 'HTTP/1.1 200 OK\r\nContent-Length: 100\r\nConnection: close\r\n\r\nonly ten b',
  '/truncated-chunked': 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n',
  '/reset': (s) => s.resetAndDestroy(),
  '/silent': () => { /* never answers */ },
  '/slow-body': (s) => { s.write('HTTP/1.1 200 OK\r\nContent-Length: 10\r\nConnection: close\r\n\r\nabc'); },
  '/hop-by-hop': 'HTTP/1.1 200 OK\r\nConnection: close, X-Secret\r\nX-Secret: internal\r\nKeep-Alive: timeout=5\r\nUpgrade: h2c\r\nProxy-Connection: keep-alive\r\nContent-Length: 2\r\n\r\nok',
};

before(async () => {
  fake = createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    let buf = '';
    s.on('data', (c: Buffer) => {
      buf += c.toString('latin1');
      if (!buf.includes('\r\n\r\n')) return;
      const path = buf.split(' ')[1].replace(/^\/up/, '');
      buf = '';
      const a = answers[path];
      if (typeof a === 'function') a(s);
      else if (a !== undefined) { s.end(a); closedAfterAnswer++; }
      else s.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n');
    });
  });
  await new Promise<void>((r) => fake.listen(0, '127.0.0.1', r));
  g = await startGateway(`
upstreams:
  fake: { targets: [ http://127.0.0.1:${(fake.address() as AddressInfo).port} ] }
defaults: { auth: public }
routes:
  - { name: up, match: { path: /up, prefix: true }, upstream: fake, timeout: { response: 1s, idle: 1s } }
`);
});
after(async () => {
  await g.close();
  for (const s of sockets) s.destroy();
  await new Promise<void>((r) => fake.close(() => r()));
});

async function expect502(path: string) {
  const r = await rawRequest(g.port, `GET /up${path} HTTP/1.1\r\nHost: gw.test`);
  assert.equal(r.status, 502, `${path}: ${r.raw.slice(0, 200)}`);
  assert.equal(JSON.parse(r.body).code, 'upstream_failed');
  assert.ok(!r.body.includes('hello'), 'the upstream body leaked');
  assertNoInternals(r.body, [(fake.address() as AddressInfo).port]);
  return r;
}

test('RFC 9112 §6.1 / issue 11.8: Transfer-Encoding: chunked, chunked from the upstream is a 502', async () => {
  await expect502('/te-double');
});

test('RFC 9112 §6.1 / issue 11.8: two Transfer-Encoding lines from the upstream are a 502', async () => {
  await expect502('/te-two-lines');
});

test('RFC 9112 §6.1 / issue 11.8: a coding other than chunked (gzip, chunked; identity) is a 502', async () => {
  await expect502('/te-gzip-chunked');
  await expect502('/te-identity');
});

test('RFC 9112 §6.1: "Chunked" in another case is still exactly chunked and relayed', async () => {
  const r = await rawRequest(g.port, 'GET /up/te-chunked-ok HTTP/1.1\r\nHost: gw.test');
  assert.equal(r.status, 200);
  assert.equal(r.body, 'hello');
});

test('RFC 9112 §6.3: Content-Length with Transfer-Encoding, two Content-Lengths, or a signed length from the upstream are a 502', async () => {
  await expect502('/te-cl');
  await expect502('/cl-double');
  await expect502('/cl-plus');
});

test('RFC 9112 §4: a status line that is not HTTP, or a 4-digit status, is a 502', async () => {
  await expect502('/garbage');
  await expect502('/bad-status');
});

test('RFC 9112 §2.2 / nginx response splitting: a bare LF, obs-fold or NUL in an upstream header never reaches the client as a header', async () => {
  for (const p of ['/bare-lf-split', '/obs-fold', '/nul-header']) {
    const r = await rawRequest(g.port, `GET /up${p} HTTP/1.1\r\nHost: gw.test`);
    assert.ok(r.status === 502 || r.status === 200, `${p}: ${r.status}`);
    assert.equal(r.headers['set-cookie'], undefined, `${p}: a split header reached the client`);
    assert.equal(r.headers['x-injected'], undefined, `${p}: a folded line became a header`);
    assert.ok(!r.raw.includes('\u0000'), `${p}: NUL relayed`);
  }
});

test('CVE-2020-11080-like oversized upstream head (80 KiB header) is a 502, not a crash', async () => {
  await expect502('/huge-head');
  const r = await rawRequest(g.port, 'GET /up/te-chunked-ok HTTP/1.1\r\nHost: gw.test');
  assert.equal(r.status, 200, 'the gateway still serves');
});

test('RFC 9110 §15.2: an unsolicited interim 100 from the upstream is never relayed as the answer', async () => {
  // undici refuses a 1xx the request did not ask for (no Expect): the client gets a clean 502, not the 100.
  const r = await rawRequest(g.port, 'GET /up/continue-then-ok HTTP/1.1\r\nHost: gw.test');
  assert.ok(r.status === 200 || r.status === 502, String(r.status));
  assert.ok(!r.raw.includes('100 Continue'));
});

test('RFC 9112 §6.3 (incomplete message): a body shorter than its Content-Length is cut at the client, never completed', async () => {
  for (const p of ['/truncated', '/truncated-chunked']) {
    const text = await rawExchange(g.port, `GET /up${p} HTTP/1.1\r\nHost: gw.test\r\nConnection: close\r\n\r\n`);
    if (text.startsWith('HTTP/1.1 502')) continue; // failed before the first byte went out
    assert.match(text, /^HTTP\/1\.1 200/);
    if (/content-length: 100/i.test(text)) assert.ok(text.length < text.indexOf('\r\n\r\n') + 4 + 100, 'a complete body was made up');
    else assert.ok(!text.endsWith('0\r\n\r\n'), `${p}: the chunked body was terminated as if complete`);
  }
});

test('a connection reset by the upstream before any byte is a 502', async () => {
  await expect502('/reset');
});

test('slow upstream: no head within the response timeout is a 504', async () => {
  const r = await rawRequest(g.port, 'GET /up/silent HTTP/1.1\r\nHost: gw.test');
  assert.equal(r.status, 504);
  assert.equal(JSON.parse(r.body).code, 'upstream_timeout');
});

test('slow upstream: a body that stalls past the idle timeout is cut, not padded', async () => {
  const text = await rawExchange(g.port, 'GET /up/slow-body HTTP/1.1\r\nHost: gw.test\r\nConnection: close\r\n\r\n', 8000);
  if (text.startsWith('HTTP/1.1 504')) return; // the head was still held when the idle timer fired
  assert.match(text, /^HTTP\/1\.1 200/);
  assert.ok(text.endsWith('abc'), JSON.stringify(text.slice(-20)));
});

test('RFC 9110 §7.6.1: hop-by-hop response headers and those the upstream lists in Connection are not relayed', async () => {
  const r = await rawRequest(g.port, 'GET /up/hop-by-hop HTTP/1.1\r\nHost: gw.test');
  assert.equal(r.status, 200);
  for (const h of ['x-secret', 'keep-alive', 'upgrade', 'proxy-connection']) assert.equal(r.headers[h], undefined, h);
});
