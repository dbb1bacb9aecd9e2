// HTTP/2 through the same request path as HTTP/1.1, over real sockets: SSE per event, policies, problem+json,
// graceful drain (GOAWAY), flood limits (rapid reset, PING), cleartext h2c beside HTTP/1.1, WebSocket staying on
// HTTP/1.1 on the TLS listener.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { constants, type ClientHttp2Session } from 'node:http2';
import WebSocket from 'ws';
import { startDemoServer, type DemoServer } from '../../src/demo/services.ts';
import { startGateway, eventually, type TestGateway } from '../helpers.ts';
import { makeCa, type TestCa } from '../support/certs.ts';
import { h2connect, h2request } from '../support/h2.ts';
import { rawExchange, parseResponse } from '../support/raw-http.ts';

const hash = (k: string) => 'sha256:' + createHash('sha256').update(k).digest('hex');

async function tlsGateway(t: { after(fn: () => unknown): void }, extra = '', routes = ''): Promise<{ gw: TestGateway; up: DemoServer; ca: TestCa; open(): Promise<ClientHttp2Session> }> {
  const ca = makeCa();
  const server = ca.server('server', ['api.example.test']);
  const up = await startDemoServer({ name: 'chat' });
  const gw = await startGateway(`
server:
  tls: { certificates: [ { cert: ${server.cert}, key: ${server.key} } ] }
${extra}
upstreams: { chat: { targets: [ ${up.url} ] } }
consumers:
  - { id: acme, keys: ["${hash('key-acme')}"] }
routes:
  - { name: stream, match: { path: /v1/chat/stream, methods: [GET, POST] }, upstream: chat, auth: public }
  - { name: echo, match: { path: /echo }, upstream: chat, auth: public }
  - { name: slow, match: { path: /v1/slow }, upstream: chat, auth: public }
  - { name: socket, match: { path: /ws/echo }, upstream: chat, auth: public, websocket: true }
${routes}`);
  t.after(async () => { await gw.close(); await up.close(); ca.cleanup(); });
  const sessions: ClientHttp2Session[] = [];
  t.after(() => { for (const s of sessions) s.destroy(); });
  return { gw, up, ca, open: async () => { const s = await h2connect(`https://api.example.test:${gw.port}`, { ca: ca.certPem }); sessions.push(s); return s; } };
}

test('SSE over HTTP/2 arrives event by event, as the upstream sends them', async (t) => {
  const { open } = await tlsGateway(t);
  const s = await open();
  const r = await h2request(s, '/v1/chat/stream?n=5&delay=150');
  assert.equal(r.status, 200);
  assert.match(String(r.headers['content-type']), /^text\/event-stream/);
  const events = r.chunks.filter((c) => c.text.includes('"delta"'));
  assert.equal(events.length, 5, `one DATA chunk per event: ${JSON.stringify(r.chunks.map((c) => c.text.length))}`);
  for (let i = 1; i < events.length; i++) {
    const gap = events[i].at - events[i - 1].at;
    assert.ok(gap > 80, `event ${i} arrived ${gap.toFixed(0)} ms after the previous one (the upstream waits 150 ms): something buffered`);
  }
});

test('policies over HTTP/2: API-key auth, rate limit with RateLimit fields, CORS, problem+json for errors, request bodies', async (t) => {
  const { open } = await tlsGateway(t, `  cors: { origins: [https://app.example.test] }`, `
  - name: limited
    match: { path: /v1/chat/completions, methods: [POST] }
    upstream: chat
    auth: apikey
    contentTypes: [application/json]
    rateLimit: [ { limit: 2, window: 1m, by: consumer } ]
`);
  const s = await open();
  const body = JSON.stringify({ messages: [{ role: 'user', content: 'hello over h2' }] });
  const post = (headers: Record<string, string>, b: string | undefined = body) => h2request(s, '/v1/chat/completions', { method: 'POST', headers: { 'content-type': 'application/json', origin: 'https://app.example.test', ...headers }, body: b });

  const noKey = await post({});
  assert.equal(noKey.status, 401);
  assert.equal(noKey.headers['content-type'], 'application/problem+json');
  assert.equal(JSON.parse(noKey.body).code, 'unauthorized');
  assert.equal(noKey.headers['access-control-allow-origin'], 'https://app.example.test');

  const wrongType = await post({ 'x-api-key': 'key-acme', 'content-type': 'text/plain' });
  assert.equal(wrongType.status, 415, 'a body of unknown length over h2 is still a body for contentTypes');

  const ok = await post({ 'x-api-key': 'key-acme' });
  assert.equal(ok.status, 200, ok.body);
  assert.equal(JSON.parse(ok.body).usage.prompt_tokens, 3, 'the request body streamed through (the demo counts its words)');
  assert.ok(ok.headers.ratelimit !== undefined && ok.headers['ratelimit-policy'] !== undefined);
  assert.equal((await post({ 'x-api-key': 'key-acme' })).status, 200);
  const limited = await post({ 'x-api-key': 'key-acme' });
  assert.equal(limited.status, 429);
  assert.ok(Number(limited.headers['retry-after']) > 0);
  assert.equal(JSON.parse(limited.body).code, 'rate_limited');

  const missing = await h2request(s, '/nope');
  assert.equal(missing.status, 404);
  assert.equal(JSON.parse(missing.body).requestId, missing.headers['x-request-id']);
});

