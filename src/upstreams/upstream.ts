import { Pool } from './undici.ts';
import type { Timeouts, UpstreamConfig } from './schema.ts';
import { GatewayError } from '../errors.ts';
import { createBalancer, type Balancer } from './balancer.ts';
import { CircuitBreaker, CLOSED, HALF_OPEN, OPEN, type CircuitState } from './circuit-breaker.ts';
import { PassiveHealth } from './ejection.ts';
import { HealthChecker } from './health-checker.ts';
import { RetryPolicy } from './retry-policy.ts';
import { providerHeaders, type HeaderEdit } from './provider.ts';

export type { Timeouts };

/** How one exchange went, for passive health and circuit breakers. */
export const OUTCOME_NEUTRAL = 0; // says nothing about the upstream (the client left, the gateway refused the body)
export const OUTCOME_OK = 1;
export const OUTCOME_FAIL = 2; // connect error, reset, timeout, or a 5xx answer
export type Outcome = typeof OUTCOME_NEUTRAL | typeof OUTCOME_OK | typeof OUTCOME_FAIL;

/** Where state changes go: logs and metrics (see telemetry.ts). Never called per request on the happy path. */
export interface UpstreamEvents {
  circuit(up: Upstream, target: Target | null, from: CircuitState, to: CircuitState): void;
  ejected(t: Target, ms: number): void;
  readmitted(t: Target): void;
  health(t: Target, healthy: boolean): void;
  /** An active health check finished: its verdict and how long it took (seconds). */
  check(t: Target, ok: boolean, seconds: number): void;
  available(t: Target): void;
  weights(up: Upstream): void;
  retry(up: Upstream): void;
  budgetExhausted(up: Upstream): void;
  fallback(up: Upstream, to: Upstream): void;
  unavailable(up: Upstream, code: string): void;
}

const NO_EVENTS: UpstreamEvents = {
  circuit() {}, ejected() {}, readmitted() {}, health() {}, check() {}, available() {}, weights() {}, retry() {}, budgetExhausted() {}, fallback() {}, unavailable() {},
};

/** One backend address with its own connection pool, and its health as seen by checks and traffic. */
export class Target {
  readonly upstream: Upstream;
  readonly index: number;
  /** 1 << index (0 past 31 targets): a request's retries exclude the targets it already tried with this mask. */
  readonly bit: number;
  readonly url: string;
  /** scheme://host:port: used for the pool. */
  readonly origin: string;
  /** origin + base path, never credentials: the name in logs, metric labels and the admin API. */
  readonly label: string;
  /** Host header sent upstream unless the route preserves the client's. */
  readonly host: string;
  /** Path prefix from the target URL (e.g. http://svc:8000/api), prepended to forwarded paths. */
  readonly basePath: string;
  weight: number;
  /** The weight the config gives (the admin API may have changed `weight` since). */
  readonly configuredWeight: number;
  readonly pool: Pool;
  inflight = 0;
  /** Active health checks' verdict (true until a check says otherwise). */
  healthy = true;
  /** Fast path for balancers: healthy, not ejected, circuit closed. When false, canServe() decides. */
  ready = true;
  passive: PassiveHealth | null;
  breaker: CircuitBreaker | null;
  checker: HealthChecker | null = null;
  private timer: NodeJS.Timeout | null = null;

  constructor(upstream: Upstream, index: number, url: string, weight: number, cfg: UpstreamConfig, connectTimeout: number) {
    const u = new URL(url);
    this.upstream = upstream;
    this.index = index;
    this.bit = index < 31 ? 1 << index : 0;
    this.url = url;
    this.origin = u.origin;
    this.host = u.host;
    this.basePath = u.pathname === '/' ? '' : u.pathname.replace(/\/$/, '');
    this.label = u.origin + this.basePath;
    this.weight = weight;
    this.configuredWeight = weight;
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
    this.passive = cfg.passiveHealth ? new PassiveHealth(cfg.passiveHealth) : null;
    this.breaker = cfg.circuitBreaker ? new CircuitBreaker(cfg.circuitBreaker, (from, to) => this.onCircuit(from, to)) : null;
  }

