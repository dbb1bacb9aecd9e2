// WebSocket tunnelling: frames and close codes pass both ways; only websocket routes upgrade.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { createServer, type Server } from 'node:http';
import WebSocket, { WebSocketServer } from 'ws';
import { startDemoServer, type DemoServer } from '../../src/demo/services.ts';
import { startGateway, eventually, type TestGateway } from '../helpers.ts';

let up: DemoServer;
let g: TestGateway;
// A second upstream that closes on request and records the close it received.
let closer: Server;
let wss: WebSocketServer;
const received: Array<{ code: number; reason: string }> = [];

before(async () => {
  up = await startDemoServer({ name: 'realtime' });
  closer = createServer();
  wss = new WebSocketServer({ server: closer });
  wss.on('connection', (ws) => {
    ws.on('message', (m) => { if (String(m) === 'close-me') ws.close(4002, 'server says bye'); });
    ws.on('close', (code, reason) => received.push({ code, reason: reason.toString() }));
  });
  await new Promise<void>((r) => closer.listen(0, '127.0.0.1', r));
  g = await startGateway(`
upstreams:
  realtime: { targets: [ ${up.url} ] }
  closer: { targets: [ http://127.0.0.1:${(closer.address() as AddressInfo).port} ] }
defaults: { auth: public }
routes:
  - { name: ws, match: { path: /ws/chat }, upstream: realtime, websocket: true, rewrite: { path: /ws/echo } }
  - { name: ws-closer, match: { path: /ws/closer }, upstream: closer, websocket: true }
  - { name: plain, match: { path: /ws/plain }, upstream: realtime }
`);
});
after(async () => {
  await g.close();
  await up.close();
  for (const c of wss.clients) c.terminate();
  wss.close();
  await new Promise<void>((r) => closer.close(() => r()));
});

function open(path: string, headers: Record<string, string> = {}): Promise<{ ws: WebSocket; messages: Array<{ data: Buffer; binary: boolean }> }> {
  const ws = new WebSocket(`${g.url.replace('http', 'ws')}${path}`, { headers });
  const messages: Array<{ data: Buffer; binary: boolean }> = [];
  ws.on('message', (data, binary) => messages.push({ data: data as Buffer, binary }));
  return new Promise((resolve, reject) => { ws.once('open', () => resolve({ ws, messages })); ws.once('error', reject); });
}

function closed(ws: WebSocket): Promise<{ code: number; reason: string }> {
  return new Promise((r) => ws.once('close', (code, reason) => r({ code, reason: reason.toString() })));
}

test('a websocket route tunnels text and binary frames, and a client close code and reason come back', async () => {
  const { ws, messages } = await open('/ws/chat?room=7', { 'x-request-id': 'ws-probe-1' });
  await eventually(() => messages.length === 1);
  const hello = JSON.parse(messages[0].data.toString());
  assert.equal(hello.path, '/ws/echo', 'the rewrite applies to the upgrade');
  assert.equal(hello.query, 'room=7');
  assert.equal(hello.headers['x-request-id'], 'ws-probe-1');
  assert.equal(hello.headers['x-forwarded-for'], '127.0.0.1');

  ws.send('hello through the gateway');
  ws.send(Buffer.from([0, 1, 2, 253, 254, 255]));
  await eventually(() => messages.length === 3);
  assert.deepEqual([messages[1].data.toString(), messages[1].binary], ['hello through the gateway', false]);
  assert.deepEqual([[...messages[2].data], messages[2].binary], [[0, 1, 2, 253, 254, 255], true]);

  // The demo echoes a close with the code and reason it received: seeing them back proves both directions.
  const done = closed(ws);
  ws.close(4001, 'client says bye');
  assert.deepEqual(await done, { code: 4001, reason: 'client says bye' });
});

test('an upstream-initiated close reaches the client, and the client\'s close reaches the upstream', async () => {
  const { ws } = await open('/ws/closer');
  const done = closed(ws);
  ws.send('close-me');
  assert.deepEqual(await done, { code: 4002, reason: 'server says bye' });

  const second = await open('/ws/closer');
  const done2 = closed(second.ws);
  second.ws.close(4003, 'client leaves');
  await done2;
  await eventually(() => received.some((r) => r.code === 4003 && r.reason === 'client leaves'));
});

test('a route without websocket: true refuses the upgrade and opens no tunnel', async () => {
  const before = up.stats.requests;
  const status = await new Promise<number>((resolve, reject) => {
    const ws = new WebSocket(`${g.url.replace('http', 'ws')}/ws/plain`);
    ws.once('unexpected-response', (_req, res) => { resolve(res.statusCode ?? 0); res.resume(); ws.terminate(); });
    ws.once('open', () => { ws.terminate(); reject(new Error('upgraded on a plain route')); });
    ws.once('error', () => {});
  });
  assert.ok(status >= 400 && status < 500, `refused with ${status}`);
  assert.equal(up.stats.requests, before, 'the upgrade never reached the upstream');
});

test('every upgrade gets one access line: refused (its status) and tunnelled (101)', async () => {
  const refused = new WebSocket(g.url.replace('http', 'ws') + '/ws/plain');
  await new Promise((r) => refused.once('error', r));
  const ok = new WebSocket(g.url.replace('http', 'ws') + '/ws/chat');
  await new Promise((r) => ok.once('message', r));
  ok.close(1000, 'done');
  const lines = await eventually(() => {
    const l = g.logs.filter((x) => x.type === 'access' && (x.path === '/ws/plain' || x.path === '/ws/chat') && (x.status === 101 || x.status === 404));
    return l.length >= 2 ? l : undefined;
  });
  assert.ok(lines!.some((x) => x.path === '/ws/plain' && x.status === 404 && x.error === 'not_found'));
  assert.ok(lines!.some((x) => x.path === '/ws/chat' && x.status === 101 && x.route === 'ws'));
});
