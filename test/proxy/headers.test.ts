// Header rules, checked on what the upstream actually received (demo echo) and what the client got back.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { startDemoServer, type DemoServer } from '../../src/demo/services.ts';
import { startGateway, type TestGateway } from '../helpers.ts';
import { createServer, type Server } from 'node:net';
import { parseResponse, rawExchange } from '../support/raw-http.ts';

let up: DemoServer;
let plain: TestGateway;
let trusting: TestGateway;

const routes = (url: string) => `
upstreams:
  demo: { targets: [ ${url} ] }
defaults: { auth: public }
routes:
  - { name: echo, match: { path: /echo, prefix: true }, upstream: demo }
  - { name: keep-host, match: { path: /keep-host }, upstream: demo, preserveHost: true }
`;

before(async () => {
  up = await startDemoServer({ name: 'demo' });
  plain = await startGateway(routes(up.url));
  trusting = await startGateway(`server: { trustedProxies: [ 127.0.0.0/8, "::1" ] }\n${routes(up.url)}`);
});
after(async () => {
  await plain.close();
  await trusting.close();
  await up.close();
});

type Headers = Record<string, string | undefined>;

async function echo(g: TestGateway, path: string, headers: Record<string, string> = {}): Promise<{ sent: Headers; got: Headers }> {
  const r = await request(`${g.url}${path}`, { headers });
  assert.equal(r.statusCode, 200);
  const body = (await r.body.json()) as { headers: Headers };
  return { sent: body.headers, got: r.headers as Headers };
}

test('hop-by-hop headers, including one named in Connection, never reach the upstream', async () => {
  const text = await rawExchange(plain.port, [
    'GET /echo HTTP/1.1', 'Host: gw.example', 'Connection: close, X-Foo', 'X-Foo: hop-only', 'Keep-Alive: timeout=5',
    'TE: trailers', 'Trailer: X-Checksum', 'Proxy-Authorization: Basic c2VjcmV0', 'Proxy-Connection: keep-alive', 'X-Keep: end-to-end', '', '',
  ].join('\r\n'));
  const r = parseResponse(text);
  assert.equal(r.status, 200);
  const sent = (JSON.parse(r.body) as { headers: Headers }).headers;
  for (const h of ['x-foo', 'keep-alive', 'te', 'trailer', 'proxy-authorization', 'proxy-connection']) assert.equal(sent[h], undefined, `${h} was forwarded`);
  assert.equal(sent['x-keep'], 'end-to-end');
  assert.notEqual(sent.connection, 'close, X-Foo');
});

test('X-Forwarded-For/-Proto/-Host and X-Real-IP are built from the socket', async () => {
  const { sent } = await echo(plain, '/echo');
  assert.equal(sent['x-forwarded-for'], '127.0.0.1');
  assert.equal(sent['x-forwarded-proto'], 'http');
  assert.equal(sent['x-forwarded-host'], `127.0.0.1:${plain.port}`);
  assert.equal(sent['x-real-ip'], '127.0.0.1');
});

test('spoofed forwarding headers from an untrusted peer are ignored', async () => {
  const { sent } = await echo(plain, '/echo', { 'x-forwarded-for': '6.6.6.6', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'evil.example', 'x-real-ip': '6.6.6.6', forwarded: 'for=6.6.6.6' });
  assert.equal(sent['x-forwarded-for'], '127.0.0.1');
  assert.equal(sent['x-forwarded-proto'], 'http');
  assert.equal(sent['x-forwarded-host'], `127.0.0.1:${plain.port}`);
  assert.equal(sent['x-real-ip'], '127.0.0.1');
  assert.equal(sent.forwarded, undefined);
});

test('from a trusted proxy (CIDR), X-Forwarded-For is extended and the client IP taken from it', async () => {
  let { sent } = await echo(trusting, '/echo', { 'x-forwarded-for': '203.0.113.7', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'api.example.com' });
  assert.equal(sent['x-forwarded-for'], '203.0.113.7, 127.0.0.1');
  assert.equal(sent['x-real-ip'], '203.0.113.7');
  assert.equal(sent['x-forwarded-proto'], 'https');
  assert.equal(sent['x-forwarded-host'], 'api.example.com');
  // Trusted hops are skipped from the right; the first untrusted one is the client.
  ({ sent } = await echo(trusting, '/echo', { 'x-forwarded-for': '198.51.100.1, 203.0.113.7, 127.0.0.9' }));
  assert.equal(sent['x-real-ip'], '203.0.113.7');
  assert.equal(sent['x-forwarded-for'], '198.51.100.1, 203.0.113.7, 127.0.0.9, 127.0.0.1');
  // Garbage in the chain: nothing before it is believed.
  ({ sent } = await echo(trusting, '/echo', { 'x-forwarded-for': '203.0.113.7, not-an-ip' }));
  assert.equal(sent['x-real-ip'], '127.0.0.1');
});

