import { Writable } from 'node:stream';
import { request } from 'undici';
import { loadConfigText } from '../src/config/load.ts';
import { Gateway, type GatewayOptions, type ReloadResult } from '../src/gateway.ts';
import { createLogger } from '../src/observability/logger.ts';

export interface TestGateway {
  gw: Gateway;
  /** http://127.0.0.1:PORT of the main listener. */
  url: string;
  port: number;
  adminUrl: string;
  /** Every log line written so far, parsed. */
  logs: Array<Record<string, unknown>>;
  /** Raw log text (to assert that secrets never appear anywhere). */
  rawLogs(): string;
  /** Replaces the YAML a reload reads (SIGHUP-style: the runtime's `load` reads it, so POST /admin/reload sees it too). */
  setConfig(yaml: string): void;
  /** Reloads from the current YAML (or `yaml`, which becomes the current one). */
  reload(yaml?: string): ReloadResult;
  close(): Promise<void>;
}

/**
 * Starts a real gateway from YAML text on ephemeral ports (main and admin), capturing logs.
 * The YAML may omit `server.listen` / `admin.listen`; both default to 127.0.0.1:0 here.
 */
export async function startGateway(yaml: string, opts: { env?: NodeJS.ProcessEnv; gateway?: Pick<GatewayOptions, 'tracing'> } = {}): Promise<TestGateway> {
  const lines: string[] = [];
  const sink = new Writable({ write(chunk, _enc, cb) { lines.push(...String(chunk).split('\n').filter(Boolean)); cb(); } });
  let text = yaml;
  const loadOptions = { env: opts.env ?? {}, overrides: withEphemeral(yaml) };
  const load = () => loadConfigText(text, 'test.yaml', loadOptions);
  const loaded = load();
  const level = loaded.config.observability.log.level;
  const logger = createLogger({ level, format: 'json', destination: sink });
  const gw = new Gateway(loaded, { logger, defaultMetrics: false, load, ...opts.gateway });
  const { port, adminPort } = await gw.listen();
  return {
    gw,
    port,
    url: `http://127.0.0.1:${port}`,
    adminUrl: `http://127.0.0.1:${adminPort}`,
    get logs() { return lines.map((l) => { try { return JSON.parse(l); } catch { return { raw: l }; } }); },
    rawLogs: () => lines.join('\n'),
    setConfig: (next) => { text = next; },
    reload: (next) => { if (next !== undefined) text = next; return gw.reload(); },
    close: () => gw.close(),
  };
}

function withEphemeral(yaml: string): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  if (!/^\s*listen:/m.test(yaml.split(/^admin:/m)[0])) o['server.listen'] = '127.0.0.1:0';
  if (!/^admin:.*listen/ms.test(yaml)) o['admin.listen'] = '127.0.0.1:0';
  return o;
}

/** Resolves when `fn` returns truthy, polling every 10 ms; rejects after `ms`. */
export async function eventually<T>(fn: () => T | Promise<T>, ms = 2000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** One request, body read as text: status, headers, text and a lazy JSON parse. */
export async function call(url: string, opts: { headers?: Record<string, string>; method?: string; body?: string } = {}) {
  const r = await request(url, { method: (opts.method ?? 'GET') as 'GET', headers: opts.headers, body: opts.body });
  const text = await r.body.text();
  return { status: r.statusCode, headers: r.headers, text, json: () => JSON.parse(text) };
}