  /**
   * Takes over what `prev` (the same URL in the previous generation's upstream) has learned, where the
   * settings that shaped it did not change: the health verdict, an ejection in progress, the circuit (its
   * transitions now reach this target), and a weight the admin API set while the configured one stayed.
   */
  adopt(prev: Target, same: { passive: boolean; breaker: boolean }): void {
    this.healthy = prev.healthy;
    if (prev.configuredWeight === this.configuredWeight) this.weight = prev.weight;
    if (same.passive && prev.passive !== null) this.passive = prev.passive;
    if (same.breaker && prev.breaker !== null) {
      this.breaker = prev.breaker;
      this.breaker.listen((from, to) => this.onCircuit(from, to));
    }
    this.refresh();
    if ((this.passive !== null && this.passive.ejectedUntil !== 0) || (this.breaker !== null && this.breaker.state === OPEN)) this.wake();
  }

  /** Slow path of picking, for a target that is not `ready`: ends a finished ejection, lets a probe through a circuit due for one. */
  canServe(): boolean {
    if (!this.healthy) return false;
    const p = this.passive;
    if (p !== null && p.ejectedUntil !== 0) {
      const now = performance.now();
      if (now < p.ejectedUntil) return false;
      this.readmit(now);
    }
    if (this.breaker !== null && !this.breaker.canPass(performance.now())) return false;
    this.refresh();
    return true;
  }

  /** Recomputes `ready` after any state change. */
  refresh(): void {
    const ready = this.healthy && (this.passive === null || this.passive.ejectedUntil === 0) && (this.breaker === null || this.breaker.state === CLOSED);
    if (ready === this.ready) return;
    this.ready = ready;
    this.upstream.events.available(this);
  }

  setHealthy(healthy: boolean): void {
    if (this.healthy === healthy) return;
    this.healthy = healthy;
    this.upstream.events.health(this, healthy);
    this.refresh();
  }

  /** Records an exchange; `final` is false for an attempt that is about to be retried. */
  record(outcome: Outcome, startedAt: number): void {
    if (outcome === OUTCOME_NEUTRAL) {
      this.breaker?.record(null, startedAt, 0);
      return;
    }
    if (this.passive === null && this.breaker === null) return;
    const failed = outcome === OUTCOME_FAIL;
    const now = performance.now();
    if (this.passive !== null) {
      const ms = this.passive.record(failed, startedAt, now);
      if (ms > 0) {
        this.upstream.events.ejected(this, ms);
        this.refresh();
        this.wake();
      }
    }
    this.breaker?.record(failed, startedAt, now);
  }

  /** Whether this target can serve right now, for status reports (does not change state). */
  state(now: number): 'up' | 'unhealthy' | 'ejected' | 'circuit_open' | 'half_open' {
    if (!this.healthy) return 'unhealthy';
    if (this.passive !== null && this.passive.ejectedUntil !== 0 && now < this.passive.ejectedUntil) return 'ejected';
    const b = this.breaker;
    if (b !== null && b.state !== CLOSED) return b.state === OPEN && now < b.openUntil ? 'circuit_open' : 'half_open';
    return 'up';
  }

  startChecks(cfg: NonNullable<UpstreamConfig['health']>): void {
    this.checker = new HealthChecker(this, cfg, (h) => this.setHealthy(h), (ok, seconds) => this.upstream.events.check(this, ok, seconds));
    this.checker.start();
  }

  async close(): Promise<void> {
    if (this.timer !== null) clearTimeout(this.timer);
    await this.checker?.stop();
    await this.pool.close().catch(() => this.pool.destroy());
  }

  private readmit(now: number): void {
    this.passive!.readmit(now);
    this.upstream.events.readmitted(this);
    this.refresh();
  }

  private onCircuit(from: CircuitState, to: CircuitState): void {
    this.upstream.events.circuit(this.upstream, this, from, to);
    this.refresh();
    if (to === OPEN) this.wake();
  }

