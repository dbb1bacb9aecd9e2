// auth: jwt through a real gateway in front of the demo echo service: every algorithm family, the classic
// attacks (alg confusion, alg none, tampering), time claims with skew, issuer/audience, the 401/403 shapes,
// identity headers (and spoofed copies removed), authorize rules, and duplicate credential headers.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { startDemoServer, type DemoServer } from '../../src/demo/services.ts';
import { startGateway, type TestGateway } from '../helpers.ts';
import { assertProblem } from '../support/problem.ts';
import { rawRequest } from '../support/raw-http.ts';
import { SECRET, secretBytes, keyPair, sign, unsignedToken, type KeyPair } from '../auth/support.ts';

let up: DemoServer;
let g: TestGateway;
let dir: string;
let rsa: KeyPair, ec256: KeyPair, ec384: KeyPair, ed: KeyPair;

before(async () => {
  rsa = keyPair('rsa');
  ec256 = keyPair('ec-256');
  ec384 = keyPair('ec-384');
  ed = keyPair('ed25519');
  dir = mkdtempSync(join(tmpdir(), 'gh-auth-'));
  writeFileSync(join(dir, 'es384.pem'), ec384.pem);
  up = await startDemoServer({ name: 'echo' });
  const inline = (pem: string) => JSON.stringify(pem);
  g = await startGateway(`
auth:
  jwt:
    - name: hs
      issuer: https://hs.example
      audiences: [ai-api]
      secret: "${SECRET}"
      clockSkew: 30s
      claimsToHeaders: { sub: X-User-Id, plan: X-User-Plan, org: X-Org }
    - { name: rs, issuer: https://rs.example, publicKey: ${inline(rsa.pem)} }
    - { name: es256, issuer: https://es256.example, publicKey: ${inline(ec256.pem)} }
    - { name: es384, issuer: https://es384.example, publicKey: ${join(dir, 'es384.pem')} }
    - { name: ed, issuer: https://ed.example, publicKey: ${inline(ed.pem)} }
    - { name: strict, issuer: https://strict.example, secret: "${SECRET}", clockSkew: 0s, algorithms: [HS256] }
plans: { free: {}, pro: {} }
upstreams:
  echo: { targets: [ ${up.url} ] }
defaults: { auth: jwt, plan: free }
routes:
  - { name: echo, match: { path: /echo }, upstream: echo }
  - { name: public, match: { path: /public }, upstream: echo, auth: public }
  - { name: admin, match: { path: /admin }, upstream: echo, authorize: { claims: { role: admin } } }
  - { name: pro, match: { path: /pro }, upstream: echo, authorize: { plans: [pro] } }
  - { name: scoped, match: { path: /scoped }, upstream: echo, authorize: { claims: { scope: chat:write } } }
`);
});
after(async () => {
  await g.close();
  await up.close();
  rmSync(dir, { recursive: true, force: true });
});

async function get(path: string, headers: Record<string, string> = {}) {
  const r = await request(`${g.url}${path}`, { headers });
  const text = await r.body.text();
  return { status: r.statusCode, headers: r.headers as Record<string, string | undefined>, text };
}
const bearer = (t: string) => ({ authorization: `Bearer ${t}` });
const hs = (o: Partial<Parameters<typeof sign>[1]> = {}) => sign(secretBytes(), { alg: 'HS256', iss: 'https://hs.example', aud: 'ai-api', ...o });

function expectInvalid(r: { status: number; headers: Record<string, string | undefined>; text: string }, description: RegExp) {
  const p = assertProblem(r.status, r.headers, r.text, { status: 401, code: 'invalid_token' });
  const www = String(r.headers['www-authenticate']);
  const m = /^Bearer realm="gatehouse", error="invalid_token", error_description="([^"]+)"$/.exec(www);
  assert.ok(m, `WWW-Authenticate shape: ${www}`);
  assert.match(m[1], description);
  assert.equal(p.detail, m[1]);
}

test('each algorithm family verifies: HS256/384/512, RS256, PS256, ES256, ES384 (key from a file), EdDSA', async () => {
  const cases: Array<[string, Parameters<typeof sign>[0], string, string | undefined]> = [
    ['HS256', secretBytes(), 'https://hs.example', 'ai-api'],
    ['HS384', secretBytes(), 'https://hs.example', 'ai-api'],
    ['HS512', secretBytes(), 'https://hs.example', 'ai-api'],
    ['RS256', rsa.privateKey, 'https://rs.example', undefined],
    ['PS256', rsa.privateKey, 'https://rs.example', undefined],
    ['ES256', ec256.privateKey, 'https://es256.example', undefined],
    ['ES384', ec384.privateKey, 'https://es384.example', undefined],
    ['EdDSA', ed.privateKey, 'https://ed.example', undefined],
  ];
  for (const [alg, key, iss, aud] of cases) {
    const token = await sign(key, { alg, iss, aud, sub: `user-${alg}` });
    const r = await get('/echo', bearer(token));
    assert.equal(r.status, 200, `${alg}: ${r.text}`);
  }
  const lines = g.logs.filter((l) => l.type === 'access' && l.route === 'echo' && l.status === 200);
  assert.deepEqual(lines.slice(-cases.length).map((l) => l.consumer), cases.map(([alg]) => `user-${alg}`), 'the identity (sub) reaches the access log');
});

