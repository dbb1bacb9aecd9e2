import { randomBytes } from 'node:crypto';
import type { Logger } from '../observability/logger.ts';
import type { KeyedIdentity, PlanView, RuntimeConsumers } from '../pipeline/policy.ts';
import { generateApiKey, hashApiKey } from '../auth/api-keys.ts';
import { throttledWarn } from '../state/warn.ts';
import { KeyIndex } from './key-index.ts';
import { BackendUnavailable, type ChangeEvent, type ConsumerBackend, type ConsumerRecord, type KeyRecord, type Versioned } from './backend.ts';

/** Keys one consumer may hold at once (rotations with a grace period count until they expire). */
export const MAX_KEYS = 10;
/** How often a lossy backend's counter is compared with ours (a published change lost in transit). */
const CHECK_EVERY_MS = 2000;
/** How long a write waits for its own change to come back through the feed before reloading instead. */
const SETTLE_MS = 1000;

export type RegistryErrorKind = 'not_found' | 'conflict' | 'unavailable' | 'refused';

/** A write the registry refused; the admin API maps `kind` to a problem code. */
export class RegistryError extends Error {
  constructor(readonly kind: RegistryErrorKind, message: string) {
    super(message);
    this.name = 'RegistryError';
  }
}

/** A key as it is handed out: the only time its plaintext exists outside the client. */
export interface IssuedKey {
  keyId: string;
  key: string;
  fingerprint: string;
  expiresAt?: number;
}

export interface RegistryOptions {
  logger: Logger;
  /** Set when writes here would not reach the other processes serving traffic (memory store, several workers). */
  readOnlyReason?: string;
  checkEveryMs?: number;
}

/** The first 8 hex digits of a key's SHA-256: enough to tell keys apart, nothing to find one with. */
export function fingerprint(hash: string): string {
  return hash.slice('sha256:'.length, 'sha256:'.length + 8);
}

/**
 * Consumers and API keys created while the gateway runs: a Runtime part (it outlives reloads), over a memory
 * or Redis backend.
 *
 * Reads come from an in-memory snapshot (records by id, keys in a digest index), so the auth step stays
 * synchronous and a key that matches nothing never leaves the process. The snapshot moves only through the
 * backend's change feed, one change at a time and in version order (a serial chain): an event one past our
 * version fetches that one record; an event further ahead means changes were missed, and everything is
 * reloaded; so is everything whenever the feed is (re)subscribed. For a lossy feed (Redis pub/sub) the
 * counter is also compared every 2 s. Writes are compare-and-set on one record; a write returns once its own
 * change has come back through the feed, so the gateway that took it enforces it from the next request on.
 */
export class ConsumerRegistry implements RuntimeConsumers {
  readonly kind: 'memory' | 'redis';
  /** The backend's counter as far as the snapshot reflects it. */
  version = 0;
  /** False until the first load, and after a failed fetch until a reload succeeds. */
  synced = false;
  private readonly backend: ConsumerBackend;
  private readonly records = new Map<string, Versioned>();
  private readonly index = new KeyIndex();
  private readonly logger: Logger;
  private readonly warn: (msg: string, err?: unknown) => void;
  private readonly readOnlyReason: string | undefined;
  private readonly checkEveryMs: number;
  private chain: Promise<void> = Promise.resolve();
  private reloadQueued = false;
  private loadedOnce = false;
  private readonly firstLoad: Promise<void>;
  private markLoaded!: () => void;
  private readonly waiters = new Set<{ version: number; done: () => void }>();
  private checkTimer: NodeJS.Timeout | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  /** A counter seen ahead of ours at the last check: the change may still be on its way. */
  private suspect = -1;
  private started = false;
  private closed = false;

  constructor(backend: ConsumerBackend, o: RegistryOptions) {
    this.backend = backend;
    this.kind = backend.kind;
    this.logger = o.logger;
    this.warn = throttledWarn(o.logger, 10_000);
    this.readOnlyReason = o.readOnlyReason;
    this.checkEveryMs = o.checkEveryMs ?? CHECK_EVERY_MS;
    this.firstLoad = new Promise((resolve) => { this.markLoaded = resolve; });
  }

  get size(): number {
    return this.index.size;
  }

  lookupDigest(digest: Buffer, plans: PlanView): KeyedIdentity | null {
    return this.index.lookup(digest, plans);
  }

  /** Runtime consumers as the snapshot holds them, by id. */
  list(): Versioned[] {
    return [...this.records.values()].sort((a, b) => (a.record.id < b.record.id ? -1 : a.record.id > b.record.id ? 1 : 0));
  }

  get(id: string): Versioned | undefined {
    return this.records.get(id);
  }

