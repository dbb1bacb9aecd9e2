import type { Issue } from '../config/errors.ts';
import type { ResponseEdit, Step } from '../pipeline/context.ts';
import type { Policy } from '../pipeline/policy.ts';
import { claimHeaderValue, identityHeaderNames } from '../auth/identity-headers.ts';
import type { AuthSection } from '../auth/schema.ts';
import { headerRulesSchema, type HeaderEdits, type HeaderRules, type ValueSpec } from '../rules/schema.ts';
import { compileValue, type Reader } from '../rules/refs.ts';
import { HEADER_NAME, HEADER_VALUE } from './header-syntax.ts';

/**
 * `headers: { request: { set, add, remove }, response: { set, add, remove } }` on a route and on an upstream (the
 * upstream's apply to every route that uses it; the route's come after, so a route's `set` wins). Values are
 * literals (`${ENV}` interpolated at load) or `{ from: claim.<name> | identity.id | header.<name> | query.<name> |
 * path.<name> }`; a reference the request does not carry sets nothing. Hop-by-hop headers, message framing, the
 * headers the gateway owns (X-Forwarded-*, X-Request-Id, traceparent) and identity headers cannot be set, added or
 * removed by a rule: refused at load.
 */
export const headerRulesRouteKeys = { headers: headerRulesSchema.optional().describe('Header rules of this route, after the upstream\'s (docs/request-rules.md).') };

interface Needs {
  auth: AuthSection;
  upstreams: Readonly<Record<string, { headers?: HeaderRules }>>;
  routes: ReadonlyArray<{ upstream: string; headers?: HeaderRules; forwardAuth?: { responseHeaders: readonly string[] }; models?: Readonly<Record<string, ReadonlyArray<{ upstream: string }>>> }>;
}
type Route = { upstream: string; headers?: HeaderRules; models?: unknown };