  /**
   * Ends ejections and half-opens circuits on time, so state, logs and metrics do not wait for the next request
   * to notice. One unref'd timer per target, set for the earliest due change; cleared on close.
   */
  private wake(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    let due = Infinity;
    if (this.passive !== null && this.passive.ejectedUntil !== 0) due = this.passive.ejectedUntil;
    if (this.breaker !== null && this.breaker.state === OPEN) due = Math.min(due, this.breaker.openUntil);
    if (due === Infinity || this.upstream.closed) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      if (this.upstream.closed) return;
      const now = performance.now();
      if (this.passive !== null && this.passive.ejectedUntil !== 0 && now >= this.passive.ejectedUntil) this.readmit(now);
      if (this.breaker !== null && this.breaker.state === OPEN) this.breaker.canPass(now);
      this.wake();
    }, Math.max(0, due - performance.now()) + 1);
    this.timer.unref();
  }
}

/** A named group of targets behind one name in the config, with its balancer, circuit, retry policy and fallbacks. */
export class Upstream {
  readonly name: string;
  readonly targets: Target[];
  readonly timeouts: Timeouts;
  readonly balance: UpstreamConfig['balance'];
  readonly balancer: Balancer;
  /** The upstream-wide circuit: counts each request's final outcome (after retries). */
  breaker: CircuitBreaker | null;
  readonly retry: RetryPolicy | null;
  /** Upstreams tried, in order, when none of this one's targets can serve (the `fallback:` chain). */
  fallbacks: Upstream[] = [];
  readonly degraded: UpstreamConfig['degraded'];
  readonly critical: boolean;
  readonly health: UpstreamConfig['health'];
  readonly events: UpstreamEvents;
  /** An LLM provider's credential injection (client credentials stripped, the provider key set); null otherwise. */
  readonly credentials: HeaderEdit | null;
  /** `maxInFlight`: requests in flight to this upstream at most (a store lease per exchange); 0 = unlimited. */
  readonly maxInFlight: number;
  /** Histogram child for this upstream's response time, resolved once by the gateway (no label lookup per request). */
  durationMetric: { observe(seconds: number): void } = { observe() {} };
  closed = false;
  private timer: NodeJS.Timeout | null = null;

  constructor(name: string, cfg: UpstreamConfig, events: UpstreamEvents = NO_EVENTS) {
    this.name = name;
    this.events = events;
    this.timeouts = cfg.timeouts;
    this.balance = cfg.balance;
    this.targets = cfg.targets.map((t, i) => new Target(this, i, t.url, t.weight, cfg, this.timeouts.connect));
    this.balancer = createBalancer(cfg.balance, this.targets.length);
    this.breaker = cfg.circuitBreaker ? new CircuitBreaker(cfg.circuitBreaker, (from, to) => this.onCircuit(from, to)) : null;
    this.retry = cfg.retry ? new RetryPolicy(cfg.retry) : null;
    this.degraded = cfg.degraded;
    this.critical = cfg.critical;
    this.health = cfg.health;
    this.credentials = providerHeaders(cfg);
    this.maxInFlight = cfg.maxInFlight ?? 0;
  }

  /**
   * The target for the next exchange, or null when none can serve (circuit open, every target down).
   * `exclude`: targets this request already tried. Takes the half-open probe slots the pick uses.
   */
  pick(exclude = 0): Target | null {
    const b = this.breaker;
    if (b !== null && b.state !== CLOSED && !b.canPass(performance.now())) return null;
    const t = this.balancer.pick(this.targets, exclude) as Target | null;
    if (t === null) return null;
    if (!t.ready && t.breaker !== null) t.breaker.acquire();
    if (b !== null && b.state !== CLOSED) b.acquire();
    return t;
  }

  /** An exchange's outcome. `final`: no retry follows, so it is also the request's outcome for the upstream-wide circuit. */
  report(t: Target, outcome: Outcome, startedAt: number, final: boolean): void {
    t.record(outcome, startedAt);
    if (final) this.recordFinal(outcome, startedAt);
  }

  recordFinal(outcome: Outcome, startedAt: number): void {
    const b = this.breaker;
    if (b === null) return;
    if (outcome === OUTCOME_NEUTRAL) b.record(null, startedAt, 0);
    else b.record(outcome === OUTCOME_FAIL, startedAt, performance.now());
  }

