import { z } from 'zod';
import { obj, duration, size } from '../config/zod-helpers.ts';

/** The `state:` section: which store holds rate limits, quotas, usage and runtime consumers. A leaf module. */
export const redisOptionsSchema = obj({
  url: z.string().prefault('redis://127.0.0.1:6379').describe('A single Redis (used when neither `sentinels` nor `cluster` is given); credentials may go in the URL.'),
  sentinels: z.array(z.string().min(1)).min(1).optional().describe('Redis Sentinel: the sentinels (`host:port`) to ask for the current master of `masterName`.'),
  masterName: z.string().prefault('mymaster').describe('Redis Sentinel: the name of the monitored master.'),
  cluster: z.array(z.string().min(1)).min(1).optional().describe('Redis Cluster: seed nodes (`host:port`); the rest is discovered.'),
  username: z.string().optional().describe('Username for Sentinel- or Cluster-managed nodes (a single Redis takes it in `url`).'),
  password: z.string().optional().describe('Password for Sentinel- or Cluster-managed nodes, as `${VAR}`.'),
  sentinelPassword: z.string().optional().describe('Password of the sentinels themselves, as `${VAR}`.'),
  keyPrefix: z.string().prefault('gh:').describe('Prefix of every key the gateway writes.'),
  timeout: duration.prefault('50ms').describe('A store call without an answer within this counts as a store error.'),
  onError: z.enum(['open', 'closed']).prefault('open').describe('When the store cannot answer: allow the request (open) or refuse it with 503 (closed); policies may override it.'),
}).describe('Redis connection (with `store: redis`).');
export const stateSchema = obj({
  store: z.enum(['memory', 'redis']).prefault('memory').describe('`memory` (per process) or `redis` (shared by every replica and worker).'),
  // Always present after parsing (its defaults when the file has none): `onError` applies to the memory store's
  // policies too, and nothing downstream resolves these defaults again.
  redis: redisOptionsSchema.prefault({}),
  leaseTtl: duration.refine((ms) => ms >= 1000, 'at least 1s (leases are renewed every third of it)').prefault('30s').describe('How long a concurrency lease lives without renewal (renewed every third of it): a gateway that dies frees its slots within this (restart to change).'),
  cacheSize: size.prefault('64mb').describe('Bytes of response-cache entries the memory store keeps, least recently used out first (restart to change).'),
});
export type StateConfig = z.output<typeof stateSchema>;
export type RedisOptions = z.output<typeof redisOptionsSchema>;