test('an ES256 token is refused by a provider whose key is ES384, and an RS256 token by the EC provider', async () => {
  expectInvalid(await get('/echo', bearer(await sign(ec256.privateKey, { alg: 'ES256', iss: 'https://es384.example' }))), /algorithm is not accepted/);
  expectInvalid(await get('/echo', bearer(await sign(rsa.privateKey, { alg: 'RS256', iss: 'https://es256.example' }))), /algorithm is not accepted/);
});

test('algorithm confusion: an HS256 token signed with the RSA public key as the secret is rejected', async () => {
  const forged = await sign(new TextEncoder().encode(rsa.pem), { alg: 'HS256', iss: 'https://rs.example' });
  expectInvalid(await get('/echo', bearer(forged)), /algorithm is not accepted/);
  const forgedEd = await sign(new TextEncoder().encode(ed.pem), { alg: 'HS256', iss: 'https://ed.example' });
  expectInvalid(await get('/echo', bearer(forgedEd)), /algorithm is not accepted/);
});

test('alg "none" is rejected, and so is a token whose signature was altered', async () => {
  const now = Math.floor(Date.now() / 1000);
  expectInvalid(await get('/echo', bearer(unsignedToken({ sub: 'admin', iss: 'https://hs.example', aud: 'ai-api', exp: now + 600 }))), /algorithm is not accepted|malformed/);
  const good = await hs({ sub: 'someone' });
  const [h, p] = good.split('.');
  const other = await hs({ sub: 'someone-else' });
  expectInvalid(await get('/echo', bearer(`${h}.${other.split('.')[1]}.${good.split('.')[2]}`)), /signature is invalid/);
  const payload = JSON.parse(Buffer.from(p, 'base64url').toString());
  const elevated = Buffer.from(JSON.stringify({ ...payload, role: 'admin' })).toString('base64url');
  expectInvalid(await get('/admin', bearer(`${h}.${elevated}.${good.split('.')[2]}`)), /signature is invalid/);
});

test('exp and nbf honour clockSkew (30s): slightly late or early passes, well outside fails', async () => {
  assert.equal((await get('/echo', bearer(await hs({ exp: -10 })))).status, 200, 'expired 10s ago, inside the skew');
  expectInvalid(await get('/echo', bearer(await hs({ exp: -120 }))), /expired/);
  assert.equal((await get('/echo', bearer(await hs({ nbf: 10 })))).status, 200, 'valid in 10s, inside the skew');
  expectInvalid(await get('/echo', bearer(await hs({ nbf: 120 }))), /not valid yet/);
  expectInvalid(await get('/echo', bearer(await hs({ exp: null }))), /no expiry/);
});

test('a cached token stops being accepted at its exp (no skew on the strict provider)', async () => {
  const t = await sign(secretBytes(), { alg: 'HS256', iss: 'https://strict.example', exp: 2 });
  assert.equal((await get('/echo', bearer(t))).status, 200);
  assert.equal((await get('/echo', bearer(t))).status, 200, 'second use (cached)');
  const exp = (JSON.parse(Buffer.from(t.split('.')[1], 'base64url').toString()) as { exp: number }).exp * 1000;
  await new Promise((r) => setTimeout(r, exp - Date.now() + 50));
  expectInvalid(await get('/echo', bearer(t)), /expired/);
});

test('wrong issuer or audience is rejected; the strict provider only allows HS256', async () => {
  expectInvalid(await get('/echo', bearer(await hs({ iss: 'https://evil.example' }))), /issuer is not accepted/);
  expectInvalid(await get('/echo', bearer(await hs({ aud: 'other-api' }))), /audience is not accepted/);
  expectInvalid(await get('/echo', bearer(await sign(secretBytes(), { alg: 'HS512', iss: 'https://strict.example' }))), /algorithm is not accepted/);
});

test('no credentials: 401 with a bare Bearer challenge; other schemes and garbage get the same treatment', async () => {
  for (const headers of [{}, { authorization: 'Basic dXNlcjpwYXNz' }, { authorization: 'Bearer' }] as Array<Record<string, string>>) {
    const r = await get('/echo', headers);
    assertProblem(r.status, r.headers, r.text, { status: 401, code: 'unauthorized' });
    assert.equal(r.headers['www-authenticate'], 'Bearer realm="gatehouse"');
  }
  expectInvalid(await get('/echo', bearer('not-a-jwt')), /malformed/);
  expectInvalid(await get('/echo', bearer('a.b.c')), /malformed/);
});

