import { jwtVerify, decodeJwt, errors, type JWTPayload, type JWTVerifyOptions, type JWTVerifyGetKey, type JWTHeaderParameters } from 'jose';
import type { KeyObject } from 'node:crypto';
import type { AuthSection, JwtProviderConfig } from './schema.ts';
import type { Identity } from '../pipeline/context.ts';
import { GatewayError } from '../errors.ts';
import { JwksCache } from './jwks.ts';
import { loadPublicKey, resolveAlgorithms, type JwsAlg } from './key-material.ts';
import { VerifiedTokenCache } from './token-cache.ts';
import { identityHeaderValue } from './identity-headers.ts';
import { joseHeaderProblem } from './jose-header.ts';
import { invalidToken } from './challenge.ts';


/** A token that passed verification: who it is, the headers to send upstream, until when this holds. */
export interface VerifiedToken {
  readonly identity: Identity;
  /** Flat [name, value, ...] for ctx.addUpstreamHeader. */
  readonly headers: readonly string[];
  /** Epoch ms after which the entry must be verified again (exp, capped by the cache TTL). */
  readonly until: number;
}

interface Provider {
  name: string;
  options: JWTVerifyOptions;
  key: JWTVerifyGetKey | CryptoKey | KeyObject;
  claimsToHeaders: Array<[claim: string, header: string]>;
  planClaim: string;
  /** ms; an `iat` later than now + this is refused. */
  clockSkew: number;
  closeWebSockets: boolean;
}

const HMAC_HASH: Record<string, string> = { HS256: 'SHA-256', HS384: 'SHA-384', HS512: 'SHA-512' };

/**
 * JWT verification for every configured provider, with a cache of verified tokens in front.
 * `verify` answers synchronously on a cache hit (the hot path: one Map lookup and a clock read) and with a
 * promise otherwise. The token's `iss` picks the provider; a token whose issuer no provider names goes to the
 * one provider configured without `issuer`, if there is one.
 */
export class JwtVerifier {
  private readonly byIssuer = new Map<string, Provider>();
  private readonly fallback: Provider | undefined;
  private readonly cache: VerifiedTokenCache<VerifiedToken>;
  private readonly ttl: number;
  private readonly plans: ReadonlySet<string>;
  private readonly defaultPlan: string | undefined;

  /**
   * `jwks` gives the key cache of a `jwksUri:` provider; the caller owns those caches (a reload hands an
   * unchanged provider's cache, keys and cooldowns included, to the next generation).
   */
  constructor(opts: { auth: AuthSection; plans: readonly string[]; defaultPlan: string | undefined; jwks: (p: JwtProviderConfig) => JwksCache }) {
    const c = opts.auth;
    this.plans = new Set(opts.plans);
    this.defaultPlan = opts.defaultPlan;
    this.cache = new VerifiedTokenCache(c.tokenCache.maxEntries);
    this.ttl = c.tokenCache.ttl;
    for (const p of c.jwt) {
      const provider = this.buildProvider(p, opts.jwks);
      if (p.issuer !== undefined) this.byIssuer.set(p.issuer, provider);
      else this.fallback ??= provider;
    }
  }

  verify(token: string): VerifiedToken | Promise<VerifiedToken> {
    const hit = this.cache.get(token, Date.now());
    if (hit !== undefined) return hit;
    return this.verifyCold(token);
  }

  close(): void {
    this.cache.clear();
  }

