import type { Target, Upstream } from './upstream.ts';

/**
 * When no target of `up` can serve: the first fallback upstream that can, or the error the client reads
 * (circuit_open / upstream_unavailable with Retry-After, in the operator's words when `degraded:` is set).
 * Only reached after `up.pick()` returned null, so it costs nothing while the upstream is healthy.
 */
export function failover(up: Upstream): Target {
  const t = fallbackTarget(up);
  if (t !== null) return t;
  const err = up.unavailableError();
  up.events.unavailable(up, err.code);
  throw err;
}

/** A target of the first fallback upstream that has one, or null. */
export function fallbackTarget(up: Upstream): Target | null {
  for (const fb of up.fallbacks) {
    const t = fb.pick(0);
    if (t !== null) {
      up.events.fallback(up, fb);
      return t;
    }
  }
  return null;
}
