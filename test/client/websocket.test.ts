// gatehouse/client's WebSocket helper through a gateway that authenticates the handshake: a JWT in the
// Authorization header (ws) or the query (the browser way), an API key in its header, a refused handshake as a
// GatewayProblem, and one token refresh on a 401.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { startDemoServer, type DemoServer } from '../../src/demo/services.ts';
import { startGateway, type TestGateway } from '../helpers.ts';
import { hashApiKey } from '../../src/auth/api-keys.ts';
import { SECRET, secretBytes, sign } from '../auth/support.ts';
import { Gatehouse, GatewayProblem, type WebSocketConstructor, type WebSocketLike } from '../../src/client/index.ts';

let up: DemoServer;
let g: TestGateway;
const KEY = 'client-ws-key-h15d-0002';
const WS = WebSocket as unknown as WebSocketConstructor;

before(async () => {
  up = await startDemoServer({ name: 'realtime' });
  g = await startGateway(`
auth:
  jwt: [ { name: hs, issuer: https://hs.example, secret: "${SECRET}", queryParam: access_token, claimsToHeaders: { sub: X-User-Id } } ]
consumers: [ { id: ws-app, keys: ["${hashApiKey(KEY)}"] } ]
upstreams: { realtime: { targets: [ ${up.url} ] } }
routes:
  - { name: socket-jwt, match: { path: /ws/chat }, upstream: realtime, auth: jwt, websocket: true, rewrite: { path: /ws/echo } }
  - { name: socket-key, match: { path: /ws/bot }, upstream: realtime, auth: apikey, websocket: true, rewrite: { path: /ws/echo } }
`);
});
after(async () => { await g.close(); await up.close(); });

const token = (sub: string, exp?: number) => sign(secretBytes(), { alg: 'HS256', iss: 'https://hs.example', sub, exp });

interface Hello { path: string; query: string; headers: Record<string, string> }
/** The next message, as text. */
function next(ws: WebSocketLike): Promise<string> {
  return new Promise((resolve) => ws.addEventListener('message', (ev: { data: unknown }) => resolve(String(ev.data)), { once: true }));
}
function closed(ws: WebSocketLike): Promise<{ code: number; reason: string }> {
  return new Promise((resolve) => ws.addEventListener('close', (ev: { code: number; reason: string }) => resolve({ code: ev.code, reason: ev.reason }), { once: true }));
}

test('a JWT in the handshake headers (ws): open, the identity reaches the upstream, a message round trip, close', async () => {
  const gh = new Gatehouse({ baseUrl: g.url, token: await token('alice'), WebSocket: WS });
  const ws = await gh.websocket('/ws/chat', { query: { room: 7 } });
  const hello = JSON.parse(await next(ws)) as Hello;
  assert.equal(hello.path, '/ws/echo');
  assert.equal(hello.query, 'room=7');
  assert.equal(hello.headers['x-user-id'], 'alice');
  const echo = next(ws);
  ws.send('ping through the gateway');
  assert.equal(await echo, 'ping through the gateway');
  const c = closed(ws);
  ws.close(4001, 'bye');
  assert.deepEqual(await c, { code: 4001, reason: 'bye' });
});

test('the query mode (what a browser uses): the token is accepted and removed before the upstream', async () => {
  const t = await token('bob');
  const gh = new Gatehouse({ baseUrl: g.url, token: t, WebSocket: WS });
  const ws = await gh.websocket('/ws/chat', { auth: 'query', query: { room: 'x' } });
  const hello = JSON.parse(await next(ws)) as Hello;
  assert.equal(hello.query, 'room=x');
  assert.equal(hello.headers['x-user-id'], 'bob');
  assert.ok(!JSON.stringify(hello).includes(t));
  ws.close();
  // The query carries JWTs only: an API-key client is told so before anything is sent.
  await assert.rejects(new Gatehouse({ baseUrl: g.url, apiKey: KEY, WebSocket: WS }).websocket('/ws/bot', { auth: 'query' }), /API keys in headers only/);
});

test('an API key in its header', async () => {
  const ws = await new Gatehouse({ baseUrl: g.url, apiKey: KEY, WebSocket: WS }).websocket('/ws/bot');
  const hello = JSON.parse(await next(ws)) as Hello;
  assert.equal(hello.headers['x-consumer-id'], 'ws-app');
  assert.equal(hello.headers['x-api-key'], undefined, 'the key stays at the gateway');
  ws.close();
});

test('a refused handshake rejects with the gateway\'s problem; a 401 refreshes the token once and opens', async () => {
  const before = up.stats.requests;
  const p = await new Gatehouse({ baseUrl: g.url, WebSocket: WS }).websocket('/ws/chat').catch((e: unknown) => e as GatewayProblem);
  assert.ok(p instanceof GatewayProblem, String(p));
  assert.equal(p.status, 401);
  assert.equal(p.code, 'unauthorized');
  assert.ok(p.requestId);
  assert.equal(p.requestId, p.headers.get('x-request-id'));
  assert.equal(up.stats.requests, before, 'no tunnel was opened');

  let refreshes = 0;
  const gh = new Gatehouse({ baseUrl: g.url, WebSocket: WS, token: await token('carol', -60), refreshToken: async () => { refreshes++; return token('carol'); } });
  const ws = await gh.websocket('/ws/chat');
  assert.equal((JSON.parse(await next(ws)) as Hello).headers['x-user-id'], 'carol');
  assert.equal(refreshes, 1);
  ws.close();
});

test('an aborted handshake rejects with the signal\'s reason; without a constructor on Node 20 the error says what to pass', async () => {
  const ac = new AbortController();
  ac.abort();
  await assert.rejects(new Gatehouse({ baseUrl: g.url, token: await token('d'), WebSocket: WS }).websocket('/ws/chat', { signal: ac.signal }), (e: Error) => e.name === 'AbortError');
  if ((globalThis as { WebSocket?: unknown }).WebSocket === undefined) {
    await assert.rejects(new Gatehouse({ baseUrl: g.url }).websocket('/ws/chat'), /pass \{ WebSocket \}/);
  }
});
