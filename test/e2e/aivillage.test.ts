// examples/aivillage (seed 004): the "unified production gateway" — /v1/query, /v1/chat,
// /v1/upload, /healthz cascade, /metrics, API keys, security headers, CORS per environment —
// configured only through the seed's own environment variables.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { randomBytes } from 'node:crypto';
import { request } from 'undici';
import { startExample, type RunningExample } from './harness.ts';
import { multipart, sha256, type StubEcho } from './stubs.ts';
import { hashApiKey } from '../../src/auth/api-keys.ts';
import { loadConfigText } from '../../src/config/load.ts';
import { exampleText } from './harness.ts';
import { eventually } from '../helpers.ts';

const SERVICES = { TWIN_URL: 'twin', AGENT_CONTROLLER_URL: 'agent_controller', KNOWLEDGE_SYSTEM_URL: 'knowledge_system' };
const API_KEY = `gh_${randomBytes(24).toString('base64url')}`;
const OLD_KEY = `gh_${randomBytes(24).toString('base64url')}`;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => { const p = (s.address() as { port: number }).port; s.close(() => resolve(p)); });
  });
}

let ex: RunningExample;
let port: number;
let base: string;

before(async () => {
  port = await freePort();
  const adminPort = await freePort();
  ex = await startExample('aivillage', {
    services: SERVICES,
    env: {
      GATEHOUSE_LISTEN: '', GATEHOUSE_ADMIN_LISTEN: '', // the seed's own variables decide, as in production
      GATEWAY_HOST: '127.0.0.1',
      GATEWAY_PORT: String(port),
      ADMIN_PORT: String(adminPort),
      ENVIRONMENT: 'staging',
      API_KEY_SHA256: `${hashApiKey(API_KEY)},${hashApiKey(OLD_KEY)}`, // two keys: rotation
      RATE_LIMIT_REQUESTS: '8',
      RATE_LIMIT_WINDOW: '60',
      CORS_ORIGINS: 'https://aivillage.app,https://staging.aivillage.app',
      MAX_FILE_SIZE: String(1024 * 1024),
    },
    // Health checks every 100 ms instead of 10 s, so the cascade can be watched changing.
    edit: (doc) => { for (const u of ['twin', 'agent_controller', 'knowledge_system']) doc.setIn(['upstreams', u, 'health', 'interval'], '100ms'); },
  });
  base = `http://127.0.0.1:${port}`;
});
after(async () => { await ex?.close(); });

const key = (k = API_KEY) => ({ authorization: `Bearer ${k}` });

test('GATEWAY_HOST/GATEWAY_PORT decide where it listens; ENVIRONMENT reaches /healthz', async () => {
  assert.equal(ex.g.port, port);
  const r = await request(`${base}/healthz`);
  const h = (await r.body.json()) as { gateway: { environment: string } };
  assert.equal(h.gateway.environment, 'staging');
});

test('/v1/query → Agent Controller, /v1/chat → Twin, with an API key (Bearer or X-API-Key); the key never reaches a service', async () => {
  const q = await request(`${base}/v1/query`, { method: 'POST', headers: { ...key(), 'content-type': 'application/json' }, body: JSON.stringify({ query: 'What is the capital of France?', session_id: 's1' }) });
  const qe = (await q.body.json()) as StubEcho;
  assert.equal(q.statusCode, 200);
  assert.deepEqual([qe.service, qe.path], ['agent_controller', '/v1/query']);
  assert.equal(qe.headers.authorization, undefined, 'the API key is removed before the request goes upstream');
  assert.equal(qe.headers['x-consumer-id'], 'aivillage-client');
  const c = await request(`${base}/v1/chat`, { method: 'POST', headers: { 'x-api-key': OLD_KEY, 'content-type': 'application/json' }, body: '{"message":"hi"}' });
  const ce = (await c.body.json()) as StubEcho;
  assert.deepEqual([c.statusCode, ce.service, ce.path], [200, 'twin', '/v1/chat']);
  assert.equal(ce.headers['x-api-key'], undefined);
  for (const h of [{}, key('gh_wrong'), { authorization: `Bearer ${API_KEY.slice(0, -1)}` }]) {
    const r = await request(`${base}/v1/query`, { method: 'POST', headers: { ...h, 'content-type': 'application/json' }, body: '{}' });
    assert.equal(r.statusCode, 401);
    await r.body.dump();
  }
  assert.ok(!ex.g.rawLogs().includes(API_KEY) && !ex.g.rawLogs().includes(OLD_KEY));
});

