import type { RequestContext } from '../pipeline/context.ts';
import { asText, at, type RequestBody } from '../pipeline/request-body.ts';
import type { ValueSpec } from './schema.ts';

/**
 * References to request facts, as the rules write them: `claim.sub`, `identity.id`, `header.x-tenant`,
 * `query.user_id`, `path.userId`, `body.project_id`. Parsed and checked at load; each compiles to a plain function
 * over the request (and its parsed body, for `body.`), so a request never parses a reference.
 */

export type RefKind = 'claim' | 'identity' | 'header' | 'query' | 'path' | 'body';
export interface Ref { kind: RefKind; name: string; text: string }

const KINDS: ReadonlySet<string> = new Set(['claim', 'identity', 'header', 'query', 'path', 'body']);
const IDENTITY = new Set(['id', 'plan', 'consumer']);

/** A reference, or the reason it is not one. `allowed`: the kinds this place accepts. */
export function parseRef(text: string, allowed: readonly RefKind[]): Ref | string {
  const dot = text.indexOf('.');
  const kind = dot < 0 ? text : text.slice(0, dot);
  const name = dot < 0 ? '' : text.slice(dot + 1);
  const expect = allowed.map((k) => (k === 'identity' ? 'identity.id|plan|consumer' : `${k}.<name>`)).join(', ');
  if (!KINDS.has(kind) || !allowed.includes(kind as RefKind)) return `"${text}" is not a reference here; use ${expect}`;
  if (name === '') return `"${text}" names no ${kind === 'identity' ? 'identity field' : kind === 'claim' ? 'claim' : 'field'}; use ${expect}`;
  if (kind === 'identity' && !IDENTITY.has(name)) return `"${text}": identity has id, plan and consumer`;
  if (name.split('.').some((k) => k === '__proto__' || k === 'constructor' || k === 'prototype')) return `"${text}" names a reserved property`;
  return { kind: kind as RefKind, name: kind === 'header' ? name.toLowerCase() : name, text };
}

/** Reads a reference on a request; undefined when the request does not carry it. */
export type Reader = (ctx: RequestContext, body: RequestBody | null) => unknown;

export function compileRef(ref: Ref): Reader {
  const n = ref.name;
  switch (ref.kind) {
    case 'claim': {
      const simple = !n.includes('.');
      return (ctx) => {
        const c = ctx.identity?.claims;
        if (c === undefined) return undefined;
        return simple ? (Object.hasOwn(c, n) ? c[n] : undefined) : at(c, n);
      };
    }
    case 'identity':
      if (n === 'plan') return (ctx) => ctx.identity?.plan;
      if (n === 'consumer') return (ctx) => ctx.identity?.consumer;
      return (ctx) => ctx.identity?.id;
    case 'header': return (ctx) => { const v = ctx.req.headers[n]; return Array.isArray(v) ? v.join(', ') : v; };
    case 'query': return (ctx) => queryValues(ctx, n)[0];
    case 'path': return (ctx) => ctx.params[n];
    case 'body': return (_ctx, body) => (body === null ? undefined : body.kind === 'json' ? body.jsonField(n) : body.field(n));
  }
}

/** A rule's value: the literal itself, or its reference read per request. */
export function compileValue(v: ValueSpec, allowed: readonly RefKind[]): { read: Reader; ref: Ref | null } | string {
  if (typeof v !== 'object') return { read: () => v, ref: null };
  const ref = parseRef(v.from, allowed);
  if (typeof ref === 'string') return ref;
  return { read: compileRef(ref), ref };
}

/** Every value of a query parameter (decoded), in order; parsed once per request and query string. */
export function queryValues(ctx: RequestContext, name: string): string[] {
  const q = ctx.query;
  if (q === null) return [];
  let cached = queries.get(ctx);
  if (cached === undefined || cached.raw !== q) { cached = { raw: q, params: new URLSearchParams(q) }; queries.set(ctx, cached); }
  return cached.params.getAll(name);
}

const queries = new WeakMap<RequestContext, { raw: string; params: URLSearchParams }>();

/** `q` with every `name` parameter removed and `name=value` appended; other parameters keep their bytes. */
export function withQueryParam(q: string | null, name: string, value: string): string {
  const kept = q === null || q === '' ? [] : q.split('&').filter((p) => {
    const eq = p.indexOf('=');
    return decodeName(eq < 0 ? p : p.slice(0, eq)) !== name;
  });
  kept.push(`${encodeURIComponent(name)}=${encodeURIComponent(value)}`);
  return kept.join('&');
}

function decodeName(s: string): string {
  try { return decodeURIComponent(s.replace(/\+/g, ' ')); } catch { return s; }
}

export { asText };
