/**
 * A running gateway: the process runtime (listeners, logger, metrics, store) serving one config generation at a
 * time. `new Gateway(config)` compiles the first generation without opening anything; `listen()` starts it;
 * `reload()` swaps in the next. See src/runtime/ and docs/architecture.md.
 */
export { Runtime as Gateway, type RuntimeOptions as GatewayOptions, type ReloadResult } from './runtime/runtime.ts';
