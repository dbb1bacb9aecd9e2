// Rate-limit evasion and credential guessing: auth.failureLimit (issue 11 #7) in memory and across two replicas
// sharing Redis, its production default, and keys an attacker controls (IPv6 rotation, forged X-Forwarded-For).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { startDemoServer, type DemoServer } from '../../src/demo/services.ts';
import { startGateway, type TestGateway } from '../helpers.ts';
import { assertProblem } from '../support/problem.ts';
import { hashApiKey } from '../../src/auth/api-keys.ts';

const KEY = 'acme-key-0123456789abcdef';
let up: DemoServer;

const yaml = (url: string, extra = '', server = '') => `
server: { ${server} }
auth: { ${extra} }
consumers: [ { id: acme, keys: ["${hashApiKey(KEY)}"] } ]
upstreams: { echo: { targets: [ ${url} ] } }
routes:
  - { name: keyed, match: { path: /keyed }, upstream: echo, auth: apikey }
  - { name: open, match: { path: /open }, upstream: echo, auth: public, rateLimit: [ { limit: 3, window: 1m, by: ip } ] }
`;

before(async () => { up = await startDemoServer({ name: 'echo' }); });
after(async () => { await up.close(); });

async function call(g: TestGateway, path: string, headers: Record<string, string> = {}) {
  const r = await request(`${g.url}${path}`, { headers });
  const text = await r.body.text();
  return { status: r.statusCode, headers: r.headers as Record<string, string>, text };
}

test('issue 11 #7: auth.failureLimit answers 429 + Retry-After once an IP has failed `limit` times; then even the right key waits', async (t) => {
  const g = await startGateway(yaml(up.url, 'failureLimit: { limit: 3, window: 1m }'));
  t.after(() => g.close());
  for (let i = 0; i < 3; i++) assert.equal((await call(g, '/keyed', { 'x-api-key': `guess-${i}` })).status, 401, `guess ${i}`);
  const r = await call(g, '/keyed', { 'x-api-key': 'guess-3' });
  assertProblem(r.status, r.headers, r.text, { status: 429, code: 'rate_limited' });
  assert.ok(Number(r.headers['retry-after']) >= 1, 'Retry-After');
  assert.ok(!r.text.includes('guess-3'));
  // A correct guess past the limit must not be told apart from a wrong one.
  assert.equal((await call(g, '/keyed', { 'x-api-key': KEY })).status, 429);
});

test('issue 11 #7: a request without any credential does not count as a failure (no lockout of anonymous browsing)', async (t) => {
  const g = await startGateway(yaml(up.url, 'failureLimit: { limit: 2, window: 1m }'));
  t.after(() => g.close());
  for (let i = 0; i < 10; i++) assert.equal((await call(g, '/keyed')).status, 401);
  assert.equal((await call(g, '/keyed', { 'x-api-key': KEY })).status, 200);
});

test('issue 11 #7: the default is on in production (the 21st failed key within a minute is a 429), off in development, false turns it off', async (t) => {
  const g = await startGateway(yaml(up.url, '', 'environment: production'));
  t.after(() => g.close());
  for (let i = 0; i < 20; i++) assert.equal((await call(g, '/keyed', { 'x-api-key': `guess-${i}` })).status, 401, `guess ${i}`);
  assert.equal((await call(g, '/keyed', { 'x-api-key': 'guess-20' })).status, 429);
  const off = await startGateway(yaml(up.url, 'failureLimit: false', 'environment: production'));
  t.after(() => off.close());
  for (let i = 0; i < 25; i++) assert.equal((await call(off, '/keyed', { 'x-api-key': `guess-${i}` })).status, 401);
  const dev = await startGateway(yaml(up.url));
  t.after(() => dev.close());
  for (let i = 0; i < 25; i++) assert.equal((await call(dev, '/keyed', { 'x-api-key': `guess-${i}` })).status, 401, 'off by default in development');
});

test('issue 11 #7: exact across two replicas sharing Redis: failures alternate between them, the limit holds in total', async (t) => {
  const prefix = `gh:h11a:${process.pid}:${Date.now()}:`;
  const state = `state: { store: redis, redis: { url: "redis://127.0.0.1:6379", keyPrefix: "${prefix}" } }`;
  const a = await startGateway(`${state}\n${yaml(up.url, 'failureLimit: { limit: 4, window: 1m }')}`);
  t.after(() => a.close());
  const b = await startGateway(`${state}\n${yaml(up.url, 'failureLimit: { limit: 4, window: 1m }')}`);
  t.after(() => b.close());
  const statuses: number[] = [];
  for (let i = 0; i < 6; i++) statuses.push((await call(i % 2 === 0 ? a : b, '/keyed', { 'x-api-key': `guess-${i}` })).status);
  assert.deepEqual(statuses, [401, 401, 401, 401, 429, 429]);
});

