// WebSocket upgrades are authenticated before the tunnel opens: by header, or by a query token (seed 002's
// `?access_token=`) that is removed from the URL sent upstream and never written to a log.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { request } from 'undici';
import { startDemoServer, type DemoServer } from '../../src/demo/services.ts';
import { startGateway, eventually, type TestGateway } from '../helpers.ts';
import { rawRequest } from '../support/raw-http.ts';
import { hashApiKey } from '../../src/auth/api-keys.ts';
import { SECRET, secretBytes, sign } from '../auth/support.ts';

let up: DemoServer;
let g: TestGateway;
const KEY = 'ws-consumer-key-000111';

before(async () => {
  up = await startDemoServer({ name: 'realtime' });
  g = await startGateway(`
auth:
  jwt:
    - { name: hs, issuer: https://hs.example, secret: "${SECRET}", queryParam: access_token, claimsToHeaders: { sub: X-User-Id } }
consumers: [ { id: bot, keys: ["${hashApiKey(KEY)}"] } ]
upstreams: { realtime: { targets: [ ${up.url} ] } }
routes:
  - { name: chat-socket, match: { path: /ws/chat-service }, upstream: realtime, auth: jwt, websocket: true, rewrite: { path: /ws/echo } }
  - { name: bot-socket, match: { path: /ws/bot }, upstream: realtime, auth: apikey, websocket: true, rewrite: { path: /ws/echo } }
`);
});
after(async () => { await g.close(); await up.close(); });

interface Hello { path: string; query: string; headers: Record<string, string> }

/** Opens a socket and resolves with the demo's first message (what the upstream received), or the refusal. */
function connect(path: string, headers: Record<string, string> = {}): Promise<{ hello?: Hello; status?: number; refusal?: { headers: Record<string, string | string[] | undefined>; body: string } }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${g.url.replace('http', 'ws')}${path}`, { headers });
    ws.once('message', (data) => { resolve({ hello: JSON.parse(String(data)) as Hello }); ws.close(); });
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode, refusal: { headers: res.headers, body } }));
    });
    ws.once('error', (e) => { if (!String(e.message).includes('Unexpected server response')) reject(e); });
  });
}

const token = (sub = 'ws-user') => sign(secretBytes(), { alg: 'HS256', iss: 'https://hs.example', sub });

test('a bearer header authenticates the upgrade; the identity header reaches the upstream', async () => {
  const r = await connect('/ws/chat-service?room=7', { authorization: `Bearer ${await token('alice')}`, 'x-user-id': 'spoofed' });
  assert.ok(r.hello, `refused: ${r.status} ${r.refusal?.body}`);
  assert.equal(r.hello.path, '/ws/echo');
  assert.equal(r.hello.query, 'room=7');
  assert.equal(r.hello.headers['x-user-id'], 'alice');
});

test('no credentials: the upgrade is refused with 401 and a Bearer challenge before any tunnel opens', async () => {
  const before = up.stats.requests;
  const r = await connect('/ws/chat-service');
  assert.equal(r.status, 401);
  assert.equal(r.refusal!.headers['www-authenticate'], 'Bearer realm="gatehouse"');
  assert.equal(JSON.parse(r.refusal!.body).code, 'unauthorized');
  assert.equal(up.stats.requests, before, 'the upstream never saw the handshake');
});

test('a query token is accepted on the handshake, removed from the upstream URL, and absent from the logs', async () => {
  const t = await token('bob');
  for (const [q, rest] of [[`room=7&access_token=${t}`, 'room=7'], [`access_token=${t}&room=7&lang=en`, 'room=7&lang=en'], [`access_token=${t}`, '']] as const) {
    const r = await connect(`/ws/chat-service?${q}`);
    assert.ok(r.hello, `refused: ${r.status} ${r.refusal?.body}`);
    assert.equal(r.hello.query, rest);
    assert.equal(r.hello.headers['x-user-id'], 'bob');
    assert.ok(!JSON.stringify(r.hello).includes(t), 'token reached the upstream');
  }
  await eventually(() => g.logs.filter((l) => l.type === 'access' && l.route === 'chat-socket' && l.status === 101).length >= 3);
  assert.ok(!g.rawLogs().includes(t.split('.')[2]), 'token in the logs');
  assert.ok(!g.rawLogs().includes('access_token'), 'the query (and its token) in the logs');
});

test('a bad query token is refused (401) and not logged; a repeated one is a 400', async () => {
  const forged = await sign(new TextEncoder().encode('not-the-secret-not-the-secret-0000'), { alg: 'HS256', iss: 'https://hs.example' });
  const r = await connect(`/ws/chat-service?access_token=${forged}`);
  assert.equal(r.status, 401);
  assert.match(String(r.refusal!.headers['www-authenticate']), /error="invalid_token"/);
  assert.ok(!r.refusal!.body.includes(forged.split('.')[2]));
  const t = await token();
  assert.equal((await connect(`/ws/chat-service?access_token=${t}&access_token=${t}`)).status, 400);
  assert.ok(!g.rawLogs().includes(forged.split('.')[2]));
});

test('query tokens are only for handshakes: a plain GET with one is refused, and a header-authenticated GET does not forward it', async () => {
  const t = await token('carol');
  const plain = await request(`${g.url}/ws/chat-service?access_token=${t}`);
  await plain.body.text();
  assert.equal(plain.statusCode, 401);
  const withHeader = await request(`${g.url}/ws/chat-service?x=1&access_token=${t}`, { headers: { authorization: `Bearer ${t}` } });
  const seen = (await withHeader.body.json()) as { query: string };
  assert.equal(withHeader.statusCode, 200);
  assert.equal(seen.query, 'x=1');
});

test('an API-key WebSocket route takes the key from the header; duplicate Authorization on an upgrade is a 400', async () => {
  const ok = await connect('/ws/bot', { 'x-api-key': KEY });
  assert.equal(ok.hello?.headers['x-consumer-id'], 'bot');
  assert.equal(ok.hello?.headers['x-api-key'], undefined);
  assert.equal((await connect('/ws/bot', { 'x-api-key': 'nope' })).status, 401);
  const t = await token();
  const dup = await rawRequest(g.port, `GET /ws/chat-service HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nAuthorization: Bearer ${t}\r\nAuthorization: Bearer ${t}`);
  assert.equal(dup.status, 400);
  assert.match(JSON.parse(dup.body).detail, /more than one Authorization/);
});
