import { z } from 'zod';
import { obj, positiveInt, size } from '../config/zod-helpers.ts';
import type { RequestContext, Step } from '../pipeline/context.ts';
import type { Policy } from '../pipeline/policy.ts';
import { extractField, peekBody } from '../pipeline/body-peek.ts';
import type { QuotaSpec, ReserveResult, Store, UsageDelta } from '../state/store.ts';
import { GatewayError } from '../errors.ts';
import { UsageMeter, type Settlement } from '../metering/meter.ts';
import { meteringMetrics, type MeteringMetrics } from '../metering/metrics.ts';
import { BYTES_PER_TOKEN } from '../metering/usage.ts';
import { amountMicros, costMicros, formatMicros, Pricing, reserveMicros, type Price } from '../metering/pricing.ts';
import { modelLabels, type LabelNeeds, type ModelLabel } from '../metering/model-labels.ts';
import { isPattern } from '../metering/model-names.ts';
import { readBody } from '../pipeline/request-body.ts';

const period = z.enum(['day', 'month']).describe('UTC day or calendar month.');
const quotaLimit = obj({ limit: positiveInt.describe('Amount allowed per period.'), period });
/** A money budget: `limit` in the pricing currency (`50`, `12.5`), kept as integer micro-units. */
const costQuotaLimit = obj({ limit: amountMicros.describe('Amount in `pricing.currency` per period (at most six decimals).'), period });
/** A bytes quota reads like the sizes elsewhere: `limit: 10gb`. */
const bytesQuotaLimit = obj({ limit: size.refine((n) => n > 0, 'a quota limit must be positive').describe('Bytes allowed per period, e.g. 10gb.'), period });
/** `plans.<name>.quota`: what a consumer on the plan may use per UTC day or month. */
export const planQuotaSchema = obj({
  requests: quotaLimit.optional().describe('Requests per period (routes with `quota.usage: requests`).'),
  tokens: quotaLimit.optional().describe('LLM tokens per period (routes with `quota.usage: tokens`).'),
  bytes: bytesQuotaLimit.optional().describe('Bytes per period (routes with `quota.usage: bytes`).'),
  cost: costQuotaLimit.optional().describe('A money budget per period (routes with `quota.usage: cost`; needs `pricing`).'),
}).describe('What a consumer on the plan may use per UTC day or month (docs/traffic-control.md).');
export type PlanQuota = z.output<typeof planQuotaSchema>;
/** `quota:` on a route: which usage the route charges against the consumer's plan quotas. */
export const quotaRouteKeys = {
  quota: obj({
    usage: z.enum(['requests', 'tokens', 'bytes', 'cost']).prefault('requests').describe('Which plan quota the route charges: requests, tokens, bytes or cost.'),
    reserve: positiveInt.prefault(1000).describe('Tokens reserved per request when the body names no max_tokens (docs/traffic-control.md).'),
    onError: z.enum(['open', 'closed']).optional().describe('When the state store cannot answer: allow (open) or refuse with 503 (closed); default `state.redis.onError`.'),
  }).optional().describe('Charge this route against the consumer\'s plan quotas (402/429 when used up).'),
};
type RouteQuota = NonNullable<z.output<(typeof quotaRouteKeys)['quota']>>;

type Candidates = Readonly<Record<string, ReadonlyArray<{ upstream: string; model?: string }>>>;
interface Needs extends LabelNeeds {
  plans: Readonly<Record<string, { quota?: PlanQuota }>>;
  observability: { metrics: { consumerLabels: boolean; models?: readonly string[] } };
  state: { redis: { onError: 'open' | 'closed' } };
  server: { limits: { bodyPeek: number } };
  pricing?: ConstructorParameters<typeof Pricing>[0] & { models: Readonly<Record<string, unknown>> };
  routes: ReadonlyArray<{ auth: string; websocket: boolean; quota?: RouteQuota; models?: Candidates }>;
}
type Route = { name: string; websocket: boolean; quota?: RouteQuota };

const NONE: readonly QuotaSpec[] = [];
/** Request-body fields that bound the tokens a completion may generate (OpenAI chat, OpenAI responses, Anthropic). */
const MAX_FIELDS = ['max_tokens', 'max_completion_tokens', 'max_output_tokens'];

/**
 * Quotas per consumer and plan (`plans.<name>.quota`: requests, tokens, bytes per UTC day or month)
 * on routes that declare `quota:`. Before forwarding, the request's expected use is reserved
 * atomically (all quotas or none); once the exchange is over the reservation is replaced by the
 * actual use, or given back on a 5xx, a connection failure or a client gone before any response.
 * Every settled request is also recorded per consumer, route and usage type (GET /admin/usage).
 */
