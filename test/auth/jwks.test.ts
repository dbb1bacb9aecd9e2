// JWKS through a real gateway and a real key-set server: rotation with one refetch, the cooldown, single-flight
// under 100 concurrent misses, max-age, and an endpoint that goes down while keys are cached.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { startDemoServer } from '../../src/demo/services.ts';
import { startGateway, eventually } from '../helpers.ts';
import { assertProblem } from '../support/problem.ts';
import { keyPair, sign, publicJwk, startJwksServer, type KeyPair } from './support.ts';
import { maxAge } from '../../src/auth/jwks.ts';

const ISS = 'https://jwks.example';

async function setup(t: { after(fn: () => Promise<void>): void }, opts: { cacheControl?: string; cache?: string; keys?: KeyPair[] } = {}) {
  const a = keyPair('rsa');
  const keys = opts.keys ?? [a];
  const jwks = await startJwksServer(await Promise.all(keys.map((k, i) => publicJwk(k, `k${i}`, 'RS256'))), opts.cacheControl ?? 'max-age=3600');
  const up = await startDemoServer({ name: 'echo' });
  const g = await startGateway(`
auth:
  jwt:
    - name: idp
      issuer: ${ISS}
      jwksUri: ${jwks.url}
      algorithms: [RS256, ES256]
      jwksCache: ${opts.cache ?? '{ cooldown: 300ms, minTtl: 100ms, maxTtl: 1h }'}
upstreams: { echo: { targets: [ ${up.url} ] } }
routes:
  - { name: echo, match: { path: /echo }, upstream: echo, auth: jwt }
`);
  t.after(async () => { await g.close(); await up.close(); await jwks.close(); });
  const call = async (token: string) => {
    const r = await request(`${g.url}/echo`, { headers: { authorization: `Bearer ${token}` } });
    return { status: r.statusCode, headers: r.headers as Record<string, string>, text: await r.body.text() };
  };
  return { jwks, g, call, a };
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('rotation: a new kid is accepted after exactly one refetch, and not before the cooldown allows it', async (t) => {
  const { jwks, call, a } = await setup(t, { cache: '{ cooldown: 1s, minTtl: 100ms, maxTtl: 1h }' });
  const b = keyPair('ec-256');
  const bJwk = await publicJwk(b, 'k-new', 'ES256');
  const early = await sign(b.privateKey, { alg: 'ES256', kid: 'k-new', iss: ISS });
  assert.equal((await call(await sign(a.privateKey, { alg: 'RS256', kid: 'k0', iss: ISS }))).status, 200);
  assert.equal(jwks.fetches, 1, 'first use fetched the key set once');
  assert.equal((await call(await sign(a.privateKey, { alg: 'RS256', kid: 'k0', iss: ISS, sub: 'again' }))).status, 200);
  assert.equal(jwks.fetches, 1, 'a known kid does not refetch');

  jwks.keys = [...jwks.keys, bJwk];
  const refused = await call(early);
  assert.equal(refused.status, 401, 'inside the cooldown an unknown kid is refused without a fetch');
  assert.match(refused.headers['www-authenticate'], /error="invalid_token"/);
  assert.equal(jwks.fetches, 1);

  await sleep(1100);
  const r = await call(await sign(b.privateKey, { alg: 'ES256', kid: 'k-new', iss: ISS, sub: 'rotated' }));
  assert.equal(r.status, 200, r.text);
  assert.equal(jwks.fetches, 2, 'one refetch for the new kid');

  // The old key is withdrawn: a token never seen before that uses it fails after the next refetch.
  jwks.keys = jwks.keys.filter((k) => k.kid !== 'k0');
  await sleep(1100);
  assert.equal((await call(await sign(b.privateKey, { alg: 'ES256', kid: 'unknown-kid', iss: ISS }))).status, 401);
  assert.equal(jwks.fetches, 3);
  assert.equal((await call(await sign(a.privateKey, { alg: 'RS256', kid: 'k0', iss: ISS, sub: 'withdrawn' }))).status, 401);
});

test('100 concurrent requests with an unknown kid share one JWKS fetch (new key: all 200; bogus kid: all 401)', async (t) => {
  const { jwks, call, a } = await setup(t, { cache: '{ cooldown: 1s, minTtl: 100ms, maxTtl: 1h }' });
  const b = keyPair('rsa');
  const tokens = await Promise.all(Array.from({ length: 100 }, (_, i) => sign(b.privateKey, { alg: 'RS256', kid: 'k-burst', iss: ISS, sub: `u${i}` })));
  const bogus = await Promise.all(Array.from({ length: 100 }, (_, i) => sign(b.privateKey, { alg: 'RS256', kid: 'no-such-kid', iss: ISS, sub: `v${i}` })));
  assert.equal((await call(await sign(a.privateKey, { alg: 'RS256', kid: 'k0', iss: ISS }))).status, 200);
  assert.equal(jwks.fetches, 1);
  jwks.keys = [...jwks.keys, await publicJwk(b, 'k-burst', 'RS256')];
  jwks.delayMs = 150; // the fetch is still running while the other 99 arrive
  await sleep(1100);
  const results = await Promise.all(tokens.map(call));
  assert.deepEqual([...new Set(results.map((r) => r.status))], [200]);
  assert.equal(jwks.fetches, 2, 'exactly one fetch for 100 concurrent misses');

  await sleep(1100);
  const denied = await Promise.all(bogus.map(call));
  assert.deepEqual([...new Set(denied.map((r) => r.status))], [401]);
  assert.equal(jwks.fetches, 3, 'exactly one fetch for 100 concurrent bogus kids');
});

test('a token without kid is tried against each matching key of the set', async (t) => {
  const k1 = keyPair('rsa');
  const k2 = keyPair('rsa');
  const { call } = await setup(t, { keys: [k1, k2] });
  assert.equal((await call(await sign(k2.privateKey, { alg: 'RS256', iss: ISS }))).status, 200);
  assert.equal((await call(await sign(k1.privateKey, { alg: 'RS256', iss: ISS }))).status, 200);
  assert.equal((await call(await sign(keyPair('rsa').privateKey, { alg: 'RS256', iss: ISS }))).status, 401);
});

test('JWKS endpoint down: tokens signed with cached keys are still accepted after the TTL; nothing cached → 503', async (t) => {
  const { jwks, call, a, g } = await setup(t, { cacheControl: 'max-age=0' });
  assert.equal((await call(await sign(a.privateKey, { alg: 'RS256', kid: 'k0', iss: ISS }))).status, 200);
  await jwks.close();
  await sleep(400); // past the TTL (minTtl 100ms) and the cooldown
  for (let i = 0; i < 3; i++) {
    const r = await call(await sign(a.privateKey, { alg: 'RS256', kid: 'k0', iss: ISS, sub: `while-down-${i}` }));
    assert.equal(r.status, 200, `cached key still verifies (${r.text})`);
  }
  await eventually(() => g.logs.some((l) => l.msg === 'JWKS refresh failed; keeping the keys already cached'));
  const line = g.logs.find((l) => l.msg === 'JWKS refresh failed; keeping the keys already cached')!;
  assert.equal(line.provider, 'idp');
  assert.equal(line.level, 40);

  // A gateway that never got the keys answers 503 (not 401: the client is not at fault) with Retry-After.
  const fresh = await setup(t);
  await fresh.jwks.close();
  const r = await fresh.call(await sign(fresh.a.privateKey, { alg: 'RS256', kid: 'k0', iss: ISS }));
  assertProblem(r.status, r.headers, r.text, { status: 503, code: 'auth_unavailable' });
  assert.equal(r.headers['retry-after'], '5');
});

test('the key set is cached for its max-age (bounded below by minTtl), then refreshed in the background', async (t) => {
  const { jwks, call, a } = await setup(t, { cacheControl: 'public, max-age=1', cache: '{ cooldown: 100ms, minTtl: 100ms, maxTtl: 1h }' });
  assert.equal((await call(await sign(a.privateKey, { alg: 'RS256', kid: 'k0', iss: ISS }))).status, 200);
  await sleep(400);
  assert.equal((await call(await sign(a.privateKey, { alg: 'RS256', kid: 'k0', iss: ISS, sub: 'b' }))).status, 200);
  assert.equal(jwks.fetches, 1, 'inside max-age: no refetch');
  await sleep(800);
  assert.equal((await call(await sign(a.privateKey, { alg: 'RS256', kid: 'k0', iss: ISS, sub: 'c' }))).status, 200, 'an expired set still answers at once');
  await eventually(() => jwks.fetches === 2);
});

test('max-age parsing: no-store/no-cache count as 0, absent is undefined', () => {
  assert.equal(maxAge('public, max-age=600'), 600_000);
  assert.equal(maxAge('max-age="30", must-revalidate'), 30_000);
  assert.equal(maxAge('no-store'), 0);
  assert.equal(maxAge('private, no-cache'), 0);
  assert.equal(maxAge(undefined), undefined);
  assert.equal(maxAge('public'), undefined);
});
