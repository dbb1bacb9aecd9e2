import { z } from 'zod';
import { obj, duration, positiveInt } from '../config/zod-helpers.ts';
import type { Issue } from '../config/errors.ts';
import { GatewayError } from '../errors.ts';
import type { RequestContext, Step } from '../pipeline/context.ts';
import type { Policy } from '../pipeline/policy.ts';
import { leasesFor, type Lease, type Leases } from '../state/leases.ts';
import type { Awaitable, LeaseResult } from '../state/store.ts';
import { headerPartition, ipPartition } from './rate-limit-keys.ts';

/**
 * Concurrency leases: `concurrency: { limit, by }` on a route or a plan, and an upstream's `maxInFlight` (on routes
 * without `models:`; model routes take the upstream lease per attempt). A lease is taken before forwarding and
 * given back when the exchange ends — stream finished, client gone, upstream failed — so a slot is never freed
 * while a stream still runs. With Redis the count is one across replicas; leases expire unless renewed
 * (`state.leaseTtl`), so a gateway that dies frees its slots within the TTL. Refused: 429 `concurrency_limited`
 * with `RateLimit-Policy: "concurrency";q=<limit>;qu="concurrent-requests"` and `Retry-After`.
 */
export const concurrencyRule = obj({
  limit: positiveInt.describe('Requests in flight at most (429 concurrency_limited past it).'),
  by: z.string().regex(/^(consumer|ip|route|header:[A-Za-z0-9-]+)$/, 'use consumer, ip, route or header:<name>').optional().describe('Whose requests share the limit: consumer (default), ip, route, header:NAME.'),
  retryAfter: duration.prefault('1s').describe('Retry-After of a refusal (a slot frees when some stream ends: there is no exact time).'),
  onError: z.enum(['open', 'closed']).optional().describe('When the state store cannot answer: allow (open) or refuse with 503 (closed); default `state.redis.onError`.'),
});
export type ConcurrencyRule = z.output<typeof concurrencyRule>;
export const concurrencyRouteKeys = { concurrency: concurrencyRule.optional().describe('Requests in flight on this route (a lease per request, held while a stream runs; docs/ai-traffic.md).') };

interface Needs {
  plans: Readonly<Record<string, { concurrency?: ConcurrencyRule }>>;
  state: { leaseTtl: number; redis: { onError: 'open' | 'closed' } };
  upstreams: Readonly<Record<string, { maxInFlight?: number }>>;
  routes: ReadonlyArray<{ auth: string; concurrency?: ConcurrencyRule }>;
}
type Route = { name: string; auth: string; upstream: string; concurrency?: ConcurrencyRule; models?: unknown };

interface Rule {
  /** The policy's name in RateLimit fields and the problem's `policy`. */
  name: string;
  limit: number;
  retryAfter: number;
  onError: 'open' | 'closed';
  key: (ctx: RequestContext) => string;
}

export const concurrencyPolicy: Policy<Needs, Route> = {
  name: 'concurrency',
  check(c, out: Issue[]) {
    c.routes.forEach((r, i) => {
      if ((r.concurrency?.by ?? 'consumer') === 'consumer' && r.concurrency !== undefined && r.auth === 'public') out.push({ path: ['routes', i, 'concurrency', 'by'], message: 'a public route has no consumer to key on; use by: ip or route' });
    });
  },
  compile({ config, route, env }) {
    const fallback = config.state.redis.onError;
    const own: Rule | null = route.concurrency !== undefined ? rule('concurrency', `r:${route.name}`, route.concurrency, fallback) : null;
    const byPlan = new Map<string, Rule>();
    if (route.auth !== 'public') for (const [name, p] of Object.entries(config.plans)) if (p.concurrency !== undefined) byPlan.set(name, rule('concurrency-plan', `p:${name}`, { ...p.concurrency, by: p.concurrency.by ?? 'consumer' }, fallback));
    const max = route.models === undefined ? config.upstreams[route.upstream]?.maxInFlight : undefined;
    const upstream: Rule | null = max !== undefined ? { name: `upstream-${route.upstream}`, limit: max, retryAfter: 1000, onError: fallback, key: () => `u:${route.upstream}` } : null;
    if (own === null && byPlan.size === 0 && upstream === null) return undefined;
    const leases = leasesFor(env.resources, env.store, config.state.leaseTtl, env.storeWarn);
    const warn = env.storeWarn;

    const step: Step = (ctx) => {
      const plan = ctx.identity?.plan;
      const p = plan !== undefined ? byPlan.get(plan) : undefined;
      const rules: Rule[] = [];
      if (p !== undefined) rules.push(p);
      if (own !== null) rules.push(own);
      if (upstream !== null) rules.push(upstream);
      if (rules.length === 0) return;
      const held: Lease[] = [];
      // However the exchange ends (finished, client gone, upstream failed), its leases go back.
      ctx.finally(() => { for (const l of held) leases.release(l); held.length = 0; });
      return take(ctx, leases, rules, 0, held, warn);
    };
    return step;
  },
};