export const quotaPolicy: Policy<Needs, Route> = {
  name: 'quota',
  check(c, out) {
    c.routes.forEach((r, i) => {
      if (r.quota === undefined) return;
      // A tunnel has no HTTP response to settle against: a reservation would never be settled or refunded.
      if (r.websocket) out.push({ path: ['routes', i, 'quota'], message: 'quota is not available on WebSocket routes (nothing to settle); use rateLimit' });
      else if (r.auth === 'public') out.push({ path: ['routes', i, 'quota'], message: 'quotas are per consumer and a public route has none: this quota does nothing', warning: true });
      if (r.quota.usage !== 'cost') return;
      if (c.pricing === undefined) { out.push({ path: ['routes', i, 'quota', 'usage'], message: 'usage: cost needs a pricing: section (prices per model)' }); return; }
      // Every model this route can forward to must have a price (or a pattern covering it), else its cost is unknowable.
      const prices = new Pricing(c.pricing);
      for (const [name, cands] of Object.entries(r.models ?? {})) {
        for (const [j, x] of cands.entries()) {
          const m = x.model ?? (isPattern(name) ? undefined : name);
          if (m !== undefined && prices.price(m) === undefined) out.push({ path: ['routes', i, 'models', name, j], message: `model "${m}" has no price in pricing.models (usage: cost must know what it charges)` });
        }
      }
    });
    for (const [name, p] of Object.entries(c.plans)) {
      if (p.quota?.cost !== undefined && c.pricing === undefined) out.push({ path: ['plans', name, 'quota', 'cost'], message: 'a cost budget needs a pricing: section (prices per model)' });
    }
  },
  compile({ config, route, env }) {
    const q = route.quota;
    if (q === undefined) return undefined;
    const routeName = route.name;
    const usage = q.usage;
    const byPlan = new Map<string, QuotaSpec[]>();
    for (const [name, plan] of Object.entries(config.plans)) {
      const pq = plan.quota;
      if (pq === undefined) continue;
      const specs: QuotaSpec[] = [];
      if (pq.requests) specs.push({ kind: 'requests', period: pq.requests.period, limit: pq.requests.limit });
      if (usage === 'tokens' && pq.tokens) specs.push({ kind: 'tokens', period: pq.tokens.period, limit: pq.tokens.limit });
      if (usage === 'bytes' && pq.bytes) specs.push({ kind: 'bytes', period: pq.bytes.period, limit: pq.bytes.limit });
      if (usage === 'cost' && pq.cost) specs.push({ kind: 'cost', period: pq.cost.period, limit: pq.cost.limit });
      if (specs.length) byPlan.set(name, specs);
    }
    const store = env.store;
    const metrics = meteringMetrics(env.metrics, config.observability.metrics.consumerLabels);
    const warn = env.storeWarn;
    const onError = q.onError ?? config.state.redis.onError;
    const reserveTokens = q.reserve;
    const peekCap = config.server.limits.bodyPeek;
    const label = modelLabels(config, env.shared);
    const pricing = usage === 'cost' ? new Pricing(config.pricing) : null;
    const ctx0: Shared = { routeName, store, metrics, warn, onError, label, pricing };

    const step: Step = (ctx) => {
      const id = ctx.identity;
      if (id === null) return; // no consumer to charge (public route)
      const subject = id.consumer ?? id.id;
      const specs = (id.plan !== undefined ? byPlan.get(id.plan) : undefined) ?? NONE;
      if (pricing !== null) return readBody(ctx, peekCap).then((body) => {
        // The prices of every model an attempt may go to (model routing), else of the model the body names.
        const models = ctx.ai !== null ? ctx.ai.candidates : [body.field('model') ?? ''];
        const prices: Price[] = [];
        for (const m of models) {
          const p = pricing.price(m);
          if (p === undefined) throw new GatewayError('unknown_model', `No price is configured for model "${m.slice(0, 100)}", so this route cannot charge for it.`, { extra: { model: m.slice(0, 100) } });
          prices.push(p);
        }
        const est = estimate(ctx, body.bytes, body.complete, reserveTokens);
        const price: Pricing0 = { prices, reserved: reserveMicros(prices, est.prompt, est.output) };
        if (specs.length === 0) { settleLater(ctx0, ctx, subject, specs, [], [], usage, price); return; }
        return reserve(ctx0, ctx, subject, specs, amounts(ctx, specs, est.tokens, price.reserved), usage, price);
      });
      if (specs.length === 0) { settleLater(ctx0, ctx, subject, specs, [], [], usage, null); return; }
      const tokenAt = specs.findIndex((s) => s.kind === 'tokens');
      if (tokenAt >= 0 && wantsPeek(ctx)) {
        return peekBody(ctx, peekCap).then(
          (p) => reserve(ctx0, ctx, subject, specs, amounts(ctx, specs, estimate(ctx, p.bytes, p.complete, reserveTokens).tokens, 0), usage, null),
          () => reserve(ctx0, ctx, subject, specs, amounts(ctx, specs, reserveTokens, 0), usage, null),
        );
      }
      return reserve(ctx0, ctx, subject, specs, amounts(ctx, specs, reserveTokens, 0), usage, null);
    };
    return step;
  },
};

