import { z } from 'zod';
import { obj, duration, positiveInt } from '../config/zod-helpers.ts';
import type { Issue } from '../config/errors.ts';
import type { RequestContext, Step } from '../pipeline/context.ts';
import type { Policy } from '../pipeline/policy.ts';
import type { ConsumeResult, Store, TierSpec } from '../state/store.ts';
import { GatewayError } from '../errors.ts';
import { UsageMeter } from '../metering/meter.ts';
import { meteringMetrics, type MeteringMetrics } from '../metering/metrics.ts';
import { modelLabels, type LabelNeeds, type ModelLabel } from '../metering/model-labels.ts';
import { fieldPartition, headerPartition, ipPartition } from './rate-limit-keys.ts';
import { readBody, type RequestBody } from '../pipeline/request-body.ts';
import { queryValues } from '../rules/refs.ts';

export const rateLimitRule = obj({
  limit: positiveInt.describe('Requests (or tokens) allowed per window.'),
  window: duration.describe('The window, e.g. 1m.'),
  by: z.string().regex(/^(consumer|ip|route|header:[A-Za-z0-9-]+|body\.[^\s]+|query\.[^\s&=]+|path\.[A-Za-z_][A-Za-z0-9_]*)$/, 'use consumer, ip, route, header:<name>, body.<field>, query.<name> or path.<name>').optional().describe('What is counted separately: consumer (default), ip, route, header:NAME, body.<field>, query.<name> or path.<name>.'),
  ifMissing: z.string().regex(/^(refuse|consumer|ip|route|header:[A-Za-z0-9-]+)$/, 'use refuse, consumer, ip, route or header:<name>').optional().describe('For `by: body.* | query.* | path.*`: the key of a request without that field (refuse: 400).'),
  unit: z.enum(['requests', 'tokens']).prefault('requests').describe('Count requests or LLM tokens.'),
  cost: positiveInt.prefault(1).describe('Units one request takes (with `unit: requests`).'),
  onError: z.enum(['open', 'closed']).optional().describe('When the state store cannot answer: allow (open) or refuse with 503 (closed); default `state.redis.onError`.'),
}).describe('A rate-limit rule (429 with RateLimit headers past it).');
export type RateLimitRule = z.output<typeof rateLimitRule>;
/** `rateLimit:` on a route (plans carry the same rules: `plans.<name>.rateLimit`). */
export const rateLimitRouteKeys = { rateLimit: z.array(rateLimitRule).optional().describe('Rate-limit rules of this route (docs/traffic-control.md).') };

interface Needs extends LabelNeeds {
  server: { limits: { bodyPeek: number } };
  plans: Readonly<Record<string, { rateLimit: readonly RateLimitRule[] }>>;
  observability: { metrics: { consumerLabels: boolean; models?: readonly string[] } };
  state: { redis: { onError: 'open' | 'closed' } };
  routes: ReadonlyArray<{ auth: string; rateLimit?: readonly RateLimitRule[]; match: { path?: string; paths?: string[] }; models?: LabelNeeds['routes'][number]['models'] }>;
}
type Route = { name: string; auth: string; rateLimit?: readonly RateLimitRule[] };

type By = 'consumer' | 'ip' | 'route' | 'header' | 'field';
type Base = Exclude<By, 'field'>;

interface Tier {
  spec: TierSpec;
  by: By;
  header: string;
  /** `by: body.x | query.x | path.x`: where the key is read, and the key of a request without it. */
  field: { kind: 'body' | 'query' | 'path'; name: string; missing: { by: Base; header: string } | null } | null;
  tokens: boolean;
  /** Policy name in the RateLimit fields ("1m", "tokens-1m", ...). */
  name: string;
}

/** Every tier that applies to one (route, plan) pair, compiled once. */
interface TierSet {
  tiers: Tier[];
  specs: TierSpec[];
  /** RateLimit-Policy field value (constant for the set). */
  policy: string;
  /** Indexes of token tiers (charged after the response). */
  tokenIdx: number[];
  tokenSpecs: TierSpec[];
  onError: 'open' | 'closed';
  /** Some tier is keyed on a body field: the shared peek is read first. */
  needsBody: boolean;
}

const ORDER: Record<By, number> = { consumer: 0, ip: 1, route: 2, header: 3, field: 4 };

