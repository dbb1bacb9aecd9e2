import { z } from 'zod';
import { obj } from '../config/zod-helpers.ts';
import { ConfigError, type Issue } from '../config/errors.ts';
import type { RequestContext, Step } from '../pipeline/context.ts';
import { resourceKey, type Policy } from '../pipeline/policy.ts';
import { readBody } from '../pipeline/request-body.ts';
import { findOperation, operations, readDocument, shapeOf, templateParams, type OpenApiDocument, type Operation } from '../rules/openapi-document.ts';
import { DocumentCompiler, compileOperation, invalid, type OperationValidator } from '../rules/openapi-validator.ts';

/**
 * `validate: { openapi: FILE, operation? }` on a route: requests are checked against the OpenAPI document the service
 * publishes (path, query and header parameters; JSON, form and multipart bodies) before they reach it, 400 listing
 * the failing fields as JSON Pointers. Validators are compiled at load with ajv; bodies are validated from the shared
 * peek, so a body larger than `server.limits.bodyPeek` is 413 (a multipart upload may exceed it inside a file part).
 * Without `operation`, the route's path (as forwarded, after `rewrite`) and methods find the operations.
 * The document is a file, read at load, relative to the config file (docs/request-rules.md says why not a URL).
 */
const validateSchema = obj({
  openapi: z.string().min(1).describe('OpenAPI 3.0/3.1 document (a file, relative to this config file).'),
  operation: z.string().min(1).optional().describe('An operationId, or `METHOD /path` as the document writes it; default: found by the route\'s path and methods.'),
});
export const validateRouteKeys = { validate: validateSchema.optional().describe('Validate requests against an OpenAPI operation (400 with JSON Pointers; docs/request-rules.md).') };

/** A route's `validate` after the normalize pass: `file` is `openapi` resolved against the config file's directory. */
export interface ValidateConfig { openapi: string; operation?: string; file: string }

export interface RouteNeeds {
  validate?: ValidateConfig;
  websocket: boolean;
  match: { path?: string; paths?: string[]; prefix: boolean; methods?: string[] };
  rewrite?: { stripPrefix?: string; addPrefix?: string; path?: string };
}
interface Needs { server: { limits: { bodyPeek: number } }; routes: ReadonlyArray<RouteNeeds> }
type Route = RouteNeeds & { index: number };

const ALL = ['GET', 'PUT', 'POST', 'DELETE', 'OPTIONS', 'HEAD', 'PATCH'];

export interface Resolved { method: string; op: Operation; params: Map<string, string> }

export const requestValidationPolicy: Policy<Needs, Route> = {
  name: 'validate',
  check: checkValidate,
  compile({ route, config, env }) {
    const v = route.validate;
    if (v === undefined) return undefined;
    const fail = (message: string) => new ConfigError([{ path: `routes[${route.index}].validate`, message }]);
    let doc: OpenApiDocument;
    try { doc = readDocument(v.file); } catch (e) { throw fail((e as Error).message); }
    const resolved = resolveOperations(route, doc);
    if (typeof resolved === 'string') throw fail(resolved);
    // One compiler per document version, shared by its routes and by the next generation while the file is unchanged.
    const compiler = env.resources.get(resourceKey('openapi', v.file, doc.version), () => new DocumentCompiler(doc));
    const cap = config.server.limits.bodyPeek;
    const byMethod = new Map<string, OperationValidator>();
    try {
      for (const r of resolved) byMethod.set(r.method, compileOperation(compiler, r.op, r.params, cap));
    } catch (e) {
      throw fail(`the document's schema for this operation does not compile: ${(e as Error).message}`);
    }
    const head = byMethod.get('GET');
    if (head !== undefined && !byMethod.has('HEAD')) byMethod.set('HEAD', head);

    const decide = (ctx: RequestContext, op: OperationValidator, body: Parameters<OperationValidator['check']>[1]): void => {
      const errors = op.check(ctx, body);
      if (errors.length > 0) throw invalid(errors);
    };
    const step: Step = (ctx) => {
      const op = byMethod.get(ctx.req.method ?? 'GET');
      if (op === undefined) return;
      const h = ctx.req.headers;
      const hasBody = !((h['content-length'] === undefined || h['content-length'] === '0') && h['transfer-encoding'] === undefined);
      if (!op.hasBody || !hasBody) return decide(ctx, op, null);
      return readBody(ctx, cap).then((body) => decide(ctx, op, body));
    };
    return step;
  },
};

