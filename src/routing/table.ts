import FindMyWay from 'find-my-way';
import type { IncomingHttpHeaders } from 'node:http';
import type { RouteConfig } from '../config/schema.ts';
import type { Upstream } from '../upstreams/upstream.ts';
import type { CompiledRoute, Step } from '../pipeline/context.ts';
import { compileConditions, compileValueTest, describeTest } from './conditions.ts';
import { compileRewrite } from './rewrite.ts';
import { ConfigError, type ConfigIssue } from '../config/errors.ts';

export type { CompiledRoute };
export const ALL_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;

export type MatchResult =
  | { kind: 'found'; candidates: readonly CompiledRoute[]; params: Record<string, string | undefined>; needsQuery: boolean }
  | { kind: 'not_found' }
  | { kind: 'method_not_allowed'; allow: string };

export interface RouteBuildContext {
  routes: readonly RouteConfig[];
  upstreams: ReadonlyMap<string, Upstream>;
  compileSteps(route: RouteConfig): { steps: Step[]; names: string[] };
}

/** The compiled route table: find-my-way for path + method, then per-path candidates tried in order. */
export class RouteTable {
  readonly routes: CompiledRoute[] = [];
  private readonly router = FindMyWay({ caseSensitive: true, ignoreTrailingSlash: false, ignoreDuplicateSlashes: false, maxParamLength: 2048, defaultRoute: () => {} });
  private readonly slots = new Map<string, CompiledRoute[]>();

  constructor(ctx: RouteBuildContext) {
    const issues: ConfigIssue[] = [];
    ctx.routes.forEach((rc, index) => {
      try {
        const route = compileRoute(rc, ctx);
        this.routes.push(route);
        for (const p of route.paths) for (const m of route.methods) this.add(m, p, route);
      } catch (e) {
        if (e instanceof ConfigError) issues.push(...e.issues);
        else issues.push({ path: `routes[${index}]`, message: (e as Error).message });
      }
    });
    if (issues.length) throw new ConfigError(issues);
    // Conditional candidates first, declaration order otherwise.
    for (const list of this.slots.values()) list.sort((a, b) => rank(a) - rank(b) || a.index - b.index);
  }

  private add(method: string, path: string, route: CompiledRoute): void {
    const key = `${method} ${path}`;
    const list = this.slots.get(key);
    if (list) { list.push(route); return; }
    const fresh = [route];
    this.slots.set(key, fresh);
    try {
      this.router.on(method as never, path, () => {}, fresh);
    } catch (e) {
      throw new ConfigError([{ path: `routes[${route.index}].match`, message: `cannot route ${method} ${path}: ${(e as Error).message}` }]);
    }
  }

  match(method: string, path: string): MatchResult {
    const found = this.router.find(method as never, path);
    if (found) {
      const candidates = found.store as CompiledRoute[];
      return { kind: 'found', candidates, params: found.params, needsQuery: candidates.some((c) => c.conditions.length > 0) };
    }
    const allow: string[] = [];
    for (const m of ALL_METHODS) if (m !== method && this.router.find(m, path)) allow.push(m);
    return allow.length ? { kind: 'method_not_allowed', allow: allow.join(', ') } : { kind: 'not_found' };
  }
}

function rank(r: CompiledRoute): number {
  return r.conditions.length > 0 || r.bodyCondition ? 0 : 1;
}

/** Whether a candidate's header/query conditions hold. */
export function conditionsHold(r: CompiledRoute, headers: IncomingHttpHeaders, query: URLSearchParams | null): boolean {
  for (const c of r.conditions) if (!c(headers, query)) return false;
  return true;
}

function compileRoute(rc: RouteConfig, ctx: RouteBuildContext): CompiledRoute {
  const base = rc.match.paths ?? [rc.match.path!];
  const paths = rc.match.prefix ? base.flatMap((p) => (p === '/' ? ['/', '/*'] : [p.replace(/\/$/, ''), p.replace(/\/$/, '') + '/*'])) : base;
  let methods: string[] = rc.websocket && !rc.match.methods ? ['GET'] : [...(rc.match.methods ?? ALL_METHODS)];
  if (methods.includes('GET') && !methods.includes('HEAD')) methods = [...methods, 'HEAD'];
  const conditionText = [
    ...Object.entries(rc.match.headers ?? {}).map(([k, t]) => `header ${k} ${describeTest(t)}`),
    ...Object.entries(rc.match.query ?? {}).map(([k, t]) => `query ${k} ${describeTest(t)}`),
    ...(rc.match.body ? [`body ${rc.match.body.field} ${describeTest(rc.match.body)}`] : []),
  ];
  const rw = rc.rewrite;
  const { steps, names } = ctx.compileSteps(rc);
  return Object.freeze({
    name: rc.name,
    index: rc.index,
    methods,
    paths,
    conditions: compileConditions(rc.match),
    conditionText,
    upstream: ctx.upstreams.get(rc.upstream)!,
    timeouts: rc.timeouts,
    rewrite: compileRewrite(rw),
    rewriteText: rw?.path ? `→ ${rw.path}` : [rw?.stripPrefix ? `-${rw.stripPrefix}` : '', rw?.addPrefix ? `+${rw.addPrefix}` : ''].filter(Boolean).join(' ') || '-',
    pathText: base.map((p) => (rc.match.prefix ? `${p.replace(/\/$/, '')}/**` : p)).join(' '),
    steps,
    policies: names,
    websocket: rc.websocket,
    preserveHost: rc.preserveHost,
    maxBodySize: rc.maxBodySize,
    auth: rc.auth,
    enabled: rc.enabled,
    bodyCondition: rc.match.body ? { field: rc.match.body.field, test: compileValueTest(rc.match.body) } : null,
  });
}
