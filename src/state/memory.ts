import { decide, peek, charged } from './gcra.ts';
import { periodOf, periodEnd, splitDimension, usageDimension, usageFields, type ConsumeResult, type LeaseResult, type QuotaSpec, type QuotaStatus, type ReserveResult, type Store, type TierSpec, type TierState, type UsageDelta, type UsageRow } from './store.ts';

const DAY = 86_400_000;
/** Usage records are kept this long (the Redis store sets the same TTL). */
export const USAGE_RETENTION_DAYS = 62;

export interface MemoryStoreOptions {
  /** Monotonic clock for rate limits (ms). */
  now?: () => number;
  /** Wall clock for calendar quotas (epoch ms). */
  wallClock?: () => number;
  /** How often expired entries are dropped. */
  sweepEveryMs?: number;
  /** Bytes of response-cache entries kept (least recently used out first); default 64 MiB. */
  cacheBytes?: number;
}

/**
 * The embedded store for one process: every operation is synchronous and therefore atomic.
 * Rate-limit state is one number per key; keys whose bucket is full again are swept, so memory
 * follows the number of recently active keys, not all keys ever seen.
 */
export class MemoryStore implements Store {
  readonly kind = 'memory' as const;
  private readonly tats = new Map<string, number>();
  private readonly counters = new Map<string, { used: number; end: number }>();
  private readonly records = new Map<string, Map<string, number>>();
  /** Concurrency leases: key → lease id → expiry (monotonic ms). */
  private readonly leases = new Map<string, Map<string, number>>();
  /** Cooling keys → until (monotonic ms). */
  private readonly cools = new Map<string, number>();
  /** Response cache, in least-recently-used order (a Map keeps insertion order; a hit re-inserts). */
  private readonly cache = new Map<string, { value: Buffer; expires: number }>();
  private cacheSize = 0;
  private readonly cacheBytes: number;
  private readonly now: () => number;
  private readonly wall: () => number;
  private readonly sweeper: NodeJS.Timeout;
  /** Scratch keys for one consume call (the store is synchronous, so one array serves all calls). */
  private keys: string[] = [];

  constructor(opts: MemoryStoreOptions = {}) {
    this.now = opts.now ?? (() => performance.now());
    this.wall = opts.wallClock ?? Date.now;
    this.cacheBytes = opts.cacheBytes ?? 64 * 1024 * 1024;
    this.sweeper = setInterval(() => this.sweep(), opts.sweepEveryMs ?? 30_000);
    this.sweeper.unref();
  }

  consume(partitions: readonly string[], tiers: readonly TierSpec[]): ConsumeResult {
    const now = this.now();
    const n = tiers.length;
    const states: TierState[] = new Array(n);
    const keys = this.keys;
    keys.length = n;
    let allowed = true;
    const next: number[] = new Array(n);
    for (let i = 0; i < n; i++) {
      const key = partitions[i] + '\u0000' + tiers[i].id;
      keys[i] = key;
      const s: TierState = { remaining: 0, resetMs: 0, retryMs: 0 };
      states[i] = s;
      next[i] = decide(tiers[i], this.tats.get(key) ?? 0, now, s);
      if (next[i] < 0) allowed = false;
    }
    if (allowed) {
      for (let i = 0; i < n; i++) if (tiers[i].cost > 0) this.tats.set(keys[i], next[i]);
    } else {
      // Nothing is consumed; tiers that would have admitted show their current state.
      for (let i = 0; i < n; i++) if (next[i] >= 0) peek(tiers[i], this.tats.get(keys[i]) ?? 0, now, states[i]);
    }
    return { allowed, tiers: states };
  }

  charge(partitions: readonly string[], tiers: readonly TierSpec[], amount: number): void {
    if (amount <= 0) return;
    const now = this.now();
    for (let i = 0; i < tiers.length; i++) {
      const key = partitions[i] + '\u0000' + tiers[i].id;
      this.tats.set(key, charged(tiers[i], this.tats.get(key) ?? 0, now, amount));
    }
  }

  reserve(subject: string, quotas: readonly QuotaSpec[], amounts: readonly number[]): ReserveResult {
    const now = this.wall();
    const periods: string[] = [];
    const ends: number[] = [];
    for (let i = 0; i < quotas.length; i++) {
      const p = periodOf(quotas[i].period, now);
      periods.push(p.id);
      ends.push(p.end);
      const used = this.counters.get(this.qkey(subject, quotas[i], p.id))?.used ?? 0;
      if (used + amounts[i] > quotas[i].limit) return { ok: false, periods, denied: { index: i, used, resetAt: p.end } };
    }
    for (let i = 0; i < quotas.length; i++) {
      const key = this.qkey(subject, quotas[i], periods[i]);
      const c = this.counters.get(key);
      if (c) c.used += amounts[i];
      else this.counters.set(key, { used: amounts[i], end: ends[i] });
    }
    return { ok: true, periods };
  }

  settle(subject: string, quotas: readonly QuotaSpec[], periods: readonly string[], deltas: readonly number[], usage: UsageDelta | null): void {
    for (let i = 0; i < quotas.length; i++) this.add(subject, quotas[i], periods[i], deltas[i]);
    if (usage === null) return;
    const day = new Date(this.wall()).toISOString().slice(0, 10);
    const rkey = subject + '\u0000' + day;
    let rec = this.records.get(rkey);
    if (!rec) { rec = new Map(); this.records.set(rkey, rec); }
    const dim = usageDimension(usage);
    for (const [type, v] of usageFields(usage)) {
      const f = dim + '\u0000' + type;
      rec.set(f, (rec.get(f) ?? 0) + v);
    }
  }