  /**
   * Why nothing can serve, as the client will read it: `circuit_open` when circuits are what stop traffic,
   * else `upstream_unavailable`; Retry-After is the time until the first circuit half-opens or ejection ends.
   * `degraded:` replaces the message (and status) with the operator's words.
   */
  unavailableError(now = performance.now()): GatewayError {
    let code: 'circuit_open' | 'upstream_unavailable' = 'upstream_unavailable';
    let wait = Infinity;
    const b = this.breaker;
    if (b !== null && b.state !== CLOSED) {
      code = 'circuit_open';
      wait = b.retryAfterMs(now);
    } else {
      let serving = 0;
      let open = 0;
      for (const t of this.targets) {
        if (t.weight === 0) continue;
        serving++;
        let ms = 5000;
        if (t.breaker !== null && t.breaker.state !== CLOSED) { open++; ms = t.breaker.retryAfterMs(now); }
        else if (t.passive !== null && t.passive.ejectedUntil !== 0) ms = t.passive.ejectedUntil - now;
        else if (!t.healthy && this.health) ms = this.health.interval;
        wait = Math.min(wait, ms);
      }
      if (serving > 0 && open === serving) code = 'circuit_open';
    }
    if (wait === Infinity) wait = 5000;
    const detail = this.degraded?.message ?? (code === 'circuit_open'
      ? 'The upstream service is failing; requests to it are paused until it recovers.'
      : 'No healthy instance of the upstream service is available.');
    return new GatewayError(code, detail, { headers: { 'retry-after': String(Math.max(1, Math.ceil(wait / 1000))) }, status: this.degraded?.status });
  }

  /**
   * Carries state over from the previous generation's upstream of the same name, whose config changed:
   * per target URL (see Target.adopt), and the upstream-wide circuit when its settings are the same.
   */
  adopt(prev: Upstream, prevCfg: UpstreamConfig, cfg: UpstreamConfig): void {
    const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
    const flags = { passive: same(prevCfg.passiveHealth, cfg.passiveHealth), breaker: same(prevCfg.circuitBreaker, cfg.circuitBreaker) };
    for (const t of this.targets) {
      const p = prev.targets.find((x) => x.url === t.url);
      if (p !== undefined) t.adopt(p, flags);
    }
    if (flags.breaker && prev.breaker !== null) {
      this.breaker = prev.breaker;
      this.breaker.listen((from, to) => this.onCircuit(from, to));
    }
  }

  /** Replaces weights (admin API: blue-green and canary switches). Connections and in-flight requests are untouched. */
  setWeights(weights: readonly number[]): void {
    if (weights.length !== this.targets.length) throw new Error('one weight per target');
    this.targets.forEach((t, i) => { t.weight = weights[i]; });
    this.balancer.reset();
    this.events.weights(this);
  }

  /** Starts background health checks (on listen, not at compile: `gatehouse validate` must not probe anything). */
  start(): void {
    if (!this.health || this.closed) return;
    for (const t of this.targets) if (t.checker === null) t.startChecks(this.health);
  }

  /** Stops background health checks (a reload dropped or replaced this upstream; in-flight requests go on). */
  stopChecks(): void {
    for (const t of this.targets) { void t.checker?.stop(); t.checker = null; }
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer !== null) clearTimeout(this.timer);
    await Promise.all(this.targets.map((t) => t.close()));
  }

  private onCircuit(from: CircuitState, to: CircuitState): void {
    this.events.circuit(this, null, from, to);
    if (to === OPEN) this.halfOpenOnTime();
  }

  /**
   * Half-opens the upstream-wide circuit when its reset time comes, like a target's `wake()`. A timer can fire a
   * little before `performance.now()` reaches the due time (libuv measures from the loop's cached start of the
   * iteration that set it): then it is set again rather than leaving the circuit open until the next request.
   */
  private halfOpenOnTime(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      const b = this.breaker;
      if (this.closed || b === null || b.state !== OPEN) return;
      const now = performance.now();
      if (now < b.openUntil) return this.halfOpenOnTime();
      b.canPass(now);
    }, Math.max(0, this.breaker!.openUntil - performance.now()) + 1);
    this.timer.unref();
  }
}

export { CLOSED, HALF_OPEN, OPEN };