function rule(name: string, scope: string, r: ConcurrencyRule, fallback: 'open' | 'closed'): Rule {
  const by = r.by ?? 'consumer';
  let key: (ctx: RequestContext) => string;
  if (by === 'route') key = () => scope;
  else if (by === 'ip') key = (ctx) => `${scope}:${ipPartition(ctx.clientIp)}`;
  else if (by.startsWith('header:')) { const h = by.slice(7).toLowerCase(); key = (ctx) => `${scope}:${headerPartition(h, ctx.req.headers[h])}`; }
  else key = (ctx) => { const id = ctx.identity; return `${scope}:${id !== null ? 'c:' + (id.consumer ?? id.id) : ipPartition(ctx.clientIp)}`; };
  return { name, limit: r.limit, retryAfter: r.retryAfter, onError: r.onError ?? fallback, key };
}

/** Takes the leases of `rules` from `i` on, in order; a refusal gives back what was taken (ctx.finally does). */
function take(ctx: RequestContext, leases: Leases, rules: readonly Rule[], i: number, held: Lease[], warn: (m: string, e?: unknown) => void): void | Promise<void> {
  for (; i < rules.length; i++) {
    const r = rules[i];
    let got: Awaitable<LeaseResult & { lease: Lease | null }>;
    try {
      got = leases.acquire(r.key(ctx), r.limit);
    } catch (e) {
      storeFailed(r, warn, e);
      continue;
    }
    if (got instanceof Promise) {
      const at = i;
      return got.then((x) => {
        // The client left while the lease was on its way: the exchange is over, give it back now.
        if (ctx.clientGone) { if (x.lease !== null) leases.release(x.lease); for (const l of held) leases.release(l); held.length = 0; return; }
        admitted(ctx, r, x, held);
        return take(ctx, leases, rules, at + 1, held, warn);
      }, (e) => { storeFailed(r, warn, e); return take(ctx, leases, rules, at + 1, held, warn); });
    }
    admitted(ctx, r, got, held);
  }
}

function admitted(ctx: RequestContext, r: Rule, x: LeaseResult & { lease: Lease | null }, held: Lease[]): void {
  const policy = `"${r.name}";q=${r.limit};qu="concurrent-requests"`;
  ctx.addResponseHeader('ratelimit-policy', policy);
  if (x.lease === null) {
    const secs = Math.max(1, Math.ceil(r.retryAfter / 1000));
    ctx.addResponseHeader('ratelimit', `"${r.name}";r=0;t=${secs}`);
    throw new GatewayError('concurrency_limited', `Too many requests in flight ("${r.name}": ${r.limit} at most); retry when one has finished.`, {
      headers: { 'retry-after': String(secs) },
      extra: { policy: r.name, limit: r.limit, retryAfter: secs },
    });
  }
  held.push(x.lease);
  ctx.addResponseHeader('ratelimit', `"${r.name}";r=${Math.max(0, r.limit - x.inFlight)};t=0`);
}

function storeFailed(r: Rule, warn: (m: string, e?: unknown) => void, e: unknown): void {
  warn(`concurrency store unavailable; failing ${r.onError}`, e);
  if (r.onError === 'closed') throw new GatewayError('store_unavailable', 'Concurrency limits cannot be checked right now; retry shortly.', { headers: { 'retry-after': '1' } });
}
