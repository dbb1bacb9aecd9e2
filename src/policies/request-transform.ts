import type { Issue } from '../config/errors.ts';
import type { RequestContext, Step } from '../pipeline/context.ts';
import type { Policy } from '../pipeline/policy.ts';
import { readBody, type RequestBody } from '../pipeline/request-body.ts';
import { transformSchema, type TransformConfig } from '../rules/schema.ts';
import { compileValue, type Reader } from '../rules/refs.ts';

/**
 * `transform: { body: { keep, remove, rename, set } }` on a route: the body the upstream receives, rewritten from
 * the one the client sent (seed 000's physio route: `question, session_id, avtarType=<project_id>`). In this order:
 * `keep` drops every field not listed, `remove` drops the listed ones, `rename` renames, `set` writes values from
 * literals, claims, the identity, path parameters, headers, the query or the client's body. JSON and urlencoded
 * bodies are rewritten whole (Content-Length recomputed) when they fit `server.limits.bodyPeek`, else 413; multipart
 * bodies are rewritten as they stream (file parts untouched, chunked), so an upload of any size passes.
 */
export const transformRouteKeys = { transform: transformSchema.optional().describe('Rewrite the request body before forwarding (docs/request-rules.md).') };

interface Needs {
  server: { limits: { bodyPeek: number } };
  routes: ReadonlyArray<{ auth: string; transform?: TransformConfig }>;
}
type Route = { transform?: TransformConfig };

const SOURCES = ['claim', 'identity', 'header', 'query', 'path', 'body'] as const;

export const requestTransformPolicy: Policy<Needs, Route> = {
  name: 'transform',
  check: checkTransform,
  compile({ route, config }) {
    const t = route.transform?.body;
    if (t === undefined) return undefined;
    const keep = t.keep !== undefined ? new Set(t.keep) : null;
    const remove = t.remove ?? [];
    const rename = Object.entries(t.rename ?? {});
    const set: Array<[string, Reader]> = Object.entries(t.set ?? {}).map(([k, v]) => [k, (compileValue(v, SOURCES) as { read: Reader }).read]);
    const cap = config.server.limits.bodyPeek;

    const apply = (ctx: RequestContext, body: RequestBody): void => {
      if (body.kind === 'none') return;
      // Values come from the request as the client sent it, before any edit below.
      const values: Array<[string, unknown]> = [];
      for (const [k, read] of set) { const v = read(ctx, body); if (v !== undefined && v !== null) values.push([k, v]); }
      if (keep !== null) body.keep(keep);
      for (const k of remove) body.remove(k);
      for (const [from, to] of rename) body.rename(from, to);
      for (const [k, v] of values) body.set(k, v);
    };
    const step: Step = (ctx) => readBody(ctx, cap).then((body) => apply(ctx, body));
    return step;
  },
};

function checkTransform(c: Needs, out: Issue[]): void {
  c.routes.forEach((r, i) => {
    const t = r.transform?.body;
    if (t === undefined) return;
    const at = (...k: PropertyKey[]) => ['routes', i, 'transform', 'body', ...k];
    if (!t.keep && !t.remove?.length && !Object.keys(t.rename ?? {}).length && !Object.keys(t.set ?? {}).length) out.push({ path: at(), message: 'give keep, remove, rename or set' });
    for (const [k, v] of Object.entries(t.set ?? {})) {
      const compiled = compileValue(v, SOURCES);
      if (typeof compiled === 'string') out.push({ path: at('set', k), message: compiled });
      else if (compiled.ref !== null && (compiled.ref.kind === 'claim' || compiled.ref.kind === 'identity') && r.auth === 'public') {
        out.push({ path: at('set', k), message: `${compiled.ref.text} needs an identity: this route is public` });
      }
    }
    for (const [from, to] of Object.entries(t.rename ?? {})) {
      if (from === to) out.push({ path: at('rename', from), message: 'renames a field to itself' });
      if (t.keep && !t.keep.includes(from)) out.push({ path: at('rename', from), message: `"${from}" is not in keep, so it is gone before it could be renamed` });
    }
  });
}
