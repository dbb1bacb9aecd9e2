import type { Config } from '../config/schema.ts';
import type { Logger } from '../observability/logger.ts';
import { MemoryStore } from './memory.ts';
import { RedisStore } from './redis.ts';
import type { Store } from './store.ts';

export type { Store } from './store.ts';

/** The one store of a gateway, from `state:`. Redis options default as in the schema. */
export function createStore(config: Config, logger: Logger): Store {
  if (config.state.store === 'redis') {
    const r = config.state.redis ?? { url: 'redis://127.0.0.1:6379', keyPrefix: 'gh:', timeout: 50, onError: 'open' as const };
    return new RedisStore({ url: r.url, keyPrefix: r.keyPrefix, timeout: r.timeout, logger });
  }
  return new MemoryStore();
}

/** What a policy does when the store cannot answer: the route's own choice, else `state.redis.onError`. */
export function defaultOnError(config: Config): 'open' | 'closed' {
  return config.state.redis?.onError ?? 'open';
}