test('X-Request-Id is kept when well-formed and replaced when not, on both sides', async () => {
  let { sent, got } = await echo(plain, '/echo', { 'x-request-id': 'client-abc_123.x' });
  assert.equal(sent['x-request-id'], 'client-abc_123.x');
  assert.equal(got['x-request-id'], 'client-abc_123.x');
  for (const bad of ['has space', 'x'.repeat(200), 'semi;colon', '<script>']) {
    ({ sent, got } = await echo(plain, '/echo', { 'x-request-id': bad }));
    assert.match(sent['x-request-id']!, /^[0-9a-f-]{36}$/, bad);
    assert.equal(got['x-request-id'], sent['x-request-id']);
  }
  ({ sent, got } = await echo(plain, '/echo'));
  assert.match(sent['x-request-id']!, /^[0-9a-f-]{36}$/);
  assert.equal(got['x-request-id'], sent['x-request-id']);
});

test('traceparent: the trace id is kept with a new parent id, or a trace is started', async () => {
  const inbound = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
  let { sent } = await echo(plain, '/echo', { traceparent: inbound });
  const m = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/.exec(sent.traceparent!);
  assert.ok(m, sent.traceparent);
  assert.equal(m[1], '0af7651916cd43dd8448eb211c80319c');
  assert.notEqual(m[2], 'b7ad6b7169203331');
  assert.equal(m[3], '01');
  for (const h of [undefined, 'garbage', '00-00000000000000000000000000000000-b7ad6b7169203331-01']) {
    ({ sent } = await echo(plain, '/echo', h === undefined ? {} : { traceparent: h }));
    const n = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/.exec(sent.traceparent!);
    assert.ok(n, `${h} → ${sent.traceparent}`);
    assert.notEqual(n[1], '0'.repeat(32));
  }
});

test('Host: the upstream\'s by default, the client\'s with preserveHost', async () => {
  let { sent } = await echo(plain, '/echo', { host: 'client.example' });
  assert.equal(sent.host, `127.0.0.1:${up.port}`);
  ({ sent } = await echo(plain, '/keep-host', { host: 'client.example' }));
  assert.equal(sent.host, 'client.example');
});

test('Server and X-Powered-By from the upstream are removed', async () => {
  const { got } = await echo(plain, '/echo');
  assert.equal(got.server, undefined);
  assert.equal(got['x-powered-by'], undefined);
  assert.equal(got['content-type'], 'application/json');
});

test('inbound identity headers (X-User-Id, X-Consumer-Id, ...) are removed before the request goes up', async () => {
  const { sent } = await echo(plain, '/echo', { 'x-user-id': 'admin', 'x-consumer-id': 'acme', 'x-user-plan': 'enterprise', 'x-consumer-plan': 'enterprise', 'x-other': 'kept' });
  assert.equal(sent['x-user-id'], undefined);
  assert.equal(sent['x-consumer-id'], undefined);
  assert.equal(sent['x-user-plan'], undefined);
  assert.equal(sent['x-consumer-plan'], undefined);
  assert.equal(sent['x-other'], 'kept');
});

test('hop-by-hop response headers, including one the upstream names in Connection, never reach the client', async (t) => {
  // A raw upstream, so the response head is exactly what we write.
  const raw: Server = createServer((s) => {
    s.on('error', () => {});
    s.once('data', () => s.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close, X-Bar\r\nX-Bar: hop-only\r\nKeep-Alive: timeout=99, max=7\r\nTrailer: X-Sum\r\nX-Keep: yes\r\nServer: raw/1\r\n\r\nok'));
  });
  await new Promise<void>((r) => raw.listen(0, '127.0.0.1', r));
  const g = await startGateway(routes(`http://127.0.0.1:${(raw.address() as { port: number }).port}`));
  t.after(async () => { await g.close(); await new Promise<void>((r) => raw.close(() => r())); });
  const r = await request(`${g.url}/echo`);
  assert.equal(r.statusCode, 200);
  assert.equal(await r.body.text(), 'ok');
  for (const h of ['x-bar', 'trailer', 'server']) assert.equal(r.headers[h], undefined, `${h} reached the client`);
  // The gateway's own connection may carry its own Keep-Alive; the upstream's is not relayed.
  assert.notEqual(r.headers['keep-alive'], 'timeout=99, max=7');
  assert.equal(r.headers['x-keep'], 'yes');
});
