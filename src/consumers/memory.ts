import type { ChangeFeed, ConsumerBackend, ConsumerRecord, PutResult, Versioned } from './backend.ts';

/**
 * Runtime consumers of one process. Records are copied in and out (as Redis would serialize them), so the
 * registry's snapshot never shares an object with the stored state. Changes are reported synchronously, in
 * the order they are made: nothing can be lost, so there is nothing to resync.
 */
export class MemoryConsumers implements ConsumerBackend {
  readonly kind = 'memory' as const;
  readonly lossy = false;
  private readonly records = new Map<string, Versioned>();
  private counter = 0;
  private feed: ChangeFeed | null = null;

  start(feed: ChangeFeed): void {
    this.feed = feed;
    feed.subscribed();
  }

  get(id: string): Promise<Versioned | null> {
    const v = this.records.get(id);
    return Promise.resolve(v === undefined ? null : copy(v));
  }

  put(id: string, next: ConsumerRecord | null, expected: number): Promise<PutResult> {
    const cur = this.records.get(id);
    if ((cur?.version ?? 0) !== expected) return Promise.resolve({ ok: false });
    const version = ++this.counter;
    if (next === null) this.records.delete(id);
    else this.records.set(id, copy({ record: next, version }));
    this.feed?.change({ op: next === null ? 'delete' : 'put', id, version });
    return Promise.resolve({ ok: true, version });
  }

  all(): Promise<{ version: number; records: Versioned[] }> {
    return Promise.resolve({ version: this.counter, records: [...this.records.values()].map(copy) });
  }

  version(): Promise<number> {
    return Promise.resolve(this.counter);
  }

  close(): Promise<void> {
    this.feed = null;
    return Promise.resolve();
  }
}

function copy(v: Versioned): Versioned {
  return { record: structuredClone(v.record), version: v.version };
}
