// gatehouse/client against a running gateway in front of the demo service: problems parsed from problem+json
// (code, status, requestId = X-Request-Id, retryAfter, RateLimit fields), retries after the wait the gateway
// states (idempotent calls only, bounded by attempts and maxDelay), API-key and JWT auth with one token
// refresh on 401, per-call timeouts and AbortSignal.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { startDemoServer, type DemoServer } from '../../src/demo/services.ts';
import { startGateway, type TestGateway } from '../helpers.ts';
import { deadPort } from '../support/raw-http.ts';
import { hashApiKey } from '../../src/auth/api-keys.ts';
import { SECRET, secretBytes, sign } from '../auth/support.ts';
import { Gatehouse, GatewayProblem } from '../../src/client/index.ts';

let up: DemoServer;
let g: TestGateway;
/** An upstream with its own limiter: answers 429 with only a `RateLimit` field (no Retry-After) while `refuse` > 0. */
let own: http.Server;
let refuse = 0;
const ownSeen: number[] = [];
const ownElsewhere: http.IncomingHttpHeaders[] = [];
const KEY = 'client-sdk-key-h15d-0001';

before(async () => {
  up = await startDemoServer({ name: 'chat' });
  own = http.createServer((req, res) => {
    req.resume();
    ownSeen.push(performance.now());
    if (req.url === '/v1/redirect') { res.writeHead(302, { location: `http://localhost:${(own.address() as AddressInfo).port}/elsewhere` }); res.end(); return; }
    if (req.url === '/elsewhere') { ownElsewhere.push(req.headers); res.end('{}'); return; }
    if (refuse > 0) { refuse--; res.writeHead(429, { 'content-type': 'application/json', ratelimit: '"upstream";r=0;t=1', 'ratelimit-policy': '"upstream";q=5;w=10' }); res.end('{"error":"slow down"}'); return; }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"ok":true}');
  });
  await new Promise<void>((r) => own.listen(0, '127.0.0.1', r));
  g = await startGateway(`
auth:
  jwt: [ { name: hs, issuer: https://hs.example, secret: "${SECRET}", claimsToHeaders: { sub: X-User-Id } } ]
consumers: [ { id: sdk-app, keys: ["${hashApiKey(KEY)}"] } ]
upstreams: { chat: { targets: [ ${up.url} ] }, own: { targets: [ http://127.0.0.1:${(own.address() as AddressInfo).port} ] } }
defaults: { auth: public }
routes:
  - { name: limited-get, match: { path: /v1/limited, methods: [GET] }, upstream: chat, rewrite: { path: /health }, rateLimit: [ { limit: 1, window: 1s, by: "header:x-bucket" } ] }
  - { name: limited-post, match: { path: /v1/limited, methods: [POST] }, upstream: chat, rewrite: { path: /echo }, rateLimit: [ { limit: 1, window: 1s, by: "header:x-bucket" } ] }
  - { name: hourly, match: { path: /v1/hourly, methods: [GET] }, upstream: chat, rewrite: { path: /health }, rateLimit: [ { limit: 1, window: 1h, by: "header:x-bucket" } ] }
  - { name: echo-jwt, match: { path: /v1/me, methods: [GET, POST] }, upstream: chat, rewrite: { path: /echo }, auth: jwt }
  - { name: echo-key, match: { path: /v1/app, methods: [GET] }, upstream: chat, rewrite: { path: /echo }, auth: apikey }
  - { name: own, match: { paths: [/v1/own, /v1/redirect], methods: [GET] }, upstream: own }
  - { name: passthrough, match: { path: /v1/up, prefix: true }, upstream: chat, rewrite: { stripPrefix: /v1/up } }
`);
});
after(async () => { await g.close(); await up.close(); own.closeAllConnections(); await new Promise((r) => own.close(r)); });

const bucket = (() => { let n = 0; return () => `h15d-${process.pid}-${++n}`; })();
/** The GatewayProblem a call is refused with (fails the test when it is not refused, or with something else). */
async function refused(p: Promise<unknown>): Promise<GatewayProblem> {
  const e = await p.then(() => assert.fail('not refused'), (x: unknown) => x);
  assert.ok(e instanceof GatewayProblem, String(e));
  return e;
}
const token = (sub: string, exp?: number) => sign(secretBytes(), { alg: 'HS256', iss: 'https://hs.example', sub, exp });