  refund(subject: string, quotas: readonly QuotaSpec[], periods: readonly string[], amounts: readonly number[]): void {
    for (let i = 0; i < quotas.length; i++) this.add(subject, quotas[i], periods[i], -amounts[i]);
  }

  async quotaStatus(subject: string, quotas: readonly QuotaSpec[]): Promise<QuotaStatus[]> {
    const now = this.wall();
    return quotas.map((q) => {
      const p = periodOf(q.period, now);
      return { kind: q.kind, period: q.period, limit: q.limit, used: this.counters.get(this.qkey(subject, q, p.id))?.used ?? 0, resetAt: new Date(p.end).toISOString() };
    });
  }

  async usage(subject: string, days: readonly string[]): Promise<UsageRow[]> {
    const rows: UsageRow[] = [];
    for (const day of days) {
      const rec = this.records.get(subject + '\u0000' + day);
      if (!rec) continue;
      for (const [f, value] of rec) {
        const [dim, type] = f.split('\u0000');
        rows.push({ day, ...splitDimension(dim), type, value });
      }
    }
    return rows;
  }

  acquire(key: string, limit: number, id: string, ttlMs: number): LeaseResult {
    const now = this.now();
    let held = this.leases.get(key);
    if (held === undefined) { held = new Map(); this.leases.set(key, held); }
    for (const [lid, exp] of held) if (exp <= now) held.delete(lid);
    if (!held.has(id) && held.size >= limit) return { ok: false, inFlight: held.size };
    held.set(id, now + ttlMs);
    return { ok: true, inFlight: held.size };
  }

  release(key: string, id: string): void {
    const held = this.leases.get(key);
    if (held === undefined) return;
    held.delete(id);
    if (held.size === 0) this.leases.delete(key);
  }

  renew(leases: ReadonlyArray<readonly [string, string]>, ttlMs: number): void {
    const now = this.now();
    for (const [key, id] of leases) {
      const held = this.leases.get(key);
      const exp = held?.get(id);
      if (exp !== undefined && exp > now) held!.set(id, now + ttlMs);
    }
  }

  coolDown(key: string, ms: number): void {
    const until = this.now() + ms;
    if ((this.cools.get(key) ?? 0) < until) this.cools.set(key, until);
  }

  cooling(keys: readonly string[]): number[] {
    const now = this.now();
    return keys.map((k) => {
      const until = this.cools.get(k);
      if (until === undefined) return 0;
      if (until <= now) { this.cools.delete(k); return 0; }
      return Math.ceil(until - now);
    });
  }

  cacheGet(key: string): Buffer | null {
    const e = this.cache.get(key);
    if (e === undefined) return null;
    this.cache.delete(key);
    if (e.expires <= this.now()) { this.cacheSize -= e.value.length; return null; }
    this.cache.set(key, e);
    return e.value;
  }

  cachePut(key: string, value: Buffer, ttlMs: number): void {
    if (value.length > this.cacheBytes) return;
    const old = this.cache.get(key);
    if (old !== undefined) { this.cache.delete(key); this.cacheSize -= old.value.length; }
    this.cache.set(key, { value, expires: this.now() + ttlMs });
    this.cacheSize += value.length;
    for (const [k, e] of this.cache) {
      if (this.cacheSize <= this.cacheBytes) break;
      this.cache.delete(k);
      this.cacheSize -= e.value.length;
    }
  }

  /** Bytes the response cache holds (tests, diagnostics). */
  get cachedBytes(): number {
    return this.cacheSize;
  }

  connect(): void {}

  async ready(): Promise<boolean> {
    return true;
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
  }

  /** Number of live rate-limit keys (tests, diagnostics). */
  get size(): number {
    return this.tats.size;
  }

  private add(subject: string, q: QuotaSpec, period: string, delta: number): void {
    if (delta === 0) return;
    const key = this.qkey(subject, q, period);
    const c = this.counters.get(key);
    if (c) c.used = Math.max(0, c.used + delta);
    else if (delta > 0) this.counters.set(key, { used: delta, end: periodEnd(period) });
  }

  private qkey(subject: string, q: QuotaSpec, period: string): string {
    return subject + '\u0000' + q.kind + '\u0000' + period;
  }

  private sweep(): void {
    const now = this.now();
    for (const [k, tat] of this.tats) if (tat <= now) this.tats.delete(k);
    for (const [k, until] of this.cools) if (until <= now) this.cools.delete(k);
    for (const [k, held] of this.leases) {
      for (const [id, exp] of held) if (exp <= now) held.delete(id);
      if (held.size === 0) this.leases.delete(k);
    }
    for (const [k, e] of this.cache) if (e.expires <= now) { this.cache.delete(k); this.cacheSize -= e.value.length; }
    const wall = this.wall();
    for (const [k, c] of this.counters) if (c.end + DAY < wall) this.counters.delete(k);
    const oldest = new Date(wall - USAGE_RETENTION_DAYS * DAY).toISOString().slice(0, 10);
    for (const k of this.records.keys()) if (k.slice(k.indexOf('\u0000') + 1) < oldest) this.records.delete(k);
  }
}
