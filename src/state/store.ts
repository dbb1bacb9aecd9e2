/**
 * The state behind rate limits, quotas and usage records (DESIGN.md "State behind one interface").
 * `memory` answers synchronously (a plain value, no promise); `redis` answers with a promise that
 * settles within the configured deadline or rejects. Callers handle both shapes so the memory path
 * never allocates a promise.
 */
export type Awaitable<T> = T | Promise<T>;

/**
 * One rate-limit tier, fixed at config load. GCRA with emission interval `windowMs / limit` and a
 * tolerance of one whole window, so a full bucket admits `limit` units at once.
 */
export interface TierSpec {
  /** Stable id of the tier (plan or route, unit, window); the stored key is partition + id. */
  readonly id: string;
  readonly limit: number;
  readonly windowMs: number;
  /**
   * Units one request takes at admission. 0 means "admit while not exhausted, charge later"
   * (token limits: the actual tokens are charged with `charge` once the response is known).
   */
  readonly cost: number;
}

export interface TierState {
  /** Units still available after this decision (0 when denied). */
  remaining: number;
  /** Milliseconds until the tier is fully replenished. */
  resetMs: number;
  /** Denied: milliseconds until a request of this cost would pass; 0 when this tier allowed it. */
  retryMs: number;
}

export interface ConsumeResult {
  allowed: boolean;
  /** One state per tier, in the order given. */
  tiers: TierState[];
}

/** `cost` counts integer micro-units of the pricing currency (1 USD = 1,000,000), never a float. */
export type QuotaKind = 'requests' | 'tokens' | 'bytes' | 'cost';
export type QuotaPeriod = 'day' | 'month';

export interface QuotaSpec {
  readonly kind: QuotaKind;
  readonly period: QuotaPeriod;
  readonly limit: number;
}

export interface ReserveResult {
  ok: boolean;
  /** The period each quota was reserved in (e.g. "d20261125", "m202611"); settle and refund use the same ones. */
  periods: string[];
  /** Present when refused: which quota, how much is used, and when its period ends (epoch ms). */
  denied?: { index: number; used: number; resetAt: number };
}

/** What one request used, recorded per consumer, route and usage type. */
export interface UsageDelta {
  route: string;
  requests: number;
  tokens: number;
  inputTokens: number;
  outputTokens: number;
  bytes: number;
  /** Tokens were estimated (no usage block arrived). */
  estimated: boolean;
  /** What the request cost, in micro-units of the pricing currency (0 when unpriced). */
  costMicros?: number;
  /** Answered from the response cache (0 tokens, 0 cost). */
  cached?: boolean;
  /** The upstream and model that answered (model routes); records are then kept per route, upstream and model. */
  upstream?: string;
  model?: string;
}

export interface UsageRow { day: string; route: string; type: string; value: number; upstream?: string; model?: string }

/** A concurrency lease decision: taken or not, and how many leases the key holds now (this one included). */
export interface LeaseResult { ok: boolean; inFlight: number }

export interface QuotaStatus { kind: QuotaKind; period: QuotaPeriod; limit: number; used: number; resetAt: string }

export interface Store {
  readonly kind: 'memory' | 'redis';
  /**
   * Rate limits: decides all tiers at once. Either every tier admits the request and each is
   * consumed, or nothing is consumed. `partitions[i]` is what tier i is keyed by ("c:acme", "ip:…").
   */
  consume(partitions: readonly string[], tiers: readonly TierSpec[]): Awaitable<ConsumeResult>;
  /** Charges `amount` units to each tier unconditionally (tokens settled after the response). */
  charge(partitions: readonly string[], tiers: readonly TierSpec[], amount: number): Awaitable<void>;
  /** Quotas: reserves `amounts[i]` of each quota for `subject`, all or nothing, in the current UTC period. */
  reserve(subject: string, quotas: readonly QuotaSpec[], amounts: readonly number[]): Awaitable<ReserveResult>;
  /** Replaces reservations by actual use (`deltas[i]` = actual − reserved) and records usage. */
  settle(subject: string, quotas: readonly QuotaSpec[], periods: readonly string[], deltas: readonly number[], usage: UsageDelta | null): Awaitable<void>;
  /** Gives reservations back (5xx, connection failure, client gone before any response). */
  refund(subject: string, quotas: readonly QuotaSpec[], periods: readonly string[], amounts: readonly number[]): Awaitable<void>;
  /** Current use of each quota (admin). */
  quotaStatus(subject: string, quotas: readonly QuotaSpec[]): Promise<QuotaStatus[]>;
  /** Usage records of `subject` for the UTC days from..to ("2026-11-25"), inclusive. */
  usage(subject: string, days: readonly string[]): Promise<UsageRow[]>;
  /**
   * Concurrency leases: takes lease `id` under `key` when fewer than `limit` unexpired leases are held. A lease
   * expires `ttlMs` after it was taken or last renewed, so a gateway that dies without releasing never holds a
   * slot for longer than that.
   */
  acquire(key: string, limit: number, id: string, ttlMs: number): Awaitable<LeaseResult>;
  release(key: string, id: string): Awaitable<void>;
  /** Extends live leases (`[key, id]` pairs) by `ttlMs` from now; a lease that already expired is not revived. */
  renew(leases: ReadonlyArray<readonly [string, string]>, ttlMs: number): Awaitable<void>;
  /** Marks `key` as cooling down for `ms` from now (model failover); never shortens a longer cooldown. */
  coolDown(key: string, ms: number): Awaitable<void>;
  /** Milliseconds each key still cools down (0: not cooling). */
  cooling(keys: readonly string[]): Awaitable<number[]>;
  /** Response cache: the entry stored under `key`, or null. */
  cacheGet(key: string): Awaitable<Buffer | null>;
  cachePut(key: string, value: Buffer, ttlMs: number): Awaitable<void>;
  /** Opens the store's connections (the runtime calls it when it starts serving; building a store opens nothing). */
  connect(): void;
  /** Resolves true once the store can answer (Redis connected), false after `timeoutMs`. */
  ready(timeoutMs: number): Promise<boolean>;
  close(): Promise<void>;
}

