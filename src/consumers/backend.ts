/**
 * What a runtime consumer is, and the one interface its two homes implement: `memory` (this process) and
 * `redis` (every replica). The registry (registry.ts) keeps the in-memory snapshot the auth step reads; a
 * backend only stores records, compares-and-sets them one consumer at a time, and reports each committed
 * change in version order.
 */

export interface KeyRecord {
  /** Public id of the key (`key_…`), random: it says nothing about the key. */
  id: string;
  /** `sha256:<hex>` of the key, the only form a key is ever stored in. */
  hash: string;
  createdAt: string;
  /** Epoch ms from which the key is refused (a rotated key's grace period); absent: it does not expire. */
  expiresAt?: number;
}

export interface ConsumerRecord {
  id: string;
  /** Absent: the serving config's `defaults.plan`. */
  plan?: string;
  createdAt: string;
  updatedAt: string;
  keys: KeyRecord[];
}

/** A record and the version of the change that wrote it (the backend's counter, increasing per change). */
export interface Versioned {
  record: ConsumerRecord;
  version: number;
}

/** One committed change, published after it is stored: which consumer, and the counter's value it took. */
export interface ChangeEvent {
  op: 'put' | 'delete';
  id: string;
  version: number;
}

export interface ChangeFeed {
  /** Every committed change, in version order (the same process's own changes included). */
  change(ev: ChangeEvent): void;
  /** The feed is (re)established: changes may have been missed before this, so the registry reloads everything. */
  subscribed(): void;
}

export type PutResult = { ok: true; version: number } | { ok: false };

export interface ConsumerBackend {
  readonly kind: 'memory' | 'redis';
  /** Whether changes can be lost in transit (pub/sub): the registry then also compares versions now and then. */
  readonly lossy: boolean;
  /** Connects (if it has to) and starts the change feed. Nothing is opened before this. */
  start(feed: ChangeFeed): void;
  get(id: string): Promise<Versioned | null>;
  /**
   * Compare-and-set on one consumer: stores `next` (null deletes) only if the stored record's version is still
   * `expected` (0: there is none), increments the counter and publishes the change, all as one step.
   */
  put(id: string, next: ConsumerRecord | null, expected: number): Promise<PutResult>;
  /** Every record and the counter, read as one consistent picture. */
  all(): Promise<{ version: number; records: Versioned[] }>;
  /** The counter alone (the cheap safety-net check). */
  version(): Promise<number>;
  close(): Promise<void>;
}

/** The backend could not answer (Redis down or too slow); the snapshot keeps serving what it knows. */
export class BackendUnavailable extends Error {
  constructor(op: string, cause: string) {
    super(`consumer store ${op}: ${cause}`);
    this.name = 'BackendUnavailable';
  }
}
