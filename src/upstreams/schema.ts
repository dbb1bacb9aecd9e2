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
  obj({
    connect: duration.optional().describe('TCP/TLS connect timeout (default 5s; an upstream setting: a route may not set it).'),
    response: duration.optional().describe('Until the response headers arrive (default `defaults.timeout` or 60s); 504 upstream_timeout past it.'),
    idle: duration.optional().describe('Longest gap between body chunks (defaults to `response`).'),
  }),
], { error: explainUnion('expected a duration ("30s") or { connect, response, idle }') }).describe('A duration (the response and idle timeout) or { connect, response, idle }.');
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

export const targetSchema = obj({
  url: z.string().url().describe('Base URL of the target; a path in it is prepended to every forwarded path.'),
  weight: z.number().int().min(0).prefault(100).describe('Share of traffic (with `balance: weighted`; 0 takes none); the admin API can change it at runtime.'),
});
/** LLM providers an upstream may speak for: the gateway injects the provider's credential (src/upstreams/provider.ts). */
export const providerSchema = z.enum(['openai', 'anthropic', 'openai-compatible']);
export type Provider = z.output<typeof providerSchema>;
/** Where an `openai` or `anthropic` upstream goes when it lists no targets. */
export const PROVIDER_TARGETS: Readonly<Partial<Record<Provider, string>>> = { openai: 'https://api.openai.com', anthropic: 'https://api.anthropic.com' };

export const upstreamSchema = obj({
  /** Optional for `provider: openai | anthropic` (their public API); required otherwise (normalize resolves it). */
  targets: z.array(z.union([z.string().url().transform((url) => ({ url, weight: 100 })), targetSchema], { error: explainUnion('expected a URL or { url, weight }') }).describe('A URL (weight 100) or { url, weight }.')).min(1).optional()
    .describe('Where requests go: URLs or { url, weight }. Optional for `provider: openai | anthropic` (their public API); required otherwise.'),
  provider: providerSchema.optional().describe('Makes this an LLM provider upstream: `openai`, `anthropic` or `openai-compatible`; the gateway injects `apiKey` in the provider\'s header and removes the client\'s credentials (docs/ai-traffic.md).'),
  apiKey: z.string().optional().describe('The provider\'s API key, only as `${VAR}` (a literal does not load): clients never hold it.'),
  maxInFlight: positiveInt.optional().describe('Requests in flight to this upstream at most, across every gateway sharing the store (a lease per exchange); 429 past it.'),
  balance: z.enum(['round-robin', 'least-request', 'weighted']).prefault('round-robin').describe('How a target is chosen: `round-robin`, `least-request` or `weighted`.'),
  timeout: timeoutSchema.optional().describe('Timeouts of this upstream: a duration (response and idle) or { connect, response, idle }.'),
  pool: obj({
    connections: positiveInt.prefault(128).describe('Connections kept per target at most.'),
    keepAlive: duration.prefault('60s').describe('How long an idle pooled connection is kept.'),
  }).prefault({}).describe('The connection pool to each target.'),
  health: obj({
    path: z.string().prefault('/health').describe('Path probed with GET on each target (also by `gatehouse check --live`).'),
    interval: duration.prefault('30s').describe('Time between probes.'),
    timeout: duration.prefault('2s').describe('A probe without an answer within this fails.'),
    healthyThreshold: positiveInt.prefault(1).describe('Consecutive successful probes that bring a target back.'),
    unhealthyThreshold: positiveInt.prefault(2).describe('Consecutive failed probes that take a target out.'),
    expectStatus: z.array(z.number().int()).optional().describe('Statuses that pass, e.g. [200, 204] (default: 2xx and 3xx).'),
  }).optional().describe('Active health checks of the targets (docs/upstreams.md).'),
  circuitBreaker: obj({
    failures: positiveInt.prefault(5).describe('Consecutive failures that open the circuit.'),
    failureRatio: z.number().gt(0).max(1).optional().describe('Or: the share of failed requests (over at least `minRequests`) that opens it.'),
    minRequests: positiveInt.prefault(20).describe('Requests needed before `failureRatio` is judged.'),
    resetAfter: duration.prefault('60s').describe('How long the circuit stays open before trial requests.'),
    halfOpenRequests: positiveInt.prefault(1).describe('Probes allowed at once while half-open; this many successes close the circuit.'),
  }).optional().describe('Stops sending to an upstream that keeps failing (503 meanwhile, or the fallback).'),
  passiveHealth: obj({
    failures: positiveInt.prefault(5).describe('Consecutive failures that eject a target.'),
    failureRatio: z.number().gt(0).max(1).optional().describe('Or: the share of failed requests (over at least `minRequests`) that ejects it.'),
    minRequests: positiveInt.prefault(20).describe('Requests needed before `failureRatio` is judged.'),
    ejectFor: duration.prefault('1s').describe('First ejection; each ejection soon after a return doubles it.'),
    maxEjectFor: duration.prefault('30s').describe('Longest ejection.'),
  }).optional().describe('Targets that keep failing in real traffic are ejected for a growing interval (docs/upstreams.md).'),
  retry: obj({
    attempts: z.number().int().min(0).prefault(2).describe('Retries after the first attempt, on another target.'),
    budget: z.string().regex(/^\d+(\.\d+)?%$/, 'a percentage, e.g. "20%"').prefault('20%').describe('Retries may be at most this share of the requests sent to the upstream over a sliding 10 s window.'),
    backoff: duration.prefault('25ms').describe('Base delay: the n-th retry waits between ½ and 1 × backoff × 2^(n-1).'),
    minRetries: z.number().int().min(0).prefault(10).describe('Retries allowed per 10 s window even when the budget\'s percentage of traffic is smaller.'),
    retryOn: z.array(z.number().int().min(500).max(599)).prefault([502, 503, 504]).describe('Upstream statuses retried on another target (idempotent, bodyless requests only).'),
  }).optional().describe('Retries of failed attempts (connect errors and `retryOn` statuses) on another target.'),
  fallback: z.string().optional().describe('Another upstream used when this one has no healthy target or its circuit is open.'),
  degraded: obj({
    message: z.string().describe('Message of the answer.'),
    status: z.number().int().min(400).max(599).prefault(503).describe('Status of the answer.'),
  }).optional().describe('What the gateway answers itself when the upstream (and its fallback) cannot serve.'),
  critical: z.boolean().prefault(true).describe('An outage of this upstream makes the gateway `unhealthy` (false: only `degraded`) in the health report.'),
  headers: headerRulesSchema.optional().describe('Header rules for every route to this upstream; a route\'s own come after (docs/request-rules.md).'),
});

export type UpstreamInput = z.output<typeof upstreamSchema>;
/** An upstream after the normalize pass: its timeouts resolved (defaults → `defaults.timeout` → its own), its targets too. */
export type UpstreamConfig = Omit<UpstreamInput, 'timeout' | 'targets'> & { timeouts: Timeouts; targets: Array<{ url: string; weight: number }> };
