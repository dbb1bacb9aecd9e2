import { randomBytes } from 'node:crypto';
import type { Awaitable, LeaseResult, Store } from './store.ts';

/** Lease ids: unique per process (a random prefix) and per lease (a counter); never derived from the request. */
const PROCESS = randomBytes(6).toString('base64url');
let counter = 0;

export interface Lease { readonly key: string; readonly id: string }

/**
 * Concurrency leases over the store (src/state/store.ts `acquire`/`release`/`renew`): a lease is taken before
 * forwarding and released when the exchange ends, however it ends. Held leases are renewed every third of
 * `state.leaseTtl`, so a stream may run for hours; a gateway that dies stops renewing and its leases expire
 * within the TTL, so a crash never holds a slot for longer. One per store and TTL (a generation resource, kept
 * across reloads); the timer runs only while leases are held.
 */
export class Leases {
  readonly ttlMs: number;
  private readonly store: Store;
  private readonly warn: (msg: string, err?: unknown) => void;
  private readonly held = new Map<string, string>();
  private timer: NodeJS.Timeout | null = null;

  constructor(store: Store, ttlMs: number, warn: (msg: string, err?: unknown) => void) {
    this.store = store;
    this.ttlMs = ttlMs;
    this.warn = warn;
  }

  /** Takes a lease on `key` if fewer than `limit` are held; the result's `lease` is null when refused. */
  acquire(key: string, limit: number): Awaitable<LeaseResult & { lease: Lease | null }> {
    const id = `${PROCESS}.${(++counter).toString(36)}`;
    const r = this.store.acquire(key, limit, id, this.ttlMs);
    if (r instanceof Promise) return r.then((x) => this.taken(key, id, x));
    return this.taken(key, id, r);
  }

  /** Gives a lease back; a failure to say so is logged (the lease then expires within the TTL). */
  release(lease: Lease): void {
    if (!this.held.delete(lease.id)) return;
    if (this.held.size === 0) this.stop();
    try {
      const r = this.store.release(lease.key, lease.id);
      if (r instanceof Promise) r.catch((e) => this.warn('lease store: release failed (the lease expires on its own)', e));
    } catch (e) {
      this.warn('lease store: release failed (the lease expires on its own)', e);
    }
  }

  /** Leases this process holds right now (tests, diagnostics). */
  get size(): number {
    return this.held.size;
  }

  close(): void {
    this.stop();
  }

  private taken(key: string, id: string, r: LeaseResult): LeaseResult & { lease: Lease | null } {
    if (!r.ok) return { ...r, lease: null };
    this.held.set(id, key);
    if (this.timer === null) {
      this.timer = setInterval(() => this.renew(), Math.max(250, Math.floor(this.ttlMs / 3)));
      this.timer.unref();
    }
    return { ...r, lease: { key, id } };
  }

  private renew(): void {
    if (this.held.size === 0) return this.stop();
    const pairs: Array<[string, string]> = [];
    for (const [id, key] of this.held) pairs.push([key, id]);
    try {
      const r = this.store.renew(pairs, this.ttlMs);
      if (r instanceof Promise) r.catch((e) => this.warn('lease store: renewal failed', e));
    } catch (e) {
      this.warn('lease store: renewal failed', e);
    }
  }

  private stop(): void {
    if (this.timer !== null) { clearInterval(this.timer); this.timer = null; }
  }
}

/** The one Leases of a store and TTL, shared by every policy of a generation and the next (see Resources). */
export function leasesFor(resources: { get<T>(key: string, make: () => T, close?: (v: T) => unknown): T }, store: Store, ttlMs: number, warn: (msg: string, err?: unknown) => void): Leases {
  return resources.get(`leases:${store.kind}:${ttlMs}`, () => new Leases(store, ttlMs, warn), (l) => l.close());
}
