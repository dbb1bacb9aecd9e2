import type { Resources } from '../pipeline/policy.ts';

interface Entry { value: unknown; close: ((value: never) => unknown) | undefined }

/**
 * A generation's long-lived objects by key (see `Resources`): compiling the next generation takes over the
 * entries whose key it asks for again, untouched; `orphans()` lists what it did not take, which the old
 * generation closes once its last request has ended. Compiling never changes the previous set, so a compile
 * that fails leaves the live generation exactly as it was; `discard()` then closes what the failed one made.
 */
export class ResourceSet implements Resources {
  private readonly entries = new Map<string, Entry>();
  private readonly fresh = new Set<string>();

  constructor(private readonly prev: ResourceSet | null) {}

  get<T>(key: string, make: () => T, close?: (value: T) => unknown): T {
    const own = this.entries.get(key);
    if (own !== undefined) return own.value as T;
    const old = this.prev?.entries.get(key);
    if (old !== undefined) {
      this.entries.set(key, old);
      return old.value as T;
    }
    const value = make();
    this.entries.set(key, { value, close: close as Entry['close'] });
    this.fresh.add(key);
    return value;
  }

  /** Entries of this set that `next` did not take over. */
  orphans(next: ResourceSet): Array<() => unknown> {
    const out: Array<() => unknown> = [];
    for (const [key, e] of this.entries) {
      if (next.entries.get(key) === e) continue;
      if (e.close !== undefined) out.push(() => e.close!(e.value as never));
    }
    return out;
  }

  /** Closes what this set made itself (a generation that was compiled but never served). */
  async discard(): Promise<void> {
    await closeAll([...this.fresh].map((k) => this.entries.get(k)!).filter((e) => e.close !== undefined).map((e) => () => e.close!(e.value as never)));
  }

  /** Closes every entry (the runtime is stopping). */
  async closeAll(): Promise<void> {
    await closeAll([...this.entries.values()].filter((e) => e.close !== undefined).map((e) => () => e.close!(e.value as never)));
  }
}

export async function closeAll(fns: ReadonlyArray<() => unknown>): Promise<void> {
  await Promise.all(fns.map(async (fn) => { try { await fn(); } catch { /* closing anyway */ } }));
}
