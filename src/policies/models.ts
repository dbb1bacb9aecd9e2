import { z } from 'zod';
import { obj, duration, explainUnion } from '../config/zod-helpers.ts';
import type { Issue } from '../config/errors.ts';
import { GatewayError } from '../errors.ts';
import type { RequestContext, Step } from '../pipeline/context.ts';
import type { Policy } from '../pipeline/policy.ts';
import { readBody, type RequestBody } from '../pipeline/request-body.ts';
import { TopLevelFieldScanner } from '../pipeline/json-top-level.ts';
import { ModelTable } from '../metering/model-names.ts';
import { modelLabels, type LabelNeeds } from '../metering/model-labels.ts';
import { leasesFor } from '../state/leases.ts';
import { ModelAttempts, coolingKey, modelMetrics, type Candidate, type ModelRoute } from './model-attempts.ts';

/**
 * Model routing (`models:` on a route): the JSON body's top-level `model` chooses an ordered list of candidates
 * `{ upstream, model? }`; each attempt goes to the next usable candidate with the model name rewritten in the body
 * (only the value's bytes change); `failover:` says which failures move on to the next candidate — before the
 * first response byte reached the client, never after. See docs/ai-traffic.md.
 */

const candidate = z.union([
  z.string().transform((upstream) => ({ upstream }) as { upstream: string; model?: string }),
  obj({
    upstream: z.string().describe('The upstream (a key of `upstreams`) to try.'),
    model: z.string().min(1).max(256).optional().describe('Model name sent to it instead of the requested one.'),
  }),
], { error: explainUnion('expected an upstream name or { upstream, model }') }).describe('An upstream name, or { upstream, model }.');

const failoverOn = z.union([z.enum(['connect', 'timeout', '5xx']), z.number().int().min(400).max(599)]);

export const modelsRouteKeys = {
  models: z.record(z.string().min(1), z.array(candidate).min(1)).optional().describe('Model name (or a pattern ending in `*`, or `*`) → candidates, tried in order; `upstream` may then be left out (docs/ai-traffic.md).'),
  failover: obj({
    on: z.array(failoverOn).prefault(['connect', 429, '5xx']).describe('What moves a request to the next candidate: `connect` (no response), `timeout` (no response head in time), statuses 400-599, `5xx`.'),
    cooldown: duration.prefault('5s').describe('How long a candidate that answered 429 without saying when to come back is skipped.'),
    maxCooldown: duration.prefault('5m').describe('The longest a provider\'s Retry-After or reset header may park a candidate.'),
  }).optional().describe('With `models`: when to try the next candidate.'),
};
type RouteModels = NonNullable<z.output<(typeof modelsRouteKeys)['models']>>;
type RouteFailover = NonNullable<z.output<(typeof modelsRouteKeys)['failover']>>;

interface Needs extends LabelNeeds {
  server: { limits: { bodyPeek: number } };
  state: { leaseTtl: number };
  observability: { metrics: { models?: readonly string[] } };
  upstreams: Readonly<Record<string, { provider?: string }>>;
  routes: ReadonlyArray<{ upstream: string; models?: RouteModels; failover?: RouteFailover; websocket: boolean; match: { methods?: readonly string[] } }>;
}
type Route = { name: string; models?: RouteModels; failover?: RouteFailover };

/** Model names as clients send them: printable, bounded (they end up in usage records and the access log). */
const MODEL_NAME = /^[\x21-\x7e][\x20-\x7e]{0,255}$/;
const DEFAULT_FAILOVER: RouteFailover = { on: ['connect', 429, '5xx'], cooldown: 5_000, maxCooldown: 300_000 };

