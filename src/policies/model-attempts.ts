import { PassThrough } from 'node:stream';
import { Counter } from 'prom-client';
import { GatewayError } from '../errors.ts';
import type { AttemptPlan, ModelExchange, RequestContext } from '../pipeline/context.ts';
import { FieldGuardStream, splice, type TopLevelFieldScanner } from '../pipeline/json-top-level.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { Lease, Leases } from '../state/leases.ts';
import type { Awaitable, LeaseResult, Store } from '../state/store.ts';
import type { ModelLabel } from '../metering/model-labels.ts';
import { coolingMs } from '../upstreams/provider.ts';
import { fallbackTarget } from '../upstreams/failover.ts';
import type { Target, Upstream } from '../upstreams/upstream.ts';

/**
 * One model-routed request's attempts (the AttemptPlan the proxy follows): candidates in order, each skipped while
 * it cools down (a 429's Retry-After or reset header, shared by every gateway through the store) or while its
 * upstream is at `maxInFlight`; the chosen candidate's model written into the body; the next candidate taken when
 * an attempt fails before any byte reached the client (src/proxy/exchange.ts decides that moment). Cooling is read
 * once per request (one store call for all candidates) and updated locally as this request learns more.
 */

export interface Candidate {
  readonly upstream: Upstream;
  /** The model name the upstream receives; undefined: the client's. */
  readonly model: string | undefined;
  /** Its cooling key when the model is fixed (compiled once); null: built from the client's model per request. */
  readonly key: string | null;
}

/** Per route, compiled once. */
export interface ModelRoute {
  readonly route: string;
  readonly store: Store;
  readonly leases: Leases | null;
  readonly warn: (msg: string, err?: unknown) => void;
  readonly metrics: ModelMetrics;
  readonly label: ModelLabel;
  /** Failover on: statuses (index = status), connection failures, timeouts. */
  readonly statuses: Uint8Array;
  readonly onConnect: boolean;
  readonly onTimeout: boolean;
  readonly cooldown: number;
  readonly maxCooldown: number;
}

const TIMEOUTS = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'ETIMEDOUT']);

export class ModelAttempts implements AttemptPlan {
  private readonly r: ModelRoute;
  private readonly ctx: RequestContext;
  private readonly ai: ModelExchange;
  private readonly cands: readonly Candidate[];
  private readonly body: Buffer;
  private readonly at: { start: number; end: number };
  /** A body larger than the peek: the rest streams once, so only the first attempt can send it. */
  private readonly streamed: TopLevelFieldScanner | null;
  /** The last body built (a failover to a candidate with the same model reuses it). */
  private lastModel = '';
  private lastBody: Buffer | null = null;
  private cool: number[] = [];
  private i = -1;
  private lease: Lease | null = null;
  private t0 = 0;
  /** Why candidates were passed over without an attempt (the refusal when none is left). */
  private busy: Upstream | null = null;
  private guarded = false;

  constructor(r: ModelRoute, ctx: RequestContext, ai: ModelExchange, cands: readonly Candidate[], body: Buffer, at: { start: number; end: number }, streamed: TopLevelFieldScanner | null) {
    this.r = r;
    this.ctx = ctx;
    this.ai = ai;
    this.cands = cands;
    this.body = body;
    this.at = at;
    this.streamed = streamed;
  }

  start(send: (t: Target) => void, fail: (err: unknown) => void): void {
    let c: Awaitable<number[]>;
    try {
      c = this.r.store.cooling(this.cands.map((x) => this.key(x)));
    } catch (e) {
      c = this.cands.map(() => 0);
      this.r.warn('model failover: cooling state unavailable; trying every candidate', e);
    }
    if (c instanceof Promise) {
      const cancel = this.waiting();
      c.then((v) => { this.cool = v; }, (e) => { this.cool = this.cands.map(() => 0); this.r.warn('model failover: cooling state unavailable; trying every candidate', e); })
        .then(() => { if (cancel()) this.from(0, send, fail); });
      return;
    }
    this.cool = c;
    this.from(0, send, fail);
  }

  next(send: (t: Target) => void, fail: (err: unknown) => void): void {
    this.from(this.i + 1, send, fail);
  }