  /** Connects the backend and starts the feed; resolves true once everything is loaded, false after `waitMs` without. */
  start(waitMs: number): Promise<boolean> {
    if (!this.started && !this.closed) {
      this.started = true;
      this.backend.start({ change: (ev) => this.onChange(ev), subscribed: () => this.reload() });
      if (this.backend.lossy) this.checkTimer = setInterval(() => this.check(), this.checkEveryMs).unref();
    }
    if (this.loadedOnce) return Promise.resolve(true);
    return new Promise((resolve) => {
      const t = setTimeout(() => resolve(false), waitMs);
      void this.firstLoad.then(() => { clearTimeout(t); resolve(true); });
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.checkTimer) clearInterval(this.checkTimer);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    for (const w of this.waiters) w.done();
    await this.backend.close();
  }

  // ---- writes ----------------------------------------------------------------------------------------------

  create(id: string, plan: string | undefined): Promise<Versioned> {
    return this.mutate(id, (cur, now) => {
      if (cur !== null) throw new RegistryError('conflict', `Consumer "${id}" already exists.`);
      const iso = new Date(now).toISOString();
      const next: ConsumerRecord = { id, createdAt: iso, updatedAt: iso, keys: [] };
      if (plan !== undefined) next.plan = plan;
      return { next, result: null };
    }).then((r) => r.written!);
  }

  /** `plan` undefined: back to the config's `defaults.plan`. Returns the previous plan and the record. */
  setPlan(id: string, plan: string | undefined): Promise<{ previous: string | undefined; written: Versioned }> {
    return this.mutate(id, (cur, now) => {
      const c = existing(id, cur);
      const next: ConsumerRecord = { ...c, updatedAt: new Date(now).toISOString() };
      if (plan === undefined) delete next.plan; else next.plan = plan;
      return { next, result: c.plan };
    }).then((r) => ({ previous: r.result, written: r.written! }));
  }

  /** Deletes the consumer, and with it every key it had. Returns how many keys that revoked. */
  remove(id: string): Promise<number> {
    return this.mutate(id, (cur) => ({ next: null, result: existing(id, cur).keys.length })).then((r) => r.result);
  }

  addKey(id: string): Promise<IssuedKey> {
    return this.mutate(id, (cur, now) => {
      const c = existing(id, cur);
      if (c.keys.length >= MAX_KEYS) throw new RegistryError('conflict', `Consumer "${id}" already has ${MAX_KEYS} keys; revoke one first.`);
      const { record, issued } = newKey(c.keys, now);
      return { next: { ...c, keys: [...c.keys, record], updatedAt: record.createdAt }, result: issued };
    }).then((r) => r.result);
  }

  revokeKey(id: string, keyId: string): Promise<void> {
    return this.mutate(id, (cur, now) => {
      const c = existing(id, cur);
      if (!c.keys.some((k) => k.id === keyId)) throw new RegistryError('not_found', `Consumer "${id}" has no key "${keyId}".`);
      return { next: { ...c, keys: c.keys.filter((k) => k.id !== keyId), updatedAt: new Date(now).toISOString() }, result: undefined };
    }).then(() => undefined);
  }

  /**
   * Issues a new key in place of `keyId`. Without a grace period the old key is revoked in the same write; with
   * one it keeps working until then (a key already expiring sooner keeps its earlier end).
   */
  rotateKey(id: string, keyId: string, graceMs: number): Promise<{ issued: IssuedKey; oldExpiresAt: number | undefined }> {
    return this.mutate(id, (cur, now) => {
      const c = existing(id, cur);
      const old = c.keys.find((k) => k.id === keyId);
      if (old === undefined) throw new RegistryError('not_found', `Consumer "${id}" has no key "${keyId}".`);
      const kept = graceMs > 0 ? c.keys : c.keys.filter((k) => k !== old);
      if (kept.length >= MAX_KEYS) throw new RegistryError('conflict', `Consumer "${id}" already has ${MAX_KEYS} keys; revoke one first.`);
      const { record, issued } = newKey(c.keys, now);
      let oldExpiresAt: number | undefined;
      const keys = kept.map((k) => {
        if (k !== old) return k;
        oldExpiresAt = Math.min(k.expiresAt ?? Infinity, now + graceMs);
        return { ...k, expiresAt: oldExpiresAt };
      });
      return { next: { ...c, keys: [...keys, record], updatedAt: record.createdAt }, result: { issued, oldExpiresAt } };
    }).then((r) => r.result);
  }

  /**
   * Read, change, compare-and-set; again if the record changed in between. Keys past their expiry are dropped
   * on the way (the lookup already refuses them). Returns once the snapshot reflects the write.
   */
  private async mutate<T>(id: string, change: (cur: ConsumerRecord | null, now: number) => { next: ConsumerRecord | null; result: T }): Promise<{ result: T; written: Versioned | null }> {
    if (this.readOnlyReason !== undefined) throw new RegistryError('refused', this.readOnlyReason);
    if (this.closed) throw new RegistryError('unavailable', 'The gateway is shutting down.');
    for (let attempt = 0; attempt < 5; attempt++) {
      const cur = await this.backendCall(() => this.backend.get(id));
      const now = Date.now();
      const live = cur === null ? null : { ...cur.record, keys: cur.record.keys.filter((k) => k.expiresAt === undefined || k.expiresAt > now) };
      const { next, result } = change(live, now);
      const r = await this.backendCall(() => this.backend.put(id, next, cur?.version ?? 0));
      if (!r.ok) continue;
      await this.settle(r.version);
      return { result, written: next === null ? null : { record: next, version: r.version } };
    }
    throw new RegistryError('conflict', `Consumer "${id}" kept changing while this request tried to change it; retry.`);
  }

  private async backendCall<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      if (e instanceof BackendUnavailable) throw new RegistryError('unavailable', 'The consumer store did not answer; nothing was changed, or the change may still have been applied if it timed out (GET the consumer to see).');
      throw e;
    }
  }

  /** Waits for the change `version` to come back through the feed; reloads everything if it does not in time. */
  private async settle(version: number): Promise<void> {
    if (this.version >= version) return;
    const arrived = await new Promise<boolean>((resolve) => {
      const w = { version, done: () => { clearTimeout(t); this.waiters.delete(w); resolve(this.version >= version); } };
      const t = setTimeout(() => w.done(), SETTLE_MS);
      this.waiters.add(w);
    });
    if (!arrived && !this.closed) await this.run(() => this.load());
  }

  // ---- the snapshot ------------------------------------------------------------------------------------------

  /** One step at a time, in arrival order: the snapshot never sees two changes interleaved. */
  private run(fn: () => Promise<void>): Promise<void> {
    const p = this.chain.then(fn);
    this.chain = p.catch((e) => this.warn('consumer registry: update failed', e));
    return this.chain;
  }

  private onChange(ev: ChangeEvent): void {
    void this.run(async () => {
      if (!this.synced || ev.version <= this.version) return; // a reload is due, or this change is already in
      if (ev.version !== this.version + 1) return this.load(); // changes were missed
      let cur: Versioned | null;
      try {
        cur = await this.backend.get(ev.id);
      } catch (e) {
        return this.failed(e);
      }
      this.apply(ev.id, cur);
      this.version = ev.version;
      this.wake();
    });
  }

  /** Queues a reload of everything (the feed was (re)subscribed, or a check found us behind). */
  private reload(): void {
    if (this.reloadQueued || this.closed) return;
    this.reloadQueued = true;
    void this.run(() => { this.reloadQueued = false; return this.load(); });
  }

  private async load(): Promise<void> {
    if (this.closed) return;
    let all: { version: number; records: Versioned[] };
    try {
      all = await this.backend.all();
    } catch (e) {
      return this.failed(e);
    }
    this.records.clear();
    this.index.clear();
    for (const v of all.records) this.apply(v.record.id, v);
    const before = this.version;
    this.version = all.version;
    this.synced = true;
    this.suspect = -1;
    if (!this.loadedOnce) {
      this.loadedOnce = true;
      this.markLoaded();
      this.logger.info({ store: this.kind, consumers: this.records.size, keys: this.index.size, version: all.version }, 'runtime consumers loaded');
    } else if (before !== all.version) {
      this.logger.info({ store: this.kind, consumers: this.records.size, keys: this.index.size, version: all.version, previousVersion: before }, 'runtime consumers reloaded');
    }
    this.wake();
  }

  private apply(id: string, v: Versioned | null): void {
    if (v === null) this.records.delete(id); else this.records.set(id, v);
    this.index.set(id, v?.record ?? null);
  }

  /** The backend did not answer: keep serving the snapshot, and reload until it does. */
  private failed(err: unknown): void {
    this.synced = false;
    this.warn('consumer registry: store unavailable; serving the keys already known', err);
    if (this.retryTimer !== null || this.closed) return;
    this.retryTimer = setTimeout(() => { this.retryTimer = null; this.reload(); }, 1000);
    this.retryTimer.unref();
  }

  /** The safety net under a lossy feed: our counter against the backend's (one GET). */
  private check(): void {
    void this.run(async () => {
      if (!this.synced || this.closed) return; // a reload is already being retried
      let remote: number;
      try {
        remote = await this.backend.version();
      } catch {
        return; // Redis is away: the snapshot keeps serving; the resubscription will reload
      }
      if (remote === this.version) { this.suspect = -1; return; }
      // Behind once may be a change still in flight; behind twice, or a counter that went back (Redis lost its
      // data), is a missed change.
      if (remote < this.version || (this.suspect !== -1 && this.version < this.suspect)) return this.load();
      this.suspect = remote;
      setTimeout(() => this.check(), 250).unref();
    });
  }

  private wake(): void {
    for (const w of this.waiters) if (this.version >= w.version) w.done();
  }
}

function existing(id: string, cur: ConsumerRecord | null): ConsumerRecord {
  if (cur === null) throw new RegistryError('not_found', `No runtime consumer "${id}".`);
  return cur;
}

function newKey(have: readonly KeyRecord[], now: number): { record: KeyRecord; issued: IssuedKey } {
  let keyId: string;
  do keyId = 'key_' + randomBytes(6).toString('base64url'); while (have.some((k) => k.id === keyId));
  const key = generateApiKey();
  const hash = hashApiKey(key);
  return { record: { id: keyId, hash, createdAt: new Date(now).toISOString() }, issued: { keyId, key, fingerprint: fingerprint(hash) } };
}
