// undici's dispatchers, required from undici's own modules instead of its index. The index also loads fetch,
// WebSocket, EventSource, the cache, cookie and mock layers (and keeps their sources): ~8 MB of RSS in a gateway
// that only dispatches (58.4 against 50.1 MB for `require('undici')` against these modules in an empty process).
// The classes are the very ones the index exports (test/upstreams/undici-core.test.ts checks it, so an undici
// update that moves a file fails there, not in production). The one-off `request()` calls (JWKS, captcha, the
// OpenAPI import) import the index when they run: a config without them never loads it.
import { createRequire } from 'node:module';
import type * as Undici from 'undici';

const require = createRequire(import.meta.url);

export const Pool = require('undici/lib/dispatcher/pool') as typeof Undici.Pool;
export type Pool = Undici.Pool;
export const Client = require('undici/lib/dispatcher/client') as typeof Undici.Client;
export type Client = Undici.Client;
export const Agent = require('undici/lib/dispatcher/agent') as typeof Undici.Agent;
export type Agent = Undici.Agent;

// What the index does on load and a dispatcher needs: request/stream/pipeline/upgrade/connect on every
// dispatcher (health checks and forward-auth call `pool.request`). Idempotent, so loading the index later is fine.
const Dispatcher = require('undici/lib/dispatcher/dispatcher') as typeof Undici.Dispatcher;
Object.assign(Dispatcher.prototype, require('undici/lib/api/index') as object);
