// Adversarial WebSocket cases (RFC 6455), over raw sockets where the ws client would refuse to send the attack.
// Cases from the gateways' histories: nghttpx CVE-2026-58055 (an upgrade carrying a body), Traefik GHSA-w4v4-9rw7-5326
// (Upgrade: h2c tunnelled past the middleware), Envoy #44525 (Connection-nominated headers kept on upgrades).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createNetServer, type Server as NetServer, type Socket, type AddressInfo } from 'node:net';
import { createServer, type Server } from 'node:http';
import WebSocket, { WebSocketServer } from 'ws';
import { startGateway, eventually, type TestGateway } from '../helpers.ts';
import { rawExchange, parseResponse, openSocket } from '../support/raw-http.ts';
import { SECRET, secretBytes, sign } from '../auth/support.ts';

let g: TestGateway;
let good: Server;
let wss: WebSocketServer;
/** Handshakes the real WebSocket upstream saw, with their headers. */
const handshakes: Array<Record<string, string | string[] | undefined>> = [];
const upstreamCloses: Array<{ code: number; reason: string }> = [];
/** A raw upstream answering 101 with whatever Sec-WebSocket-Accept the test sets; records its sockets' fate. */
let liar: NetServer;
let liarAccept: string | null = 'not-the-right-accept=';
const liarSockets: Array<{ closed: boolean }> = [];

const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';

