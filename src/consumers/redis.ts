import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Redis, RedisOptions } from 'ioredis';
import type { Logger } from '../observability/logger.ts';
import { throttledWarn } from '../state/warn.ts';
import { BackendUnavailable, type ChangeEvent, type ChangeFeed, type ConsumerBackend, type ConsumerRecord, type PutResult, type Versioned } from './backend.ts';

// ioredis is loaded only when a config uses Redis (see src/state/redis.ts).
const requireLazy = createRequire(import.meta.url);
const lua = (name: string) => readFileSync(new URL(`./lua/${name}.lua`, import.meta.url), 'utf8');

export interface RedisConsumersOptions {
  url: string;
  keyPrefix: string;
  logger: Logger;
  /** Deadline of a single-record call (admin writes, the per-change fetch, the version check). */
  timeout?: number;
  /** Deadline of reading everything (a resync); larger, as the reply grows with the number of consumers. */
  loadTimeout?: number;
}

type Cmd = (...args: Array<string | number>) => Promise<unknown>;

/**
 * Runtime consumers shared by every replica. One hash holds them all (`{gh:consumers}:all`, id →
 * `<version>|<json>`) beside a counter (`{gh:consumers}:version`): one hash tag, so both live in one Redis
 * Cluster slot and one Lua script can compare-and-set a record, bump the counter and publish the change.
 * Changes are published on `<prefix>consumers:changes` as `{op, id, version}`; a dedicated subscriber
 * connection receives them. Nothing connects before `start()` (`gatehouse validate` builds one and closes it).
 */
export class RedisConsumers implements ConsumerBackend {
  readonly kind = 'redis' as const;
  readonly lossy = true;
  readonly hashKey: string;
  readonly versionKey: string;
  readonly channel: string;
  private readonly cmd: Redis;
  private readonly sub: Redis;
  private readonly timeout: number;
  private readonly loadTimeout: number;
  private closed = false;

  constructor(o: RedisConsumersOptions) {
    this.hashKey = `{${o.keyPrefix}consumers}:all`;
    this.versionKey = `{${o.keyPrefix}consumers}:version`;
    this.channel = `${o.keyPrefix}consumers:changes`;
    this.timeout = o.timeout ?? 2000;
    this.loadTimeout = o.loadTimeout ?? 10_000;
    const RedisClient = (requireLazy('ioredis') as typeof import('ioredis')).Redis;
    const options: RedisOptions = {
      // While Redis is away a write fails at once (503) instead of queueing; reads are served from the snapshot.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      enableAutoPipelining: false,
      connectTimeout: 2000,
      retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 6), 2000),
      lazyConnect: true,
    };
    this.cmd = new RedisClient(o.url, options);
    // Resubscribing is ours: subscribe, and only once Redis confirms it, reload (see start()).
    this.sub = new RedisClient(o.url, { ...options, autoResubscribe: false });
    const warn = throttledWarn(o.logger, 10_000);
    this.cmd.on('error', (err: Error) => warn('consumer registry: redis connection error', err));
    this.sub.on('error', (err: Error) => warn('consumer registry: redis subscriber connection error', err));
    this.cmd.defineCommand('ghConsumerPut', { lua: lua('put'), numberOfKeys: 2 });
    this.cmd.defineCommand('ghConsumersAll', { lua: lua('all'), numberOfKeys: 2 });
  }

  start(feed: ChangeFeed): void {
    this.sub.on('message', (channel: string, message: string) => {
      if (channel !== this.channel) return;
      const ev = parseEvent(message);
      if (ev !== null) feed.change(ev);
    });
    // Every (re)connection: subscribe first, then have the registry reload, so no change falls between the two.
    this.sub.on('ready', () => {
      if (this.closed) return;
      this.sub.subscribe(this.channel).then(() => feed.subscribed(), () => { /* the connection dropped again; the next 'ready' retries */ });
    });
    for (const c of [this.cmd, this.sub]) if (c.status === 'wait') c.connect().catch(() => { /* reported by the 'error' listener; ioredis retries */ });
  }

  async get(id: string): Promise<Versioned | null> {
    const v = await this.call('get', this.cmd.hget(this.hashKey, id), this.timeout);
    return v === null ? null : parseStored(v);
  }

  async put(id: string, next: ConsumerRecord | null, expected: number): Promise<PutResult> {
    const put = (this.cmd as unknown as { ghConsumerPut: Cmd }).ghConsumerPut;
    const r = (await this.call('put', put.call(this.cmd, this.hashKey, this.versionKey, id, expected, next === null ? '' : JSON.stringify(next), this.channel), this.timeout)) as number[];
    return r[0] === 1 ? { ok: true, version: Number(r[1]) } : { ok: false };
  }

  async all(): Promise<{ version: number; records: Versioned[] }> {
    const all = (this.cmd as unknown as { ghConsumersAll: Cmd }).ghConsumersAll;
    const r = (await this.call('load', all.call(this.cmd, this.hashKey, this.versionKey), this.loadTimeout)) as Array<string | number>;
    const records: Versioned[] = [];
    for (let i = 1; i + 1 < r.length; i += 2) {
      const v = parseStored(String(r[i + 1]));
      if (v !== null) records.push(v);
    }
    return { version: Number(r[0]), records };
  }

  async version(): Promise<number> {
    return Number((await this.call('version', this.cmd.get(this.versionKey), this.timeout)) ?? 0);
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([this.cmd, this.sub].map(async (c) => {
      // A client that never connected (validate, a failed start) has nothing to say goodbye to: quit() would connect.
      if (c.status !== 'wait' && c.status !== 'end') {
        try { await Promise.race([c.quit(), new Promise((r) => setTimeout(r, 500))]); } catch { /* closing anyway */ }
      }
      c.disconnect();
    }));
  }

  private call<T>(op: string, p: Promise<T>, ms: number): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(new BackendUnavailable(op, `no answer from redis within ${ms} ms`)), ms);
      p.then((v) => { clearTimeout(timer); resolve(v); }, (e: Error) => { clearTimeout(timer); reject(new BackendUnavailable(op, e.message)); });
    });
  }
}

function parseStored(s: string): Versioned | null {
  const bar = s.indexOf('|');
  try {
    return { version: Number(s.slice(0, bar)), record: JSON.parse(s.slice(bar + 1)) as ConsumerRecord };
  } catch {
    return null;
  }
}

function parseEvent(message: string): ChangeEvent | null {
  try {
    const m = JSON.parse(message) as Partial<ChangeEvent>;
    if ((m.op === 'put' || m.op === 'delete') && typeof m.id === 'string' && typeof m.version === 'number') return { op: m.op, id: m.id, version: m.version };
  } catch { /* not ours */ }
  return null;
}
