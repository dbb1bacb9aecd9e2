import { timingSafeEqual } from 'node:crypto';
import type { KeyedIdentity, PlanView } from '../pipeline/policy.ts';
import { CONSUMER_ID_HEADER, CONSUMER_PLAN_HEADER } from '../auth/identity-headers.ts';
import type { ConsumerRecord } from './backend.ts';

/** One runtime consumer as the lookup sees it; its identity is built once per generation that asks. */
class Owner {
  private view: PlanView | null = null;
  private keyed: KeyedIdentity | null = null;
  constructor(readonly id: string, readonly plan: string | undefined) {}

  /** A plan the generation no longer configures (a reload removed it) falls back to its `defaults.plan`. */
  keyedFor(view: PlanView): KeyedIdentity {
    if (this.view === view && this.keyed !== null) return this.keyed;
    const plan = this.plan !== undefined && view.known.has(this.plan) ? this.plan : view.defaultPlan;
    const headers = plan !== undefined ? [CONSUMER_ID_HEADER, this.id, CONSUMER_PLAN_HEADER, plan] : [CONSUMER_ID_HEADER, this.id];
    this.keyed = { identity: { kind: 'apikey', id: this.id, consumer: this.id, plan }, headers };
    this.view = view;
    return this.keyed;
  }
}

interface Entry {
  digest: Buffer;
  /** Epoch ms from which the key is refused; 0: never. */
  expiresAt: number;
  owner: Owner;
}

/**
 * The runtime consumers' keys, by digest, the way src/auth/api-keys.ts holds the file's: candidates by the
 * digest's first 4 bytes (a Map lookup on a number), then the whole 32 bytes compared with timingSafeEqual.
 * Replaced one consumer at a time as changes arrive; a lookup never waits and never leaves the process.
 */
export class KeyIndex {
  private readonly slots = new Map<number, Entry[]>();
  private readonly byConsumer = new Map<string, Entry[]>();
  size = 0;

  /** The consumer's keys as `record` has them (null: none, the consumer is gone). */
  set(id: string, record: ConsumerRecord | null): void {
    this.remove(id);
    if (record === null || record.keys.length === 0) return;
    const owner = new Owner(id, record.plan);
    const entries: Entry[] = [];
    for (const k of record.keys) {
      const digest = Buffer.from(k.hash.slice('sha256:'.length), 'hex');
      if (digest.length !== 32) continue;
      const e: Entry = { digest, expiresAt: k.expiresAt ?? 0, owner };
      entries.push(e);
      const slot = digest.readUInt32BE(0);
      const list = this.slots.get(slot);
      if (list) list.push(e); else this.slots.set(slot, [e]);
    }
    this.byConsumer.set(id, entries);
    this.size += entries.length;
  }

  clear(): void {
    this.slots.clear();
    this.byConsumer.clear();
    this.size = 0;
  }

  lookup(digest: Buffer, view: PlanView): KeyedIdentity | null {
    const list = this.slots.get(digest.readUInt32BE(0));
    if (list === undefined) return null;
    let found: Entry | null = null;
    for (const e of list) if (timingSafeEqual(e.digest, digest) && found === null) found = e;
    if (found === null) return null;
    if (found.expiresAt !== 0 && Date.now() >= found.expiresAt) return null;
    return found.owner.keyedFor(view);
  }

  private remove(id: string): void {
    const old = this.byConsumer.get(id);
    if (old === undefined) return;
    this.byConsumer.delete(id);
    this.size -= old.length;
    for (const e of old) {
      const slot = e.digest.readUInt32BE(0);
      const list = this.slots.get(slot)!;
      const rest = list.filter((x) => x !== e);
      if (rest.length) this.slots.set(slot, rest); else this.slots.delete(slot);
    }
  }
}
