import { z } from 'zod';
import { obj, duration, positiveInt, explainUnion } from '../config/zod-helpers.ts';
import { headerRulesSchema } from '../rules/schema.ts';

/**
 * The `upstreams:` section and the timeout shape routes and defaults share. A leaf: the upstream code and the
 * composed config schema (src/config/schema.ts) both import it, and it imports neither.
 */

/** One duration (the response timeout) or each phase separately. */
export const timeoutSchema = z.union([
  duration.transform((response) => ({ response }) as { connect?: number; response?: number; idle?: number }),
  obj({ connect: duration.optional(), response: duration.optional(), idle: duration.optional() }),
], { error: explainUnion('expected a duration ("30s") or { connect, response, idle }') });
export type TimeoutInput = { connect?: number; response?: number; idle?: number };

/** Resolved timeouts of an upstream or a route (milliseconds). */
export interface Timeouts { connect: number; response: number; idle: number }
export const DEFAULT_TIMEOUTS: Timeouts = Object.freeze({ connect: 5_000, response: 60_000, idle: 60_000 });

/** `timeout: 120s` means: headers within 120 s, and no gap of more than 120 s between body chunks. */
export function expandTimeout(t: TimeoutInput | undefined): Partial<Timeouts> {
  if (!t) return {};
  const out: Partial<Timeouts> = {};
  if (t.connect !== undefined) out.connect = t.connect;
  if (t.response !== undefined) { out.response = t.response; out.idle = t.response; }
  if (t.idle !== undefined) out.idle = t.idle;
  return out;
}

export const targetSchema = obj({ url: z.string().url(), weight: z.number().int().min(0).prefault(100) });
/** LLM providers an upstream may speak for: the gateway injects the provider's credential (src/upstreams/provider.ts). */
export const providerSchema = z.enum(['openai', 'anthropic', 'openai-compatible']);
export type Provider = z.output<typeof providerSchema>;
/** Where an `openai` or `anthropic` upstream goes when it lists no targets. */
export const PROVIDER_TARGETS: Readonly<Partial<Record<Provider, string>>> = { openai: 'https://api.openai.com', anthropic: 'https://api.anthropic.com' };

export const upstreamSchema = obj({
  /** Optional for `provider: openai | anthropic` (their public API); required otherwise (normalize resolves it). */
  targets: z.array(z.union([z.string().url().transform((url) => ({ url, weight: 100 })), targetSchema], { error: explainUnion('expected a URL or { url, weight }') })).min(1).optional(),
  provider: providerSchema.optional(),
  /** The provider's API key, from the environment (`${OPENAI_API_KEY}`): clients never hold it. */
  apiKey: z.string().optional(),
  /** Requests in flight to this upstream at most, across every gateway sharing the store (a lease per exchange). */
  maxInFlight: positiveInt.optional(),
  balance: z.enum(['round-robin', 'least-request', 'weighted']).prefault('round-robin'),
  timeout: timeoutSchema.optional(),
  pool: obj({ connections: positiveInt.prefault(128), keepAlive: duration.prefault('60s') }).prefault({}),
  health: obj({
    path: z.string().prefault('/health'),
    interval: duration.prefault('30s'),
    timeout: duration.prefault('2s'),
    healthyThreshold: positiveInt.prefault(1),
    unhealthyThreshold: positiveInt.prefault(2),
    expectStatus: z.array(z.number().int()).optional(),
  }).optional(),
  circuitBreaker: obj({
    failures: positiveInt.prefault(5),
    failureRatio: z.number().gt(0).max(1).optional(),
    minRequests: positiveInt.prefault(20),
    resetAfter: duration.prefault('60s'),
    halfOpenRequests: positiveInt.prefault(1),
  }).optional(),
  /** Passive health: targets that keep failing in real traffic are ejected for a growing interval (docs/upstreams.md). */
  passiveHealth: obj({
    failures: positiveInt.prefault(5),
    failureRatio: z.number().gt(0).max(1).optional(),
    minRequests: positiveInt.prefault(20),
    ejectFor: duration.prefault('1s'),
    maxEjectFor: duration.prefault('30s'),
  }).optional(),
  retry: obj({
    attempts: z.number().int().min(0).prefault(2),
    budget: z.string().regex(/^\d+(\.\d+)?%$/, 'a percentage, e.g. "20%"').prefault('20%'),
    backoff: duration.prefault('25ms'),
    /** Retries allowed per 10 s window even when the budget's percentage of traffic is smaller. */
    minRetries: z.number().int().min(0).prefault(10),
    /** Upstream statuses retried on another target (idempotent, bodyless requests only). */
    retryOn: z.array(z.number().int().min(500).max(599)).prefault([502, 503, 504]),
  }).optional(),
  fallback: z.string().optional(),
  degraded: obj({ message: z.string(), status: z.number().int().min(400).max(599).prefault(503) }).optional(),
  critical: z.boolean().prefault(true),
  /** Header rules for every route to this upstream (src/policies/header-rules.ts); a route's own come after. */
  headers: headerRulesSchema.optional(),
});

export type UpstreamInput = z.output<typeof upstreamSchema>;
/** An upstream after the normalize pass: its timeouts resolved (defaults → `defaults.timeout` → its own), its targets too. */
export type UpstreamConfig = Omit<UpstreamInput, 'timeout' | 'targets'> & { timeouts: Timeouts; targets: Array<{ url: string; weight: number }> };