test('issue 11 #7: a blocked IP does not block another (trusted proxy, X-Forwarded-For)', async (t) => {
  const g = await startGateway(yaml(up.url, 'failureLimit: { limit: 1, window: 1m }', 'trustedProxies: [ 127.0.0.0/8 ]'));
  t.after(() => g.close());
  const from = (ip: string, key: string) => call(g, '/keyed', { 'x-forwarded-for': ip, 'x-api-key': key });
  assert.equal((await from('203.0.113.1', 'bad-1')).status, 401);
  assert.equal((await from('203.0.113.1', 'bad-2')).status, 429);
  assert.equal((await from('203.0.113.2', KEY)).status, 200);
});

test('rate-limit evasion (IPv6 rotation): addresses of one /64 share a failure count and an IP limit', async (t) => {
  const g = await startGateway(yaml(up.url, 'failureLimit: { limit: 2, window: 1m }', 'trustedProxies: [ 127.0.0.0/8 ]'));
  t.after(() => g.close());
  const ips = ['2001:db8:1:2::1', '2001:db8:1:2::abcd', '2001:db8:1:2:ffff:ffff:ffff:fffe'];
  const s: number[] = [];
  for (const ip of ips) s.push((await call(g, '/keyed', { 'x-forwarded-for': ip, 'x-api-key': 'guess' })).status);
  assert.deepEqual(s, [401, 401, 429]);
  const open: number[] = [];
  for (let i = 0; i < 4; i++) open.push((await call(g, '/open', { 'x-forwarded-for': `2001:db8:9:9::${i + 1}` })).status);
  assert.deepEqual(open, [200, 200, 200, 429]);
});

test('rate-limit evasion (APISIX CVE-2022-24112 style): a forged X-Forwarded-For from an untrusted peer does not get a fresh IP bucket', async (t) => {
  const g = await startGateway(yaml(up.url));
  t.after(() => g.close());
  const s: number[] = [];
  for (let i = 0; i < 4; i++) s.push((await call(g, '/open', { 'x-forwarded-for': `198.51.100.${i}`, 'x-real-ip': `198.51.100.${i}` })).status);
  assert.deepEqual(s, [200, 200, 200, 429]);
});

test('429 carries Retry-After and the IETF RateLimit fields; no key or address in the body', async (t) => {
  const g = await startGateway(yaml(up.url));
  t.after(() => g.close());
  let r = await call(g, '/open');
  for (let i = 0; i < 3; i++) r = await call(g, '/open');
  assertProblem(r.status, r.headers, r.text, { status: 429, code: 'rate_limited' });
  assert.ok(Number(r.headers['retry-after']) >= 1);
  assert.match(r.headers['ratelimit-policy'] ?? '', /q=3;w=60/);
  assert.ok(!r.text.includes('127.0.0.1'));
});

test('issue 11 #7: forged and expired JWTs count as failures too (verification that waits is counted like one that does not)', async (t) => {
  const { SECRET, secretBytes, sign } = await import('../auth/support.ts');
  const g = await startGateway(yaml(up.url, `failureLimit: { limit: 2, window: 1m }, jwt: [ { name: hs, issuer: https://hs.example, secret: "${SECRET}", algorithms: [HS256] } ]`).replace('auth: apikey', 'auth: any'));
  t.after(() => g.close());
  const forged = await sign(secretBytes(SECRET + 'x'), { alg: 'HS256', iss: 'https://hs.example' });
  const expired = await sign(secretBytes(), { alg: 'HS256', iss: 'https://hs.example', exp: -600 });
  const good = await sign(secretBytes(), { alg: 'HS256', iss: 'https://hs.example' });
  assert.equal((await call(g, '/keyed', { authorization: `Bearer ${forged}` })).status, 401);
  assert.equal((await call(g, '/keyed', { authorization: `Bearer ${expired}` })).status, 401);
  assert.equal((await call(g, '/keyed', { authorization: `Bearer ${forged}` })).status, 429);
  assert.equal((await call(g, '/keyed', { authorization: `Bearer ${good}` })).status, 429);
});