  private async verifyCold(token: string): Promise<VerifiedToken> {
    // Cold path only: a token that fails these never enters the cache, and the cache is keyed by the exact string.
    const problem = joseHeaderProblem(token);
    if (problem !== null) throw invalidToken(problem);
    let iss: unknown;
    try { iss = decodeJwt(token).iss; } catch { throw invalidToken('The token is malformed.'); }
    const p = (typeof iss === 'string' ? this.byIssuer.get(iss) : undefined) ?? this.fallback;
    if (p === undefined) throw invalidToken('The token issuer is not accepted.');
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, p.key as JWTVerifyGetKey, p.options));
    } catch (e) {
      if (!(e instanceof errors.JWKSMultipleMatchingKeys)) throw toAuthError(e);
      payload = await tryEach(token, e, p.options);
    }
    const v = this.accepted(p, payload);
    this.cache.set(token, v);
    return v;
  }

  private accepted(p: Provider, claims: JWTPayload): VerifiedToken {
    const id = typeof claims.sub === 'string' ? claims.sub : typeof claims.client_id === 'string' ? claims.client_id : undefined;
    if (id === undefined || id === '') throw invalidToken('The token has no subject (sub).');
    const planClaim = claims[p.planClaim];
    const known = this.plans;
    const plan = typeof planClaim === 'string' && (known.size === 0 || known.has(planClaim)) ? planClaim : this.defaultPlan;
    const now = Date.now();
    // jose checks iat only against a maximum age; a token from the future (RFC 7519 §4.1.6) is a clock or a forgery.
    if (typeof claims.iat === 'number' && claims.iat * 1000 > now + p.clockSkew) throw invalidToken('The token was issued in the future.');
    const headers: string[] = [];
    for (const [claim, header] of p.claimsToHeaders) {
      const value = identityHeaderValue(claims[claim]);
      if (value === null) throw invalidToken('A token claim sent upstream holds control characters.');
      if (value !== undefined) headers.push(header, value);
    }
    const exp = (claims.exp as number) * 1000;
    const until = Math.min(exp, now + this.ttl);
    const identity: Identity = p.closeWebSockets ? { kind: 'jwt', id, plan, claims, expiresAt: exp } : { kind: 'jwt', id, plan, claims };
    return { identity, headers, until };
  }

  private buildProvider(p: JwtProviderConfig, jwks: (p: JwtProviderConfig) => JwksCache): Provider {
    let key: Provider['key'];
    let publicKey: KeyObject | undefined;
    if (p.publicKey !== undefined) publicKey = loadPublicKey(p.publicKey);
    const algorithms = resolveAlgorithms(p, publicKey);
    if (p.secret !== undefined) key = hmacKeys(p.secret, algorithms);
    else if (publicKey !== undefined) key = publicKey;
    else key = jwks(p).getKey;
    return {
      name: p.name,
      key,
      planClaim: p.planClaim,
      clockSkew: p.clockSkew,
      closeWebSockets: p.closeWebSocketsOnExpiry,
      claimsToHeaders: Object.entries(p.claimsToHeaders).map(([claim, header]) => [claim, header.toLowerCase()]),
      options: {
        algorithms,
        issuer: p.issuer,
        audience: p.audiences.length ? p.audiences : undefined,
        clockTolerance: Math.round(p.clockSkew / 1000),
        requiredClaims: ['exp'],
      },
    };
  }
}

/** A token without `kid` that several keys of a set could have signed: the first key that verifies wins. */
async function tryEach(token: string, candidates: AsyncIterable<CryptoKey>, options: JWTVerifyOptions): Promise<JWTPayload> {
  let last: unknown = new errors.JWKSNoMatchingKey();
  for await (const key of candidates) {
    try { return (await jwtVerify(token, key, options)).payload; } catch (e) { last = e; }
  }
  throw toAuthError(last);
}

/** One imported CryptoKey per allowed HS algorithm, made once (jose would re-import raw bytes on every call). */
function hmacKeys(secret: string, algorithms: readonly JwsAlg[]): JWTVerifyGetKey {
  const bytes = new TextEncoder().encode(secret);
  const keys = new Map<string, Promise<CryptoKey>>();
  for (const alg of algorithms) {
    const k = crypto.subtle.importKey('raw', bytes, { name: 'HMAC', hash: HMAC_HASH[alg] }, false, ['verify']);
    k.catch(() => {});
    keys.set(alg, k);
  }
  // An alg outside the allowlist is refused by jose before the key is asked for; this is the second fence.
  return (header: JWTHeaderParameters) => keys.get(header.alg) ?? Promise.reject(new errors.JOSEAlgNotAllowed('"alg" (Algorithm) Header Parameter value not allowed'));
}

/** jose's errors as 401s whose description says what is wrong without echoing the token or any key. */
function toAuthError(e: unknown): GatewayError {
  if (e instanceof GatewayError) return e;
  if (e instanceof errors.JWTExpired) return invalidToken('The token has expired.');
  if (e instanceof errors.JWTClaimValidationFailed) {
    switch (e.claim) {
      case 'nbf': return invalidToken('The token is not valid yet.');
      case 'iat': return invalidToken('The token was issued in the future.');
      case 'iss': return invalidToken('The token issuer is not accepted.');
      case 'aud': return invalidToken('The token audience is not accepted.');
      case 'exp': return invalidToken('The token has no expiry (exp).');
      default: return invalidToken('The token claims are not valid.');
    }
  }
  if (e instanceof errors.JOSEAlgNotAllowed || e instanceof errors.JOSENotSupported) return invalidToken('The token signing algorithm is not accepted.');
  if (e instanceof errors.JWSSignatureVerificationFailed) return invalidToken('The token signature is invalid.');
  if (e instanceof errors.JWKSNoMatchingKey || e instanceof errors.JWKSMultipleMatchingKeys) return invalidToken('No signing key matches the token.');
  if (e instanceof errors.JWSInvalid || e instanceof errors.JWTInvalid) return invalidToken('The token is malformed.');
  return invalidToken('The token is not valid.');
}
