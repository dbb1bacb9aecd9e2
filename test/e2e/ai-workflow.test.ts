// examples/ai-workflow (seed 002): Caddy routes + a separate Python health monitor, as one
// Gatehouse file: JWT (header, or query on the WebSocket), forwarded headers, circuit breakers,
// health checks, blue-green targets with failover, degradation messages.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { request } from 'undici';
import WebSocket from 'ws';
import { startExample, hs256, accessLines, type RunningExample } from './harness.ts';
import { type Stub, type StubEcho } from './stubs.ts';
import { eventually } from '../helpers.ts';

const SERVICES = {
  VOICE_INTERACTION_SERVICE_URL: 'voice-interaction-service',
  CHAT_SERVICE_URL: 'chat-service',
  LEARNING_SERVICE_URL: 'learning-service',
  LANGGRAPH_ENHANCED_SERVICE_URL: 'langgraph-enhanced-service',
};
const JWT_SECRET_KEY = randomBytes(32).toString('base64url');

let ex: RunningExample;
let token: string;
const bearer = () => ({ authorization: `Bearer ${token}` });
/** Requests a stub received from users (its own /health checks excluded). */
const traffic = (s: Stub) => s.seen.filter((x) => !x.path.endsWith('/health')).length;

before(async () => {
  ex = await startExample('ai-workflow', { services: SERVICES, env: { JWT_SECRET_KEY } });
  token = await hs256(JWT_SECRET_KEY, { sub: 'user-42' });
});
after(async () => { await ex?.close(); });

async function call(path: string, init: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<{ status: number; body: Record<string, unknown>; headers: Record<string, unknown> }> {
  const r = await request(`${ex.g.url}${path}`, { method: (init.method ?? 'GET') as 'GET', headers: init.headers, body: init.body });
  const text = await r.body.text();
  return { status: r.statusCode, body: text ? JSON.parse(text) : {}, headers: r.headers };
}

test('voice and chat REST routes reach their services with the full path and the forwarded headers Caddy set', async () => {
  const cases: Array<[string, string, string]> = [
    ['POST', '/api/v1/voice/stt/transcribe', 'voice-interaction-service'],
    ['POST', '/api/v1/voice/tts/synthesize', 'voice-interaction-service'],
    ['GET', '/api/v1/voice/models/status', 'voice-interaction-service'],
    ['POST', '/api/v1/chat-service/api/v1/chat', 'chat-service'],
    ['GET', '/api/v1/chat-service/api/v1/chat/history/test123', 'chat-service'],
    ['POST', '/api/v1/langgraph/enhanced/workflows/run', 'learning-service'],
  ];
  for (const [method, path, service] of cases) {
    const r = await call(path, { method, headers: { ...bearer(), host: 'aiwfe.com', 'content-type': 'application/json', 'x-user-id': 'spoofed' }, body: method === 'GET' ? undefined : '{"text":"Hello world"}' });
    const echo = r.body as unknown as StubEcho;
    assert.equal(r.status, 200, path);
    assert.deepEqual([echo.service, echo.method, echo.path], [service, method, path]);
    assert.equal(echo.headers['x-forwarded-host'], 'aiwfe.com');
    assert.equal(echo.headers['x-forwarded-proto'], 'http');
    assert.equal(echo.headers['x-forwarded-for'], '127.0.0.1');
    assert.equal(echo.headers['x-real-ip'], '127.0.0.1');
    assert.equal(echo.headers['x-user-id'], 'user-42');
  }
  const anon = await call('/api/v1/voice/models/status');
  assert.equal(anon.status, 401);
  assert.equal(anon.headers['content-type'], 'application/problem+json');
});

test('the chat WebSocket authenticates with ?access_token= and the token never reaches the service or the logs', async () => {
  const ws = new WebSocket(`${ex.g.url.replace('http', 'ws')}/ws/chat-service?access_token=${encodeURIComponent(token)}&session_id=test123`);
  const hello = await new Promise<{ service: string; path: string; query: string; headers: Record<string, string> }>((resolve, reject) => {
    ws.once('message', (d) => resolve(JSON.parse(String(d))));
    ws.once('error', reject);
  });
  assert.equal(hello.service, 'chat-service');
  assert.equal(hello.path, '/ws/chat-service');
  assert.equal(hello.query, 'session_id=test123', 'the token is removed from the query sent upstream');
  assert.equal(hello.headers['x-user-id'], 'user-42');
  const echoed = new Promise<string>((r) => ws.once('message', (d) => r(String(d))));
  ws.send(JSON.stringify({ message: 'Hello', session_id: 'test123' }));
  assert.equal(await echoed, JSON.stringify({ message: 'Hello', session_id: 'test123' }));
  ws.close();
  await new Promise((r) => ws.once('close', r));

  for (const q of ['', `?access_token=${token}x`]) {
    const status = await new Promise<number>((resolve) => {
      const bad = new WebSocket(`${ex.g.url.replace('http', 'ws')}/ws/chat-service${q}`);
      bad.once('unexpected-response', (_req, res) => { resolve(res.statusCode ?? 0); bad.terminate(); });
      bad.once('open', () => { resolve(101); bad.close(); });
      bad.once('error', () => {});
    });
    assert.equal(status, 401, `handshake ${q || 'without a token'}`);
  }
  // A query token is for handshakes only: plain HTTP must use the header.
  assert.equal((await call(`/api/v1/chat-service/api/v1/chat?access_token=${token}`)).status, 401);
  assert.ok(!ex.g.rawLogs().includes(token));
});

test('circuit breaker: after 5 failures the chat service is not called, and clients read the degradation message', async () => {
  const chat = ex.stub('chat-service');
  chat.setMode('failing');
  try {
    for (let i = 0; i < 5; i++) assert.equal((await call('/api/v1/chat-service/api/v1/chat', { method: 'POST', headers: bearer(), body: '{}' })).status, 500);
    const seen = traffic(chat);
    const r = await call('/api/v1/chat-service/api/v1/chat', { method: 'POST', headers: bearer(), body: '{}' });
    assert.equal(r.status, 503);
    assert.equal(r.body.code, 'circuit_open');
    assert.equal(r.body.detail, 'Chat is temporarily unavailable. Your conversation is saved; please retry in a minute.');
    assert.ok(Number(r.headers['retry-after']) > 0 && Number(r.headers['retry-after']) <= 60);
    assert.equal(traffic(chat), seen, 'an open circuit sends nothing to the service');
    // Other services are unaffected (no cascading failure).
    assert.equal((await call('/api/v1/voice/models/status', { headers: bearer() })).status, 200);
  } finally {
    chat.setMode('healthy');
  }
});

test('blue-green: weights switch langgraph traffic to green via the admin API; when green fails, the stable service takes over', async () => {
  const blue = ex.stub('learning-service');
  const green = ex.stub('langgraph-enhanced-service');
  const who = async () => ((await call('/api/v1/langgraph/enhanced/run', { method: 'POST', headers: bearer(), body: '{}' })).body as unknown as StubEcho).service;
  assert.equal(await who(), 'learning-service');

  const sw = await request(`${ex.g.adminUrl}/admin/upstreams/langgraph-enhanced/weights`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ weights: { [blue.url]: 0, [green.url]: 100 } }) });
  assert.equal(sw.statusCode, 200);
  await sw.body.dump();
  for (let i = 0; i < 3; i++) assert.equal(await who(), 'langgraph-enhanced-service');

  green.setMode('failing');
  try {
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) statuses.push((await call('/api/v1/langgraph/enhanced/run', { method: 'POST', headers: bearer(), body: '{}' })).status);
    assert.deepEqual(statuses, [500, 500, 500, 500, 500]);
    const seenGreen = traffic(green);
    const r = await call('/api/v1/langgraph/enhanced/run', { method: 'POST', headers: bearer(), body: '{}' });
    assert.equal(r.status, 200);
    assert.equal((r.body as unknown as StubEcho).service, 'learning-service', 'served by the fallback');
    assert.equal(traffic(green), seenGreen);
  } finally {
    green.setMode('healthy');
  }
});