/**
 * Rate limits: GCRA tiers from the consumer's plan (`plans.<name>.rateLimit`, keyed by consumer
 * unless a rule says otherwise) merged with the route's own `rateLimit` rules. All tiers of a
 * request are decided at once: a request refused by one tier consumes none (see docs/traffic-control.md).
 */
export const rateLimitPolicy: Policy<Needs, Route> = {
  name: 'rate-limit',
  check: checkRateLimits,
  compile({ config, route, env }) {
    const routeName = route.name;
    const routeRules = route.rateLimit ?? [];
    const planRules = new Map<string, readonly RateLimitRule[]>();
    if (route.auth !== 'public') for (const [name, plan] of Object.entries(config.plans)) if (plan.rateLimit.length) planRules.set(name, plan.rateLimit);
    if (routeRules.length === 0 && planRules.size === 0) return undefined;

    const fallback = config.state.redis.onError;
    const baseSet = routeRules.length ? compileSet(merge([], routeRules, '', routeName), fallback) : null;
    const sets = new Map<string, TierSet>();
    for (const [plan, rules] of planRules) sets.set(plan, compileSet(merge(rules, routeRules, plan, routeName), fallback));
    const store = env.store;
    const metrics = meteringMetrics(env.metrics, config.observability.metrics.consumerLabels);
    const warn = env.storeWarn;
    const routePartition = 'r:' + routeName;
    const rejected = metrics.rateLimited.labels(routeName);
    const label = modelLabels(config, env.shared);

    const base = (ctx: RequestContext, by: Base, header: string): string => {
      switch (by) {
        case 'consumer': { const id = ctx.identity; return id !== null ? 'c:' + (id.consumer ?? id.id) : ipPartition(ctx.clientIp); }
        case 'ip': return ipPartition(ctx.clientIp);
        case 'route': return routePartition;
        default: return headerPartition(header, ctx.req.headers[header]);
      }
    };
    const partitions = (ctx: RequestContext, set: TierSet, body: RequestBody | null): string[] => {
      const out: string[] = new Array(set.tiers.length);
      let ip: string | undefined;
      for (let i = 0; i < set.tiers.length; i++) {
        const t = set.tiers[i];
        switch (t.by) {
          case 'consumer': {
            const id = ctx.identity;
            out[i] = id !== null ? 'c:' + (id.consumer ?? id.id) : (ip ??= ipPartition(ctx.clientIp));
            break;
          }
          case 'ip': out[i] = ip ??= ipPartition(ctx.clientIp); break;
          case 'route': out[i] = routePartition; break;
          case 'header': out[i] = headerPartition(t.header, ctx.req.headers[t.header]); break;
          default: {
            const f = t.field!;
            const v = f.kind === 'path' ? ctx.params[f.name] : f.kind === 'query' ? queryValues(ctx, f.name)[0] : body?.field(f.name);
            if (v !== undefined && v !== '') out[i] = fieldPartition(f.kind, f.name, v);
            else if (f.missing !== null) out[i] = base(ctx, f.missing.by, f.missing.header);
            // A CORS preflight carries no body or custom fields: it counts against the client's address.
            else if (ctx.req.method === 'OPTIONS' && ctx.req.headers['access-control-request-method'] !== undefined) out[i] = ip ??= ipPartition(ctx.clientIp);
            else throw new GatewayError('bad_request', `This route's rate limit is keyed on ${f.kind}.${f.name}, which the request does not carry.`, { extra: { field: `${f.kind}.${f.name}` } });
          }
        }
      }
      return out;
    };

    const failed = (ctx: RequestContext, set: TierSet, err: unknown): void => {
      metrics.storeErrors.labels('consume', set.onError).inc();
      warn(`rate limit store unavailable; failing ${set.onError}`, err);
      if (set.onError === 'closed') throw new GatewayError('store_unavailable', 'Rate limits cannot be checked right now; retry shortly.', { headers: { 'retry-after': '1' } });
    };

    const decided = (ctx: RequestContext, set: TierSet, parts: string[], r: ConsumeResult): void => {
      ctx.addResponseHeader('ratelimit-policy', set.policy);
      if (!r.allowed) {
        rejected.inc();
        let retry = 1;
        let field = '';
        const names: string[] = [];
        for (let i = 0; i < set.tiers.length; i++) {
          const s = r.tiers[i];
          if (s.retryMs <= 0) continue;
          const secs = Math.max(1, Math.ceil(s.retryMs / 1000));
          if (secs > retry) retry = secs;
          names.push(set.tiers[i].name);
          field += (field ? ', ' : '') + `"${set.tiers[i].name}";r=0;t=${secs}`;
        }
        ctx.addResponseHeader('ratelimit', field);
        throw new GatewayError('rate_limited', `Rate limit exceeded (${names.map((n) => `"${n}"`).join(', ')}); retry in ${retry} s.`, {
          headers: { 'retry-after': String(retry) },
          extra: { policies: names, retryAfter: retry },
        });
      }
      let field = '';
      for (let i = 0; i < set.tiers.length; i++) {
        const s = r.tiers[i];
        field += (i ? ', ' : '') + '"' + set.tiers[i].name + '";r=' + s.remaining + ';t=' + Math.ceil(s.resetMs / 1000);
      }
      ctx.addResponseHeader('ratelimit', field);
      if (set.tokenIdx.length) chargeTokensLater(ctx, set, parts, store, metrics, label, warn);
    };

    const peekCap = config.server.limits.bodyPeek;
    const limit = (ctx: RequestContext, set: TierSet, body: RequestBody | null): void | Promise<void> => {
      const parts = partitions(ctx, set, body);
      let r: ConsumeResult | Promise<ConsumeResult>;
      try {
        r = store.consume(parts, set.specs);
      } catch (e) {
        return failed(ctx, set, e);
      }
      if (r instanceof Promise) return r.then((x) => decided(ctx, set, parts, x), (e) => failed(ctx, set, e));
      decided(ctx, set, parts, r);
    };

    const step: Step = (ctx) => {
      const plan = ctx.identity?.plan;
      const set = (plan !== undefined ? sets.get(plan) : undefined) ?? baseSet;
      if (set === null) return;
      if (!set.needsBody) return limit(ctx, set, null);
      // The key is the field as the client sent it, read through the shared peek.
      return readBody(ctx, peekCap).then((body) => limit(ctx, set, body));
    };
    return step;
  },
};

