import { GatewayError } from '../errors.ts';
import type { Issue } from '../config/errors.ts';
import type { RequestContext, Step } from '../pipeline/context.ts';
import type { Policy } from '../pipeline/policy.ts';
import { readBody, type RequestBody } from '../pipeline/request-body.ts';
import { bindSchema, type BindConfig } from '../rules/schema.ts';
import { asText, compileRef, parseRef, queryValues, withQueryParam, type Reader } from '../rules/refs.ts';

/**
 * `bind:` on a route: fields the client sends that must be the verified identity's (seed 001: services trusted the
 * `user_id` in the form). `check` (default) refuses a request whose field disagrees, with 403 naming the field, never
 * its value; `inject` sets the field from the identity instead, whatever the client sent. Body fields are read
 * through the shared peek (JSON, urlencoded, multipart); every occurrence of a repeated name is checked.
 */
export const bindRouteKeys = { bind: bindSchema.optional().describe('Bind request fields to the identity: `body.<field>`, `query.<name>` or `path.<name>` → `claim.<name>` / `identity.id | plan | consumer`, or { from, mode } (docs/request-rules.md).') };

interface Needs {
  server: { limits: { bodyPeek: number } };
  routes: ReadonlyArray<{ auth: string; bind?: BindConfig; match: { path?: string; paths?: string[]; prefix: boolean } }>;
}
type Route = { auth: string; bind?: BindConfig; match: { path?: string; paths?: string[]; prefix: boolean } };

interface Binding {
  /** `body.user_id`, as the config says it: the only thing about the field a refusal names. */
  key: string;
  name: string;
  inject: boolean;
  read: Reader;
  /** What the identity lacks, for the refusal when the claim is absent. */
  from: string;
}

export const claimBindingPolicy: Policy<Needs, Route> = {
  name: 'bind',
  check: checkBind,
  compile({ route, config }) {
    if (route.bind === undefined) return undefined;
    const body: Binding[] = [];
    const query: Binding[] = [];
    const path: Binding[] = [];
    for (const [key, { from, mode }] of Object.entries(route.bind)) {
      const target = parseRef(key, ['body', 'query', 'path']) as { kind: 'body' | 'query' | 'path'; name: string };
      const b: Binding = { key, name: target.name, inject: mode === 'inject', read: compileRef(parseRef(from, ['claim', 'identity']) as never), from };
      (target.kind === 'body' ? body : target.kind === 'query' ? query : path).push(b);
    }
    const cap = config.server.limits.bodyPeek;
    const render = path.some((b) => b.inject) ? pathRenderer(route.match.path!) : null;

    const expected = (ctx: RequestContext, b: Binding): string => {
      const v = ctx.identity === null ? undefined : b.read(ctx, null);
      if (v === undefined || v === null) throw new GatewayError('forbidden', `${b.key} is bound to ${b.from}, which this identity does not have.`, { extra: { field: b.key } });
      return asText(v);
    };
    const onBody = (ctx: RequestContext, rb: RequestBody): void => {
      if (rb.kind === 'none') return;
      if (rb.kind === 'other') throw new GatewayError('unsupported_media_type', 'This route checks body fields of JSON, form (urlencoded) and multipart bodies only, without Content-Encoding.', { extra: { accepted: ['application/json', 'application/x-www-form-urlencoded', 'multipart/form-data'] } });
      if (!rb.complete && rb.kind !== 'multipart') throw new GatewayError('payload_too_large', `This route checks body fields of request bodies up to ${cap} bytes (server.limits.bodyPeek); this one is larger.`);
      for (const b of body) {
        const want = expected(ctx, b);
        if (b.inject) { rb.set(b.name, rb.kind === 'json' ? b.read(ctx, null) : want); continue; }
        if (rb.kind === 'json') {
          rb.parsedJson(); // a body that is not JSON cannot be vouched for: 400, rather than "no such field"
          const v = rb.jsonField(b.name);
          if (v !== undefined && (typeof v === 'object' || asText(v) !== want)) throw mismatch(b.key);
          continue;
        }
        for (const v of rb.fields(b.name)) if (v !== want) throw mismatch(b.key);
        // Multipart: the whole body is walked as it goes up (checks alone leave its bytes as they are), so a part
        // past the peek is checked too and a malformed body, which services might read differently, is refused.
        if (rb.kind === 'multipart') rb.check(b.name, (v) => { if (v !== want) throw mismatch(b.key); });
      }
    };

    const step: Step = (ctx) => {
      for (const b of path) {
        const want = expected(ctx, b);
        if (b.inject) {
          ctx.params = { ...ctx.params, [b.name]: want };
          ctx.path = render!(ctx.params);
        } else if (ctx.params[b.name] !== want) throw mismatch(b.key);
      }
      for (const b of query) {
        const want = expected(ctx, b);
        if (b.inject) ctx.query = withQueryParam(ctx.query, b.name, want);
        else for (const v of queryValues(ctx, b.name)) if (v !== want) throw mismatch(b.key);
      }
      if (body.length === 0) return;
      const h = ctx.req.headers;
      if ((h['content-length'] === undefined || h['content-length'] === '0') && h['transfer-encoding'] === undefined) return;
      return readBody(ctx, cap).then((rb) => onBody(ctx, rb));
    };
    return step;
  },
};

function mismatch(key: string): GatewayError {
  return new GatewayError('forbidden', `${key} does not match the authenticated identity.`, { extra: { field: key } });
}

/** The route's path with its parameters filled in (an injected path parameter changes the forwarded path). */
function pathRenderer(pattern: string): (params: Record<string, string | undefined>) => string {
  const parts = pattern.split(/(:[A-Za-z_][A-Za-z0-9_]*|\*)/).filter((p) => p !== '');
  return (params) => {
    let out = '';
    for (const p of parts) {
      if (p === '*') out += encodeURIComponent(params['*'] ?? '').replace(/%2F/g, '/');
      else if (p[0] === ':') out += encodeURIComponent(params[p.slice(1)] ?? '');
      else out += p;
    }
    return out;
  };
}

function checkBind(c: Needs, out: Issue[]): void {
  c.routes.forEach((r, i) => {
    if (r.bind === undefined) return;
    const at = (...k: PropertyKey[]) => ['routes', i, 'bind', ...k];
    if (r.auth === 'public') { out.push({ path: ['routes', i, 'bind'], message: 'bind compares fields with the verified identity: set auth to jwt, apikey, any or forward' }); return; }
    const paths = r.match.paths ?? (r.match.path !== undefined ? [r.match.path] : []);
    for (const [key, { from, mode }] of Object.entries(r.bind)) {
      const target = parseRef(key, ['body', 'query', 'path']);
      if (typeof target === 'string') { out.push({ path: at(key), message: target }); continue; }
      const src = parseRef(from, ['claim', 'identity']);
      if (typeof src === 'string') out.push({ path: at(key), message: src });
      else if (src.kind === 'claim' && (r.auth === 'apikey' || r.auth === 'forward')) out.push({ path: at(key), message: `${r.auth === 'apikey' ? 'API-key' : 'forward-auth'} identities have no claims; bind to identity.id (or identity.consumer)` });
      if (target.kind === 'path') {
        const missing = paths.filter((p) => !new RegExp(`:${target.name}(?![A-Za-z0-9_])`).test(p));
        if (missing.length) out.push({ path: at(key), message: `the route's path ${missing.join(', ')} has no parameter :${target.name}` });
        else if (mode === 'inject' && (r.match.path === undefined || r.match.prefix)) out.push({ path: at(key), message: 'injecting a path parameter rewrites the path: only on a route with one match.path and no prefix' });
      }
    }
  });
}
