// The verifier on its own: provider selection by issuer (with the one issuer-less fallback), and the cache of
// verified tokens (hits are synchronous, failures are never cached, entries lapse at the TTL, size is bounded).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { JwtVerifier } from '../../src/auth/jwt-verifier.ts';
import { configFrom, verifierFor } from '../support/compile-env.ts';
import { GatewayError } from '../../src/errors.ts';
import { sign, secretBytes } from './support.ts';

const S1 = 'first-secret-first-secret-first-secret';
const S2 = 'second-secret-second-secret-second-secret';

function verifier(auth: object, extra: object = {}): JwtVerifier {
  const config = configFrom(JSON.stringify({
    auth, ...extra,
    upstreams: { u: { targets: ['http://127.0.0.1:9'] } },
    routes: [{ match: { path: '/' }, upstream: 'u', auth: 'jwt' }],
  }));
  return verifierFor(config);
}

async function outcome(v: JwtVerifier, token: string): Promise<string> {
  try {
    return (await v.verify(token)).identity.id;
  } catch (e) {
    assert.ok(e instanceof GatewayError, String(e));
    return `${e.status} ${e.message}`;
  }
}

test('the token iss picks the provider; other tokens go to the single provider without issuer', async () => {
  const v = verifier({ jwt: [{ name: 'a', issuer: 'https://a', secret: S1 }, { name: 'b', secret: S2 }] });
  assert.equal(await outcome(v, await sign(secretBytes(S1), { alg: 'HS256', iss: 'https://a', sub: 'from-a' })), 'from-a');
  assert.equal(await outcome(v, await sign(secretBytes(S2), { alg: 'HS256', sub: 'no-iss' })), 'no-iss');
  assert.equal(await outcome(v, await sign(secretBytes(S2), { alg: 'HS256', iss: 'https://elsewhere', sub: 'other-iss' })), 'other-iss');
  assert.equal(await outcome(v, await sign(secretBytes(S2), { alg: 'HS256', iss: 'https://a' })), '401 The token signature is invalid.', 'iss a must verify with a');
  assert.equal(await outcome(v, await sign(secretBytes(S1), { alg: 'HS256' })), '401 The token signature is invalid.');

  const strict = verifier({ jwt: [{ name: 'a', issuer: 'https://a', secret: S1 }] });
  assert.equal(await outcome(strict, await sign(secretBytes(S1), { alg: 'HS256', sub: 'x' })), '401 The token issuer is not accepted.');
});

test('a verified token is answered synchronously from the cache; failures are not cached', async () => {
  const v = verifier({ jwt: [{ name: 'a', secret: S1 }] });
  const t = await sign(secretBytes(S1), { alg: 'HS256', sub: 'u' });
  const first = v.verify(t);
  assert.ok(first instanceof Promise);
  const verified = await first;
  const second = v.verify(t);
  assert.ok(!(second instanceof Promise), 'a cache hit is synchronous');
  assert.equal(second, verified);

  const bad = await sign(secretBytes(S2), { alg: 'HS256', sub: 'u' });
  for (let i = 0; i < 2; i++) {
    const r = v.verify(bad);
    assert.ok(r instanceof Promise, 'a failed token is verified again every time');
    await assert.rejects(r as Promise<unknown>, /signature is invalid/);
  }
});

test('cache entries lapse after the TTL, and the cache holds at most maxEntries tokens', async () => {
  const short = verifier({ jwt: [{ name: 'a', secret: S1 }], tokenCache: { ttl: '50ms' } });
  const t = await sign(secretBytes(S1), { alg: 'HS256', sub: 'u' });
  await short.verify(t);
  assert.ok(!(short.verify(t) instanceof Promise));
  await new Promise((r) => setTimeout(r, 80));
  assert.ok(short.verify(t) instanceof Promise, 'verified again after the TTL');

  const small = verifier({ jwt: [{ name: 'a', secret: S1 }], tokenCache: { maxEntries: 2 } });
  const tokens = await Promise.all(['a', 'b', 'c'].map((sub) => sign(secretBytes(S1), { alg: 'HS256', sub })));
  for (const x of tokens) await small.verify(x);
  assert.ok(small.verify(tokens[0]) instanceof Promise, 'the oldest entry was evicted');
  assert.ok(!(small.verify(tokens[2]) instanceof Promise));

  const off = verifier({ jwt: [{ name: 'a', secret: S1 }], tokenCache: { maxEntries: 0 } });
  await off.verify(t);
  assert.ok(off.verify(t) instanceof Promise, 'maxEntries: 0 turns the cache off');
});

test('the plan comes from the configured claim when it names a known plan, else defaults.plan', async () => {
  const v = verifier({ jwt: [{ name: 'a', secret: S1, planClaim: 'tier' }] }, { plans: { free: {}, pro: {} }, defaults: { plan: 'free' } });
  const plan = async (claims: object) => (await v.verify(await sign(secretBytes(S1), { alg: 'HS256', claims: claims as never }))).identity.plan;
  assert.equal(await plan({ tier: 'pro' }), 'pro');
  assert.equal(await plan({ tier: 'platinum' }), 'free');
  assert.equal(await plan({ plan: 'pro' }), 'free', 'only the configured claim counts');
  const id = (await v.verify(await sign(secretBytes(S1), { alg: 'HS256', sub: 'who', claims: { tier: 'pro' } }))).identity;
  assert.deepEqual({ kind: id.kind, id: id.id, consumer: id.consumer }, { kind: 'jwt', id: 'who', consumer: undefined });
  assert.equal(id.claims?.tier, 'pro');
});
