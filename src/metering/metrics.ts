import { Counter, Histogram } from 'prom-client';
import type { Metrics } from '../observability/metrics.ts';
import type { Settlement } from './usage.ts';

/**
 * Traffic-control metrics, registered on the gateway's registry. Labels are bounded: route names
 * come from the config and types/outcomes are fixed sets. Consumer ids are unbounded (every API
 * key or JWT subject is one), so they become a label only when `observability.metrics.consumerLabels`
 * says so; per-consumer figures otherwise live in the usage records (GET /admin/usage).
 */
export class MeteringMetrics {
  readonly tokens: Counter<string>;
  readonly tokensPerRequest: Histogram<string>;
  readonly settlements: Counter<string>;
  readonly rateLimited: Counter<string>;
  readonly quotaExceeded: Counter<string>;
  readonly storeErrors: Counter<string>;
  readonly cost: Counter<string>;
  private readonly byConsumer: boolean;

  constructor(m: Metrics, byConsumer: boolean) {
    const registers = [m.registry];
    this.byConsumer = byConsumer;
    this.tokens = new Counter({ name: 'gatehouse_tokens_total', help: 'LLM tokens settled from responses, by route, type (input, output, estimated when no usage block arrived) and model (names the config knows; other models are "other", none known "none").', labelNames: byConsumer ? ['route', 'type', 'model', 'consumer'] : ['route', 'type', 'model'], registers });
    // Per model only (not per route or consumer): the distribution of one model's requests is what capacity planning reads.
    this.tokensPerRequest = new Histogram({ name: 'gatehouse_request_tokens', help: 'Tokens per metered request, by model (the same bounded label as gatehouse_tokens_total) and type (input, output, estimated).', labelNames: ['model', 'type'], buckets: [16, 64, 256, 1024, 4096, 16384, 65536, 262144], registers });
    this.cost = new Counter({ name: 'gatehouse_cost_micros_total', help: 'What settled requests cost, in micro-units of the pricing currency (routes with quota usage: cost), by route and model.', labelNames: ['route', 'model'], registers });
    this.settlements = new Counter({ name: 'gatehouse_usage_settlements_total', help: 'Metered exchanges by outcome (charged, refunded).', labelNames: ['route', 'outcome'], registers });
    this.rateLimited = new Counter({ name: 'gatehouse_rate_limited_total', help: 'Requests refused with 429, by route.', labelNames: ['route'], registers });
    this.quotaExceeded = new Counter({ name: 'gatehouse_quota_exceeded_total', help: 'Requests refused with 402, by route and quota.', labelNames: ['route', 'quota'], registers });
    this.storeErrors = new Counter({ name: 'gatehouse_store_errors_total', help: 'State store calls that failed or timed out, by operation and what the policy did (open: allowed, closed: refused).', labelNames: ['op', 'outcome'], registers });
  }

  record(route: string, s: Settlement, consumer: string | undefined): void {
    this.settlements.labels(route, s.refund ? 'refunded' : 'charged').inc();
    if (s.refund || s.tokens.total === 0) return;
    const c = this.byConsumer ? [consumer ?? '-'] : [];
    if (s.tokens.found) {
      if (s.tokens.input) this.tokens.labels(route, 'input', s.label, ...c).inc(s.tokens.input);
      if (s.tokens.output) this.tokens.labels(route, 'output', s.label, ...c).inc(s.tokens.output);
      this.tokensPerRequest.labels(s.label, 'input').observe(s.tokens.input);
      this.tokensPerRequest.labels(s.label, 'output').observe(s.tokens.output);
    } else {
      this.tokens.labels(route, 'estimated', s.label, ...c).inc(s.tokens.total);
      this.tokensPerRequest.labels(s.label, 'estimated').observe(s.tokens.total);
    }
  }
}

const cache = new WeakMap<Metrics, MeteringMetrics>();

/** One set per gateway (per registry). */
export function meteringMetrics(m: Metrics, byConsumer: boolean): MeteringMetrics {
  let x = cache.get(m);
  if (!x) { x = new MeteringMetrics(m, byConsumer); cache.set(m, x); }
  return x;
}
