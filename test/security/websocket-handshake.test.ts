// WebSocket handshakes (RFC 6455) as an attacker sends them (the tunnel's own life, 1008 at exp and frames: websocket.test.ts), over raw sockets: what the gateway refuses before any
// upstream sees it, and what it refuses to relay from an upstream.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { createHash } from 'node:crypto';
import type { AddressInfo, Socket } from 'node:net';
import WebSocket from 'ws';
import { startDemoServer, type DemoServer } from '../../src/demo/services.ts';
import { startGateway, type TestGateway } from '../helpers.ts';
import { parseResponse, rawExchange } from '../support/raw-http.ts';

const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
let up: DemoServer;
let g: TestGateway;
/** An upstream that answers every upgrade with 101 and a Sec-WebSocket-Accept chosen by the test. */
let liar: Server;
let liarAccept: (key: string) => string | null = () => null;
const liarSockets: Socket[] = [];
let upgradesSeen = 0;

before(async () => {
  up = await startDemoServer({ name: 'realtime' });
  up.server.on('upgrade', () => { upgradesSeen++; });
  liar = createServer();
  liar.on('upgrade', (req, socket) => {
    liarSockets.push(socket as Socket);
    const accept = liarAccept(String(req.headers['sec-websocket-key']));
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n${accept === null ? '' : `Sec-WebSocket-Accept: ${accept}\r\n`}\r\n`);
  });
  await new Promise<void>((r) => liar.listen(0, '127.0.0.1', r));
  g = await startGateway(`
upstreams:
  realtime: { targets: [ ${up.url} ] }
  liar: { targets: [ http://127.0.0.1:${(liar.address() as AddressInfo).port} ] }
defaults: { auth: public }
routes:
  - { name: ws, match: { path: /ws/echo }, upstream: realtime, websocket: true }
  - { name: liar, match: { path: /ws/liar }, upstream: liar, websocket: true }
`);
});
after(async () => {
  await g.close();
  await up.close();
  for (const s of liarSockets) s.destroy();
  await new Promise((r) => liar.close(r));
});

const port = () => Number(new URL(g.url).port);
const handshake = (extra: string, path = '/ws/echo') =>
  `GET ${path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n${extra}\r\n`;

test('issue 11 #2: an upgrade request with a body (Content-Length or Transfer-Encoding) is 400, the upstream never sees it', async () => {
  const before = upgradesSeen;
  for (const framing of ['Content-Length: 5\r\n', 'Transfer-Encoding: chunked\r\n']) {
    const body = framing.startsWith('Content') ? 'hello' : '5\r\nhello\r\n0\r\n\r\n';
    const r = parseResponse(await rawExchange(port(), handshake(`Sec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\n${framing}`) + body));
    assert.equal(r.status, 400, framing);
    assert.equal(JSON.parse(r.body).code, 'bad_request');
  }
  assert.equal(upgradesSeen, before);
});

test('issue 11 #3 (RFC 6455 §4.2.1): a missing or malformed Sec-WebSocket-Key is 400 before the upstream', async () => {
  const before = upgradesSeen;
  for (const key of ['', 'Sec-WebSocket-Key: short\r\n', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ\r\n', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZR==\r\n', `Sec-WebSocket-Key: ${KEY}x\r\n`]) {
    const r = parseResponse(await rawExchange(port(), handshake(`${key}Sec-WebSocket-Version: 13\r\n`)));
    assert.equal(r.status, 400, JSON.stringify(key));
  }
  assert.equal(upgradesSeen, before);
});

test('issue 11 #3 (RFC 6455 §4.4): a version other than 13 is 426 with Sec-WebSocket-Version: 13', async () => {
  for (const v of ['Sec-WebSocket-Version: 8\r\n', 'Sec-WebSocket-Version: 13, 8\r\n']) {
    const r = parseResponse(await rawExchange(port(), handshake(`Sec-WebSocket-Key: ${KEY}\r\n${v}`)));
    assert.equal(r.status, 426, JSON.stringify(v));
    assert.equal(r.headers['sec-websocket-version'], '13');
    assert.equal(JSON.parse(r.body).code, 'upgrade_required');
  }
});

test('RFC 6455 §4.1: a handshake that is not a GET is refused', async () => {
  const r = parseResponse(await rawExchange(port(), `POST /ws/echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\nContent-Length: 0\r\n\r\n`));
  assert.ok(r.status === 400 || r.status === 404 || r.status === 405, String(r.status));
});

test('issue 11 #3 (RFC 6455 §4.2.2): an upstream 101 with a wrong or missing Sec-WebSocket-Accept is a 502, never relayed', async () => {
  const cases: Array<[string, (k: string) => string | null]> = [
    ['missing', () => null],
    ['wrong', () => createHash('sha1').update('not-the-key').digest('base64')],
  ];
  for (const [name, accept] of cases) {
    liarAccept = accept;
    const text = await rawExchange(port(), handshake(`Sec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\n`, '/ws/liar'));
    const r = parseResponse(text);
    assert.equal(r.status, 502, name);
    assert.doesNotMatch(text, /101 Switching/, name);
  }
  // The upstream's socket was closed, not left open behind the refusal.
  await new Promise((r) => setTimeout(r, 100));
  assert.ok(liarSockets.length >= 2 && liarSockets.every((s) => s.destroyed || s.readableEnded), 'upstream sockets closed');
});

test('a genuine 101 (the accept matches the key) still tunnels', async () => {
  liarAccept = (k) => createHash('sha1').update(k + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
  const ws = new WebSocket(`${g.url.replace('http', 'ws')}/ws/echo`);
  const got = await new Promise<string>((resolve, reject) => {
    ws.on('open', () => ws.send('ping'));
    ws.on('message', (m) => { if (/ping/.test(String(m))) resolve(String(m)); });
    ws.on('error', reject);
  });
  ws.close();
  assert.match(got, /ping/);
});

test('the request-head checks apply to handshakes too: too many header fields (431), userinfo in Host (400)', async () => {
  const before = upgradesSeen;
  const many = Array.from({ length: 150 }, (_, i) => `X-Pad-${i}: ${i}\r\n`).join('');
  const r1 = parseResponse(await rawExchange(port(), handshake(`Sec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\n${many}`)));
  assert.equal(r1.status, 431);
  const r2 = parseResponse(await rawExchange(port(), `GET /ws/echo HTTP/1.1\r\nHost: gw@evil.example\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n`));
  assert.equal(r2.status, 400);
  assert.equal(upgradesSeen, before);
});