  shouldFailover(t: Target, status: number, raw: ReadonlyArray<Buffer | string> | null, err: Error | null, sent: boolean): boolean {
    const r = this.r;
    if (err !== null) {
      if (err instanceof GatewayError) return false;
      const code = (err as { code?: string }).code ?? '';
      if (!(TIMEOUTS.has(code) ? r.onTimeout : r.onConnect)) return false;
      if (this.streamed !== null && sent) return false;
    } else {
      // The provider says how long to leave it alone: every gateway sharing the store skips it until then.
      const ms = coolingMs(status, raw, r.cooldown, r.maxCooldown);
      if (ms > 0) {
        this.cool[this.i] = ms;
        const k = this.key(this.cands[this.i]);
        try {
          const w = r.store.coolDown(k, ms);
          if (w instanceof Promise) w.catch((e) => r.warn('model failover: could not share a cooldown', e));
        } catch (e) { r.warn('model failover: could not share a cooldown', e); }
      }
      if (status >= r.statuses.length || r.statuses[status] !== 1 || this.streamed !== null) return false;
    }
    for (let j = this.i + 1; j < this.cands.length; j++) if (!(this.cool[j] > 0)) return true;
    return false;
  }

  ended(t: Target, status: number, err: unknown, failedOver: boolean): void {
    if (this.lease !== null) { this.r.leases!.release(this.lease); this.lease = null; }
    const code = err === null || err === undefined ? '' : (err as { code?: string }).code ?? '';
    const result = status >= 500 ? 'http_5xx' : status === 429 ? 'http_429' : status >= 400 ? 'http_4xx' : status > 0 ? 'ok'
      : this.ctx.clientGone ? 'client_gone' : TIMEOUTS.has(code) ? 'timeout' : err instanceof GatewayError ? 'refused' : 'connect';
    this.record(t.upstream.name, this.ai.model, result, status, performance.now() - this.t0);
    void failedOver;
  }

  /** A lease, a target and a body for the first usable candidate from `i` on; `fail` when none is left. */
  private from(i: number, send: (t: Target) => void, fail: (err: unknown) => void): void {
    const ctx = this.ctx;
    for (; i < this.cands.length; i++) {
      if (ctx.clientGone) return;
      const c = this.cands[i];
      if (this.cool[i] > 0) { this.record(c.upstream.name, c.model ?? this.ai.requested, 'cooling', 0, 0); continue; }
      if (c.upstream.maxInFlight > 0 && this.r.leases !== null) {
        let got: Awaitable<LeaseResult & { lease: Lease | null }>;
        try {
          got = this.r.leases.acquire(`u:${c.upstream.name}`, c.upstream.maxInFlight);
        } catch (e) {
          this.r.warn('upstream maxInFlight: lease store unavailable; failing open', e);
          got = { ok: true, inFlight: 0, lease: null };
        }
        if (got instanceof Promise) {
          const cancel = this.waiting();
          const at = i;
          got.then((x) => x, (e) => { this.r.warn('upstream maxInFlight: lease store unavailable; failing open', e); return { ok: true, inFlight: 0, lease: null }; })
            .then((x) => {
              if (!cancel()) { if (x.lease !== null) this.r.leases!.release(x.lease); return; }
              if (this.leased(at, x) && this.go(at, send)) return;
              this.from(at + 1, send, fail);
            });
          return;
        }
        if (!this.leased(i, got)) continue;
      }
      if (this.go(i, send)) return;
    }
    fail(this.exhausted());
  }

  private leased(i: number, x: LeaseResult & { lease: Lease | null }): boolean {
    if (x.ok) {
      this.lease = x.lease;
      // However the exchange ends, an attempt's lease goes back (normally `ended` already gave it).
      if (x.lease !== null && !this.guarded) { this.guarded = true; this.ctx.finally(() => { if (this.lease !== null) { this.r.leases!.release(this.lease); this.lease = null; } }); }
      return true;
    }
    const c = this.cands[i];
    this.busy = c.upstream;
    this.record(c.upstream.name, c.model ?? this.ai.requested, 'busy', 0, 0);
    return false;
  }

  /** Sends candidate i if its upstream has a target; false (lease given back) when it has none. */
  private go(i: number, send: (t: Target) => void): boolean {
    const c = this.cands[i];
    const t = c.upstream.pick() ?? fallbackTarget(c.upstream);
    if (t === null) {
      if (this.lease !== null) { this.r.leases!.release(this.lease); this.lease = null; }
      this.record(c.upstream.name, c.model ?? this.ai.requested, 'unavailable', 0, 0);
      return false;
    }
    this.i = i;
    const ai = this.ai;
    ai.upstream = t.upstream.name;
    ai.model = c.model ?? ai.requested;
    ai.label = this.r.label(ai.model);
    this.ctx.forwardBody = this.bodyFor(ai.model);
    this.t0 = performance.now();
    send(t);
    return true;
  }

