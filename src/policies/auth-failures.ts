import { z } from 'zod';
import { obj, duration, positiveInt } from '../config/zod-helpers.ts';
import { GatewayError } from '../errors.ts';
import type { RequestContext, Step } from '../pipeline/context.ts';
import type { ConsumeResult, Store, TierSpec } from '../state/store.ts';
import { ipPartition } from './rate-limit-keys.ts';

/**
 * `auth.failureLimit`: failed authentications per client IP (a /64 for IPv6), so credentials cannot be guessed at
 * line rate. Only a credential that was presented and refused counts (a wrong key or token, two that disagree);
 * a missing one does not. Past the limit the IP gets 429 + Retry-After, for right and wrong credentials alike.
 */
export const failureLimitSchema = z.union([
  z.literal(false),
  obj({
    limit: positiveInt.describe('Failed authentications an IP may make per window before it is answered 429.'),
    window: duration.describe('The window the limit is counted over (GCRA: the allowance refills steadily over it).'),
  }),
]).optional().describe('Per-IP limit on failed authentications (429 + Retry-After past it), counted in the state store so replicas sharing Redis count together. Default: 20 per minute in production, off elsewhere; false turns it off.');
export type FailureLimitConfig = z.output<typeof failureLimitSchema>;

/** The production default. */
export const DEFAULT_FAILURE_LIMIT = { limit: 20, window: 60_000 } as const;

/** Local blocks kept at most: past it, expired ones are dropped (an attacker rotating IPs cannot grow memory). */
const MAX_BLOCKED = 10_000;

/**
 * One per generation. The count lives in the store (exact across replicas with Redis); the block it decides is
 * also kept here, so a blocked IP is refused before its credential is even looked at.
 */
export class AuthFailureLimiter {
  private readonly spec: TierSpec[];
  private readonly blocked = new Map<string, number>();

  constructor(private readonly store: Store, cfg: { limit: number; window: number }, private readonly warn: (m: string, e?: unknown) => void) {
    this.spec = [{ id: `auth-failures:${cfg.limit}:${cfg.window}`, limit: cfg.limit, windowMs: cfg.window, cost: 1 }];
  }

  /** Wraps an auth step: refuses blocked IPs up front, counts the step's refusals. */
  guard(step: Step): Step {
    return (ctx) => {
      if (this.blocked.size > 0) this.checkBlocked(ctx);
      let r: void | Promise<void>;
      try {
        r = step(ctx);
      } catch (e) {
        return this.failed(ctx, e);
      }
      if (r instanceof Promise) return r.catch((e: unknown) => this.failed(ctx, e));
      return r;
    };
  }

  private checkBlocked(ctx: RequestContext): void {
    const key = ipPartition(ctx.clientIp);
    const until = this.blocked.get(key);
    if (until === undefined) return;
    const ms = until - Date.now();
    if (ms > 0) throw tooMany(ms);
    this.blocked.delete(key);
  }

  private failed(ctx: RequestContext, e: unknown): void | Promise<void> {
    if (!(e instanceof GatewayError) || e.code !== 'invalid_token') throw e;
    const key = ipPartition(ctx.clientIp);
    let r: ConsumeResult | Promise<ConsumeResult>;
    try {
      r = this.store.consume([key], this.spec);
    } catch (err) {
      this.warn('auth failure limit: store unavailable; not counting', err);
      throw e;
    }
    if (r instanceof Promise) return r.then((x) => this.decided(key, x, e), (err: unknown) => { this.warn('auth failure limit: store unavailable; not counting', err); throw e; });
    this.decided(key, r, e);
  }

  private decided(key: string, r: ConsumeResult, e: GatewayError): never {
    if (r.allowed) throw e;
    const ms = Math.max(1000, r.tiers[0].retryMs);
    if (this.blocked.size >= MAX_BLOCKED) { const now = Date.now(); for (const [k, t] of this.blocked) if (t <= now) this.blocked.delete(k); }
    if (this.blocked.size < MAX_BLOCKED) this.blocked.set(key, Date.now() + ms);
    throw tooMany(ms);
  }
}

function tooMany(ms: number): GatewayError {
  const secs = Math.max(1, Math.ceil(ms / 1000));
  return new GatewayError('rate_limited', `Too many failed authentications from this address; retry in ${secs} s.`, { headers: { 'retry-after': String(secs) }, extra: { retryAfter: secs } });
}
