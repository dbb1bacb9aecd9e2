import type { TierSpec, TierState } from './store.ts';

/**
 * GCRA (generic cell rate algorithm), the arithmetic shared by the memory store; the Redis scripts
 * (lua/ratelimit_*.lua) do the same in Lua. State per key is one number: the theoretical arrival
 * time (TAT, ms). Emission interval T = window/limit; tolerance = window, so a full bucket holds
 * `limit` units and one unit comes back every T.
 */

/**
 * Decides one tier at `now` against `tat` (0 or a past time = full bucket). Writes the outcome into
 * `out` and returns the new TAT to store when allowed, or -1 when denied.
 */
export function decide(tier: TierSpec, tat: number, now: number, out: TierState): number {
  const t = tier.windowMs / tier.limit;
  const base = tat > now ? tat : now;
  // Token tiers (cost 0) admit while at least one unit is left and are charged later: test as cost 1, consume nothing.
  const next = base + (tier.cost === 0 ? 1 : tier.cost) * t;
  if (next - now > tier.windowMs + 1e-6) {
    peek(tier, tat, now, out);
    out.retryMs = next - tier.windowMs - now;
    return -1;
  }
  const stored = tier.cost === 0 ? base : next;
  out.remaining = Math.floor((tier.windowMs - (stored - now)) / t + 1e-9);
  out.resetMs = stored - now;
  out.retryMs = 0;
  return stored;
}

/** The state a tier shows when it was not consumed (another tier denied the request). */
export function peek(tier: TierSpec, tat: number, now: number, out: TierState): void {
  const t = tier.windowMs / tier.limit;
  const base = tat > now ? tat : now;
  out.remaining = Math.max(0, Math.floor((tier.windowMs - (base - now)) / t + 1e-9));
  out.resetMs = base - now;
  out.retryMs = 0;
}

/** TAT after charging `amount` units unconditionally (may go past the window: the debt is waited out). */
export function charged(tier: TierSpec, tat: number, now: number, amount: number): number {
  const base = tat > now ? tat : now;
  return base + amount * (tier.windowMs / tier.limit);
}
