import type { AdminHandler } from './http.ts';
import { VERSION } from '../server/info.ts';

/**
 * The admin listener's API as an OpenAPI 3.1 document, served at `GET /openapi.json`. Written by hand beside the
 * routes it describes: test/admin/openapi.test.ts fails when a route registered in src/admin/ is missing here, or
 * when this describes one that is not registered. Paths use `{name}` where the routes say `:name`.
 */

type Schema = Record<string, unknown>;
const ref = (name: string): Schema => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: Schema, description: string) => ({ description, content: { 'application/json': { schema } } });
const problem = (description: string) => ({ description, content: { 'application/problem+json': { schema: ref('Problem') } } });
const body = (schema: Schema, required = true) => ({ required, content: { 'application/json': { schema } } });
const pathParam = (name: string, description: string) => ({ name, in: 'path', required: true, description, schema: { type: 'string' } });
const query = (name: string, description: string, schema: Schema = { type: 'string' }) => ({ name, in: 'query', required: false, description, schema });

const E401 = problem('`unauthorized`: `admin.token` is set and the request did not send `Authorization: Bearer <token>`.');
const E400 = problem('`bad_request`: the body or a parameter is wrong; `detail` says how.');
const E404 = problem('`not_found`: no such upstream, consumer or key.');
const E409 = problem('`conflict`: the change cannot be made as asked; `detail` says why.');
const E503 = problem('`store_unavailable`: the state store did not answer (`Retry-After: 1`).');
const open = { security: [] as unknown[] };

const consumerParam = pathParam('id', 'Consumer id.');
const keyParam = pathParam('keyId', 'Key id (`key_…`).');
const upstreamParam = pathParam('name', 'Upstream name from the config.');