test('drain over HTTP/2: GOAWAY to open connections, their streams in flight finish, new streams are refused', async (t) => {
  const { gw, open } = await tlsGateway(t);
  const s = await open();
  const goaway = new Promise<number>((resolve) => s.once('goaway', (code: number) => resolve(code)));
  const inflight = h2request(s, '/v1/chat/stream?n=8&delay=100');
  await new Promise((r) => setTimeout(r, 200));
  const drained = gw.gw.drain(5000);
  assert.equal(await goaway, constants.NGHTTP2_NO_ERROR);
  const r = await inflight;
  assert.equal(r.status, 200);
  assert.ok(r.body.includes('data: [DONE]'), 'the stream in flight ran to its end');
  await assert.rejects(h2request(s, '/echo'), 'no new stream after GOAWAY');
  await drained;
});

test('rapid reset (CVE-2023-44487): a client that opens and resets streams is sent GOAWAY (ENHANCE_YOUR_CALM) and cut off; other clients are served', async (t) => {
  const { gw, open } = await tlsGateway(t, `  http2: { limits: { maxResets: 50, window: 10s } }`);
  const good = await open();
  const bad = await open();
  const metrics = async () => (await fetch(`${gw.adminUrl}/metrics`)).text();
  const connections = async () => Number(/^gatehouse_active_connections (\d+)/m.exec(await metrics())?.[1]);
  assert.equal(await connections(), 2);
  let goaway: number | null = null;
  bad.once('goaway', (c: number) => { goaway = c; });
  let sent = 0;
  const cutOff = () => gw.logs.some((l) => l.reason === 'rapid_reset');
  for (let i = 0; i < 1000 && !bad.destroyed && !cutOff(); i++) {
    try {
      const req = bad.request({ ':path': '/v1/slow?ms=2000', ':method': 'GET' });
      req.on('error', () => {});
      req.close(constants.NGHTTP2_CANCEL);
      sent++;
    } catch { break; }
    if (i % 10 === 9) await new Promise((r) => setTimeout(r, 1));
  }
  assert.ok(sent < 1000, `cut off after ${sent} reset streams`);
  // The gateway closed that connection (GOAWAY ENHANCE_YOUR_CALM, then the socket): one connection is left.
  await eventually(async () => (await connections()) === 1, 5000);
  if (goaway !== null) assert.equal(goaway, constants.NGHTTP2_ENHANCE_YOUR_CALM);
  // The other client's connection is untouched.
  assert.equal((await h2request(good, '/echo')).status, 200);
  assert.match(await metrics(), /gatehouse_http2_flood_goaways_total\{reason="rapid_reset"\} 1/);
});

test('PING flood: past the limit the connection gets GOAWAY', async (t) => {
  const { open } = await tlsGateway(t, `  http2: { limits: { maxPings: 20 } }`);
  const s = await open();
  const code = new Promise<number>((resolve) => s.once('goaway', (c: number) => resolve(c)));
  for (let i = 0; i < 40 && !s.destroyed; i++) await new Promise<void>((resolve) => { if (!s.ping(() => resolve())) resolve(); });
  assert.equal(await code, constants.NGHTTP2_ENHANCE_YOUR_CALM);
});

test('WebSocket stays on HTTP/1.1 on the TLS listener (wss), beside HTTP/2', async (t) => {
  const { gw, ca } = await tlsGateway(t);
  const ws = new WebSocket(`wss://127.0.0.1:${gw.port}/ws/echo`, { ca: ca.certPem, servername: 'api.example.test' } as WebSocket.ClientOptions);
  t.after(() => ws.terminate());
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  const messages: string[] = [];
  ws.on('message', (m) => messages.push(String(m)));
  ws.send('over tls');
  await eventually(() => messages.some((m) => m.includes('over tls')), 3000);
  assert.equal(JSON.parse(messages[0]).headers['x-forwarded-proto'], 'https');
});

