import { createLocalJWKSet, type JWTHeaderParameters, type FlattenedJWSInput, type JSONWebKeySet } from 'jose';
import type { Logger } from '../observability/logger.ts';
import { GatewayError } from '../errors.ts';

export interface JwksOptions {
  /** Provider name, for log lines (the URI may carry credentials in its query). */
  name: string;
  uri: string;
  /** Least time between two fetches caused by an unknown `kid` (or after a failed fetch). */
  cooldown: number;
  /** Bounds applied to the response's `Cache-Control: max-age`. */
  minTtl: number;
  maxTtl: number;
  /** Deadline of one fetch, headers and body together. */
  timeout: number;
  logger: Logger;
}

/** A JWKS document larger than this is not a key set. */
const MAX_BODY = 512 * 1024;
/** Used when the response has no max-age (then bounded by minTtl/maxTtl like any other). */
const DEFAULT_TTL = 10 * 60_000;
/** After a failed fetch, the next attempt waits at most this long (or the cooldown, if shorter). */
const FAILURE_BACKOFF = 5_000;

type LocalSet = ReturnType<typeof createLocalJWKSet>;

/**
 * A JWKS endpoint's keys, cached. Written here rather than with jose's createRemoteJWKSet because the gateway
 * needs three things it does not give: the TTL follows the response's max-age (bounded), a fetch that fails
 * keeps serving the keys already held (jose rejects every request once its cache is stale), and an expired
 * set is refreshed in the background instead of making requests wait. Key selection and import stay jose's
 * (createLocalJWKSet: kid/alg/kty/crv/use matching, public keys only, imported keys cached per algorithm).
 *
 * - First use waits for the first fetch; concurrent callers share it (single-flight, always).
 * - An unknown `kid` triggers a refetch at most once per `cooldown`; callers arriving meanwhile join it.
 * - Past its TTL the set is still used while a background refresh runs; if that fails, the old keys stay.
 */
export class JwksCache {
  private local: LocalSet | null = null;
  private kids = new Set<string>();
  private expiresAt = 0;
  /** When the last fetch started (success or not), and whether it failed (a shorter wait before the next). */
  private lastAttempt = -Infinity;
  private lastFailed = false;
  private inflight: Promise<void> | null = null;
  private readonly abort = new AbortController();

  constructor(private readonly opts: JwksOptions) {}

  /** jose key-resolver signature: `jwtVerify(token, jwks.getKey, …)`. */
  readonly getKey = async (header: JWTHeaderParameters, token: FlattenedJWSInput): Promise<CryptoKey> => {
    const kid = header.kid;
    if (this.local === null) {
      await this.refresh();
      if (this.local === null) throw new GatewayError('auth_unavailable', 'The keys to verify this token cannot be fetched right now.', { headers: { 'retry-after': '5' } });
    } else if (kid !== undefined && !this.kids.has(kid)) {
      await this.refresh();
    } else if (Date.now() >= this.expiresAt) {
      this.refresh().catch(() => {});
    }
    return this.local(header, token);
  };

  /** Starts a fetch unless one is running (then joins it) or the last one was too recent. Never rejects. */
  refresh(): Promise<void> {
    if (this.inflight !== null) return this.inflight;
    const now = Date.now();
    const wait = this.lastFailed ? Math.min(this.opts.cooldown, FAILURE_BACKOFF) : this.opts.cooldown;
    if (now - this.lastAttempt < wait) return Promise.resolve();
    this.lastAttempt = now;
    this.inflight = this.fetchOnce().then(
      ({ jwks, ttl }) => {
        this.local = createLocalJWKSet(jwks);
        this.kids = new Set(jwks.keys.map((k) => k.kid).filter((k): k is string => typeof k === 'string'));
        this.expiresAt = Date.now() + ttl;
        this.lastFailed = false;
      },
      (e: Error) => {
        this.lastFailed = true;
        if (this.abort.signal.aborted) return;
        this.opts.logger.warn({ provider: this.opts.name, err: e.message, cachedKeys: this.kids.size }, this.local ? 'JWKS refresh failed; keeping the keys already cached' : 'JWKS fetch failed; tokens of this provider cannot be verified');
      },
    ).finally(() => { this.inflight = null; });
    return this.inflight;
  }

  close(): void {
    this.abort.abort();
  }

  private async fetchOnce(): Promise<{ jwks: JSONWebKeySet; ttl: number }> {
    const signal = AbortSignal.any([this.abort.signal, AbortSignal.timeout(this.opts.timeout)]);
    // undici's index (for `request`) is loaded by the first JWKS fetch, not by every gateway: see upstreams/undici.ts.
    const { request } = await import('undici');
    const res = await request(this.opts.uri, { method: 'GET', headers: { accept: 'application/jwk-set+json, application/json' }, signal });
    if (res.statusCode !== 200) {
      res.body.resume();
      throw new Error(`JWKS endpoint answered ${res.statusCode}`);
    }
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const c of res.body) {
      size += (c as Buffer).length;
      if (size > MAX_BODY) { res.body.destroy(); throw new Error(`JWKS document larger than ${MAX_BODY} bytes`); }
      chunks.push(c as Buffer);
    }
    let jwks: unknown;
    try { jwks = JSON.parse(Buffer.concat(chunks).toString('utf8')); } catch { throw new Error('JWKS document is not JSON'); }
    if (!isKeySet(jwks)) throw new Error('JWKS document has no "keys" array');
    // Symmetric keys never come from a key set: an "oct" member would let anyone who can read it sign.
    const keys = jwks.keys.filter((k) => k && typeof k === 'object' && k.kty !== 'oct');
    return { jwks: { keys }, ttl: clamp(maxAge(res.headers['cache-control']) ?? DEFAULT_TTL, this.opts.minTtl, this.opts.maxTtl) };
  }
}

function isKeySet(v: unknown): v is JSONWebKeySet {
  return typeof v === 'object' && v !== null && Array.isArray((v as JSONWebKeySet).keys);
}

/** max-age in ms from Cache-Control; 0 for no-store/no-cache; undefined when absent. */
export function maxAge(cc: string | string[] | undefined): number | undefined {
  if (cc === undefined) return undefined;
  const s = (Array.isArray(cc) ? cc.join(',') : cc).toLowerCase();
  if (/(?:^|[\s,])no-(?:store|cache)\b/.test(s)) return 0;
  const m = /(?:^|[\s,])max-age\s*=\s*"?(\d+)/.exec(s);
  return m ? Number(m[1]) * 1000 : undefined;
}

function clamp(v: number, lo: number, hi: number): number {
  return v < lo ? lo : v > hi ? hi : v;
}
