import { scrypt } from 'node:crypto';
import type { Logger } from '../observability/logger.ts';

export type AuditAction = 'consumer.create' | 'consumer.plan' | 'consumer.delete' | 'key.create' | 'key.revoke' | 'key.rotate';

/** What one audit line says besides who and when. Never a key, a key hash or a token. */
export interface AuditEntry {
  action: AuditAction;
  consumer: string;
  /** The key id acted on (`key_…`): the revoked one, the one created, the one rotated away. */
  key?: string;
  /** Rotation: the id of the key issued in place of `key`. */
  newKey?: string;
  plan?: string | null;
  previousPlan?: string | null;
  /** Rotation with a grace period: when the old key stops working (ISO). */
  oldKeyExpiresAt?: string;
  /** Deleting a consumer: how many keys went with it. */
  revokedKeys?: number;
}

export type Audit = (actor: string, entry: AuditEntry) => void;

/**
 * One line per change (`"type":"audit"`), whatever `observability.log.level` hides (only `silent` silences
 * them): a record of who changed which consumer, and when (pino's `time`). Each is flushed as it is written.
 */
export function createAudit(logger: Logger): Audit {
  const log = logger.isLevelEnabled('info') || logger.level === 'silent' ? logger.child({ type: 'audit' }) : logger.child({ type: 'audit' }, { level: 'info' });
  return (actor, entry) => {
    log.info({ actor, ...entry }, `admin: ${entry.action}`);
    // Changes are rare and their record matters: out now, not with the next buffer of access lines.
    log.flush?.();
  };
}

const ids = new Map<string, Promise<string>>();
/** Kept small: an admin token rotates rarely, and its id is all that is cached. */
const MAX_IDS = 8;

/**
 * Who made an admin change, as an audit line names it: `anonymous` without `admin.token`, else `token:` and 8
 * hex digits derived from the token with scrypt. Stable across replicas and restarts (the same token has the
 * same id), distinct for a rotated token, and slow to test guesses against should a log leak: a plain hash
 * prefix of a weak token would confirm a guess in nanoseconds. Computed once per token, off the event loop.
 */
export function adminTokenId(token: string): Promise<string> {
  if (token === '') return Promise.resolve('anonymous');
  let id = ids.get(token);
  if (id === undefined) {
    id = new Promise((resolve, reject) => scrypt(token, 'gatehouse admin token id', 4, { N: 16384, r: 8, p: 1 }, (err, buf) => (err ? reject(err) : resolve('token:' + buf.toString('hex')))));
    if (ids.size >= MAX_IDS) ids.delete(ids.keys().next().value!);
    ids.set(token, id);
  }
  return id;
}