/** Token tiers admitted the request; the tokens it actually used are charged when it settles. */
function chargeTokensLater(ctx: RequestContext, set: TierSet, parts: string[], store: Store, metrics: MeteringMetrics, label: ModelLabel, warn: (m: string, e?: unknown) => void): void {
  UsageMeter.of(ctx, metrics, label).onSettled((s) => {
    if (s.refund || s.tokens.total <= 0) return;
    const tp = set.tokenIdx.map((i) => parts[i]);
    try {
      const r = store.charge(tp, set.tokenSpecs, s.tokens.total);
      if (r instanceof Promise) r.catch((e) => { metrics.storeErrors.labels('charge', 'open').inc(); warn('rate limit store: token charge failed', e); });
    } catch (e) {
      metrics.storeErrors.labels('charge', 'open').inc();
      warn('rate limit store: token charge failed', e);
    }
  });
}

interface MergedRule { rule: RateLimitRule; scope: string }

/**
 * The merge rule: a route rule with the same (by, unit, window) as a plan tier replaces that tier on
 * this route (and counts in a bucket of this route); other route rules are added. All must pass.
 */
function merge(planRules: readonly RateLimitRule[], routeRules: readonly RateLimitRule[], plan: string, routeName: string): MergedRule[] {
  const same = (a: RateLimitRule, b: RateLimitRule) => (a.by ?? 'consumer') === (b.by ?? 'consumer') && a.unit === b.unit && a.window === b.window;
  const out: MergedRule[] = [];
  planRules.forEach((p, i) => { if (!routeRules.some((r) => same(r, p))) out.push({ rule: p, scope: `p:${plan}:${i}` }); });
  routeRules.forEach((r, i) => out.push({ rule: r, scope: `r:${routeName}:${i}` }));
  return out;
}

