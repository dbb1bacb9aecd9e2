// auth: forward over real sockets, against a stub authentication service: allow (headers copied upstream), deny,
// cache per credential (2xx only, for the TTL), single flight (100 concurrent requests with one credential → one
// call), and fail closed (503 + Retry-After) when the service is slow, down or failing. No credential in any log.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import { request } from 'undici';
import { startGateway, eventually, type TestGateway } from '../helpers.ts';
import { startStub, type Stub, type StubEcho } from '../e2e/stubs.ts';
import { assertProblem } from '../support/problem.ts';
import { deadPort } from '../support/raw-http.ts';
import { loadConfigText } from '../../src/config/load.ts';
import { ConfigError, formatIssue } from '../../src/config/errors.ts';

interface AuthService { url: string; calls: IncomingHttpHeaders[]; mode: 'ok' | 'slow' | 'error'; /** While set, answers wait for it. */ hold: Promise<void> | null; close(): Promise<void> }

/** "Bearer good-*" → 200 (x-auth-user, x-auth-role), "Bearer who" → 401, anything else → 403; `mode` turns it slow or failing. */
async function authService(delayMs = 0): Promise<AuthService> {
  const calls: IncomingHttpHeaders[] = [];
  const svc: AuthService = { url: '', calls, mode: 'ok', hold: null, close: async () => {} };
  const server = createServer((req, res) => {
    calls.push(req.headers);
    const answer = () => {
      if (svc.mode === 'error') { res.writeHead(500); res.end('boom'); return; }
      const a = req.headers.authorization ?? '';
      if (a.startsWith('Bearer good')) { res.writeHead(200, { 'x-auth-user': `user-of-${a.slice(12)}`, 'x-auth-role': 'admin', 'x-not-copied': 'x' }); res.end('ok'); return; }
      if (a === 'Bearer who') { res.writeHead(401, { 'www-authenticate': 'Bearer realm="sso"' }); res.end(); return; }
      res.writeHead(403); res.end('no');
    };
    const wait = svc.mode === 'slow' ? 3000 : delayMs;
    if (svc.hold !== null) void svc.hold.then(answer);
    else if (wait > 0) { const t = setTimeout(answer, wait); res.on('close', () => clearTimeout(t)); } else answer();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  svc.url = `http://127.0.0.1:${(server.address() as { port: number }).port}/verify`;
  svc.close = () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); });
  return svc;
}

async function setup(t: { after(fn: () => Promise<void>): void }, authUrl: string, o: { ttl?: string; timeout?: string } = {}): Promise<{ g: TestGateway; stub: Stub }> {
  const stub = await startStub('svc');
  const g = await startGateway(`
upstreams: { svc: { targets: [ "${stub.url}" ] } }
routes:
  - name: guarded
    match: { path: /guarded, prefix: true }
    upstream: svc
    auth: forward
    forwardAuth: { url: "${authUrl}", requestHeaders: [authorization], responseHeaders: [x-auth-user, x-auth-role], identityHeader: x-auth-user, timeout: ${o.timeout ?? '300ms'}, cacheTtl: ${o.ttl ?? '400ms'}, retryAfter: 7s }
    rateLimit: [ { limit: 1000, window: 1m, by: consumer } ]
  - name: open
    match: { path: /open }
    upstream: svc
    auth: public
`);
  t.after(async () => { await g.close(); await stub.close(); });
  return { g, stub };
}

async function get(g: TestGateway, path: string, authorization?: string, headers: Record<string, string> = {}) {
  const r = await request(`${g.url}${path}`, { headers: { ...(authorization ? { authorization } : {}), ...headers } });
  return { status: r.statusCode, headers: r.headers, text: await r.body.text() };
}

test('allow: the listed answer headers go upstream (spoofed copies never do), the identity is set; deny: 403 / 401 with the challenge', async (t) => {
  const auth = await authService();
  t.after(() => auth.close());
  const { g, stub } = await setup(t, auth.url);
  const ok = await get(g, '/guarded/x?y=1', 'Bearer good-alice', { 'x-auth-user': 'spoofed', 'x-auth-role': 'spoofed' });
  assert.equal(ok.status, 200, ok.text);
  const echo = JSON.parse(ok.text) as StubEcho;
  assert.equal(echo.headers['x-auth-user'], 'user-of-alice');
  assert.equal(echo.headers['x-auth-role'], 'admin');
  assert.equal(echo.headers['x-not-copied'], undefined);
  // What the service was told: the credential and the request's facts.
  assert.equal(auth.calls[0].authorization, 'Bearer good-alice');
  assert.equal(auth.calls[0]['x-forwarded-method'], 'GET');
  assert.equal(auth.calls[0]['x-forwarded-uri'], '/guarded/x?y=1');
  assert.equal(auth.calls[0]['x-auth-user'], undefined);
  // The identity is the service's answer (rate limits by consumer, the access log).
  const line = g.logs.filter((l) => l.type === 'access').at(-1)!;
  assert.equal(line.consumer, 'user-of-alice');
  // Copied headers are gateway-owned on every route: a public route strips a client's copy too.
  const open = JSON.parse((await get(g, '/open', undefined, { 'x-auth-user': 'spoofed' })).text) as StubEcho;
  assert.equal(open.headers['x-auth-user'], undefined);

  const seen = stub.seen.length;
  const denied = await get(g, '/guarded/x', 'Bearer evil');
  assertProblem(denied.status, denied.headers, denied.text, { status: 403, code: 'forbidden' });
  const who = await get(g, '/guarded/x', 'Bearer who');
  assertProblem(who.status, who.headers, who.text, { status: 401, code: 'unauthorized' });
  assert.equal(who.headers['www-authenticate'], 'Bearer realm="sso"');
  assert.equal(stub.seen.length, seen, 'refused requests never reach the upstream');
});