interface Shared {
  routeName: string;
  store: Store;
  metrics: MeteringMetrics;
  warn: (msg: string, err?: unknown) => void;
  onError: 'open' | 'closed';
  label: ModelLabel;
  /** Prices (usage: cost routes), else null. */
  pricing: Pricing | null;
}

/** A cost route's request: the prices of the models it may go to, and the cost reserved for it (micro-units). */
interface Pricing0 { prices: Price[]; reserved: number }

function reserve(sh: Shared, ctx: RequestContext, subject: string, specs: readonly QuotaSpec[], amts: number[], usage: string, price: Pricing0 | null): void | Promise<void> {
  let r: ReserveResult | Promise<ReserveResult>;
  try {
    r = sh.store.reserve(subject, specs, amts);
  } catch (e) {
    return failed(sh, e);
  }
  if (r instanceof Promise) return r.then((x) => reserved(sh, ctx, subject, specs, amts, x, usage, price), (e) => failed(sh, e));
  reserved(sh, ctx, subject, specs, amts, r, usage, price);
}

function reserved(sh: Shared, ctx: RequestContext, subject: string, specs: readonly QuotaSpec[], amts: number[], r: ReserveResult, usage: string, price: Pricing0 | null): void {
  if (!r.ok) {
    const d = r.denied!;
    const q = specs[d.index];
    sh.metrics.quotaExceeded.labels(sh.routeName, q.kind).inc();
    const resetAt = new Date(d.resetAt).toISOString();
    const retry = Math.max(1, Math.ceil((d.resetAt - Date.now()) / 1000));
    const period = q.period === 'day' ? 'daily' : 'monthly';
    if (q.kind === 'cost') {
      const currency = sh.pricing!.currency;
      throw new GatewayError('quota_exceeded', `The ${period} cost budget (${formatMicros(q.limit)} ${currency}) is used up; it resets at ${resetAt}.`, {
        headers: { 'retry-after': String(retry) },
        extra: { quota: 'cost', period: q.period, currency, limit: formatMicros(q.limit), used: formatMicros(d.used), limitMicros: q.limit, usedMicros: d.used, requestedMicros: amts[d.index], resetAt },
      });
    }
    throw new GatewayError('quota_exceeded', `The ${period} ${q.kind} quota (${q.limit}) is used up; it resets at ${resetAt}.`, {
      headers: { 'retry-after': String(retry) },
      extra: { quota: q.kind, period: q.period, limit: q.limit, used: d.used, resetAt },
    });
  }
  // The client left while the reservation was on its way: nothing will be forwarded.
  if (ctx.clientGone) { giveBack(sh, subject, specs, r.periods, amts); return; }
  settleLater(sh, ctx, subject, specs, r.periods, amts, usage, price);
}

function settleLater(sh: Shared, ctx: RequestContext, subject: string, specs: readonly QuotaSpec[], periods: string[], amts: number[], usage: string, price: Pricing0 | null): void {
  const route = sh.routeName;
  UsageMeter.of(ctx, sh.metrics, sh.label).onSettled((s: Settlement) => {
    if (s.refund) { giveBack(sh, subject, specs, periods, amts); return; }
    const cost = price === null ? 0 : settledCost(sh, ctx, s, price);
    if (cost > 0) sh.metrics.cost.labels(route, s.label).inc(cost);
    const deltas = specs.map((q, i) => actual(q, s, cost) - amts[i]);
    const metered = usage === 'tokens' || usage === 'cost';
    const u: UsageDelta = {
      route,
      requests: 1,
      tokens: metered ? s.tokens.total : 0,
      inputTokens: metered ? s.tokens.input : 0,
      outputTokens: metered ? s.tokens.output : 0,
      bytes: s.bytes,
      estimated: metered && !s.tokens.found && s.tokens.total > 0,
      costMicros: cost,
      cached: s.cached,
      // Model routing: kept per upstream and model too (the dimension is bounded: upstream names and model labels come from the config).
      ...(s.upstream !== undefined ? { upstream: s.upstream, model: s.label } : {}),
    };
    guard(sh, 'settle', () => sh.store.settle(subject, specs, periods, deltas, u));
  });
}

