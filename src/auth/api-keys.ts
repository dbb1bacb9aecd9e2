import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { ConsumerConfig } from './schema.ts';
import type { Identity } from '../pipeline/context.ts';
import { CONSUMER_ID_HEADER, CONSUMER_PLAN_HEADER } from './identity-headers.ts';

/** A consumer as an API key resolves it: the identity and the upstream headers, built once at load. */
export interface KeyedConsumer {
  readonly identity: Identity;
  /** Flat [name, value, ...] for ctx.addUpstreamHeader. */
  readonly headers: readonly string[];
}

interface Entry { digest: Buffer; consumer: KeyedConsumer }

/** `sha256:<hex>` of a key, the only form a key is ever stored in. */
export function hashApiKey(key: string): string {
  return 'sha256:' + createHash('sha256').update(key, 'utf8').digest('hex');
}

/** The SHA-256 digest of a presented key: computed once per request, looked up in the file's keys and the runtime's. */
export function keyDigest(key: string): Buffer {
  return createHash('sha256').update(key, 'utf8').digest();
}

/** A new random key (256 bits, base64url) with a recognisable prefix, so a leaked one is easy to search for. */
export function generateApiKey(): string {
  return 'gh_' + randomBytes(32).toString('base64url');
}

/**
 * API keys of every consumer, held only as SHA-256 digests. A presented key is hashed, the candidates are
 * found by the digest's first 4 bytes (a Map lookup on a number: no string is built), and the full 32 bytes
 * are compared with timingSafeEqual. The lookup's timing depends on the digest, never on the key itself,
 * and a digest reveals nothing usable about the key.
 */
export class ApiKeyStore {
  private readonly index = new Map<number, Entry[]>();
  readonly size: number = 0;

  constructor(consumers: readonly ConsumerConfig[], defaultPlan: string | undefined) {
    for (const c of consumers) {
      const plan = c.plan ?? defaultPlan;
      const headers = plan !== undefined ? [CONSUMER_ID_HEADER, c.id, CONSUMER_PLAN_HEADER, plan] : [CONSUMER_ID_HEADER, c.id];
      const consumer: KeyedConsumer = { identity: { kind: 'apikey', id: c.id, consumer: c.id, plan }, headers };
      for (const k of c.keys) {
        const digest = Buffer.from(k.slice('sha256:'.length), 'hex');
        const slot = digest.readUInt32BE(0);
        const list = this.index.get(slot);
        if (list) list.push({ digest, consumer }); else this.index.set(slot, [{ digest, consumer }]);
        this.size++;
      }
    }
  }

  /** The consumer owning this key, or null. */
  lookup(key: string): KeyedConsumer | null {
    return this.lookupDigest(keyDigest(key));
  }

  /** The consumer owning the key with this digest, or null. */
  lookupDigest(digest: Buffer): KeyedConsumer | null {
    const list = this.index.get(digest.readUInt32BE(0));
    if (list === undefined) return null;
    let found: KeyedConsumer | null = null;
    for (const e of list) if (timingSafeEqual(e.digest, digest) && found === null) found = e.consumer;
    return found;
  }
}