test('cache: a 2xx is remembered per credential for cacheTtl; refusals are asked every time', async (t) => {
  const auth = await authService();
  t.after(() => auth.close());
  const { g } = await setup(t, auth.url, { ttl: '1500ms' });
  for (let i = 0; i < 5; i++) assert.equal((await get(g, '/guarded', 'Bearer good-bob')).status, 200);
  assert.equal(auth.calls.length, 1, 'one call for five requests');
  assert.equal((await get(g, '/guarded', 'Bearer good-carol')).status, 200);
  assert.equal(auth.calls.length, 2, 'another credential is another call');
  await new Promise((r) => setTimeout(r, 1600));
  assert.equal((await get(g, '/guarded', 'Bearer good-bob')).status, 200);
  assert.equal(auth.calls.length, 3, 'asked again once the TTL passed');
  for (let i = 0; i < 3; i++) assert.equal((await get(g, '/guarded', 'Bearer evil')).status, 403);
  assert.equal(auth.calls.length, 6, 'a refusal is never cached');
});

test('single flight: 100 concurrent requests with one credential make one call to the auth service', async (t) => {
  const auth = await authService();
  t.after(() => auth.close());
  // No cache: only the single flight can make the 100 share one call.
  const { g } = await setup(t, auth.url, { ttl: '0s', timeout: '30s' });
  let release!: () => void;
  auth.hold = new Promise((r) => { release = r; });
  const pending = Promise.all(Array.from({ length: 100 }, () => get(g, '/guarded/burst', 'Bearer good-dave')));
  // The auth service answers only once all 100 are inside the gateway, waiting: however slow the machine.
  await eventually(() => g.gw.current.inflight >= 100, 20_000);
  release();
  const results = await pending;
  assert.deepEqual([...new Set(results.map((r) => r.status))], [200]);
  assert.equal(auth.calls.length, 1);
  assert.ok(results.every((r) => (JSON.parse(r.text) as StubEcho).headers['x-auth-user'] === 'user-of-dave'));
});

test('fail closed: a slow, failing or unreachable auth service is 503 with Retry-After, never a pass; no credential in any log', async (t) => {
  const auth = await authService();
  t.after(() => auth.close());
  const { g, stub } = await setup(t, auth.url);
  auth.mode = 'slow';
  const t0 = performance.now();
  const slow = await get(g, '/guarded', 'Bearer good-erin');
  assertProblem(slow.status, slow.headers, slow.text, { status: 503, code: 'auth_service_unavailable' });
  assert.equal(slow.headers['retry-after'], '7');
  assert.ok(performance.now() - t0 < 2500, 'answered at the timeout, not when the service finally answers');
  auth.mode = 'error';
  const failing = await get(g, '/guarded', 'Bearer good-erin');
  assertProblem(failing.status, failing.headers, failing.text, { status: 503, code: 'auth_service_unavailable' });
  assert.equal(stub.seen.length, 0);

  const down = await setup(t, `http://127.0.0.1:${await deadPort()}/verify`);
  const r = await get(down.g, '/guarded', 'Bearer good-frank-secret-token');
  assertProblem(r.status, r.headers, r.text, { status: 503, code: 'auth_service_unavailable' });
  for (const gw of [g, down.g]) {
    const logs = gw.rawLogs();
    assert.ok(logs.includes('forward auth service unavailable'), 'the outage is logged');
    assert.ok(!logs.includes('good-erin') && !logs.includes('good-frank'), 'the credential never is');
  }
});

test('load-time checks: auth: forward needs forwardAuth; forwardAuth needs auth: forward; authorize does not apply', () => {
  const yaml = `
upstreams: { svc: { targets: [ "http://127.0.0.1:1" ] } }
routes:
  - { name: a, match: { path: /a }, upstream: svc, auth: forward }
  - { name: b, match: { path: /b }, upstream: svc, auth: public, forwardAuth: { url: "http://127.0.0.1:2/v" } }
  - { name: c, match: { path: /c }, upstream: svc, auth: forward, forwardAuth: { url: "http://127.0.0.1:2/v", responseHeaders: [Host] }, authorize: { plans: [x] } }
`;
  try { loadConfigText(yaml, 'g.yaml', { env: {} }); assert.fail('loaded'); } catch (e) {
    assert.ok(e instanceof ConfigError);
    const lines = e.issues.map((i) => formatIssue(i)).join('\n');
    assert.match(lines, /g\.yaml:4:\d+ routes\[0\]\.auth: auth: forward needs forwardAuth/);
    assert.match(lines, /routes\[1\]\.forwardAuth: forwardAuth is only used with auth: forward/);
    assert.match(lines, /routes\[2\]\.authorize: with auth: forward the authentication service decides/);
    assert.match(lines, /routes\[2\]\.forwardAuth\.responseHeaders\[0\]: Host cannot be copied/);
  }
});

