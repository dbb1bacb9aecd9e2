import { z } from 'zod';
import { obj, duration } from '../config/zod-helpers.ts';
import type { Issue } from '../config/errors.ts';
import { GatewayError, toGatewayError } from '../errors.ts';
import type { CompiledRoute, RequestContext, Step } from '../pipeline/context.ts';
import type { Policy } from '../pipeline/policy.ts';
import { HEADER_NAME } from './header-syntax.ts';

export const corsSchema = obj({
  origins: z.array(z.string()).prefault([]).describe('Allowed origins: exact `scheme://host[:port]`, `https://*.example.com` wildcards, or `*` (not with credentials).'),
  credentials: z.boolean().prefault(false).describe('Send Access-Control-Allow-Credentials: true (cookies and auth headers from the browser).'),
  methods: z.array(z.string()).prefault(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE']).describe('Methods allowed in preflight answers.'),
  headers: z.array(z.string()).prefault(['authorization', 'content-type', 'x-api-key', 'x-request-id']).describe('Request headers allowed in preflight answers.'),
  exposeHeaders: z.array(z.string()).prefault(['x-request-id', 'ratelimit', 'ratelimit-policy', 'retry-after']).describe('Response headers the browser lets scripts read.'),
  maxAge: duration.prefault('10m').describe('How long a browser may cache a preflight answer (Access-Control-Max-Age).'),
}).describe('Cross-origin resource sharing (docs/edge-security.md).');
export type CorsConfig = z.output<typeof corsSchema>;
/** `cors:` on a route: `false` turns the server's CORS off there, a block replaces it. */
export const corsRouteKeys = { cors: z.union([z.literal(false), corsSchema]).optional().describe('CORS of this route: a block replaces `server.cors` here, `false` turns it off.') };

interface Needs { server: { cors?: CorsConfig }; routes: ReadonlyArray<{ cors?: false | CorsConfig }> }
type Route = { index: number; cors?: false | CorsConfig };

/**
 * CORS answered at the gateway (see docs/edge-security.md). The allowlist is compiled at load into a
 * Set of exact origins plus (scheme, suffix) pairs for `https://*.example.com` patterns: a request
 * does a Set lookup and, on a miss, a few string comparisons; no regex runs per request.
 */
export interface CompiledCors {
  /** `*` was listed (only valid without credentials): any origin, answered with `*`. */
  anyOrigin: boolean;
  exact: ReadonlySet<string>;
  patterns: ReadonlyArray<{ scheme: string; suffix: string }>;
  /** Null: any method (echoed back). */
  methods: ReadonlySet<string> | null;
  methodList: string;
  /** Null: any request header (echoed back). */
  headers: ReadonlySet<string> | null;
  headerList: string;
  maxAge: string;
  /** What follows Access-Control-Allow-Origin on an allowed actual response: credentials and expose-headers. */
  tail: readonly string[];
  credentials: boolean;
}

const PREFLIGHT_VARY = 'Origin, Access-Control-Request-Method, Access-Control-Request-Headers';
const DEFAULT_PORT: Record<string, string> = { 'http:': ':80', 'https:': ':443' };

export function compileCors(c: CorsConfig): CompiledCors {
  const exact = new Set<string>();
  const patterns: Array<{ scheme: string; suffix: string }> = [];
  let anyOrigin = false;
  for (const raw of c.origins) {
    if (raw === '*') { anyOrigin = true; continue; }
    // Browsers send origins lowercase and without a default port.
    let o = raw.toLowerCase().replace(/\/$/, '');
    const scheme = o.slice(0, o.indexOf('//') + 2);
    const port = DEFAULT_PORT[scheme.slice(0, -2)];
    if (port !== undefined && o.endsWith(port)) o = o.slice(0, -port.length);
    if (o.startsWith(scheme + '*.')) patterns.push({ scheme, suffix: o.slice(scheme.length + 1) });
    else exact.add(o);
  }
  const methods = c.methods.includes('*') ? null : new Set(c.methods.map((m) => m.toUpperCase()));
  const headers = c.headers.includes('*') ? null : new Set(c.headers.map((h) => h.toLowerCase()));
  const tail: string[] = [];
  if (c.credentials) tail.push('access-control-allow-credentials', 'true');
  if (c.exposeHeaders.length) tail.push('access-control-expose-headers', c.exposeHeaders.join(', '));
  return {
    anyOrigin: anyOrigin && !c.credentials,
    exact,
    patterns,
    methods,
    methodList: methods === null ? '' : [...methods].join(', '),
    headers,
    headerList: headers === null ? '' : [...headers].join(', '),
    maxAge: String(Math.floor(c.maxAge / 1000)),
    tail,
    credentials: c.credentials,
  };
}

export function originAllowed(cc: CompiledCors, origin: string): boolean {
  if (cc.anyOrigin || cc.exact.has(origin)) return true;
  for (const p of cc.patterns) {
    const end = origin.length - p.suffix.length;
    if (end > p.scheme.length && origin.startsWith(p.scheme) && origin.endsWith(p.suffix) && isHostLabels(origin, p.scheme.length, end)) return true;
  }
  return false;
}

/** The part `*` stands for: one or more DNS labels, nothing that could smuggle a port, path or another host. */
function isHostLabels(s: string, from: number, to: number): boolean {
  if (s.charCodeAt(from) === 46 || s.charCodeAt(to - 1) === 46) return false;
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if (!((c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c === 45 || c === 46)) return false;
  }
  return true;
}

/** The CORS step for actual (non-preflight) requests: headers for allowed origins, `Vary: Origin` always. */
export function corsStep(cc: CompiledCors): Step {
  return (ctx: RequestContext) => {
    ctx.dropUpstreamCors = true;
    const rh = (ctx.responseHeaders ??= []);
    rh.push('vary', 'Origin');
    const origin = ctx.req.headers.origin;
    if (origin === undefined) return;
    if (!originAllowed(cc, origin)) {
      // A WebSocket handshake is not protected by CORS in the browser: a foreign page could open
      // a socket with the user's cookies. The gateway refuses it instead.
      if (ctx.req.headers.upgrade !== undefined) throw new GatewayError('cors_rejected', 'This origin may not open a WebSocket on this route.');
      return;
    }
    rh.push('access-control-allow-origin', cc.anyOrigin ? '*' : origin);
    for (let i = 0; i < cc.tail.length; i++) rh.push(cc.tail[i]);
  };
}

/** The route's CORS setting: `cors: false` turns it off, a route block replaces the server's, otherwise the server's applies. */
export function effectiveCors(route: { cors?: false | CorsConfig } | null, server: CorsConfig | undefined): CorsConfig | undefined {
  if (route !== null && route.cors !== undefined) return route.cors === false ? undefined : route.cors;
  return server;
}

/** Compiled CORS by route index, so the preflight responder answers for the route that would serve the request. */
function registry(shared: Map<string, unknown>): Map<number, CompiledCors> {
  let m = shared.get('cors') as Map<number, CompiledCors> | undefined;
  if (m === undefined) shared.set('cors', (m = new Map()));
  return m;
}

export const corsPolicy: Policy<Needs, Route> = {
  name: 'cors',
  check(c, out) {
    checkCors(c.server.cors, ['server', 'cors'], out);
    c.routes.forEach((r, i) => { if (r.cors) checkCors(r.cors, ['routes', i, 'cors'], out); });
  },
  compile({ route, config, env }) {
    const c = effectiveCors(route, config.server.cors);
    if (c === undefined) return undefined;
    const cc = compileCors(c);
    registry(env.shared).set(route.index, cc);
    return corsStep(cc);
  },
};

/** Origins, methods and header names, checked at load: a typo here would otherwise refuse browsers at run time. */
function checkCors(cors: CorsConfig | undefined, path: PropertyKey[], out: Issue[]): void {
  if (!cors) return;
  if (cors.credentials && cors.origins.includes('*')) out.push({ path: [...path, 'origins'], message: '"*" together with credentials: true would let any site read credentialed responses; list the origins' });
  cors.origins.forEach((o, i) => {
    if (o !== '*' && !/^https?:\/\/(\*\.)?[A-Za-z0-9.-]+(:\d+)?$/.test(o)) out.push({ path: [...path, 'origins', i], message: `"${o}" is not an origin (scheme://host[:port], optionally https://*.example.com)` });
  });
  for (const key of ['methods', 'headers', 'exposeHeaders'] as const) {
    cors[key].forEach((v, i) => {
      if (v !== '*' && !HEADER_NAME.test(v)) out.push({ path: [...path, key, i], message: `"${v}" is not a ${key === 'methods' ? 'method' : 'header name'}` });
    });
  }
}

/**
 * Preflights (OPTIONS with Origin and Access-Control-Request-Method) are answered here, for the route
 * that would serve the requested method, whether or not that route lists OPTIONS. Returns false when
 * that route does not do CORS at the gateway (the OPTIONS request then takes its ordinary path).
 */
export function createPreflightResponder(match: PreflightMatch, shared: Map<string, unknown>, fail: (ctx: RequestContext, err: GatewayError) => void): ((ctx: RequestContext) => boolean) | undefined {
  const byRoute = registry(shared);
  if (byRoute.size === 0) return undefined;
  return (ctx) => {
    const h = ctx.req.headers;
    const origin = h.origin;
    const method = h['access-control-request-method'];
    if (origin === undefined || typeof method !== 'string') return false;
    const m = match(method, ctx.path);
    if (m === null) return false;
    const route = pickForPreflight(m.candidates, ctx, m.needsQuery);
    const cc = byRoute.get(route.index);
    if (cc === undefined) return false;
    ctx.route = route;
    ctx.params = m.params;
    // Security headers still apply to the gateway's own answer.
    const sec = route.policies.indexOf('security-headers');
    if (sec >= 0) void route.steps[sec](ctx);
    ctx.addResponseHeader('vary', PREFLIGHT_VARY);

    let refusal: string | null = null;
    if (!originAllowed(cc, origin)) refusal = 'This origin may not call this route from a browser.';
    else if (cc.methods !== null && !cc.methods.has(method)) refusal = `CORS does not allow ${method} on this route.`;
    const requested = h['access-control-request-headers'];
    if (refusal === null && cc.headers !== null && requested !== undefined) {
      for (const raw of requested.split(',')) {
        const name = raw.trim().toLowerCase();
        if (name !== '' && !cc.headers.has(name)) { refusal = `CORS does not allow the request header "${name}" on this route.`; break; }
      }
    }
    // A preflight is a request like any other to the route's rate limit (APISIX answered them before limit-count,
    // so OPTIONS floods went unthrottled): it counts, keyed as the route's rules say (no consumer yet: by IP).
    const rl = route.policies.indexOf('rate-limit');
    if (rl >= 0) {
      let r: void | Promise<void>;
      try { r = route.steps[rl](ctx); } catch (e) { fail(ctx, toGatewayError(e)); return true; }
      if (r instanceof Promise) { r.then(() => answer(ctx, cc, origin, method, refusal), (e: unknown) => fail(ctx, toGatewayError(e))); return true; }
    }
    answer(ctx, cc, origin, method, refusal);
    return true;
  };
  function answer(ctx: RequestContext, cc: CompiledCors, origin: string, method: string, refusal: string | null): void {
    if (ctx.clientGone) return;
    if (refusal !== null) return fail(ctx, new GatewayError('cors_rejected', refusal));
    const requested = ctx.req.headers['access-control-request-headers'];
    const out: string[] = ['x-request-id', ctx.requestId];
    const rh = ctx.responseHeaders!;
    for (let i = 0; i < rh.length; i++) out.push(rh[i]);
    const defaults = ctx.responseDefaults;
    if (defaults !== null) for (let i = 0; i < defaults.length; i++) out.push(defaults[i]);
    out.push('access-control-allow-origin', cc.anyOrigin ? '*' : origin);
    if (cc.credentials) out.push('access-control-allow-credentials', 'true');
    out.push('access-control-allow-methods', cc.methods === null ? method : cc.methodList);
    const allowHeaders = cc.headers === null ? requested ?? '' : cc.headerList;
    if (allowHeaders !== '') out.push('access-control-allow-headers', allowHeaders);
    out.push('access-control-max-age', cc.maxAge);
    ctx.status = 204;
    ctx.res.writeHead(204, out);
    ctx.res.end();
  }
}

/** The route table's lookup, as the preflight responder needs it (routing sits above policies). */
export type PreflightMatch = (method: string, path: string) => { candidates: readonly CompiledRoute[]; params: Record<string, string | undefined>; needsQuery: boolean } | null;

/** A preflight carries no custom headers or body: take the first candidate whose header/query conditions hold, else the plain route. */
function pickForPreflight(candidates: readonly CompiledRoute[], ctx: RequestContext, needsQuery: boolean): CompiledRoute {
  const q = needsQuery && ctx.query !== null ? new URLSearchParams(ctx.query) : null;
  for (const c of candidates) {
    if (c.bodyCondition !== null) continue;
    let ok = true;
    for (const cond of c.conditions) if (!cond(ctx.req.headers, q)) { ok = false; break; }
    if (ok) return c;
  }
  return candidates[candidates.length - 1];
}