before(async () => {
  good = createServer();
  wss = new WebSocketServer({ server: good });
  good.on('upgrade', (req) => handshakes.push(req.headers));
  wss.on('connection', (ws) => {
    ws.on('message', (m) => ws.send(String(m)));
    ws.on('close', (code, reason) => upstreamCloses.push({ code, reason: reason.toString() }));
  });
  await new Promise<void>((r) => good.listen(0, '127.0.0.1', r));
  liar = createNetServer((s: Socket) => {
    const rec = { closed: false };
    liarSockets.push(rec);
    s.on('close', () => { rec.closed = true; });
    s.on('error', () => {});
    s.once('data', () => s.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n${liarAccept === null ? '' : `Sec-WebSocket-Accept: ${liarAccept}\r\n`}\r\n`));
  });
  await new Promise<void>((r) => liar.listen(0, '127.0.0.1', r));
  g = await startGateway(`
auth:
  jwt:
    - { name: hs, issuer: https://hs.example, secret: "${SECRET}", queryParam: access_token }
    - { name: lax, issuer: https://lax.example, secret: "${SECRET}", queryParam: access_token, closeWebSocketsOnExpiry: false }
upstreams:
  good: { targets: [ http://127.0.0.1:${(good.address() as AddressInfo).port} ] }
  liar: { targets: [ http://127.0.0.1:${(liar.address() as AddressInfo).port} ] }
defaults: { auth: public }
routes:
  - { name: ws, match: { path: /ws }, upstream: good, websocket: true }
  - { name: ws-liar, match: { path: /ws/liar }, upstream: liar, websocket: true }
  - { name: ws-jwt, match: { path: /ws/jwt }, upstream: good, websocket: true, auth: jwt }
`);
});
after(async () => {
  await g.close();
  for (const c of wss.clients) c.terminate();
  await new Promise<void>((r) => good.close(() => r()));
  await new Promise<void>((r) => liar.close(() => r()));
});

/** A raw handshake; `extra` lines replace nothing, so a test can leave out or repeat any header. */
function handshake(path: string, lines: string[], body = ''): Promise<ReturnType<typeof parseResponse>> {
  const head = [`GET ${path} HTTP/1.1`, 'Host: gw.test', 'Upgrade: websocket', 'Connection: Upgrade', ...lines].join('\r\n');
  return rawExchange(g.port, `${head}\r\n\r\n${body}`).then(parseResponse);
}
const std = [`Sec-WebSocket-Key: ${KEY}`, 'Sec-WebSocket-Version: 13'];

test('CVE-2026-58055 / RFC 6455 §4.1: an upgrade with a Content-Length body is refused 400 before the upstream is contacted', async () => {
  const before = handshakes.length;
  const r = await handshake('/ws', [...std, 'Content-Length: 5'], 'hello');
  assert.equal(r.status, 400);
  assert.equal(JSON.parse(r.body).code, 'bad_request');
  assert.equal(handshakes.length, before, 'the upstream saw the handshake');
});

test('CVE-2026-58055 / RFC 6455 §4.1: an upgrade with Transfer-Encoding is refused 400 before the upstream is contacted', async () => {
  const before = handshakes.length;
  const r = await handshake('/ws', [...std, 'Transfer-Encoding: chunked'], '5\r\nhello\r\n0\r\n\r\n');
  assert.equal(r.status, 400);
  assert.equal(handshakes.length, before);
});

test('RFC 6455 §4.1: Content-Length: 0 on a handshake is harmless and tunnels', async () => {
  const s = await new Promise<string>((resolve, reject) => {
    const ws = new WebSocket(`${g.url.replace('http', 'ws')}/ws`, { headers: { 'content-length': '0' } });
    ws.once('open', () => ws.send('ping'));
    ws.once('message', (m) => { resolve(String(m)); ws.close(); });
    ws.once('error', reject);
  });
  assert.equal(s, 'ping');
});

test('RFC 6455 §4.2.1: a missing Sec-WebSocket-Key is refused 400', async () => {
  const before = handshakes.length;
  const r = await handshake('/ws', ['Sec-WebSocket-Version: 13']);
  assert.equal(r.status, 400);
  assert.match(JSON.parse(r.body).detail, /Sec-WebSocket-Key/);
  assert.equal(handshakes.length, before);
});

test('RFC 6455 §4.2.1: a Sec-WebSocket-Key that is not 16 bytes of base64 is refused 400', async () => {
  for (const key of ['hello', Buffer.alloc(15).toString('base64'), Buffer.alloc(17).toString('base64'), 'dGhlIHNhbXBsZSBub25jZR==', '!!!!!!!!!!!!!!!!!!!!!!==', `${KEY}, ${KEY}`]) {
    const r = await handshake('/ws', [`Sec-WebSocket-Key: ${key}`, 'Sec-WebSocket-Version: 13']);
    assert.equal(r.status, 400, key);
  }
});

test('RFC 6455 §4.2.2: a version other than 13 is answered 426 with Sec-WebSocket-Version: 13; a missing one 400', async () => {
  const before = handshakes.length;
  for (const v of ['8', '12', '14', '13, 8']) {
    const r = await handshake('/ws', [`Sec-WebSocket-Key: ${KEY}`, `Sec-WebSocket-Version: ${v}`]);
    assert.equal(r.status, 426, v);
    assert.equal(r.headers['sec-websocket-version'], '13');
    assert.equal(JSON.parse(r.body).code, 'upgrade_required');
  }
  const r = await handshake('/ws', [`Sec-WebSocket-Key: ${KEY}`]);
  assert.equal(r.status, 400);
  assert.equal(handshakes.length, before);
});

test('RFC 6455 §4.1 (client step 4): an upstream 101 with a wrong Sec-WebSocket-Accept is a 502 and its socket is closed', async () => {
  liarAccept = 'bm90IHRoZSByaWdodCBvbmU=';
  const n = liarSockets.length;
  const r = await handshake('/ws/liar', std);
  assert.equal(r.status, 502);
  assert.equal(JSON.parse(r.body).code, 'upstream_failed');
  assert.ok(!r.raw.includes('101'), 'the 101 reached the client');
  await eventually(() => liarSockets.length > n && liarSockets[n].closed);
});

test('RFC 6455 §4.1 (client step 4): an upstream 101 without Sec-WebSocket-Accept is a 502 and its socket is closed', async () => {
  liarAccept = null;
  const n = liarSockets.length;
  const r = await handshake('/ws/liar', std);
  assert.equal(r.status, 502);
  await eventually(() => liarSockets.length > n && liarSockets[n].closed);
});

test('RFC 6455 §4.2.2: a valid handshake still tunnels and the client gets the accept computed from its own key', async () => {
  const text = await new Promise<string>((resolve, reject) => {
    const ws = new WebSocket(`${g.url.replace('http', 'ws')}/ws`);
    ws.once('open', () => ws.send('hi'));
    ws.once('message', (m) => { resolve(String(m)); ws.close(); });
    ws.once('error', reject);
  });
  assert.equal(text, 'hi');
});

test('GHSA-w4v4-9rw7-5326 (Traefik h2c smuggling): Upgrade: h2c is never forwarded or tunnelled', async () => {
  const before = handshakes.length;
  const text = await rawExchange(g.port, 'GET /ws HTTP/1.1\r\nHost: gw.test\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\nConnection: Upgrade, HTTP2-Settings\r\n\r\n');
  assert.ok(!text.startsWith('HTTP/1.1 101'), text.slice(0, 80));
  assert.equal(parseResponse(text).status, 400);
  assert.equal(handshakes.length, before);
});

test('Envoy #44525: headers nominated in Connection on an upgrade do not reach the upstream', async () => {
  const s = await openSocket(g.port);
  const head = new Promise<string>((r) => { let t = ''; s.on('data', (c: Buffer) => { t += c.toString('latin1'); if (t.includes('\r\n\r\n')) r(t); }); });
  s.write(`GET /ws HTTP/1.1\r\nHost: gw.test\r\nUpgrade: websocket\r\nConnection: Upgrade, X-Internal-Auth\r\nX-Internal-Auth: let-me-in\r\n${std.join('\r\n')}\r\n\r\n`);
  assert.match(await head, /^HTTP\/1\.1 101/);
  s.destroy();
  assert.equal(handshakes.at(-1)!['x-internal-auth'], undefined);
});

test('RFC 6455 §7.4.1 / issue 11.4: a WebSocket opened with a JWT is closed with 1008 at the token\'s exp, both ways', { timeout: 15_000 }, async () => {
  const t = await sign(secretBytes(), { alg: 'HS256', iss: 'https://hs.example', sub: 'short-lived', exp: 2 });
  const closesBefore = upstreamCloses.length;
  const opened = Date.now();
  const { code, echoed } = await new Promise<{ code: number; echoed: string }>((resolve, reject) => {
    let echoed = '';
    const ws = new WebSocket(`${g.url.replace('http', 'ws')}/ws/jwt?access_token=${t}`);
    ws.once('open', () => ws.send('still here'));
    ws.on('message', (m) => { echoed = String(m); });
    ws.once('close', (c) => resolve({ code: c, echoed }));
    ws.once('error', reject);
  });
  assert.equal(echoed, 'still here', 'the tunnel worked before the expiry');
  assert.equal(code, 1008);
  assert.ok(Date.now() - opened >= 900, 'closed long before exp');
  await eventually(() => upstreamCloses.length > closesBefore);
  assert.equal(upstreamCloses.at(-1)!.code, 1008);
});

test('issue 11.4: closeWebSocketsOnExpiry: false lets the tunnel outlive the token', async () => {
  const t = await sign(secretBytes(), { alg: 'HS256', iss: 'https://lax.example', sub: 'lax', exp: 1 });
  const ws = new WebSocket(`${g.url.replace('http', 'ws')}/ws/jwt?access_token=${t}`);
  await new Promise<void>((resolve, reject) => { ws.once('open', () => resolve()); ws.once('error', reject); });
  await new Promise((r) => setTimeout(r, 2500));
  assert.equal(ws.readyState, WebSocket.OPEN);
  const echo = new Promise<string>((r) => ws.once('message', (m) => r(String(m))));
  ws.send('after exp');
  assert.equal(await echo, 'after exp');
  ws.close();
});

test('RFC 6455 §10.5 / RFC 8725 §3.10: an expired JWT cannot open a tunnel at all', async () => {
  const t = await sign(secretBytes(), { alg: 'HS256', iss: 'https://hs.example', sub: 'old', exp: -120 });
  const r = await handshake(`/ws/jwt?access_token=${t}`, std);
  assert.equal(r.status, 401);
});

test('path parameters in a handshake are read like a servlet would (CVE-2020-1957 class): "/ws/jwt;x" routes elsewhere once ";x" is dropped → 400, not the upgrade', async () => {
  const before = handshakes.length;
  const r = await handshake('/ws/jwt;x', std);
  assert.equal(r.status, 400);
  assert.equal(JSON.parse(r.body).code, 'bad_path');
  assert.equal(handshakes.length, before, 'the upstream was not contacted');
});