test('the 401 body and challenge never echo the token', async () => {
  const t = await hs({ exp: -3600 });
  const r = await get('/echo', bearer(t));
  assert.equal(r.status, 401);
  for (const part of t.split('.')) {
    assert.ok(!r.text.includes(part), 'token part in body');
    assert.ok(!String(r.headers['www-authenticate']).includes(part), 'token part in challenge');
  }
  assert.ok(!g.rawLogs().includes(t.split('.')[2]), 'token signature in logs');
});

test('identity headers: claimsToHeaders are set from the token, spoofed copies are removed on every route', async () => {
  const spoof = { 'x-user-id': 'evil', 'x-user-plan': 'enterprise', 'x-org': 'evil-corp', 'x-consumer-id': 'evil', 'x-consumer-plan': 'enterprise' };
  const pub = JSON.parse((await get('/public', spoof)).text) as { headers: Record<string, string> };
  for (const h of Object.keys(spoof)) assert.equal(pub.headers[h], undefined, `${h} reached the upstream of a public route`);

  const t = await hs({ sub: 'alice', claims: { plan: 'pro', org: 'acme ünïcode' } });
  const r = await get('/echo', { ...spoof, ...bearer(t) });
  assert.equal(r.status, 200);
  const seen = (JSON.parse(r.text) as { headers: Record<string, string> }).headers;
  assert.equal(seen['x-user-id'], 'alice');
  assert.equal(seen['x-user-plan'], 'pro');
  assert.equal(seen['x-org'], encodeURIComponent('acme ünïcode'), 'non-ASCII claim values are percent-encoded');
  assert.equal(seen['x-consumer-id'], undefined);
  assert.equal(seen['x-consumer-plan'], undefined);

  const noOrg = await hs({ sub: 'bob' });
  const seen2 = (JSON.parse((await get('/echo', { ...spoof, ...bearer(noOrg) })).text) as { headers: Record<string, string> }).headers;
  assert.equal(seen2['x-org'], undefined, 'an absent claim leaves no header, and the spoofed one is gone');
  assert.equal(seen2['x-user-id'], 'bob');
});

test('authorize: claims and plans decide 403 for a valid identity; unknown plans fall back to defaults.plan', async () => {
  const admin = await hs({ claims: { role: 'admin' } });
  const user = await hs({ claims: { role: 'user' } });
  assert.equal((await get('/admin', bearer(admin))).status, 200);
  const denied = await get('/admin', bearer(user));
  assertProblem(denied.status, denied.headers, denied.text, { status: 403, code: 'forbidden' });
  assert.equal(denied.headers['www-authenticate'], 'Bearer realm="gatehouse", error="insufficient_scope"');
  assert.equal((await get('/admin', bearer(await hs({ claims: { role: ['user', 'admin'] } })))).status, 200, 'array claims match any member');

  assert.equal((await get('/pro', bearer(await hs({ claims: { plan: 'pro' } })))).status, 200);
  assert.equal((await get('/pro', bearer(await hs({ claims: { plan: 'free' } })))).status, 403);
  assert.equal((await get('/pro', bearer(await hs({ claims: { plan: 'gold' } })))).status, 403, 'unknown plan → defaults.plan (free)');
  assert.equal((await get('/pro', bearer(await hs()))).status, 403, 'no plan claim → defaults.plan (free)');

  assert.equal((await get('/scoped', bearer(await hs({ claims: { scope: 'chat:read chat:write' } })))).status, 200, 'scope is a space-separated list');
  assert.equal((await get('/scoped', bearer(await hs({ claims: { scope: 'chat:read' } })))).status, 403);
});

test('a token without a subject is refused', async () => {
  expectInvalid(await get('/echo', bearer(await hs({ sub: '' }))), /no subject/);
});

test('duplicate Authorization or Host headers are a 400 on every route, public ones included', async () => {
  const t = await hs();
  for (const path of ['/echo', '/public']) {
    const a = await rawRequest(g.port, `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${t}\r\nauthorization: Bearer other`);
    assert.match(assertProblem(a.status, a.headers, a.body, { status: 400, code: 'bad_request' }).detail, /more than one Authorization or Host/);
    const h = await rawRequest(g.port, `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nHOST: evil.example\r\nAuthorization: Bearer ${t}`);
    assert.match(assertProblem(h.status, h.headers, h.body, { status: 400, code: 'bad_request' }).detail, /more than one Authorization or Host/);
  }
  const ok = await rawRequest(g.port, `GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${t}`);
  assert.equal(ok.status, 200, 'one of each is fine');
});
