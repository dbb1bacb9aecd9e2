import type { GatewayServices } from '../services.ts';
import { createStore, type Store } from '../state/index.ts';
import { throttledWarn } from '../state/warn.ts';

/** The gateway's store (created in gateway.ts); made here on first use when services were assembled without one. */
export function storeOf(services: GatewayServices): Store {
  if (services.store === undefined) {
    const store = createStore(services.config, services.logger);
    services.store = store;
    services.closers.push(() => store.close());
  }
  return services.store;
}

/** One throttled warn per gateway for store failures, so an outage logs a line per 10 s, not one per route. */
export function storeWarnOf(services: GatewayServices): (msg: string, err?: unknown) => void {
  let w = services.shared.get('store-warn') as ((msg: string, err?: unknown) => void) | undefined;
  if (w === undefined) { w = throttledWarn(services.logger, 10_000); services.shared.set('store-warn', w); }
  return w;
}