test('/v1/upload: multipart up to MAX_FILE_SIZE streams to the Knowledge System; larger is 413, non-multipart 415', async () => {
  const ok = multipart({ session_id: 's1' }, [{ name: 'file', filename: 'notes.pdf', type: 'application/pdf', data: randomBytes(900 * 1024) }]);
  const r = await request(`${base}/v1/upload`, { method: 'POST', headers: { ...key(), 'content-type': ok.contentType }, body: ok.body });
  const e = (await r.body.json()) as StubEcho;
  assert.deepEqual([r.statusCode, e.service, e.sha256], [200, 'knowledge_system', sha256(ok.body)]);
  const big = multipart({}, [{ name: 'file', filename: 'big.bin', type: 'application/octet-stream', data: randomBytes(1024 * 1024 + 1) }]);
  const tooBig = await request(`${base}/v1/upload`, { method: 'POST', headers: { ...key(), 'content-type': big.contentType }, body: big.body });
  assert.equal(tooBig.statusCode, 413);
  await tooBig.body.dump();
  const json = await request(`${base}/v1/upload`, { method: 'POST', headers: { ...key(), 'content-type': 'application/json' }, body: '{}' });
  assert.equal(json.statusCode, 415);
  await json.body.dump();
  // Without MAX_FILE_SIZE the seed's default applies: 10 MB.
  const { config } = loadConfigText(exampleText('aivillage'), 'aivillage.yaml', { env: { API_KEY_SHA256: hashApiKey(API_KEY) } });
  assert.equal(config.routes.find((x) => x.name === 'upload')?.limits?.maxBodySize, 10 * 1024 * 1024);
});

