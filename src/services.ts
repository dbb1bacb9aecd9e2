import type { Logger } from './observability/logger.ts';
import type { Metrics } from './observability/metrics.ts';
import type { TrustedProxies } from './server/client-ip.ts';
import type { Config } from './config/schema.ts';
import type { Store } from './state/store.ts';

/**
 * Long-lived things shared by all routes, built once per config load and handed to policies at compile time.
 * Policies that need shared state (JWKS caches, the rate-limit store) register it here.
 */
export interface GatewayServices {
  config: Config;
  logger: Logger;
  metrics: Metrics;
  trusted: TrustedProxies;
  /** Request headers the gateway sets from identity; inbound copies are always removed. Policies add to it at compile time. */
  identityHeaders: Set<string>;
  /** Things to close when the gateway stops (stores, health checkers, JWKS fetchers). */
  closers: Array<() => Promise<void> | void>;
  /** Open-ended slots for policy-owned shared state, keyed by policy name. */
  shared: Map<string, unknown>;
  /** Rate-limit / quota / usage state (`state.store`), one per gateway; see src/state/. */
  store?: Store;
}