/**
 * What the exchange cost: its tokens at the answering model's price (the most expensive candidate's when that
 * model has none). Without a usage block the estimate applies: request bytes / 4 as input, the response estimate
 * as output. A cache hit costs nothing.
 */
function settledCost(sh: Shared, ctx: RequestContext, s: Settlement, price: Pricing0): number {
  if (s.cached) return 0;
  const p = (s.model !== undefined ? sh.pricing!.price(s.model) : undefined) ?? mostExpensive(price.prices);
  if (s.tokens.found) return costMicros(p, s.tokens.input, s.tokens.output, s.tokens.cached ?? 0);
  if (s.tokens.total === 0) return 0;
  return costMicros(p, Math.ceil(ctx.bytesIn / BYTES_PER_TOKEN), s.tokens.total);
}

function mostExpensive(prices: readonly Price[]): Price {
  let best = prices[0];
  for (const p of prices) if (p.output > best.output || (p.output === best.output && p.input > best.input)) best = p;
  return best;
}

function giveBack(sh: Shared, subject: string, specs: readonly QuotaSpec[], periods: string[], amts: number[]): void {
  if (specs.length) guard(sh, 'refund', () => sh.store.refund(subject, specs, periods, amts));
}

function guard(sh: Shared, op: string, fn: () => void | Promise<void>): void {
  const fail = (e: unknown) => { sh.metrics.storeErrors.labels(op, 'open').inc(); sh.warn(`quota store: ${op} failed`, e); };
  try {
    const r = fn();
    if (r instanceof Promise) r.catch(fail);
  } catch (e) {
    fail(e);
  }
}

function failed(sh: Shared, err: unknown): void {
  sh.metrics.storeErrors.labels('reserve', sh.onError).inc();
  sh.warn(`quota store unavailable; failing ${sh.onError}`, err);
  if (sh.onError === 'closed') throw new GatewayError('store_unavailable', 'Quotas cannot be checked right now; retry shortly.', { headers: { 'retry-after': '1' } });
}

function actual(q: QuotaSpec, s: Settlement, cost: number): number {
  return q.kind === 'requests' ? 1 : q.kind === 'tokens' ? s.tokens.total : q.kind === 'cost' ? cost : s.bytes;
}

/** What to reserve: one request, the token estimate, the cost estimate, the declared body size (at least 1 of each). */
function amounts(ctx: RequestContext, specs: readonly QuotaSpec[], tokens: number, cost: number): number[] {
  return specs.map((q) => {
    if (q.kind === 'requests') return 1;
    if (q.kind === 'tokens') return Math.max(1, Math.min(tokens, q.limit));
    if (q.kind === 'cost') return Math.max(1, Math.min(cost, q.limit));
    const cl = Number(ctx.req.headers['content-length'] ?? 0);
    return Math.max(1, Math.min(Number.isFinite(cl) ? cl : 0, q.limit));
  });
}

function wantsPeek(ctx: RequestContext): boolean {
  const h = ctx.req.headers;
  const ct = h['content-type'];
  return ct !== undefined && ct.includes('json') && (h['content-length'] !== undefined || h['transfer-encoding'] !== undefined);
}

/**
 * What a request may use before its answer is known. Prompt: request bytes / 4. Output: the completion bound the
 * client asked for (`max_tokens`, `max_completion_tokens`, `max_output_tokens`), else `quota.reserve`. Tokens
 * reserved: prompt + bound, or `quota.reserve` alone without a bound. Cost reserved: prompt × input price + output ×
 * output price of the most expensive candidate (docs/ai-traffic.md).
 */
function estimate(ctx: RequestContext, body: Buffer, complete: boolean, fallback: number): { prompt: number; output: number; tokens: number } {
  const ct = ctx.req.headers['content-type'];
  const size = complete ? body.length : Number(ctx.req.headers['content-length'] ?? body.length);
  const prompt = Math.ceil((Number.isFinite(size) ? size : body.length) / BYTES_PER_TOKEN);
  for (const f of MAX_FIELDS) {
    const v = extractField(body, ct, f);
    const n = v === undefined ? NaN : Number(v);
    if (Number.isInteger(n) && n > 0) return { prompt, output: n, tokens: prompt + n };
  }
  return { prompt, output: fallback, tokens: fallback };
}