test('security headers on every answer; CORS answers only the origins CORS_ORIGINS lists', async () => {
  const r = await request(`${base}/v1/chat`, { method: 'POST', headers: { ...key(), 'content-type': 'application/json', origin: 'https://staging.aivillage.app' }, body: '{}' });
  await r.body.dump();
  assert.equal(r.headers['x-content-type-options'], 'nosniff');
  assert.equal(r.headers['x-frame-options'], 'DENY');
  assert.equal(r.headers['referrer-policy'], 'strict-origin-when-cross-origin');
  assert.equal(r.headers['content-security-policy'], "default-src 'none'; frame-ancestors 'none'");
  assert.match(String(r.headers['permissions-policy']), /camera=\(\)/);
  assert.equal(r.headers['access-control-allow-origin'], 'https://staging.aivillage.app');
  for (const origin of ['https://aivillage.app', 'http://localhost:3000', 'https://evil.example']) {
    const pre = await request(`${base}/v1/query`, { method: 'OPTIONS', headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type' } });
    await pre.body.dump();
    assert.equal(pre.headers['access-control-allow-origin'], origin === 'https://aivillage.app' ? origin : undefined, origin);
  }
  // Refusals carry them too.
  const denied = await request(`${base}/v1/query`, { method: 'POST' });
  await denied.body.dump();
  assert.equal(denied.headers['x-frame-options'], 'DENY');
});

test('/metrics on the public port: Prometheus text, no key needed', async () => {
  const r = await request(`${base}/metrics`);
  const text = await r.body.text();
  assert.equal(r.statusCode, 200);
  assert.match(String(r.headers['content-type']), /^text\/plain/);
  assert.match(text, /^# (HELP|TYPE) /m);
  assert.match(text, /route="chat"/);
});

test('/healthz cascade in the seed’s shape: healthy → degraded (non-critical down) → unhealthy (critical down) → healthy', async () => {
  type Health = { status: string; timestamp: string; services: Record<string, { status: string; status_code?: number; response_time_ms?: number }>; gateway: { uptime_seconds: number; environment: string; response_time_ms: number } };
  const health = async () => { const r = await request(`${base}/healthz`); return { code: r.statusCode, body: (await r.body.json()) as Health }; };
  const h = await eventuallyValue(async () => { const x = await health(); return x.body.status === 'healthy' && ['twin', 'agent_controller', 'knowledge_system'].every((n) => x.body.services[n]?.status_code === 200) ? x : null; }, 5000);
  assert.equal(h.code, 200);
  assert.ok(!Number.isNaN(Date.parse(h.body.timestamp)));
  for (const name of ['twin', 'agent_controller', 'knowledge_system']) {
    assert.equal(h.body.services[name].status, 'healthy', name);
    assert.equal(h.body.services[name].status_code, 200, name);
    assert.equal(typeof h.body.services[name].response_time_ms, 'number', name);
  }
  assert.equal(typeof h.body.gateway.uptime_seconds, 'number');
  assert.equal(typeof h.body.gateway.response_time_ms, 'number');

  ex.stub('knowledge_system').setMode('failing');
  const degraded = await eventuallyValue(async () => { const x = await health(); return x.body.status === 'degraded' ? x : null; }, 5000);
  assert.equal(degraded.code, 200);
  assert.equal(degraded.body.services.knowledge_system.status, 'unhealthy');
  assert.equal(degraded.body.services.knowledge_system.status_code, 500);

  ex.stub('twin').setMode('failing');
  const down = await eventuallyValue(async () => { const x = await health(); return x.body.status === 'unhealthy' ? x : null; }, 5000);
  assert.equal(down.code, 503);
  // Requests to the Twin meanwhile get the degradation message, not a connection error.
  const chat = await request(`${base}/v1/chat`, { method: 'POST', headers: { ...key(), 'content-type': 'application/json' }, body: '{}' });
  const problem = (await chat.body.json()) as { detail: string };
  assert.equal(chat.statusCode, 503);
  assert.equal(problem.detail, 'The chat service is temporarily unavailable; please retry shortly.');

  ex.stub('twin').setMode('healthy');
  ex.stub('knowledge_system').setMode('healthy');
  await eventually(async () => (await health()).body.status === 'healthy', 5000);
});

test('RATE_LIMIT_REQUESTS per RATE_LIMIT_WINDOW per client IP: the next request is 429', async () => {
  const statuses: number[] = [];
  for (let i = 0; i < 10; i++) {
    const r = await request(`${base}/v1/chat`, { method: 'POST', headers: { ...key(), 'content-type': 'application/json' }, body: '{}' });
    statuses.push(r.statusCode);
    await r.body.dump();
  }
  const firstRefusal = statuses.indexOf(429);
  assert.ok(firstRefusal > 0 && firstRefusal <= 8, statuses.join(','));
  assert.ok(statuses.slice(firstRefusal).every((s) => s === 429));
});

/** `eventually` for a value: resolves with the first non-null result. */
async function eventuallyValue<T>(fn: () => Promise<T | null>, ms: number): Promise<T> {
  return (await eventually(fn, ms)) as T;
}

test('GET / is the gateway information page (seed 004); ENABLE_FILE_UPLOAD=false turns /v1/upload into a 404 the service never sees', async () => {
  const r = await request(`${base}/`);
  const info = (await r.body.json()) as { name: string; version: string; environment: string; links: Record<string, string> };
  assert.equal(r.statusCode, 200);
  assert.equal(info.name, 'aivillage-gateway');
  assert.equal(info.environment, 'staging');
  assert.equal(info.links.health, '/healthz');
  const off = await startExample('aivillage', {
    services: SERVICES,
    stubs: ex.stubs,
    env: { ENVIRONMENT: 'staging', API_KEY_SHA256: hashApiKey(API_KEY), ENABLE_FILE_UPLOAD: 'false' },
  });
  try {
    const ks = ex.stub('knowledge_system');
    // Only uploads count: the second gateway's health checks reach the same stub.
    const uploads = () => ks.seen.filter((x) => x.path.includes('upload')).length;
    const before = uploads();
    const { body, contentType } = multipart({ project: 'p' }, [{ name: 'file', filename: 'a.txt', type: 'text/plain', data: Buffer.from('hello') }]);
    const u = await request(`${off.g.url}/v1/upload`, { method: 'POST', headers: { ...key(), 'content-type': contentType }, body });
    assert.equal(u.statusCode, 404);
    assert.equal(((await u.body.json()) as { code: string }).code, 'not_found');
    assert.equal(uploads(), before);
  } finally {
    await off.close();
  }
});
