import type { Config } from '../config/schema.ts';
import type { Logger } from '../observability/logger.ts';
import type { Metrics } from '../observability/metrics.ts';
import { Upstream, type Timeouts, type UpstreamEvents } from './upstream.ts';
import { UpstreamTelemetry } from './telemetry.ts';

export const DEFAULT_TIMEOUTS: Timeouts = { connect: 5_000, response: 60_000, idle: 60_000 };

/** Every upstream of a config, built once at load. With `observe`, state changes are logged and counted. */
export function buildUpstreams(config: Config, observe?: { logger: Logger; metrics: Metrics }): Map<string, Upstream> {
  const base = { ...DEFAULT_TIMEOUTS, ...expandTimeout(config.defaults.timeout) };
  const events: UpstreamEvents | undefined = observe ? new UpstreamTelemetry(observe.logger, observe.metrics.registry) : undefined;
  const out = new Map<string, Upstream>();
  for (const [name, cfg] of Object.entries(config.upstreams)) out.set(name, new Upstream(name, { ...cfg, timeout: expandTimeout(cfg.timeout) }, base, events));
  // fallback chains, resolved once: a → b → c becomes a.fallbacks = [b, c] (a cycle stops where it would repeat)
  for (const up of out.values()) {
    const seen = new Set([up.name]);
    let next = config.upstreams[up.name].fallback;
    while (next !== undefined && !seen.has(next) && out.has(next)) {
      seen.add(next);
      up.fallbacks.push(out.get(next)!);
      next = config.upstreams[next].fallback;
    }
  }
  if (events instanceof UpstreamTelemetry) events.init(out.values());
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
