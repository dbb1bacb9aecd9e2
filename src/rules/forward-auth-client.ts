import { createHash } from 'node:crypto';
import { Pool } from '../upstreams/undici.ts';
import type { Logger } from '../observability/logger.ts';

/**
 * The client side of forward auth (Envoy ext_authz, Traefik forwardAuth): asks an authentication service about a
 * request's credential and remembers its yes for a while. One per distinct `forwardAuth` settings, shared by the
 * routes that use them and carried over by a reload that keeps them.
 *
 * - Decisions are keyed by a digest of the credential headers (the credential itself is kept nowhere: not in a
 *   key, not in a log line, not in an error).
 * - Only a 2xx is cached (for `cacheTtl`, at most `cacheSize` entries, oldest out first); a refusal is asked again.
 * - Single flight: concurrent requests with one credential share one call.
 * - Fails closed: no answer within `timeout`, a connection error or a 5xx is `unavailable`, never an allow.
 */

export type Decision =
  | { kind: 'allow'; headers: string[]; identity: string | undefined }
  | { kind: 'deny'; status: 401 | 403; wwwAuthenticate: string | undefined }
  | { kind: 'unavailable'; reason: string };

export interface ForwardAuthSettings {
  url: string;
  method: 'GET' | 'POST';
  requestHeaders: readonly string[];
  responseHeaders: readonly string[];
  identityHeader?: string;
  timeout: number;
  cacheTtl: number;
  cacheSize: number;
}

/** What the auth service is told about the request besides the credential (Traefik's names). */
export interface RequestFacts { method: string; uri: string; host: string; proto: string; clientIp: string }

export class ForwardAuthClient {
  private readonly pool: Pool;
  private readonly path: string;
  private readonly origin: string;
  private readonly s: ForwardAuthSettings;
  private readonly cache = new Map<string, { until: number; d: Decision }>();
  private readonly flying = new Map<string, Promise<Decision>>();
  private readonly log: Logger;
  private readonly copy: string[];
  /** Calls made to the service (tests and the bench read it). */
  calls = 0;

  constructor(s: ForwardAuthSettings, log: Logger) {
    const u = new URL(s.url);
    this.origin = u.origin;
    this.path = u.pathname + u.search;
    this.s = s;
    this.log = log;
    this.copy = s.responseHeaders.map((h) => h.toLowerCase());
    // Built lazily on first use by undici: creating a Pool opens no socket (a generation is built without I/O).
    this.pool = new Pool(u.origin, { connections: 64, keepAliveTimeout: 30_000 });
  }

  /** The credential's cache key: a digest of the credential headers' values, never the values. */
  key(headers: Record<string, string | string[] | undefined>): string {
    const h = createHash('sha256');
    for (const n of this.s.requestHeaders) {
      const v = headers[n];
      h.update(v === undefined ? '\u0000' : Array.isArray(v) ? v.join('\u0001') : v).update('\u0002');
    }
    return h.digest('base64url');
  }

  /** The decision for a credential: synchronously from the cache, else one call shared by concurrent requests. */
  decide(key: string, headers: Record<string, string | string[] | undefined>, facts: RequestFacts): Decision | Promise<Decision> {
    if (this.s.cacheTtl > 0) {
      const hit = this.cache.get(key);
      if (hit !== undefined) {
        if (hit.until > performance.now()) return hit.d;
        this.cache.delete(key);
      }
    }
    const flying = this.flying.get(key);
    if (flying !== undefined) return flying;
    const p = this.ask(headers, facts).then((d) => {
      this.flying.delete(key);
      if (d.kind === 'allow' && this.s.cacheTtl > 0) this.remember(key, d);
      return d;
    });
    this.flying.set(key, p);
    return p;
  }

  private remember(key: string, d: Decision): void {
    if (this.cache.size >= this.s.cacheSize) {
      const oldest = this.cache.keys().next();
      if (!oldest.done) this.cache.delete(oldest.value);
    }
    this.cache.set(key, { until: performance.now() + this.s.cacheTtl, d });
  }

  private async ask(headers: Record<string, string | string[] | undefined>, f: RequestFacts): Promise<Decision> {
    this.calls++;
    const send: Record<string, string | string[]> = {
      'x-forwarded-method': f.method, 'x-forwarded-uri': f.uri, 'x-forwarded-host': f.host, 'x-forwarded-proto': f.proto, 'x-forwarded-for': f.clientIp,
    };
    for (const n of this.s.requestHeaders) { const v = headers[n]; if (v !== undefined) send[n] = v; }
    try {
      const r = await this.pool.request({
        path: this.path, method: this.s.method, headers: send,
        headersTimeout: this.s.timeout, bodyTimeout: this.s.timeout, signal: AbortSignal.timeout(this.s.timeout),
      });
      // The body says nothing the gateway uses; read and dropped so the connection is reused.
      await r.body.dump({ limit: 64 * 1024 }).catch(() => {});
      const s = r.statusCode;
      if (s >= 200 && s < 300) {
        const out: string[] = [];
        for (const n of this.copy) {
          const v = r.headers[n];
          if (v !== undefined) out.push(n, Array.isArray(v) ? v.join(', ') : v);
        }
        const id = this.s.identityHeader !== undefined ? r.headers[this.s.identityHeader.toLowerCase()] : undefined;
        return { kind: 'allow', headers: out, identity: typeof id === 'string' && id !== '' ? id : undefined };
      }
      if (s >= 500) return this.unavailable(`status ${s}`);
      const www = r.headers['www-authenticate'];
      // 401 and redirects (a login page) are "who are you?"; every other refusal is "no".
      return { kind: 'deny', status: s === 401 || (s >= 300 && s < 400) ? 401 : 403, wwwAuthenticate: typeof www === 'string' && /^[\t\x20-\x7e]*$/.test(www) ? www : undefined };
    } catch (e) {
      const err = e as { name?: string; code?: string };
      return this.unavailable(err.name === 'TimeoutError' || err.code === 'UND_ERR_HEADERS_TIMEOUT' || err.code === 'UND_ERR_BODY_TIMEOUT' ? 'timeout' : err.code ?? 'error');
    }
  }

  private unavailable(reason: string): Decision {
    this.log.warn({ authService: this.origin, reason }, 'forward auth service unavailable; refusing requests (fail closed)');
    return { kind: 'unavailable', reason };
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}
