import type { Logger } from '../observability/logger.ts';
import { MemoryStore } from './memory.ts';
import { RedisStore } from './redis.ts';
import type { StateConfig } from './schema.ts';
import type { Store } from './store.ts';

export type { Store } from './store.ts';

/** The one store of a runtime, from `state:`. Nothing connects until `store.connect()`. */
export function createStore(state: StateConfig, logger: Logger): Store {
  if (state.store === 'redis') {
    const r = state.redis;
    return new RedisStore({ url: r.url, sentinels: r.sentinels, masterName: r.masterName, cluster: r.cluster, username: r.username, password: r.password, sentinelPassword: r.sentinelPassword, keyPrefix: r.keyPrefix, timeout: r.timeout, logger });
  }
  return new MemoryStore({ cacheBytes: state.cacheSize });
}