test('a GET refused with 429 + Retry-After is retried after the stated delay, and succeeds', async () => {
  const headers = { 'x-bucket': bucket() };
  const retries: Array<{ attempt: number; delay: number; error: unknown }> = [];
  const gh = new Gatehouse({ baseUrl: g.url, headers, onRetry: (r) => retries.push(r) });
  await gh.get('/v1/limited'); // uses the one request of this window
  const seen = up.stats.requests;
  const t0 = performance.now();
  const body = await gh.get<{ status: string }>('/v1/limited');
  const elapsed = performance.now() - t0;
  assert.equal(body.status, 'ok');
  assert.equal(retries.length, 1);
  const p = retries[0].error as GatewayProblem;
  assert.ok(p instanceof GatewayProblem);
  assert.equal(p.code, 'rate_limited');
  assert.equal(p.retryAfter, 1);
  assert.equal(retries[0].delay, 1000, 'waits what Retry-After says');
  assert.ok(elapsed >= 1000, `retried after ${elapsed.toFixed(0)} ms, before the stated 1 s`);
  assert.ok(elapsed < 6000, `took ${elapsed.toFixed(0)} ms`);
  assert.equal(up.stats.requests, seen + 1, 'the refused attempt never reached the upstream; the retry did');
});

test('the problem carries the RateLimit fields; a stated wait longer than maxDelay is not waited for', async () => {
  const headers = { 'x-bucket': bucket() };
  let retries = 0;
  const gh = new Gatehouse({ baseUrl: g.url, headers, retry: { maxDelay: 2000 }, onRetry: () => { retries++; } });
  await gh.get('/v1/hourly');
  const t0 = performance.now();
  const p = await refused(gh.get('/v1/hourly'));
  assert.ok(performance.now() - t0 < 1500, 'thrown at once');
  assert.equal(retries, 0, 'no early retry either: the server said when');
  assert.equal(p.status, 429);
  assert.equal(p.code, 'rate_limited');
  assert.ok(p.retryAfter! > 3000 && p.retryAfter! <= 3600, `retryAfter ${p.retryAfter}`);
  assert.deepEqual(p.rateLimit!.policies, [{ name: '1h', quota: 1, window: 3600, unit: undefined }]);
  assert.equal(p.rateLimit!.limits[0].name, '1h');
  assert.equal(p.rateLimit!.limits[0].remaining, 0);
  assert.equal(p.rateLimit!.limits[0].reset, p.retryAfter);
});

test('an upstream\'s 429 with only a RateLimit field (r=0;t=1, no Retry-After) is retried after t seconds', async () => {
  refuse = 1;
  ownSeen.length = 0;
  const delays: number[] = [];
  const gh = new Gatehouse({ baseUrl: g.url, onRetry: (r) => delays.push(r.delay) });
  assert.deepEqual(await gh.get('/v1/own'), { ok: true });
  assert.deepEqual(delays, [1000]);
  assert.equal(ownSeen.length, 2);
  assert.ok(ownSeen[1] - ownSeen[0] >= 990, `the retry came ${(ownSeen[1] - ownSeen[0]).toFixed(0)} ms after the refusal`);
});

test('a POST refused with 429 is not retried, unless the call is marked idempotent', async () => {
  const headers = { 'x-bucket': bucket() };
  let retries = 0;
  const gh = new Gatehouse({ baseUrl: g.url, headers, onRetry: () => { retries++; } });
  await gh.post('/v1/limited', { n: 1 });
  const t0 = performance.now();
  const p = await refused(gh.post('/v1/limited', { n: 2 }));
  assert.ok(p instanceof GatewayProblem);
  assert.equal(p.code, 'rate_limited');
  assert.equal(p.retryAfter, 1);
  assert.equal(retries, 0);
  assert.ok(performance.now() - t0 < 900, 'thrown without waiting');

  const marked = await gh.post<{ method: string; bodyBytes: number }>('/v1/limited', { n: 3 }, { idempotent: true });
  assert.equal(marked.method, 'POST');
  assert.equal(marked.bodyBytes, JSON.stringify({ n: 3 }).length, 'the body is sent again in full');
  assert.equal(retries, 1);
});

test('problems carry the requestId of the X-Request-Id header; the gateway\'s codes and an upstream\'s own errors', async () => {
  const gh = new Gatehouse({ baseUrl: g.url });
  const nf = await refused(gh.get('/nowhere'));
  assert.equal(nf.status, 404);
  assert.equal(nf.code, 'not_found');
  assert.equal(nf.fromGateway, true);
  assert.equal(nf.title, 'No route matches this request');
  assert.ok(nf.requestId && nf.requestId.length > 0);
  assert.equal(nf.requestId, nf.headers.get('x-request-id'));
  assert.match(nf.message, /No route matches/);

  const mine = await refused(gh.get('/nowhere', { headers: { 'X-Request-Id': 'sdk-test-req-42' } }));
  assert.equal(mine.requestId, 'sdk-test-req-42');

  const unauth = await refused(gh.get('/v1/me'));
  assert.equal(unauth.status, 401);
  assert.equal(unauth.code, 'unauthorized');
  assert.equal(unauth.requestId, unauth.headers.get('x-request-id'));

  // The upstream's 500 passes through as it is (not a gateway problem): the status names it, the header gives the id.
  const upstream = await refused(gh.get('/v1/up/status/500', { retry: false }));
  assert.equal(upstream.status, 500);
  assert.equal(upstream.code, 'http_500');
  assert.equal(upstream.fromGateway, false);
  assert.equal(upstream.requestId, upstream.headers.get('x-request-id'));
});

