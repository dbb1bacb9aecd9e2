import type { Config } from '../config/schema.ts';

/** The outcome of a reload, as `POST /admin/reload` answers it and the log line records it. */
export interface ReloadResult {
  ok: boolean;
  /** The generation serving new requests after the attempt (unchanged when it failed). */
  generation: number;
  hash: string;
  previousHash?: string;
  changes?: ConfigDiff;
  /** Every problem of a refused config, positioned (file:line:col key.path: message). */
  problems?: string[];
  warnings?: string[];
  /** Under `--workers N`: how each worker's reload went. */
  workers?: Array<{ ok: boolean; generation: number; hash: string }>;
  durationMs: number;
}

export interface NamedChanges { added: string[]; removed: string[]; changed: string[] }

/** What a reload changed, by name, and which of its changes only a restart applies. */
export interface ConfigDiff {
  routes: NamedChanges;
  upstreams: NamedChanges;
  /** Other sections that changed (`auth`, `plans`, `server.cors`, ...), by key path. */
  sections: string[];
  /** Settings that belong to the process (listeners, the store, the log format): changed in the file, kept until a restart. */
  restartRequired: string[];
}

/** Settings the runtime reads once, at start. */
export const RESTART_KEYS: ReadonlyArray<readonly string[]> = [
  ['server', 'listen'],
  ['server', 'limits', 'maxHeaderSize'],
  ['server', 'limits', 'maxHeaderCount'],
  ['server', 'limits', 'headersTimeout'],
  ['server', 'limits', 'requestTimeout'],
  ['server', 'limits', 'keepAliveTimeout'],
  ['server', 'limits', 'maxConnections'],
  ['server', 'health'],
  ['server', 'info'],
  // The listener's protocol and certificate list (the certificate FILES are re-read when they change on disk).
  ['server', 'tls'],
  ['server', 'http2'],
  ['admin', 'listen'],
  ['admin', 'enabled'],
  ['state', 'store'],
  ['state', 'redis', 'url'],
  ['state', 'redis', 'sentinels'],
  ['state', 'redis', 'masterName'],
  ['state', 'redis', 'cluster'],
  ['state', 'redis', 'username'],
  ['state', 'redis', 'password'],
  ['state', 'redis', 'sentinelPassword'],
  ['state', 'redis', 'keyPrefix'],
  ['state', 'redis', 'timeout'],
  ['state', 'leaseTtl'],
  ['state', 'cacheSize'],
  ['observability', 'log', 'format'],
  ['observability', 'metrics'],
  // The tracer provider and its exporter are built once, in listen().
  ['observability', 'tracing'],
];

const SECTIONS: ReadonlyArray<readonly string[]> = [
  ['server', 'environment'], ['server', 'trustedProxies'], ['server', 'limits', 'maxBodySize'], ['server', 'limits', 'bodyPeek'],
  ['server', 'cors'], ['server', 'securityHeaders'], ['server', 'shutdownGrace'], ['admin', 'token'], ['observability', 'log', 'level'],
  ['observability', 'log', 'accessLog'], ['state', 'redis', 'onError'], ['auth'], ['consumers'], ['plans'], ['captcha'], ['defaults'],
];

export function diffConfigs(a: Config, b: Config): ConfigDiff {
  const at = (c: Config, path: readonly string[]) => path.reduce<unknown>((v, k) => (v as Record<string, unknown> | undefined)?.[k], c);
  const differs = (path: readonly string[]) => JSON.stringify(at(a, path)) !== JSON.stringify(at(b, path));
  return {
    routes: named(new Map(a.routes.map((r) => [r.name, r])), new Map(b.routes.map((r) => [r.name, r]))),
    upstreams: named(new Map(Object.entries(a.upstreams)), new Map(Object.entries(b.upstreams))),
    sections: SECTIONS.filter(differs).map((p) => p.join('.')),
    restartRequired: RESTART_KEYS.filter(differs).map((p) => p.join('.')),
  };
}

function named(a: Map<string, unknown>, b: Map<string, unknown>): NamedChanges {
  const out: NamedChanges = { added: [], removed: [], changed: [] };
  for (const [k, v] of b) {
    if (!a.has(k)) out.added.push(k);
    else if (JSON.stringify(withoutIndex(a.get(k))) !== JSON.stringify(withoutIndex(v))) out.changed.push(k);
  }
  for (const k of a.keys()) if (!b.has(k)) out.removed.push(k);
  return out;
}

/** A route that only moved in the file has not changed. */
function withoutIndex(v: unknown): unknown {
  if (v === null || typeof v !== 'object' || !('index' in v)) return v;
  const { index: _, ...rest } = v as Record<string, unknown>;
  return rest;
}