const schemas: Record<string, Schema> = {
  Problem: {
    type: 'object', description: 'RFC 9457 problem details; `code` is one of docs/errors.md.',
    required: ['type', 'title', 'status', 'code'],
    properties: {
      type: { type: 'string', examples: ['urn:gatehouse:problem:not_found'] }, title: { type: 'string' }, status: { type: 'integer' },
      detail: { type: 'string' }, code: { type: 'string' }, requestId: { type: 'string' },
    },
  },
  Route: {
    type: 'object', description: 'A route as `gatehouse routes` shows it.',
    required: ['name', 'methods', 'paths', 'conditions', 'upstream', 'rewrite', 'auth', 'policies', 'timeout', 'enabled'],
    properties: {
      name: { type: 'string' }, methods: { type: 'string', examples: ['GET,POST'] }, paths: { type: 'string' },
      conditions: { type: 'string' }, upstream: { type: 'string' }, rewrite: { type: 'string' }, auth: { type: 'string' },
      policies: { type: 'string', description: 'Policies in order, comma-separated; `DISABLED` for a route turned off.' },
      timeout: { type: 'string' }, enabled: { type: 'boolean' },
    },
  },
  Circuit: {
    type: ['object', 'null'], description: 'Circuit breaker state; null when not configured.',
    properties: { state: { enum: ['closed', 'open', 'half_open'] }, opened: { type: 'integer' }, consecutiveFailures: { type: 'integer' }, retryAfterMs: { type: 'integer' } },
  },
  Target: {
    type: 'object', required: ['index', 'url', 'weight', 'role', 'state', 'inflight'],
    properties: {
      index: { type: 'integer' }, url: { type: 'string', description: 'Origin and base path, never credentials.' },
      weight: { type: 'integer', minimum: 0, maximum: 1_000_000 }, role: { enum: ['serving', 'standby'] },
      state: { enum: ['up', 'unhealthy', 'ejected', 'circuit_open', 'half_open'] }, inflight: { type: 'integer' },
      health: {
        type: ['object', 'null'], description: 'Active health checks; null when not configured.',
        properties: { healthy: { type: 'boolean' }, checks: { type: 'integer' }, lastStatus: { type: ['integer', 'null'] }, lastResponseMs: { type: ['number', 'null'] }, lastCheckedAt: { type: ['string', 'null'], format: 'date-time' }, lastError: { type: ['string', 'null'] } },
      },
      passive: {
        type: ['object', 'null'], description: 'Passive health (ejections); null when not configured.',
        properties: { ejected: { type: 'boolean' }, ejectedUntil: { type: ['string', 'null'] }, ejections: { type: 'integer' }, consecutiveFailures: { type: 'integer' } },
      },
      circuit: ref('Circuit'),
    },
  },
  Upstream: {
    type: 'object', required: ['name', 'balance', 'status', 'critical', 'fallback', 'targets'],
    properties: {
      name: { type: 'string' }, balance: { type: 'string' }, status: { enum: ['healthy', 'degraded', 'unhealthy'] },
      critical: { type: 'boolean' }, fallback: { type: 'array', items: { type: 'string' } }, degraded: {},
      circuit: ref('Circuit'),
      retry: { type: ['object', 'null'], properties: { attempts: { type: 'integer' }, budget: { type: 'string' }, window: { type: 'object' } } },
      targets: { type: 'array', items: ref('Target') },
    },
  },
  Weights: {
    type: 'object', required: ['weights'],
    properties: {
      weights: {
        oneOf: [
          { type: 'object', description: 'By target URL (as `GET /admin/upstreams` shows it); targets not named keep their weight.', additionalProperties: { type: 'integer', minimum: 0, maximum: 1_000_000 } },
          { type: 'array', description: 'One weight per target, in config order.', items: { type: 'integer', minimum: 0, maximum: 1_000_000 } },
        ],
      },
    },
    examples: [{ weights: { 'http://10.0.0.12:8002': 100, 'http://10.0.0.11:8002': 0 } }, { weights: [95, 5] }],
  },
  ReloadResult: {
    type: 'object', required: ['ok', 'generation', 'hash', 'durationMs'],
    properties: {
      ok: { type: 'boolean' }, generation: { type: 'integer' }, hash: { type: 'string' }, previousHash: { type: 'string' },
      changes: { type: 'object', properties: { routes: ref('NamedChanges'), upstreams: ref('NamedChanges'), sections: { type: 'array', items: { type: 'string' } }, restartRequired: { type: 'array', items: { type: 'string' } } } },
      problems: { type: 'array', items: { type: 'string' } }, warnings: { type: 'array', items: { type: 'string' } },
      workers: { type: 'array', items: { type: 'object', properties: { ok: { type: 'boolean' }, generation: { type: 'integer' }, hash: { type: 'string' } } } },
      durationMs: { type: 'number' },
    },
  },
  NamedChanges: { type: 'object', properties: { added: { type: 'array', items: { type: 'string' } }, removed: { type: 'array', items: { type: 'string' } }, changed: { type: 'array', items: { type: 'string' } } } },
  ConfigView: {
    type: 'object', required: ['generation', 'hash', 'loadedAt', 'file', 'lastReload', 'config'],
    properties: {
      generation: { type: 'integer' }, hash: { type: 'string' }, loadedAt: { type: 'string', format: 'date-time' }, file: { type: ['string', 'null'] },
      lastReload: { oneOf: [ref('ReloadResult'), { type: 'null' }] },
      config: { type: 'object', description: 'The effective config, every secret replaced by `***`.' },
    },
  },
  KeyView: { type: 'object', properties: { id: { type: 'string' }, fingerprint: { type: 'string' }, createdAt: { type: 'string' }, expiresAt: { type: ['string', 'null'] } } },
  Consumer: {
    type: 'object', required: ['id', 'source', 'plan', 'effectivePlan', 'keys'],
    properties: {
      id: { type: 'string' }, source: { enum: ['file', 'runtime'] }, plan: { type: ['string', 'null'] }, effectivePlan: { type: ['string', 'null'] },
      createdAt: { type: 'string' }, updatedAt: { type: 'string' }, version: { type: 'integer' }, keys: { type: 'array', items: ref('KeyView') },
    },
  },
  NewKey: {
    type: 'object', required: ['consumer', 'keyId', 'fingerprint', 'key'],
    properties: {
      consumer: { type: 'string' }, keyId: { type: 'string' }, fingerprint: { type: 'string' },
      key: { type: 'string', description: 'The plaintext key: in this response only.' }, note: { type: 'string' },
      replaced: { type: 'object', properties: { keyId: { type: 'string' }, revoked: { type: 'boolean' }, expiresAt: { type: ['string', 'null'] } } },
    },
  },
  Usage: {
    type: 'object', required: ['consumer', 'from', 'to', 'quotas', 'totals', 'records'],
    properties: {
      consumer: { type: 'string' }, plan: { type: ['string', 'null'] }, from: { type: 'string', format: 'date' }, to: { type: 'string', format: 'date' },
      store: { type: 'string' }, currency: { type: ['string', 'null'] }, quotas: { type: 'array', items: { type: 'object' } },
      totals: { type: 'object', description: 'route → usage type → value.' }, byModel: { type: 'array', items: { type: 'object' } },
      records: { type: 'array', items: { type: 'object', properties: { day: { type: 'string' }, route: { type: 'string' }, type: { type: 'string' }, value: { type: 'number' }, upstream: { type: 'string' }, model: { type: 'string' } } } },
    },
  },
  Snapshot: {
    type: 'object', description: 'One `snapshot` event of `GET /admin/events` (its `data`).',
    required: ['at', 'generation', 'routes', 'upstreams', 'traffic', 'usage'],
    properties: {
      at: { type: 'string', format: 'date-time' },
      generation: { type: 'object', properties: { id: { type: 'integer' }, hash: { type: 'string' }, loadedAt: { type: 'string' }, file: { type: ['string', 'null'] }, lastReload: { oneOf: [ref('ReloadResult'), { type: 'null' }] } } },
      routes: { type: 'array', items: ref('Route') },
      upstreams: { type: 'array', items: ref('Upstream') },
      traffic: {
        type: 'object', description: 'Per route (`none`: requests no route matched), from the metrics the gateway keeps.',
        properties: {
          windowSeconds: { type: 'number' },
          routes: {
            type: 'array',
            items: {
              type: 'object',
              properties: {
                route: { type: 'string' }, rps: { type: 'number' }, p50Ms: { type: ['number', 'null'] }, p99Ms: { type: ['number', 'null'] },
                window: ref('TrafficCounts'), total: ref('TrafficCounts'),
              },
            },
          },
        },
      },
      usage: {
        type: ['object', 'null'], description: "Today's (UTC) usage of the consumers the gateway knows (file and runtime), refreshed every 10 s.",
        properties: {
          day: { type: 'string' }, refreshedAt: { type: 'string' }, leftOut: { type: 'integer' }, error: { type: ['string', 'null'] },
          consumers: { type: 'array', items: { type: 'object', properties: { consumer: { type: 'string' }, requests: { type: 'integer' }, inputTokens: { type: 'integer' }, outputTokens: { type: 'integer' }, tokens: { type: 'integer' }, costMicros: { type: 'integer' }, cost: { type: ['string', 'null'] } } } },
        },
      },
    },
  },
  TrafficCounts: {
    type: 'object',
    properties: { requests: { type: 'integer' }, status4xx: { type: 'integer' }, status5xx: { type: 'integer' }, rateLimited: { type: 'integer' }, quotaExceeded: { type: 'integer' } },
  },
  Health: { type: 'object', description: 'docs/operations.md "Health and readiness".' },
};

