import { z } from 'zod';
import { obj, duration } from '../config/zod-helpers.ts';

/** The `state:` section: which store holds rate limits, quotas, usage and runtime consumers. A leaf module. */
export const redisOptionsSchema = obj({
  url: z.string().prefault('redis://127.0.0.1:6379'),
  keyPrefix: z.string().prefault('gh:'),
  timeout: duration.prefault('50ms'),
  onError: z.enum(['open', 'closed']).prefault('open'),
});
export const stateSchema = obj({
  store: z.enum(['memory', 'redis']).prefault('memory'),
  // Always present after parsing (its defaults when the file has none): `onError` applies to the memory store's
  // policies too, and nothing downstream resolves these defaults again.
  redis: redisOptionsSchema.prefault({}),
});
export type StateConfig = z.output<typeof stateSchema>;
export type RedisOptions = z.output<typeof redisOptionsSchema>;