function compileSet(rules: MergedRule[], fallback: 'open' | 'closed'): TierSet {
  // Same `by` next to each other: the Redis store decides a run of equal partitions in one script.
  const sorted = rules.map((m, i) => ({ m, i, by: byOf(m.rule) })).sort((a, b) => ORDER[a.by] - ORDER[b.by] || a.i - b.i);
  const tiers: Tier[] = [];
  const used = new Set<string>();
  for (const { m, by } of sorted) {
    const r = m.rule;
    const tokens = r.unit === 'tokens';
    const header = by === 'header' ? r.by!.slice(7).toLowerCase() : '';
    const field = by === 'field' ? fieldOf(r) : null;
    let name = (tokens ? 'tokens-' : '') + windowLabel(r.window);
    if (used.has(name)) name += '-' + (by === 'header' ? header : by === 'field' ? r.by!.replace(/[^A-Za-z0-9_-]/g, '-') : by);
    for (let k = 2; used.has(name); k++) name = name.replace(/~\d+$/, '') + '~' + k;
    used.add(name);
    tiers.push({
      spec: { id: `${m.scope}:${r.unit}:${r.window}`, limit: r.limit, windowMs: r.window, cost: tokens ? 0 : r.cost },
      by, header, field, tokens, name,
    });
  }
  const policy = tiers.map((t) => `"${t.name}";q=${t.spec.limit};w=${Math.max(1, Math.round(t.spec.windowMs / 1000))}${t.tokens ? ';qu="tokens"' : ''}`).join(', ');
  const tokenIdx = tiers.flatMap((t, i) => (t.tokens ? [i] : []));
  const onErrors = rules.map((m) => m.rule.onError);
  const onError = onErrors.includes('closed') ? 'closed' : onErrors.includes('open') ? 'open' : fallback;
  return { tiers, specs: tiers.map((t) => t.spec), policy, tokenIdx, tokenSpecs: tokenIdx.map((i) => tiers[i].spec), onError, needsBody: tiers.some((t) => t.field?.kind === 'body') };
}

function byOf(r: RateLimitRule): By {
  const by = r.by ?? 'consumer';
  return by.startsWith('header:') ? 'header' : /^(body|query|path)\./.test(by) ? 'field' : (by as By);
}

function fieldOf(r: RateLimitRule): NonNullable<Tier['field']> {
  const by = r.by!;
  const dot = by.indexOf('.');
  const m = r.ifMissing ?? 'refuse';
  const missing = m === 'refuse' ? null : m.startsWith('header:') ? { by: 'header' as const, header: m.slice(7).toLowerCase() } : { by: m as Base, header: '' };
  return { kind: by.slice(0, dot) as 'body' | 'query' | 'path', name: by.slice(dot + 1), missing };
}

/** "1m", "1h", "30s", "1d": the window as people write it. */
export function windowLabel(ms: number): string {
  if (ms % 86_400_000 === 0) return `${ms / 86_400_000}d`;
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}


/** Rules a request could never pass, and keys a public route does not have. */
function checkRateLimits(c: Needs, out: Issue[]): void {
  const rule = (r: RateLimitRule, path: PropertyKey[]) => {
    if (r.unit === 'requests' && r.cost > r.limit) out.push({ path: [...path, 'cost'], message: `cost ${r.cost} is larger than the limit ${r.limit}: no request could ever pass` });
  };
  for (const [name, plan] of Object.entries(c.plans)) plan.rateLimit.forEach((r, j) => {
    rule(r, ['plans', name, 'rateLimit', j]);
    if (byOf(r) === 'field') out.push({ path: ['plans', name, 'rateLimit', j, 'by'], message: 'body, query and path keys belong to a route (a plan spans routes with different fields); put this rule on the route' });
    if (r.ifMissing !== undefined) out.push({ path: ['plans', name, 'rateLimit', j, 'ifMissing'], message: 'ifMissing applies to by: body.*, query.* or path.*' });
  });
  c.routes.forEach((r, i) => (r.rateLimit ?? []).forEach((x, j) => {
    if ((x.by ?? 'consumer') === 'consumer' && r.auth === 'public') out.push({ path: ['routes', i, 'rateLimit', j, 'by'], message: 'a public route has no consumer to key on; use by: ip' });
    if (x.ifMissing !== undefined && byOf(x) !== 'field') out.push({ path: ['routes', i, 'rateLimit', j, 'ifMissing'], message: 'ifMissing applies to by: body.*, query.* or path.*' });
    if (x.ifMissing === 'consumer' && r.auth === 'public') out.push({ path: ['routes', i, 'rateLimit', j, 'ifMissing'], message: 'a public route has no consumer to key on; use ip' });
    if (x.by?.startsWith('path.')) {
      const name = x.by.slice(5);
      const paths = r.match.paths ?? (r.match.path !== undefined ? [r.match.path] : []);
      if (paths.some((p) => !new RegExp(`:${name}(?![A-Za-z0-9_])`).test(p))) out.push({ path: ['routes', i, 'rateLimit', j, 'by'], message: `the route's path has no parameter :${name}` });
    }
    rule(x, ['routes', i, 'rateLimit', j]);
  }));
}