test('JWT: a 401 calls refreshToken once, and the call is sent again with the new token', async () => {
  let refreshes = 0;
  const gh = new Gatehouse({
    baseUrl: g.url,
    token: await token('alice', -60), // expired
    refreshToken: async () => { refreshes++; return token('alice'); },
  });
  const a = await gh.post<{ headers: Record<string, string> }>('/v1/me', { q: 1 });
  assert.equal(a.headers['x-user-id'], 'alice');
  assert.equal(refreshes, 1);
  await gh.get('/v1/me');
  assert.equal(refreshes, 1, 'the fresh token is kept');

  // A refresh that does not help: refreshed once, then the 401 is thrown (no loop).
  let tries = 0;
  const bad = new Gatehouse({ baseUrl: g.url, token: 'not-a-jwt', refreshToken: async () => { tries++; return 'still.not.valid'; } });
  const p = await refused(bad.get('/v1/me'));
  assert.equal(p.status, 401);
  assert.equal(p.code, 'invalid_token');
  assert.equal(tries, 1);
});

test('concurrent 401s share one refresh (the token may come from a function)', async () => {
  let refreshes = 0;
  const gh = new Gatehouse({
    baseUrl: g.url,
    token: async () => 'expired-token',
    refreshToken: async () => { refreshes++; await new Promise((r) => setTimeout(r, 50)); return token('bob'); },
  });
  const rs = await Promise.all([1, 2, 3, 4].map(() => gh.get<{ headers: Record<string, string> }>('/v1/me')));
  for (const r of rs) assert.equal(r.headers['x-user-id'], 'bob');
  assert.equal(refreshes, 1);
});

test('API key: sent in the API-key header; the consumer reaches the upstream, the key does not', async () => {
  const gh = new Gatehouse({ baseUrl: g.url, apiKey: KEY });
  const r = await gh.get<{ headers: Record<string, string> }>('/v1/app');
  assert.equal(r.headers['x-consumer-id'], 'sdk-app');
  assert.ok(!JSON.stringify(r).includes(KEY));
  const wrong = await refused(new Gatehouse({ baseUrl: g.url, apiKey: 'wrong-key-000000000' }).get('/v1/app'));
  assert.equal(wrong.code, 'invalid_token');
});

test('credentials stay on the gateway: redirects are not followed, and a path cannot name another origin', async () => {
  const gh = new Gatehouse({ baseUrl: g.url, apiKey: KEY });
  const r = await gh.request('GET', '/v1/redirect');
  assert.equal(r.status, 302);
  assert.match(r.headers.get('location')!, /\/elsewhere$/);
  const p = await refused(gh.get('/v1/redirect'));
  assert.equal(p.code, 'http_302');
  assert.equal(ownElsewhere.length, 0, 'the other origin never got the key');
  assert.throws(() => gh.url('http://127.0.0.1:1/steal'), /not a path on/);
  assert.equal(gh.url('//evil.example/x').href, `${g.url}/evil.example/x`, 'a protocol-relative path stays a path');
  assert.equal(gh.url('/v1/a?b=1', { c: 2 }).href, `${g.url}/v1/a?b=1&c=2`);
});

test('network errors: an idempotent call is retried with backoff up to `attempts`, a POST is not', async () => {
  const port = await deadPort();
  let retries = 0;
  const gh = new Gatehouse({ baseUrl: `http://127.0.0.1:${port}`, retry: { attempts: 3, baseDelay: 20 }, onRetry: () => { retries++; } });
  await assert.rejects(gh.get('/x'), TypeError);
  assert.equal(retries, 2);
  retries = 0;
  await assert.rejects(gh.post('/x', {}), TypeError);
  assert.equal(retries, 0);
});

test('a per-call timeout and an AbortSignal end the call (neither is retried)', async () => {
  let retries = 0;
  const gh = new Gatehouse({ baseUrl: g.url, timeout: 10_000, onRetry: () => { retries++; } });
  const t0 = performance.now();
  await assert.rejects(gh.get('/v1/up/slow', { query: { ms: 5000 }, timeout: 300 }), (e: Error) => e.name === 'TimeoutError');
  assert.ok(performance.now() - t0 < 3000);
  const ac = new AbortController();
  setTimeout(() => ac.abort(), 200);
  await assert.rejects(gh.get('/v1/up/slow', { query: { ms: 5000 }, signal: ac.signal }), (e: Error) => e.name === 'AbortError');
  assert.equal(retries, 0);
  // Aborted while waiting to retry: the wait ends at once.
  const headers = { 'x-bucket': bucket() };
  await gh.get('/v1/limited', { headers });
  const ac2 = new AbortController();
  setTimeout(() => ac2.abort(), 100);
  const t1 = performance.now();
  await assert.rejects(gh.get('/v1/limited', { headers, signal: ac2.signal }), (e: Error) => e.name === 'AbortError');
  assert.ok(performance.now() - t1 < 900, 'did not sit out the 1 s wait');
});
