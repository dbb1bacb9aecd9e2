import { z } from 'zod';
import { obj, duration, size } from '../config/zod-helpers.ts';

/** The `state:` section: which store holds rate limits, quotas, usage and runtime consumers. A leaf module. */
export const redisOptionsSchema = obj({
  /** A single Redis (also the fallback when neither `sentinels` nor `cluster` is given). */
  url: z.string().prefault('redis://127.0.0.1:6379'),
  /** Redis Sentinel: the sentinels (`host:port`) to ask for the current master of `masterName`. */
  sentinels: z.array(z.string().min(1)).min(1).optional(),
  masterName: z.string().prefault('mymaster'),
  /** Redis Cluster: seed nodes (`host:port`); the rest is discovered. Keys are hash-tagged, one slot per script. */
  cluster: z.array(z.string().min(1)).min(1).optional(),
  /** Credentials for Sentinel- or Cluster-managed nodes (a single Redis takes them in `url`). */
  username: z.string().optional(),
  password: z.string().optional(),
  sentinelPassword: z.string().optional(),
  keyPrefix: z.string().prefault('gh:'),
  timeout: duration.prefault('50ms'),
  onError: z.enum(['open', 'closed']).prefault('open'),
});
export const stateSchema = obj({
  store: z.enum(['memory', 'redis']).prefault('memory'),
  // Always present after parsing (its defaults when the file has none): `onError` applies to the memory store's
  // policies too, and nothing downstream resolves these defaults again.
  redis: redisOptionsSchema.prefault({}),
  /** How long a concurrency lease lives without renewal: a gateway that dies frees its slots within this. */
  leaseTtl: duration.refine((ms) => ms >= 1000, 'at least 1s (leases are renewed every third of it)').prefault('30s'),
  /** Bytes of response-cache entries the memory store keeps (least recently used out first). */
  cacheSize: size.prefault('64mb'),
});
export type StateConfig = z.output<typeof stateSchema>;
export type RedisOptions = z.output<typeof redisOptionsSchema>;