export const modelsPolicy: Policy<Needs, Route> = {
  name: 'models',
  check(c, out: Issue[]) {
    const known = Object.keys(c.upstreams);
    c.routes.forEach((r, i) => {
      if (r.failover !== undefined && r.models === undefined) out.push({ path: ['routes', i, 'failover'], message: 'failover moves between the candidates of models:; this route has none' });
      if (r.models === undefined) return;
      const named = Object.values(r.models).some((cands) => cands.some((x) => x.upstream === r.upstream));
      if (!named && !Object.hasOwn(c.upstreams, r.upstream)) out.push({ path: ['routes', i, 'upstream'], message: `unknown upstream "${r.upstream}" (known: ${known.join(', ')})` });
      if (r.websocket) out.push({ path: ['routes', i, 'models'], message: 'a WebSocket handshake has no body to route by' });
      if (r.match.methods !== undefined && !r.match.methods.some((m) => m === 'POST' || m === 'PUT' || m === 'PATCH')) out.push({ path: ['routes', i, 'models'], message: 'models route by the request body; this route takes no method with a body (add POST)' });
      for (const [name, cands] of Object.entries(r.models)) {
        if (name.includes('*') && !name.endsWith('*')) out.push({ path: ['routes', i, 'models', name], message: 'a pattern is a prefix ending in "*" (e.g. "gpt-4o*"), or "*" for any model' });
        cands.forEach((x, j) => {
          if (!Object.hasOwn(c.upstreams, x.upstream)) out.push({ path: ['routes', i, 'models', name, j, 'upstream'], message: `unknown upstream "${x.upstream}" (known: ${known.join(', ')})` });
          if (x.model !== undefined && !MODEL_NAME.test(x.model)) out.push({ path: ['routes', i, 'models', name, j, 'model'], message: 'a model name is printable ASCII' });
        });
      }
    });
  },
  compile({ config, route, env }) {
    const models = route.models;
    if (models === undefined) return undefined;
    const table = new ModelTable(Object.entries(models).map(([name, cands]) => [name, cands.map((x): Candidate => ({ upstream: env.upstreams.get(x.upstream)!, model: x.model, key: x.model !== undefined ? coolingKey(x.upstream, x.model) : null }))] as const));
    const f = route.failover ?? DEFAULT_FAILOVER;
    const statuses = new Uint8Array(600);
    for (const o of f.on) {
      if (o === '5xx') statuses.fill(1, 500, 600);
      else if (typeof o === 'number') statuses[o] = 1;
    }
    const limited = Object.values(models).some((cands) => cands.some((x) => env.upstreams.get(x.upstream)!.maxInFlight > 0));
    const r: ModelRoute = {
      route: route.name,
      store: env.store,
      leases: limited ? leasesFor(env.resources, env.store, config.state.leaseTtl, env.storeWarn) : null,
      warn: env.storeWarn,
      metrics: modelMetrics(env.metrics),
      label: modelLabels(config, env.shared),
      statuses,
      onConnect: f.on.includes('connect'),
      onTimeout: f.on.includes('timeout'),
      cooldown: f.cooldown,
      maxCooldown: f.maxCooldown,
    };
    const cap = config.server.limits.bodyPeek;
    const step: Step = (ctx) => readBody(ctx, cap).then((body) => plan(r, table, ctx, body, cap));
    return step;
  },
};

function plan(r: ModelRoute, table: ModelTable<Candidate[]>, ctx: RequestContext, body: RequestBody, cap: number): void {
  if (body.kind === 'none') throw new GatewayError('bad_request', 'This route routes requests by the "model" field of their JSON body; the request has no body.', { extra: { field: 'model' } });
  if (body.kind !== 'json') throw new GatewayError('unsupported_media_type', 'This route routes requests by the "model" field of a JSON body (without Content-Encoding).', { extra: { accepted: ['application/json'] } });
  // What the upstream would receive so far: the client's bytes, or what an earlier rule made of them.
  let bytes = body.bytes;
  let complete = body.complete;
  if (ctx.forwardBody !== null) {
    const fb = ctx.forwardBody.open();
    if (!Buffer.isBuffer(fb.body)) throw new GatewayError('internal_error');
    bytes = fb.body;
    complete = true;
  }
  const scanner = new TopLevelFieldScanner('model');
  scanner.push(bytes);
  if (scanner.problem === 'not_object') throw new GatewayError('bad_request', 'The request body must be a JSON object.');
  if (scanner.problem === 'not_string') throw new GatewayError('bad_request', 'The "model" field must be a string.', { extra: { field: 'model' } });
  if (scanner.problem === 'duplicate') throw new GatewayError('bad_request', 'The request body has more than one top-level "model" field.', { extra: { field: 'model' } });
  const at = scanner.found[0];
  if (at === undefined) {
    if (!complete) throw new GatewayError('payload_too_large', `This route needs the "model" field within the first ${cap} bytes of the body (server.limits.bodyPeek).`);
    throw new GatewayError('bad_request', 'The request body names no "model".', { extra: { field: 'model' } });
  }
  let requested: unknown;
  try { requested = JSON.parse(bytes.toString('utf8', at.start, at.end)); } catch { requested = undefined; }
  if (typeof requested !== 'string' || !MODEL_NAME.test(requested)) throw new GatewayError('bad_request', 'The "model" field must be a printable model name of at most 256 characters.', { extra: { field: 'model' } });
  const cands = table.get(requested);
  if (cands === undefined) throw new GatewayError('unknown_model', `This route does not serve the model "${requested}".`, { extra: { model: requested } });
  const ai = { requested, upstream: '', model: '', label: '', candidates: cands.map((c) => c.model ?? requested), attempts: [] };
  ctx.ai = ai;
  ctx.attempts = new ModelAttempts(r, ctx, ai, cands, bytes, at, complete ? null : scanner);
}
