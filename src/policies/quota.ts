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

const quotaLimit = obj({ limit: positiveInt, period: z.enum(['day', 'month']) });
/** A bytes quota reads like the sizes elsewhere: `limit: 10gb`. */
const bytesQuotaLimit = obj({ limit: size.refine((n) => n > 0, 'a quota limit must be positive'), period: z.enum(['day', 'month']) });
/** `plans.<name>.quota`: what a consumer on the plan may use per UTC day or month. */
export const planQuotaSchema = obj({ requests: quotaLimit.optional(), tokens: quotaLimit.optional(), bytes: bytesQuotaLimit.optional() });
export type PlanQuota = z.output<typeof planQuotaSchema>;
/** `quota:` on a route: which usage the route charges against the consumer's plan quotas. */
export const quotaRouteKeys = {
  quota: obj({
    usage: z.enum(['requests', 'tokens', 'bytes']).prefault('requests'),
    /** Tokens reserved per request when the body names no max_tokens (see docs/traffic-control.md). */
    reserve: positiveInt.prefault(1000),
    onError: z.enum(['open', 'closed']).optional(),
  }).optional(),
};
type RouteQuota = NonNullable<z.output<(typeof quotaRouteKeys)['quota']>>;

interface Needs {
  plans: Readonly<Record<string, { quota?: PlanQuota }>>;
  observability: { metrics: { consumerLabels: boolean } };
  state: { redis: { onError: 'open' | 'closed' } };
  server: { limits: { bodyPeek: number } };
  routes: ReadonlyArray<{ auth: string; websocket: boolean; quota?: RouteQuota }>;
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
    });
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
      if (specs.length) byPlan.set(name, specs);
    }
    const store = env.store;
    const metrics = meteringMetrics(env.metrics, config.observability.metrics.consumerLabels);
    const warn = env.storeWarn;
    const onError = q.onError ?? config.state.redis.onError;
    const reserveTokens = q.reserve;
    const peekCap = config.server.limits.bodyPeek;
    const ctx0 = { routeName, store, metrics, warn, onError };

    const step: Step = (ctx) => {
      const id = ctx.identity;
      if (id === null) return; // no consumer to charge (public route)
      const subject = id.consumer ?? id.id;
      const specs = (id.plan !== undefined ? byPlan.get(id.plan) : undefined) ?? NONE;
      if (specs.length === 0) { settleLater(ctx0, ctx, subject, specs, [], [], usage); return; }
      const tokenAt = specs.findIndex((s) => s.kind === 'tokens');
      if (tokenAt >= 0 && wantsPeek(ctx)) {
        return peekBody(ctx, peekCap).then(
          (p) => reserve(ctx0, ctx, subject, specs, amounts(ctx, specs, estimateTokens(ctx, p.bytes, p.complete, reserveTokens)), usage),
          () => reserve(ctx0, ctx, subject, specs, amounts(ctx, specs, reserveTokens), usage),
        );
      }
      return reserve(ctx0, ctx, subject, specs, amounts(ctx, specs, reserveTokens), usage);
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
}

function reserve(sh: Shared, ctx: RequestContext, subject: string, specs: readonly QuotaSpec[], amts: number[], usage: string): void | Promise<void> {
  let r: ReserveResult | Promise<ReserveResult>;
  try {
    r = sh.store.reserve(subject, specs, amts);
  } catch (e) {
    return failed(sh, e);
  }
  if (r instanceof Promise) return r.then((x) => reserved(sh, ctx, subject, specs, amts, x, usage), (e) => failed(sh, e));
  reserved(sh, ctx, subject, specs, amts, r, usage);
}

function reserved(sh: Shared, ctx: RequestContext, subject: string, specs: readonly QuotaSpec[], amts: number[], r: ReserveResult, usage: string): void {
  if (!r.ok) {
    const d = r.denied!;
    const q = specs[d.index];
    sh.metrics.quotaExceeded.labels(sh.routeName, q.kind).inc();
    const resetAt = new Date(d.resetAt).toISOString();
    const retry = Math.max(1, Math.ceil((d.resetAt - Date.now()) / 1000));
    throw new GatewayError('quota_exceeded', `The ${q.period === 'day' ? 'daily' : 'monthly'} ${q.kind} quota (${q.limit}) is used up; it resets at ${resetAt}.`, {
      headers: { 'retry-after': String(retry) },
      extra: { quota: q.kind, period: q.period, limit: q.limit, used: d.used, resetAt },
    });
  }
  // The client left while the reservation was on its way: nothing will be forwarded.
  if (ctx.clientGone) { giveBack(sh, subject, specs, r.periods, amts); return; }
  settleLater(sh, ctx, subject, specs, r.periods, amts, usage);
}

function settleLater(sh: Shared, ctx: RequestContext, subject: string, specs: readonly QuotaSpec[], periods: string[], amts: number[], usage: string): void {
  const route = sh.routeName;
  UsageMeter.of(ctx, sh.metrics).onSettled((s: Settlement) => {
    if (s.refund) { giveBack(sh, subject, specs, periods, amts); return; }
    const deltas = specs.map((q, i) => actual(q, s) - amts[i]);
    const u: UsageDelta = {
      route,
      requests: 1,
      tokens: usage === 'tokens' ? s.tokens.total : 0,
      inputTokens: usage === 'tokens' ? s.tokens.input : 0,
      outputTokens: usage === 'tokens' ? s.tokens.output : 0,
      bytes: s.bytes,
      estimated: usage === 'tokens' && !s.tokens.found && s.tokens.total > 0,
    };
    guard(sh, 'settle', () => sh.store.settle(subject, specs, periods, deltas, u));
  });
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

function actual(q: QuotaSpec, s: Settlement): number {
  return q.kind === 'requests' ? 1 : q.kind === 'tokens' ? s.tokens.total : s.bytes;
}

/** What to reserve: one request, the token estimate, the declared body size (at least 1 of each). */
function amounts(ctx: RequestContext, specs: readonly QuotaSpec[], tokens: number): number[] {
  return specs.map((q) => {
    if (q.kind === 'requests') return 1;
    if (q.kind === 'tokens') return Math.max(1, Math.min(tokens, q.limit));
    const cl = Number(ctx.req.headers['content-length'] ?? 0);
    return Math.max(1, Math.min(Number.isFinite(cl) ? cl : 0, q.limit));
  });
}

function wantsPeek(ctx: RequestContext): boolean {
  const h = ctx.req.headers;
  const ct = h['content-type'];
  return ct !== undefined && ct.includes('json') && (h['content-length'] !== undefined || h['transfer-encoding'] !== undefined);
}

/** The completion bound the client asked for plus the prompt (request bytes / 4); the configured default without one. */
function estimateTokens(ctx: RequestContext, body: Buffer, complete: boolean, fallback: number): number {
  const ct = ctx.req.headers['content-type'];
  for (const f of MAX_FIELDS) {
    const v = extractField(body, ct, f);
    const n = v === undefined ? NaN : Number(v);
    if (Number.isInteger(n) && n > 0) {
      const size = complete ? body.length : Number(ctx.req.headers['content-length'] ?? body.length);
      return n + Math.ceil(size / BYTES_PER_TOKEN);
    }
  }
  return fallback;
}