  /** The client's body with this candidate's model name spliced in (the rest byte for byte). */
  private bodyFor(model: string): RequestContext['forwardBody'] {
    const same = model === this.ai.requested;
    if (this.streamed !== null) {
      const prefix = same ? this.body : splice(this.body, this.at, Buffer.from(JSON.stringify(model)));
      const req = this.ctx.req;
      const out = new PassThrough();
      out.write(prefix);
      const guard = new FieldGuardStream(this.streamed, 'model');
      const fail = (e?: Error) => out.destroy(e ?? new Error('request body aborted'));
      req.once('error', fail).once('aborted', fail);
      guard.once('error', fail);
      req.pipe(guard).pipe(out);
      const cl = req.headers['content-length'];
      const length = cl === undefined ? -1 : Number(cl) + prefix.length - this.body.length;
      return { open: () => ({ body: out, length }) };
    }
    if (this.lastBody === null || this.lastModel !== model) {
      this.lastBody = same ? this.body : splice(this.body, this.at, Buffer.from(JSON.stringify(model)));
      this.lastModel = model;
    }
    const body = this.lastBody;
    return { open: () => ({ body, length: body.length }) };
  }

  /** A candidate's cooling key: its upstream and the model it receives (providers limit per model). */
  private key(c: Candidate): string {
    return c.key ?? coolingKey(c.upstream.name, this.ai.requested);
  }

  /** While a store call is out: a client that leaves cancels what would follow. Returns "still wanted?". */
  private waiting(): () => boolean {
    let gone = false;
    this.ctx.abortUpstream = () => { gone = true; };
    return () => { this.ctx.abortUpstream = null; return !gone && !this.ctx.clientGone; };
  }

  private record(upstream: string, model: string, result: string, status: number, ms: number): void {
    this.ai.attempts.push({ upstream, model, result, status, ms: Math.round(ms * 100) / 100 });
    this.r.metrics.count(this.r.route, upstream, this.r.label(model), result);
  }

  /** What the client reads when no candidate can take the request. */
  private exhausted(): GatewayError {
    let wait = Infinity;
    for (const c of this.cool) if (c > 0) wait = Math.min(wait, c);
    if (this.busy !== null && wait === Infinity) {
      const up = this.busy;
      return new GatewayError('concurrency_limited', `The upstream "${up.name}" has ${up.maxInFlight} requests in flight, its limit; retry shortly.`, {
        headers: { 'retry-after': '1', 'ratelimit-policy': `"upstream-${up.name}";q=${up.maxInFlight};qu="concurrent-requests"`, ratelimit: `"upstream-${up.name}";r=0;t=1` },
        extra: { policy: `upstream-${up.name}`, limit: up.maxInFlight, retryAfter: 1 },
      });
    }
    const secs = wait === Infinity ? 1 : Math.max(1, Math.ceil(wait / 1000));
    return new GatewayError('upstream_unavailable', `No provider for model "${this.ai.requested}" can take the request now (cooling down after rate limits or failures, or unavailable); retry in ${secs} s.`, { headers: { 'retry-after': String(secs) }, extra: { model: this.ai.requested, retryAfter: secs } });
  }
}


export function coolingKey(upstream: string, model: string): string {
  return `${upstream}\t${model}`;
}

/** Model-routing metrics, registered once per registry (reloads compile routes again; instruments stay). */
export class ModelMetrics {
  readonly attempts: Counter<string>;
  /** Label children by route, upstream, model label and result: prom-client hashes labels on every labels() call. */
  private readonly children = new Map<string, { inc(): void }>();
  count(route: string, upstream: string, model: string, result: string): void {
    const k = `${route}\t${upstream}\t${model}\t${result}`;
    let c = this.children.get(k);
    if (c === undefined) { c = this.attempts.labels(route, upstream, model, result); this.children.set(k, c); }
    c.inc();
  }
  constructor(m: Metrics) {
    this.attempts = new Counter({
      name: 'gatehouse_model_attempts_total',
      help: 'Attempts of model-routed requests by route, upstream, model (names the config knows, else "other") and result (ok, http_4xx, http_429, http_5xx, connect, timeout; skipped: cooling, busy, unavailable; client_gone, refused).',
      labelNames: ['route', 'upstream', 'model', 'result'],
      registers: [m.registry],
    });
  }
}

const cache = new WeakMap<Metrics, ModelMetrics>();
export function modelMetrics(m: Metrics): ModelMetrics {
  let x = cache.get(m);
  if (x === undefined) { x = new ModelMetrics(m); cache.set(m, x); }
  return x;
}