/** The route's path as the upstream sees it, as a document template (`/v2/documents/{id}`); null for a wildcard. */
function upstreamTemplate(path: string, r: RouteNeeds): string | null {
  let p = path;
  const rw = r.rewrite;
  if (rw?.path !== undefined) p = rw.path;
  else {
    const strip = rw?.stripPrefix?.replace(/\/$/, '');
    if (strip && (p === strip || p.startsWith(strip + '/'))) p = p.slice(strip.length) || '/';
    const add = rw?.addPrefix?.replace(/\/$/, '');
    if (add) p = add + p;
  }
  if (p.includes('*')) return null;
  return p.replace(/:([A-Za-z_][A-Za-z0-9_]*)(\([^)]*\))?/g, '{$1}').replace(/::/g, ':');
}

/**
 * The operation each of the route's methods serves, with the route's names for the document's path parameters
 * (document name → route name); a string says why none could be found. Also `gatehouse routes --openapi`.
 */
export function resolveOperations(r: RouteNeeds, doc: OpenApiDocument): Resolved[] | string {
  const ops = operations(doc);
  const paths = r.match.paths ?? (r.match.path !== undefined ? [r.match.path] : []);
  const templates = r.match.prefix ? [] : paths.map((p) => upstreamTemplate(p, r));
  const v = r.validate!;
  const mapParams = (op: Operation, tpl: string | null | undefined): Map<string, string> | string => {
    const names = templateParams(op.path);
    if (tpl != null && shapeOf(tpl) === shapeOf(op.path)) return new Map(names.map((n, i) => [n, templateParams(tpl)[i]]));
    // Different shapes (an explicit operation on a rewritten route): parameters are matched by name.
    const own = new Set(paths.flatMap((p) => [...p.matchAll(/:([A-Za-z_][A-Za-z0-9_]*)/g)].map((m) => m[1])));
    const missing = names.filter((n) => !own.has(n));
    return missing.length ? `the route has no path parameter for {${missing.join('}, {')}} of ${op.method} ${op.path}` : new Map(names.map((n) => [n, n]));
  };
  if (v.operation !== undefined) {
    const op = findOperation(ops, v.operation);
    if (op === undefined) return `${doc.file} has no operation "${v.operation}" (give an operationId or "METHOD /path")`;
    const params = mapParams(op, templates[0]);
    if (typeof params === 'string') return params;
    const methods = r.match.methods ?? [op.method];
    return methods.map((m) => ({ method: m, op, params }));
  }
  if (r.match.prefix || templates.some((t) => t === null)) return 'a prefix or wildcard route serves many operations: name one with validate.operation';
  const out: Resolved[] = [];
  const missing: string[] = [];
  for (const tpl of templates as string[]) {
    const here = ops.filter((o) => shapeOf(o.path) === shapeOf(tpl));
    for (const m of r.match.methods ?? ALL) {
      const op = here.find((o) => o.method === m);
      if (op === undefined) { if (r.match.methods !== undefined) missing.push(`${m} ${tpl}`); continue; }
      if (out.some((x) => x.method === m)) return 'several paths of this route map to different operations for one method: split the route or give validate.operation';
      const params = mapParams(op, tpl);
      if (typeof params === 'string') return params;
      out.push({ method: m, op, params });
    }
  }
  if (missing.length) return `${doc.file} has no operation for ${missing.join(', ')} (the path as forwarded, after rewrite); give validate.operation`;
  if (out.length === 0) return `${doc.file} has no operation for ${templates.join(', ')} (the path as forwarded, after rewrite); give validate.operation`;
  return out;
}

function checkValidate(c: Needs, out: Issue[]): void {
  c.routes.forEach((r, i) => {
    const v = r.validate;
    if (v === undefined) return;
    const at = (...k: PropertyKey[]) => ['routes', i, 'validate', ...k];
    if (/^https?:\/\//i.test(v.openapi)) {
      out.push({ path: at('openapi'), message: 'give a file, not a URL: a config load never reaches the network (save it once: gatehouse import openapi URL --upstream NAME --validate --save FILE)' });
      return;
    }
    if (r.websocket) { out.push({ path: at(), message: 'a WebSocket handshake has no request body or schema to validate' }); return; }
    let doc: OpenApiDocument;
    try { doc = readDocument(v.file); } catch (e) { out.push({ path: at('openapi'), message: (e as Error).message }); return; }
    const resolved = resolveOperations(r, doc);
    if (typeof resolved === 'string') out.push({ path: at(v.operation !== undefined ? 'operation' : 'openapi'), message: resolved });
  });
}
