// Upstreams that answer with broken or ambiguous framing (RFC 9112 §6): the gateway never relays what another hop
// could read differently.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { startGateway, type TestGateway } from '../helpers.ts';
import { parseResponse, rawExchange } from '../support/raw-http.ts';

let raw: Server;
let reply = '';
const sockets: Socket[] = [];
let g: TestGateway;

before(async () => {
  raw = createServer((s) => {
    sockets.push(s);
    s.on('data', () => s.write(reply)); // every request, also on a kept-alive connection
  });
  await new Promise<void>((r) => raw.listen(0, '127.0.0.1', r));
  g = await startGateway(`
upstreams:
  raw: { targets: [ http://127.0.0.1:${(raw.address() as { port: number }).port} ] }
routes:
  - { name: raw, match: { path: /, prefix: true }, upstream: raw, auth: public }
`);
});
after(async () => {
  await g.close();
  for (const s of sockets) s.destroy();
  await new Promise((r) => raw.close(r));
});

const get = async () => parseResponse(await rawExchange(Number(new URL(g.url).port), 'GET /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'));

for (const te of ['chunked, chunked', 'gzip, chunked', 'Chunked ,chunked', 'identity']) {
  test(`issue 11 #8 (RFC 9112 §6.1): upstream Transfer-Encoding "${te}" is a 502, the body never relayed`, async () => {
    reply = `HTTP/1.1 200 OK\r\nTransfer-Encoding: ${te}\r\nContent-Type: text/plain\r\n\r\n5\r\nSMUGG\r\n0\r\n\r\n`;
    const r = await get();
    assert.equal(r.status, 502);
    assert.equal(JSON.parse(r.body).code, 'upstream_failed');
    assert.doesNotMatch(r.body, /SMUGG/);
  });
}

test('RFC 9112 §6.1: two Transfer-Encoding headers from the upstream are a 502', async () => {
  reply = 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nSMUGG\r\n0\r\n\r\n';
  assert.equal((await get()).status, 502);
});

test('exactly "chunked" (any case) is relayed as it should be', async () => {
  reply = 'HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\nContent-Type: text/plain\r\n\r\n5\r\nhello\r\n0\r\n\r\n';
  const r = await get();
  assert.equal(r.status, 200);
  assert.match(r.body, /hello/);
});

test('RFC 9112 §6.3: Content-Length and Transfer-Encoding together from the upstream are a 502', async () => {
  reply = 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n';
  assert.equal((await get()).status, 502);
});

test('an upstream response that is not HTTP at all is a 502 naming no internals', async () => {
  reply = 'SSH-2.0-OpenSSH_9.6\r\n';
  const r = await get();
  assert.equal(r.status, 502);
  assert.doesNotMatch(r.body, /127\.0\.0\.1|SSH/);
});
