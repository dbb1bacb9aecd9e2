import { CLOSED, OPEN, STATE_NAMES } from './circuit-breaker.ts';
import type { Target, Upstream } from './upstream.ts';

export type ServiceStatus = 'healthy' | 'degraded' | 'unhealthy';

/** One upstream in `/healthz` (seed 004's cascade entry), from cached state only. */
export interface ServiceHealth {
  status: ServiceStatus;
  status_code?: number;
  response_time_ms?: number;
  critical: boolean;
  targets: { up: number; serving: number };
  fallback?: string;
}

/**
 * An upstream's health from what the background checks and real traffic already know: no request is made,
 * so `/healthz` answers in well under a millisecond per upstream even when every target hangs.
 * Serving targets are those with weight > 0 (standbys do not count). All up: healthy; some: degraded;
 * none (or the upstream-wide circuit open): unhealthy, or degraded when a fallback can serve instead.
 */
export function serviceHealth(up: Upstream, now = performance.now(), followFallback = true): ServiceHealth {
  let serving = 0;
  let upCount = 0;
  let latest: Target | null = null;
  for (const t of up.targets) {
    if (t.weight === 0) continue;
    serving++;
    if (t.state(now) === 'up') upCount++;
    const c = t.checker;
    if (c !== null && c.checks > 0 && (latest === null || c.lastAt > latest.checker!.lastAt)) latest = t;
  }
  const ub = up.breaker;
  const open = ub !== null && ub.state === OPEN && now < ub.openUntil;
  const probing = ub !== null && !open && ub.state !== CLOSED;
  let status: ServiceStatus = open || upCount === 0 ? 'unhealthy' : upCount < serving || probing ? 'degraded' : 'healthy';
  let fallback: string | undefined;
  if (status === 'unhealthy' && followFallback) {
    const fb = up.fallbacks.find((f) => serviceHealth(f, now, false).status !== 'unhealthy');
    if (fb) { status = 'degraded'; fallback = fb.name; }
  }
  const out: ServiceHealth = { status, critical: up.critical, targets: { up: upCount, serving } };
  if (latest !== null) {
    const c = latest.checker!;
    if (c.lastStatus) out.status_code = c.lastStatus;
    out.response_time_ms = Math.round(c.lastMs * 10) / 10;
  }
  if (fallback) out.fallback = fallback;
  return out;
}

export function servicesHealth(upstreams: Map<string, Upstream>): Record<string, ServiceHealth> {
  const now = performance.now();
  const out: Record<string, ServiceHealth> = {};
  for (const [name, up] of upstreams) out[name] = serviceHealth(up, now);
  return out;
}

/** Everything the admin API shows about an upstream. */
export function describeUpstream(up: Upstream, now = performance.now()) {
  const wall = Date.now();
  const at = (perf: number) => new Date(wall + (perf - now)).toISOString();
  return {
    name: up.name,
    balance: up.balance,
    status: serviceHealth(up, now).status,
    critical: up.critical,
    fallback: up.fallbacks.map((f) => f.name),
    degraded: up.degraded ?? null,
    circuit: up.breaker === null ? null : {
      state: STATE_NAMES[up.breaker.state],
      opened: up.breaker.opened,
      retryAfterMs: Math.round(up.breaker.retryAfterMs(now)),
    },
    retry: up.retry === null ? null : {
      attempts: up.retry.attempts,
      budget: up.retry.budgetText,
      window: up.retry.budget.usage(now),
    },
    targets: up.targets.map((t) => ({
      index: t.index,
      url: t.label,
      weight: t.weight,
      role: t.weight === 0 ? 'standby' : 'serving',
      state: t.state(now),
      inflight: t.inflight,
      health: t.checker === null ? null : {
        healthy: t.healthy,
        checks: t.checker.checks,
        lastStatus: t.checker.lastStatus || null,
        lastResponseMs: t.checker.lastMs < 0 ? null : Math.round(t.checker.lastMs * 10) / 10,
        lastCheckedAt: t.checker.lastAt ? new Date(t.checker.lastAt).toISOString() : null,
        lastError: t.checker.lastError,
      },
      passive: t.passive === null ? null : {
        ejected: t.passive.ejectedUntil !== 0 && now < t.passive.ejectedUntil,
        ejectedUntil: t.passive.ejectedUntil !== 0 ? at(t.passive.ejectedUntil) : null,
        ejections: t.passive.ejections,
        consecutiveFailures: t.passive.consecutiveFailures,
      },
      circuit: t.breaker === null ? null : {
        state: STATE_NAMES[t.breaker.state],
        opened: t.breaker.opened,
        consecutiveFailures: t.breaker.consecutiveFailures,
        retryAfterMs: Math.round(t.breaker.retryAfterMs(now)),
      },
    })),
  };
}