/** Thrown (or rejected with) when the store cannot answer in time; the policy's onError decides. */
export class StoreError extends Error {
  readonly op: string;
  constructor(op: string, message: string) {
    super(message);
    this.name = 'StoreError';
    this.op = op;
  }
}

// ---- calendar periods (UTC) -------------------------------------------------------

/** Period id and end (epoch ms) of the UTC day or month containing `nowMs`. */
export function periodOf(period: QuotaPeriod, nowMs: number): { id: string; end: number } {
  const d = new Date(nowMs);
  const y = d.getUTCFullYear();
  const m = d.getUTCMonth();
  if (period === 'day') {
    const day = d.getUTCDate();
    return { id: `d${y}${pad(m + 1)}${pad(day)}`, end: Date.UTC(y, m, day + 1) };
  }
  return { id: `m${y}${pad(m + 1)}`, end: Date.UTC(y, m + 1, 1) };
}

/** End of the period with this id (epoch ms). */
export function periodEnd(id: string): number {
  const y = Number(id.slice(1, 5));
  const m = Number(id.slice(5, 7)) - 1;
  return id[0] === 'd' ? Date.UTC(y, m, Number(id.slice(7, 9)) + 1) : Date.UTC(y, m + 1, 1);
}

/** "2026-11-25" for a UTC day. */
export function dayOf(nowMs: number): string {
  return new Date(nowMs).toISOString().slice(0, 10);
}

function pad(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

/** Usage types as recorded (and queried on the admin API). */
export const USAGE_TYPES = ['requests', 'tokens', 'input_tokens', 'output_tokens', 'bytes', 'estimated', 'cost_micros', 'cache_hits'] as const;

export function usageFields(u: UsageDelta): Array<[string, number]> {
  const out: Array<[string, number]> = [];
  if (u.requests) out.push(['requests', u.requests]);
  if (u.tokens) out.push(['tokens', u.tokens]);
  if (u.inputTokens) out.push(['input_tokens', u.inputTokens]);
  if (u.outputTokens) out.push(['output_tokens', u.outputTokens]);
  if (u.bytes) out.push(['bytes', u.bytes]);
  if (u.estimated) out.push(['estimated', 1]);
  if (u.costMicros) out.push(['cost_micros', u.costMicros]);
  if (u.cached) out.push(['cache_hits', 1]);
  return out;
}

/**
 * The dimension a usage record is kept under: the route, or route, upstream and model (tab-separated) when the
 * request went through model routing. Names come from the config (routes, upstreams) or are bounded by it (models).
 */
export function usageDimension(u: UsageDelta): string {
  return u.upstream !== undefined ? `${u.route}\t${u.upstream}\t${u.model ?? ''}` : u.route;
}

/** The parts of a stored dimension (see usageDimension). */
export function splitDimension(d: string): { route: string; upstream?: string; model?: string } {
  const t = d.indexOf('\t');
  if (t < 0) return { route: d };
  const t2 = d.indexOf('\t', t + 1);
  return { route: d.slice(0, t), upstream: d.slice(t + 1, t2), model: d.slice(t2 + 1) };
}