test('health checks: a service that fails its /health is taken out before users hit it, and comes back by itself', async () => {
  // Derived config: checks every 100 ms instead of 30 s, and a circuit that probes again after 300 ms
  // instead of 60 s (requests sent before the first failed check open it): the test waits no minute.
  const fast = await startExample('ai-workflow', {
    services: SERVICES,
    stubs: ex.stubs,
    env: { JWT_SECRET_KEY },
    edit: (doc) => {
      doc.setIn(['upstreams', 'voice-interaction', 'health', 'interval'], '100ms');
      doc.setIn(['upstreams', 'voice-interaction', 'circuitBreaker', 'resetAfter'], '300ms');
    },
  });
  const voice = ex.stub('voice-interaction-service');
  try {
    const first = await request(`${fast.g.url}/api/v1/voice/models/status`, { headers: bearer() });
    assert.equal(first.statusCode, 200);
    await first.body.dump();
    voice.setMode('failing');
    const down = await eventuallyValue(async () => {
      const r = await request(`${fast.g.url}/api/v1/voice/models/status`, { headers: bearer() });
      const b = (await r.body.json()) as { detail?: string };
      return r.statusCode === 503 ? b : null;
    }, 5000).catch((e) => { throw new Error(`voice never went down: ${e}`); });
    assert.equal(down.detail, 'Voice features are temporarily unavailable. You can keep typing; voice will be back shortly.');
    voice.setMode('healthy');
    await eventually(async () => {
      const r = await request(`${fast.g.url}/api/v1/voice/models/status`, { headers: bearer() });
      await r.body.dump();
      return r.statusCode === 200;
    }, 5000);
    assert.ok(accessLines(fast.g).some((l) => l.status === 503 && l.route === 'voice'));
  } finally {
    voice.setMode('healthy');
    await fast.close();
  }
});

/** `eventually` for a value: resolves with the first non-null result. */
async function eventuallyValue<T>(fn: () => Promise<T | null>, ms: number): Promise<T> {
  return (await eventually(fn, ms)) as T;
}
