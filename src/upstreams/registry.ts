import type { Config } from '../config/schema.ts';
import { Upstream, type Timeouts } from './upstream.ts';

export const DEFAULT_TIMEOUTS: Timeouts = { connect: 5_000, response: 60_000, idle: 60_000 };

/** Every upstream of a config, built once at load. */
export function buildUpstreams(config: Config): Map<string, Upstream> {
  const base = { ...DEFAULT_TIMEOUTS, ...expandTimeout(config.defaults.timeout) };
  const out = new Map<string, Upstream>();
  for (const [name, cfg] of Object.entries(config.upstreams)) out.set(name, new Upstream(name, { ...cfg, timeout: expandTimeout(cfg.timeout) }, base));
  return out;
}

/** `timeout: 120s` means: headers within 120 s, and no gap of more than 120 s between body chunks. */
export function expandTimeout(t: { connect?: number; response?: number; idle?: number } | undefined): Partial<Timeouts> {
  if (!t) return {};
  const out: Partial<Timeouts> = {};
  if (t.connect !== undefined) out.connect = t.connect;
  if (t.response !== undefined) { out.response = t.response; out.idle = t.response; }
  if (t.idle !== undefined) out.idle = t.idle;
  return out;
}