test('cleartext: the plain listener refuses an HTTP/2 preface by default; with http2.cleartext it speaks h2c and HTTP/1.1 on the same port', async (t) => {
  const up = await startDemoServer({ name: 'chat' });
  const yaml = (cleartext: boolean) => `
server: { http2: { cleartext: ${cleartext} } }
upstreams: { chat: { targets: [ ${up.url} ] } }
routes:
  - { name: echo, match: { path: /echo }, upstream: chat, auth: public }
  - { name: stream, match: { path: /v1/chat/stream }, upstream: chat, auth: public }
`;
  const plain = await startGateway(yaml(false));
  const h2c = await startGateway(yaml(true));
  t.after(async () => { await plain.close(); await h2c.close(); await up.close(); });

  const refused = parseResponse(await rawExchange(plain.port, 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'));
  assert.equal(refused.status, 400);
  assert.equal(JSON.parse(refused.body).code, 'bad_request');

  const s = await h2connect(`http://127.0.0.1:${h2c.port}`);
  t.after(() => s.close());
  const r = await h2request(s, '/echo');
  assert.equal(r.status, 200);
  assert.equal(JSON.parse(r.body).headers['x-forwarded-proto'], 'http');
  assert.equal(r.headers['strict-transport-security'], undefined, 'no HSTS without TLS');
  const sse = await h2request(s, '/v1/chat/stream?n=3&delay=50');
  assert.equal(sse.chunks.filter((c) => c.text.includes('"delta"')).length, 3);
  // HTTP/1.1 on the same port
  const h1 = await fetch(`${h2c.url}/echo`);
  assert.equal(h1.status, 200);
  await h1.text();
  // and a byte-by-byte HTTP/1.1 request line that starts like the preface ("P…") still goes to HTTP/1.1
  const post = parseResponse(await rawExchange(h2c.port, 'POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi'));
  assert.equal(post.status, 200);
});

test('a header list over server.limits.maxHeaderSize is refused on its stream; the connection goes on', async (t) => {
  const { open } = await tlsGateway(t, `  limits: { maxHeaderSize: 4kb }`);
  const s = await open();
  // (the server's SETTINGS apply once the client acknowledged them: one request first)
  assert.equal((await h2request(s, '/echo')).status, 200);
  await assert.rejects(h2request(s, '/echo', { headers: { 'x-big': 'a'.repeat(8000) } }), /ENHANCE_YOUR_CALM/);
  assert.equal((await h2request(s, '/echo')).status, 200);
});

test('connections idle past http2.idleTimeout get GOAWAY', async (t) => {
  const { open } = await tlsGateway(t, `  http2: { idleTimeout: 300ms }`);
  const s = await open();
  assert.equal((await h2request(s, '/echo')).status, 200);
  await eventually(() => s.closed || s.destroyed, 3000);
});


test('usage metering over HTTP/2: tokens reported in an SSE stream are recorded for the consumer and route', async (t) => {
  const { gw, open } = await tlsGateway(t, 'admin: { listen: 127.0.0.1:0 }', `
  - { name: metered, match: { path: /v1/metered, methods: [POST] }, upstream: chat, auth: apikey, rewrite: { path: /v1/chat/stream }, quota: { usage: tokens } }
`);
  const s = await open();
  const r = await h2request(s, '/v1/metered?n=4&delay=5', { method: 'POST', headers: { 'x-api-key': 'key-acme', 'content-type': 'application/json' }, body: JSON.stringify({ messages: [{ role: 'user', content: 'one two three' }] }) });
  assert.equal(r.status, 200, r.body);
  const reported = JSON.parse(r.body.split('\n').filter((l) => l.includes('"usage"')).pop()!.slice(6)).usage.total_tokens as number;
  const usage = (await eventually(async () => {
    const u = await (await fetch(`${gw.adminUrl}/admin/usage?consumer=acme`)).json() as { totals: Record<string, Record<string, number>> };
    return u.totals?.metered?.tokens === reported ? u : null;
  }, 3000))!;
  assert.equal(usage.totals.metered.tokens, reported);
  assert.equal(usage.totals.metered.requests, 1);
});
