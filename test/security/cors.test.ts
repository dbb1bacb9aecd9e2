// CORS from an attacker's origin: look-alike origins, `null`, credentials with `*`, and preflight floods.
// Fetch Standard §3.2 (CORS protocol), APISIX's preflight-before-limit-count bypass (issue 11 #7).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { startDemoServer, type DemoServer } from '../../src/demo/services.ts';
import { startGateway, type TestGateway } from '../helpers.ts';
import { loadConfigText } from '../../src/config/load.ts';

const APP = 'https://app.example.com';
let up: DemoServer;
let g: TestGateway;

const yaml = (url: string, routeCors = `{ origins: [ "${APP}", "https://*.preview.example.com" ], credentials: true }`) => `
upstreams: { api: { targets: [ ${url} ] } }
defaults: { auth: public }
routes:
  - { name: chat, match: { path: /v1/chat, methods: [GET, POST] }, upstream: api, cors: ${routeCors}, rateLimit: [ { limit: 3, window: 1m, by: ip } ] }
  - { name: plain, match: { path: /v1/plain, methods: [GET, POST] }, upstream: api, cors: ${routeCors} }
`;

before(async () => {
  up = await startDemoServer({ name: 'api' });
  g = await startGateway(yaml(up.url));
});
after(async () => { await g.close(); await up.close(); });

async function preflight(gw: TestGateway, path: string, origin: string, extra: Record<string, string> = {}) {
  const r = await request(`${gw.url}${path}`, { method: 'OPTIONS', headers: { origin, 'access-control-request-method': 'POST', ...extra } });
  await r.body.text();
  return { status: r.statusCode, headers: r.headers as Record<string, string | undefined> };
}

test('issue 11 #7: CORS preflights count against the route\'s rate limit (429 + Retry-After past it)', async (t) => {
  const gw = await startGateway(yaml(up.url));
  t.after(() => gw.close());
  const s: number[] = [];
  for (let i = 0; i < 4; i++) s.push((await preflight(gw, '/v1/chat', APP)).status);
  assert.deepEqual(s, [204, 204, 204, 429]);
  const r = await preflight(gw, '/v1/chat', APP);
  assert.ok(Number(r.headers['retry-after']) >= 1);
  // And preflights and real requests share the bucket.
  const real = await request(`${gw.url}/v1/chat`, { headers: { origin: APP } });
  await real.body.text();
  assert.equal(real.statusCode, 429);
});

test('issue 11 #7: an allowed preflight carries the RateLimit fields; a route without a limit answers preflights as before', async () => {
  const r = await preflight(g, '/v1/plain', APP);
  assert.equal(r.status, 204);
  assert.equal(r.headers['ratelimit-policy'], undefined);
  const c = await preflight(g, '/v1/chat', APP);
  assert.equal(c.status, 204);
  assert.match(c.headers['ratelimit-policy'] ?? '', /q=3/);
});

test('Fetch §3.2: look-alike origins get no Access-Control-Allow-Origin (suffix, prefix, scheme, port, null, userinfo)', async () => {
  for (const origin of [
    'https://app.example.com.evil.com', 'https://evilapp.example.com', 'http://app.example.com', 'https://app.example.com:8443',
    'null', 'https://app.example.com@evil.com', 'https://x.preview.example.com.evil.com', 'https://preview.example.com', 'https://evil.com/.preview.example.com',
  ]) {
    const r = await preflight(g, '/v1/plain', origin);
    assert.equal(r.headers['access-control-allow-origin'], undefined, origin);
    assert.equal(r.headers['access-control-allow-credentials'], undefined, origin);
  }
});

test('Fetch §3.2: an allowed origin is echoed exactly, with credentials, and Vary: Origin is always sent', async () => {
  const r = await preflight(g, '/v1/plain', 'https://pr-12.preview.example.com');
  assert.equal(r.status, 204);
  assert.equal(r.headers['access-control-allow-origin'], 'https://pr-12.preview.example.com');
  assert.equal(r.headers['access-control-allow-credentials'], 'true');
  const real = await request(`${g.url}/v1/plain`, { headers: { origin: 'https://evil.example' } });
  await real.body.text();
  assert.match(String(real.headers.vary ?? ''), /origin/i);
  assert.equal(real.headers['access-control-allow-origin'], undefined);
});

test('Fetch §3.2.5: origins "*" with credentials: true does not load (a wildcard never goes with credentials)', () => {
  assert.throws(() => loadConfigText(yaml('http://127.0.0.1:1', '{ origins: [ "*" ], credentials: true }'), 't.yaml', { env: {} }), /credentials|\*/);
});

test('a preflight asking for a header the route does not allow is refused and gets no allow headers', async () => {
  const r = await preflight(g, '/v1/plain', APP, { 'access-control-request-headers': 'x-user-id' });
  assert.equal(r.status, 403);
  assert.equal(r.headers['access-control-allow-headers'], undefined);
});