export const ADMIN_OPENAPI = {
  openapi: '3.1.0',
  info: {
    title: 'Gatehouse admin API',
    version: VERSION,
    description: 'The admin listener (`admin.listen`, loopback by default). With `admin.token` set every operation needs `Authorization: Bearer <token>`, except the health probes and the dashboard\'s static files. Errors are RFC 9457 problem+json (docs/errors.md). Requests a browser sends from a page of another origin are refused (403 `forbidden`).',
  },
  servers: [{ url: 'http://127.0.0.1:9901' }],
  security: [{ adminToken: [] }],
  tags: [
    { name: 'dashboard' }, { name: 'config' }, { name: 'upstreams' }, { name: 'consumers' }, { name: 'usage' }, { name: 'health' },
  ],
  paths: {
    '/': { get: { ...open, tags: ['dashboard'], operationId: 'dashboard', summary: 'The dashboard page (HTML; it asks for the token and calls this API).', responses: { 200: { description: 'HTML', content: { 'text/html': {} } } } } },
    '/ui/{file}': { get: { ...open, tags: ['dashboard'], operationId: 'dashboardAsset', summary: "The dashboard's script, style sheet and icon.", parameters: [pathParam('file', '`app.js`, `app.css` or `icon.svg`.')], responses: { 200: { description: 'The file.' }, 404: E404 } } },
    '/openapi.json': { get: { tags: ['config'], operationId: 'openapi', summary: 'This document.', responses: { 200: json({ type: 'object' }, 'OpenAPI 3.1'), 401: E401 } } },
    '/metrics': { get: { tags: ['health'], operationId: 'metrics', summary: 'Prometheus metrics (docs/operations.md "Metrics"); 404 when `observability.metrics.enabled` is false.', responses: { 200: { description: 'Prometheus text format', content: { 'text/plain': {} } }, 401: E401, 404: E404 } } },
    '/healthz': { get: { ...open, tags: ['health'], operationId: 'healthz', summary: 'Health of the gateway and its upstreams, from cached state.', responses: { 200: json(ref('Health'), 'Healthy or degraded.'), 503: json(ref('Health'), 'Unhealthy.') } } },
    '/readyz': { get: { ...open, tags: ['health'], operationId: 'readyz', summary: 'Ready to serve (503 before the config is live and while draining).', responses: { 200: json({ type: 'object', properties: { ready: { const: true } } }, 'Ready.'), 503: json({ type: 'object' }, 'Not ready.') } } },
    '/livez': { get: { ...open, tags: ['health'], operationId: 'livez', summary: 'The process answers.', responses: { 200: json({ type: 'object', properties: { live: { const: true } } }, 'Live.') } } },
    '/admin/events': {
      get: {
        tags: ['dashboard'], operationId: 'events',
        summary: 'Server-Sent Events: a `snapshot` event once a second and after each change (admin write, reload), the same snapshot for every subscriber. At most 64 streams at once (429 beyond).',
        responses: { 200: { description: '`event: snapshot`, `data:` a Snapshot (JSON, one line).', content: { 'text/event-stream': { schema: ref('Snapshot') } } }, 401: E401, 429: problem('`rate_limited`: too many streams open.') },
      },
    },
    '/admin/routes': { get: { tags: ['config'], operationId: 'listRoutes', summary: 'The routes of the serving config, as `gatehouse routes` shows them.', responses: { 200: json({ type: 'array', items: ref('Route') }, 'Routes in match order.'), 401: E401 } } },
    '/admin/config': { get: { tags: ['config'], operationId: 'getConfig', summary: 'The serving generation, its hash and load time, the last reload result and the effective config with secrets masked.', responses: { 200: json(ref('ConfigView'), 'The serving config.'), 401: E401 } } },
    '/admin/reload': { post: { tags: ['config'], operationId: 'reload', summary: 'Reload the config file (every worker under `--workers`); a refused file leaves the running config serving.', responses: { 200: json(ref('ReloadResult'), 'The new generation serves.'), 401: E401, 422: problem('`config_invalid`: the file was refused; `problems` lists every problem, positioned.') } } },
    '/admin/upstreams': { get: { tags: ['upstreams'], operationId: 'listUpstreams', summary: 'Every upstream: targets, weights, health, circuit state, in-flight, ejections.', responses: { 200: json({ type: 'array', items: ref('Upstream') }, 'Upstreams in config order.'), 401: E401 } } },
    '/admin/upstreams/{name}': { get: { tags: ['upstreams'], operationId: 'getUpstream', summary: 'One upstream.', parameters: [upstreamParam], responses: { 200: json(ref('Upstream'), 'The upstream.'), 401: E401, 404: E404 } } },
    '/admin/upstreams/{name}/weights': {
      post: {
        tags: ['upstreams'], operationId: 'setWeights', summary: 'New target weights (blue-green switch, canary): effective from the next pick; nothing in flight is dropped. Kept in memory until a restart.',
        parameters: [upstreamParam], requestBody: body(ref('Weights')),
        responses: { 200: json(ref('Upstream'), 'The upstream with its new weights.'), 400: E400, 401: E401, 404: E404, 409: problem('`conflict`: every target would have weight 0.') },
      },
    },
    '/admin/usage': {
      get: {
        tags: ['usage'], operationId: 'getUsage', summary: "One consumer's usage records per UTC day, route and type, their totals, and its quotas now.",
        parameters: [{ ...query('consumer', 'Consumer id (or JWT subject).'), required: true }, query('from', 'First UTC day (YYYY-MM-DD).', { type: 'string', format: 'date' }), query('to', 'Last UTC day (YYYY-MM-DD).', { type: 'string', format: 'date' }), query('plan', 'Plan whose quotas to report (default: the consumer\'s).')],
        responses: { 200: json(ref('Usage'), 'Usage.'), 400: E400, 401: E401, 503: E503 },
      },
    },
    '/admin/consumers': {
      get: {
        tags: ['consumers'], operationId: 'listConsumers', summary: "Every consumer (the file's, then the runtime's), keys masked.",
        parameters: [query('source', 'Only the file\'s or the runtime\'s.', { enum: ['file', 'runtime'] })],
        responses: { 200: json({ type: 'object', properties: { store: { type: 'string' }, version: { type: 'integer' }, synced: { type: 'boolean' }, consumers: { type: 'array', items: ref('Consumer') } } }, 'Consumers.'), 401: E401 },
      },
      post: {
        tags: ['consumers'], operationId: 'createConsumer', summary: 'Create a runtime consumer.',
        requestBody: body({ type: 'object', required: ['id'], additionalProperties: false, properties: { id: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$' }, plan: { type: 'string' } } }),
        responses: { 201: json(ref('Consumer'), 'Created.'), 400: E400, 401: E401, 409: E409, 503: E503 },
      },
    },
    '/admin/consumers/{id}': {
      get: { tags: ['consumers'], operationId: 'getConsumer', summary: 'One consumer.', parameters: [consumerParam], responses: { 200: json(ref('Consumer'), 'The consumer.'), 401: E401, 404: E404 } },
      patch: {
        tags: ['consumers'], operationId: 'setConsumerPlan', summary: "Change a runtime consumer's plan (`null`: `defaults.plan`).", parameters: [consumerParam],
        requestBody: body({ type: 'object', required: ['plan'], additionalProperties: false, properties: { plan: { type: ['string', 'null'] } } }),
        responses: { 200: json(ref('Consumer'), 'The consumer.'), 400: E400, 401: E401, 404: E404, 409: E409, 503: E503 },
      },
      delete: { tags: ['consumers'], operationId: 'deleteConsumer', summary: 'Delete a runtime consumer and every key it has.', parameters: [consumerParam], responses: { 200: json({ type: 'object', properties: { deleted: { type: 'string' }, revokedKeys: { type: 'integer' } } }, 'Deleted.'), 401: E401, 404: E404, 409: E409, 503: E503 } },
    },
    '/admin/consumers/{id}/keys': {
      post: { tags: ['consumers'], operationId: 'createKey', summary: 'A new API key for a runtime consumer (its plaintext in this response only; at most 10 keys).', parameters: [consumerParam], responses: { 201: json(ref('NewKey'), 'The new key.'), 400: E400, 401: E401, 404: E404, 409: E409, 503: E503 } },
    },
    '/admin/consumers/{id}/keys/{keyId}': {
      delete: { tags: ['consumers'], operationId: 'revokeKey', summary: 'Revoke a key (refused from the next request on).', parameters: [consumerParam, keyParam], responses: { 200: json({ type: 'object', properties: { consumer: { type: 'string' }, revoked: { type: 'string' } } }, 'Revoked.'), 401: E401, 404: E404, 409: E409, 503: E503 } },
    },
    '/admin/consumers/{id}/keys/{keyId}/rotate': {
      post: {
        tags: ['consumers'], operationId: 'rotateKey', summary: 'A new key in place of `keyId`; the old one is revoked at once, or works until `grace` ends.', parameters: [consumerParam, keyParam],
        requestBody: body({ type: 'object', additionalProperties: false, properties: { grace: { type: 'string', description: 'Duration up to 30d, e.g. `10m`.' } } }, false),
        responses: { 201: json(ref('NewKey'), 'The new key.'), 400: E400, 401: E401, 404: E404, 409: E409, 503: E503 },
      },
    },
  },
  components: {
    securitySchemes: { adminToken: { type: 'http', scheme: 'bearer', description: '`admin.token` from the config.' } },
    schemas,
  },
} as const;

/** `GET /openapi.json`: serialized once. */
export function openApiHandler(): AdminHandler {
  let text: string | undefined;
  return (_req, res) => {
    text ??= JSON.stringify(ADMIN_OPENAPI, null, 2);
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
    res.end(text);
  };
}
