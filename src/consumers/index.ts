import type { Logger } from '../observability/logger.ts';
import type { StateConfig } from '../state/schema.ts';
import { MemoryConsumers } from './memory.ts';
import { RedisConsumers } from './redis.ts';
import { ConsumerRegistry } from './registry.ts';

export { ConsumerRegistry, RegistryError, fingerprint, MAX_KEYS } from './registry.ts';

/**
 * The runtime's consumer registry, in the store `state:` names (Redis: the same url and key prefix). Building
 * it opens nothing; `start()` connects. `clustered`: this process is one of several workers, where a memory
 * registry would be one worker's alone, so it refuses writes.
 */
export function createConsumerRegistry(state: StateConfig, o: { logger: Logger; clustered: boolean }): ConsumerRegistry {
  if (state.store === 'redis') {
    return new ConsumerRegistry(new RedisConsumers({ url: state.redis.url, keyPrefix: state.redis.keyPrefix, logger: o.logger }), { logger: o.logger });
  }
  const readOnlyReason = o.clustered
    ? 'Runtime consumers need state.store: redis when the gateway runs several workers: with the memory store a consumer would exist in one worker only.'
    : undefined;
  return new ConsumerRegistry(new MemoryConsumers(), { logger: o.logger, readOnlyReason });
}
