import { Pool } from 'undici';
import type { UpstreamConfig } from '../config/schema.ts';

export interface Timeouts { connect: number; response: number; idle: number }

/** One backend address with its own connection pool. */
export class Target {
  readonly url: string;
  /** scheme://host:port: the label used in logs and the admin API. */
  readonly origin: string;
  /** Host header sent upstream unless the route preserves the client's. */
  readonly host: string;
  /** Path prefix from the target URL (e.g. http://svc:8000/api), prepended to forwarded paths. */
  readonly basePath: string;
  weight: number;
  readonly pool: Pool;
  inflight = 0;
  healthy = true;

  constructor(url: string, weight: number, cfg: UpstreamConfig, connectTimeout: number) {
    const u = new URL(url);
    this.url = url;
    this.origin = u.origin;
    this.host = u.host;
    this.basePath = u.pathname === '/' ? '' : u.pathname.replace(/\/$/, '');
    this.weight = weight;
    // pipelining off: one request per connection at a time, so a slow response never blocks another.
    this.pool = new Pool(u.origin, {
      connections: cfg.pool.connections,
      pipelining: 1,
      keepAliveTimeout: cfg.pool.keepAlive,
      keepAliveMaxTimeout: Math.max(cfg.pool.keepAlive, 1000),
      connect: { timeout: connectTimeout },
      // the gateway enforces its own timeouts per request (dispatch options)
      headersTimeout: 0,
      bodyTimeout: 0,
    });
  }
}

/** A named group of targets behind one name in the config. */
export class Upstream {
  readonly name: string;
  readonly targets: Target[];
  readonly timeouts: Timeouts;
  /** The upstream-duration histogram child, resolved once (label hashing per request is measurable). */
  durationMetric: { observe(v: number): void } = { observe() {} };
  private rr = 0;

  constructor(name: string, cfg: UpstreamConfig, defaults: Timeouts) {
    this.name = name;
    this.timeouts = { ...defaults, ...cfg.timeout };
    this.targets = cfg.targets.map((t) => new Target(t.url, t.weight, cfg, this.timeouts.connect));
  }

  /** The next target to try, skipping unhealthy and standby (weight 0) targets; null when none can serve. */
  pick(): Target | null {
    const ts = this.targets;
    for (let i = 0; i < ts.length; i++) {
      const t = ts[(this.rr + i) % ts.length];
      if (t.weight > 0 && t.healthy) { this.rr = (this.rr + i + 1) % ts.length; return t; }
    }
    return null;
  }

  async close(): Promise<void> {
    await Promise.all(this.targets.map((t) => t.pool.close().catch(() => t.pool.destroy())));
  }
}