const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'content-length'];
/** Request headers the gateway writes itself (src/proxy/headers.ts), or that decide how the request is routed and framed. */
const REQUEST_OWNED = [...HOP_BY_HOP, 'host', 'expect', 'forwarded', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-forwarded-port', 'x-real-ip', 'x-request-id', 'traceparent', 'proxy-authorization'];
/** Response headers the gateway writes itself (request id, RateLimit fields) or that frame the response. */
const RESPONSE_OWNED = [...HOP_BY_HOP, 'x-request-id', 'ratelimit', 'ratelimit-policy'];
/** The identity headers every route strips inbound (src/auth/identity-headers.ts) before any rule runs. */
const IDENTITY = ['x-consumer-id', 'x-consumer-plan', 'x-user-id', 'x-user-plan'];
const SOURCES = ['claim', 'identity', 'header', 'query', 'path'] as const;

interface Compiled { remove: string[]; set: Array<[string, Reader]>; add: Array<[string, Reader]> }

function compileEdits(edits: ReadonlyArray<HeaderEdits | undefined>): Compiled | null {
  const remove = new Set<string>();
  const set = new Map<string, Reader>();
  const add: Array<[string, Reader]> = [];
  for (const e of edits) {
    if (e === undefined) continue;
    for (const n of e.remove ?? []) remove.add(n.toLowerCase());
    for (const [n, v] of Object.entries(e.set ?? {})) set.set(n.toLowerCase(), reader(v));
    for (const [n, v] of Object.entries(e.add ?? {})) add.push([n.toLowerCase(), reader(v)]);
  }
  if (remove.size === 0 && set.size === 0 && add.length === 0) return null;
  return { remove: [...remove], set: [...set], add };
}

function reader(v: ValueSpec): Reader {
  const c = compileValue(v, SOURCES) as { read: Reader; ref: unknown };
  if (c.ref === null) { const s = String(v); return () => s; }
  // A value from the request or a token may carry anything: made safe for a header (CR/LF never pass).
  return (ctx) => claimHeaderValue(c.read(ctx, null));
}

export const headerRulesPolicy: Policy<Needs, Route> = {
  name: 'headers',
  check: checkHeaderRules,
  compile({ route, config }) {
    // A model route's attempts go to several upstreams: only the route's own rules apply to all of them.
    const up = route.models === undefined ? config.upstreams[route.upstream]?.headers : undefined;
    if (up === undefined && route.headers === undefined) return undefined;
    const req = compileEdits([up?.request, route.headers?.request]);
    const res = compileEdits([up?.response, route.headers?.response]);
    if (req === null && res === null) return undefined;
    const edit = res === null ? null : responseEdit(res);
    const step: Step = (ctx) => {
      if (edit !== null) ctx.responseEdit = edit;
      if (req === null) return;
      const h = ctx.req.headers;
      for (const n of req.remove) delete h[n];
      for (const [n, read] of req.set) {
        const v = read(ctx, null);
        if (typeof v === 'string') ctx.addUpstreamHeader(n, v);
      }
      for (const [n, read] of req.add) {
        const v = read(ctx, null);
        if (typeof v !== 'string') continue;
        const had = h[n];
        ctx.addUpstreamHeader(n, had === undefined ? v : `${Array.isArray(had) ? had.join(', ') : had}, ${v}`);
      }
    };
    return step;
  },
};

function responseEdit(c: Compiled): ResponseEdit {
  const drop = new Set([...c.remove, ...c.set.map(([n]) => n)]);
  return (headers, ctx) => {
    let w = 0;
    for (let i = 0; i < headers.length; i += 2) {
      if (drop.has(headers[i].toLowerCase())) continue;
      if (w !== i) { headers[w] = headers[i]; headers[w + 1] = headers[i + 1]; }
      w += 2;
    }
    while (headers.length > w) headers.pop();
    for (const [n, read] of c.set) { const v = read(ctx, null); if (typeof v === 'string') headers.push(n, v); }
    for (const [n, read] of c.add) { const v = read(ctx, null); if (typeof v === 'string') headers.push(n, v); }
  };
}

function checkHeaderRules(c: Needs, out: Issue[]): void {
  // Every name the gateway may set from an identity, forward auth's copied headers included.
  const identity = new Set([...IDENTITY, ...identityHeaderNames(c.auth)]);
  for (const r of c.routes) for (const h of r.forwardAuth?.responseHeaders ?? []) identity.add(h.toLowerCase());
  const one = (rules: HeaderRules | undefined, base: PropertyKey[]) => {
    if (rules === undefined) return;
    for (const side of ['request', 'response'] as const) {
      const e = rules[side];
      if (e === undefined) continue;
      const owned = new Set(side === 'request' ? REQUEST_OWNED : RESPONSE_OWNED);
      const name = (n: string, path: PropertyKey[]) => {
        const l = n.toLowerCase();
        if (!HEADER_NAME.test(n)) out.push({ path, message: `"${n}" is not a header name` });
        else if (owned.has(l)) out.push({ path, message: `${l} ${HOP_BY_HOP.includes(l) ? 'is hop-by-hop or frames the message' : 'is set by the gateway itself'}; a header rule cannot change it` });
        else if (side === 'request' && identity.has(l)) out.push({ path, message: `${l} is an identity header (the gateway sets it from the verified identity); a header rule cannot change it` });
      };
      const value = (v: ValueSpec, path: PropertyKey[]) => {
        const compiled = compileValue(v, SOURCES);
        if (typeof compiled === 'string') out.push({ path, message: compiled });
        else if (compiled.ref === null && !HEADER_VALUE.test(String(v))) out.push({ path, message: 'a header value cannot hold control characters (CR, LF, NUL)' });
      };
      (e.remove ?? []).forEach((n, j) => name(n, [...base, side, 'remove', j]));
      for (const op of ['set', 'add'] as const) {
        for (const [n, v] of Object.entries(e[op] ?? {})) { name(n, [...base, side, op, n]); value(v, [...base, side, op, n]); }
      }
    }
  };
  for (const [n, u] of Object.entries(c.upstreams)) one(u.headers, ['upstreams', n, 'headers']);
  c.routes.forEach((r, i) => one(r.headers, ['routes', i, 'headers']));
  c.routes.forEach((r, i) => {
    for (const [m, cands] of Object.entries(r.models ?? {})) for (const x of cands) {
      if (c.upstreams[x.upstream]?.headers !== undefined) out.push({ path: ['routes', i, 'models', m], message: `upstreams.${x.upstream}.headers do not apply on a route with models: (its attempts go to several upstreams); put the rules on the route`, warning: true });
    }
  });
}
