import { z } from 'zod';
import { obj, size, positiveInt, duration, listenAddress } from './zod-helpers.ts';
import { timeoutSchema, upstreamSchema, type Timeouts, type UpstreamConfig } from '../upstreams/schema.ts';
import { authModeSchema, authSectionSchema, consumerSchema, type AuthMode } from '../auth/schema.ts';
import { captchaSchema } from '../captcha/schema.ts';
import { stateSchema } from '../state/schema.ts';
import { corsSchema, corsRouteKeys } from '../policies/cors.ts';
import { securityHeadersSchema, securityHeadersRouteKeys } from '../policies/security-headers.ts';
import { contentTypeRouteKeys } from '../policies/content-type.ts';
import { authRouteKeys } from '../policies/auth.ts';
import { captchaRouteKeys } from '../policies/captcha.ts';
import { forwardAuthRouteKeys } from '../policies/forward-auth.ts';
import { routeToggleRouteKeys } from '../policies/route-toggle.ts';
import { bindRouteKeys } from '../policies/claim-binding.ts';
import { transformRouteKeys } from '../policies/request-transform.ts';
import { validateRouteKeys, type ValidateConfig } from '../policies/request-validation.ts';
import { headerRulesRouteKeys } from '../policies/header-rules.ts';
import { rateLimitRule, rateLimitRouteKeys } from '../policies/rate-limit.ts';
import { planQuotaSchema, quotaRouteKeys } from '../policies/quota.ts';
import { compressionRouteKeys } from '../policies/compression.ts';
import { tlsSchema, http2Schema } from '../server/listener-schema.ts';
import { modelsRouteKeys } from '../policies/models.ts';
import { concurrencyRouteKeys, concurrencyRule } from '../policies/concurrency.ts';
import { cacheRouteKeys } from '../policies/response-cache.ts';
import { promptGuardRouteKeys } from '../policies/prompt-guard.ts';
import { pricingSchema } from '../metering/pricing.ts';
import { DEFAULT_STRIP_HEADERS } from '../proxy/strip-headers.ts';

/**
 * The configuration contract (see docs/configuration.md), composed here from the parts that own them: each
 * policy exports its route keys (src/policies/*.ts), each area its section (upstreams, auth, captcha, state).
 * This file is the single source of the whole: validation, defaults, types and the JSON Schema
 * (`gatehouse schema`). Nothing it imports may import it back.
 */

const environment = z.enum(['development', 'staging', 'production']);

// ---- routes -------------------------------------------------------------------
const valueCondition = z.union([
  z.string().transform((equals) => ({ equals }) as { equals?: string; in?: string[]; prefix?: string; present?: boolean }),
  obj({
    equals: z.string().optional().describe('The value must be exactly this.'),
    in: z.array(z.string()).optional().describe('The value must be one of these.'),
    prefix: z.string().optional().describe('The value must start with this.'),
    present: z.boolean().optional().describe('true: the header/parameter must be there (any value); false: it must be absent.'),
  }),
]).describe('A string (the value must equal it) or { equals | in | prefix | present }.');
const checkProbe = obj({
  method: z.string().toUpperCase().pipe(z.enum(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'])).prefault('GET').describe('HTTP method of the probe. A non-idempotent method (POST, PATCH) is sent only because the route declares it here.'),
  path: z.string().startsWith('/', 'paths start with "/"').describe('Request path of the probe (with query string if any), as a client would send it to the gateway.'),
  headers: z.record(z.string(), z.string()).optional().describe('Request headers of the probe (e.g. a test API key as `${CHECK_API_KEY}`).'),
  body: z.string().optional().describe('Request body of the probe, sent as it is (set content-type in `headers`).'),
  expect: z.array(z.number().int().min(100).max(599)).min(1).optional().describe('Statuses that count as healthy; default: any status below 500 (through the gateway, its own 404 not_found fails: the route is missing there).'),
}).describe('The request `gatehouse check --live` sends for this route instead of its default safe probe (GET, OPTIONS or a WebSocket handshake); it must be a method and path the route serves.');
export const routeSchema = obj({
  name: z.string().regex(/^[A-Za-z0-9_.:-]+$/, 'use letters, digits, "-", "_", "." or ":"').optional().describe('Name used in logs, metrics and `gatehouse routes`; default `METHODS path`.'),
  match: obj({
    path: z.string().startsWith('/', 'paths start with "/"').optional().describe('Path to match, find-my-way syntax: static, `:param`, `*` wildcard.'),
    paths: z.array(z.string().startsWith('/', 'paths start with "/"')).min(1).optional().describe('Several paths served by the same route.'),
    prefix: z.boolean().prefault(false).describe('Also match everything under the path (`/v1/chat` and `/v1/chat/...`).'),
    methods: z.array(z.string().toUpperCase().pipe(z.enum(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']))).min(1).optional().describe('Methods the route serves (default: all; GET implies HEAD); another method on the path gets 405 with Allow.'),
    headers: z.record(z.string(), valueCondition).optional().describe('Request header conditions: header name → condition. Routes with conditions are tried before the plain route on the same path.'),
    query: z.record(z.string(), valueCondition).optional().describe('Query parameter conditions: name → condition.'),
    body: obj({
      field: z.string().describe('JSON dot path or form field of the request body.'),
      equals: z.string().optional().describe('The field must be exactly this.'),
      in: z.array(z.string()).optional().describe('The field must be one of these.'),
      prefix: z.string().optional().describe('The field must start with this.'),
    }).optional().describe('A condition on a body field, read from the first `server.limits.bodyPeek` bytes (docs/content-routing.md).'),
  }).describe('Which requests this route serves.'),
  /** Optional on a route with `models:` (its candidates name their upstreams). */
  upstream: z.string().optional().describe('Name of the upstream (a key of `upstreams`) requests are forwarded to; optional on a route with `models:`.'),
  timeout: timeoutSchema.optional().describe('Overrides the upstream\'s response and idle timeouts on this route: a duration or { response, idle } (connect belongs to the upstream).'),
  rewrite: obj({
    stripPrefix: z.string().optional().describe('Remove this prefix from the path before forwarding.'),
    addPrefix: z.string().optional().describe('Prepend this to the path before forwarding.'),
    path: z.string().optional().describe('Replace the whole path; `:name` and `*` are filled from the match (re-encoded).'),
  }).optional().describe('How the matched path is changed before it is forwarded.'),
  websocket: z.boolean().prefault(false).describe('Tunnel WebSocket upgrades on this route.'),
  preserveHost: z.boolean().prefault(false).describe('Send the client\'s Host header upstream instead of the target\'s.'),
  limits: obj({ maxBodySize: size.optional().describe('Request body limit of this route (413 past it); default `server.limits.maxBodySize`.') }).optional().describe('Per-route limits.'),
  check: checkProbe.optional(),
  // in the order a request meets them (src/policies/index.ts)
  ...corsRouteKeys,
  ...securityHeadersRouteKeys,
  ...contentTypeRouteKeys,
  ...authRouteKeys,
  ...forwardAuthRouteKeys,
  ...captchaRouteKeys,
  // request rules
  ...routeToggleRouteKeys,
  ...bindRouteKeys,
  ...transformRouteKeys,
  ...validateRouteKeys,
  ...promptGuardRouteKeys,
  ...modelsRouteKeys,
  ...headerRulesRouteKeys,
  ...rateLimitRouteKeys,
  ...concurrencyRouteKeys,
  ...quotaRouteKeys,
  ...compressionRouteKeys,
  ...cacheRouteKeys,
});

export const planSchema = obj({
  rateLimit: z.array(rateLimitRule).prefault([]).describe('Rate-limit rules for every consumer on the plan, on every route (docs/traffic-control.md).'),
  quota: planQuotaSchema.optional(),
  concurrency: concurrencyRule.optional().describe('Requests in flight per consumer on the plan, across its routes (docs/ai-traffic.md).'),
}).describe('A plan: limits shared by the consumers on it.');

// ---- the whole file ------------------------------------------------------------
export const configSchema = obj({
  server: obj({
    listen: listenAddress.prefault('0.0.0.0:8000').describe('Address of the main listener: `host:port`, `[::]:port`, or a bare port.'),
    environment: environment.prefault('development').describe('`development` (pretty logs, warnings), `staging`, or `production` (JSON logs, strict secret checks).'),
    trustedProxies: z.array(z.string()).prefault([]).describe('Addresses or CIDRs (IPv4 and IPv6) whose X-Forwarded-* headers are believed; from anyone else every X-Forwarded-* is dropped (the gateway rebuilds -For, -Proto and -Host).'),
    stripHeaders: z.array(z.string().regex(/^[!#$%&'+.^_`|~0-9A-Za-z-]+\*?$/, 'a header name, or a prefix ending in "*" (x-internal-*)'))
      .prefault([...DEFAULT_STRIP_HEADERS])
      .describe('Inbound request headers removed before any upstream sees them: names and "prefix-*" patterns, compared ignoring case and treating "_" and "." as "-". Setting it replaces the default list; the identity headers the gateway sets are always removed.'),
    limits: obj({
      maxBodySize: size.prefault('10mb').describe('Request body limit (413), by Content-Length and while streaming; routes may override it.'),
      maxHeaderSize: size.prefault('16kb').describe('Larger request headers get 431 (also the HTTP/2 header list limit).'),
      headersTimeout: duration.prefault('10s').describe('The whole request head must arrive within this (slowloris).'),
      requestTimeout: duration.prefault('300s').describe('The whole request (head and body) must arrive within this; `0s` disables it for huge uploads. Over HTTP/2 a request body not complete in time gets its stream cancelled.'),
      keepAliveTimeout: duration.prefault('5s').describe('Idle keep-alive connections are closed after this.'),
      maxConnections: positiveInt.optional().describe('Refuse connections past this many (default: no limit).'),
      maxHeaderCount: positiveInt.prefault(100).describe('Header fields a request may carry; more get 431 and the connection closes (never dropped silently). HTTP/2 pseudo-headers do not count; past twice this many an HTTP/2 stream is refused.'),
      bodyPeek: size.prefault('64kb').describe('How much of a request body is read to evaluate `match.body`, find a captcha token, read max_tokens, or apply request rules (the largest JSON/form body `transform`, `bind` or `validate` accept); then replayed upstream.'),
    }).prefault({}).describe('Limits on client requests.'),
    cors: corsSchema.optional().describe('Server-wide CORS; a route\'s `cors` replaces it (docs/edge-security.md).'),
    health: obj({ paths: z.array(z.string().startsWith('/', 'paths start with "/"')).prefault([]).describe('More paths answered exactly like `/healthz` (e.g. `[/health]`); a route may not serve GET on them (restart to change).') }).prefault({}).describe('Aliases of the built-in `/healthz`, answered before routing.'),
    info: obj({
      enabled: z.boolean().prefault(false).describe('`GET /` answers `{ name, version, environment, links }` (restart to change).'),
      name: z.string().prefault('gatehouse').describe('The `name` on the info page.'),
      links: z.record(z.string(), z.string()).prefault({}).describe('Extra links shown on the info page: name → URL or path.'),
    }).prefault({}).describe('The built-in information page at `GET /` (off unless enabled).'),
    securityHeaders: securityHeadersSchema.prefault('default').describe('Security headers added to responses: `default`, `off`, or { header: value } (adjusts the default set).'),
    shutdownGrace: duration.prefault('30s').describe('How long in-flight requests and streams get to finish on SIGTERM.'),
    tls: tlsSchema.optional().describe('TLS on the main listener: certificates chosen by SNI, optional client certificates (read at start; files re-read when they change).'),
    http2: http2Schema.prefault({}).describe('HTTP/2 on the main listener (read at start).'),
  }).prefault({}).describe('The main (public) listener.'),
  admin: obj({
    listen: listenAddress.prefault('127.0.0.1:9901').describe('Address of the admin listener (metrics, health, admin API); loopback by default.'),
    token: z.string().prefault('').describe('When set, `/metrics` and `/admin/*` need `Authorization: Bearer <token>`; required when `listen` is not on loopback. Use `${VAR}`.'),
    enabled: z.boolean().prefault(true).describe('Open the admin listener.'),
  }).prefault({}).describe('The admin listener.'),
  observability: obj({
    log: obj({
      level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).prefault('info').describe('Log level.'),
      format: z.enum(['json', 'pretty']).optional().describe('Log format; default pretty in development, JSON otherwise.'),
      accessLog: z.boolean().prefault(true).describe('One log line per request.'),
    }).prefault({}).describe('Logging.'),
    metrics: obj({
      enabled: z.boolean().prefault(true).describe('Serve Prometheus metrics at `/metrics` on the admin listener.'),
      consumerLabels: z.boolean().prefault(false).describe('Add a `consumer` label to token counters (unbounded cardinality: one series per consumer).'),
      models: z.array(z.string()).optional().describe('Model names the `model` label of token metrics may take (others are `other`); default: the models the config names.'),
    }).prefault({}).describe('Prometheus metrics.'),
    tracing: obj({
      endpoint: z.url({ protocol: /^https?$/ }).describe('OTLP/HTTP traces endpoint of the collector (JSON encoding), e.g. http://otel-collector:4318/v1/traces. Tracing is on when this section is present.'),
      sampleRatio: z.number().min(0).max(1).prefault(1).describe('Share of new traces recorded (0..1). A request that carries a traceparent follows its caller\'s sampled flag (parent-based).'),
      headers: z.record(z.string(), z.string()).prefault({}).describe('Headers sent with every export (e.g. an Authorization for the collector); treated as secrets: use ${VAR}, never logged.'),
      serviceName: z.string().min(1).prefault('gatehouse').describe('The service.name resource attribute of every span.'),
      maxQueueSize: z.number().int().min(1).max(1_000_000).prefault(2048).describe('Spans waiting for export at most; past it spans are dropped and counted (gatehouse_tracing_spans_dropped_total), so a down collector never grows memory.'),
    }).optional().describe('OpenTelemetry tracing over OTLP/HTTP (docs/observability.md). Read at start: a reload that changes it takes effect at the next restart.'),
  }).prefault({}).describe('Logs and metrics.'),
  state: stateSchema.prefault({}).describe('The store for rate limits, quotas, usage, leases, cooldowns, the response cache and runtime consumers.'),
  auth: authSectionSchema.prefault({}).describe('Identity: JWT providers, API-key settings, the verified-token cache (docs/authentication.md).'),
  consumers: z.array(consumerSchema).prefault([]).describe('Consumers known from the file (more can be added through the admin API).'),
  plans: z.record(z.string(), planSchema).prefault({}).describe('Plans by name: rate limits, quotas and concurrency of the consumers on them.'),
  captcha: z.record(z.string(), captchaSchema).prefault({}).describe('Captcha verifiers by name; a route names one with `captcha: <name>` (docs/edge-security.md).'),
  pricing: pricingSchema.optional().describe('Prices per model, for `quota.usage: cost` budgets (docs/ai-traffic.md).'),
  upstreams: z.record(z.string(), upstreamSchema).describe('Upstreams by name: the services routes forward to (docs/upstreams.md).'),
  defaults: obj({
    auth: authModeSchema.optional().describe('The auth of routes that do not say: public, jwt, apikey, any or forward.'),
    timeout: timeoutSchema.optional().describe('The timeout of upstreams that do not say (a duration or { connect, response, idle }).'),
    plan: z.string().optional().describe('The plan of identities without one.'),
  }).prefault({}).describe('Defaults for routes, upstreams and identities.'),
  routes: z.array(routeSchema).min(1, 'a gateway needs at least one route').describe('The routes, in file order (docs/configuration.md "routes").'),
});

/** The config as the schema parses it, before the normalize pass (src/config/normalize.ts). */
export type ParsedConfig = z.output<typeof configSchema>;
export type ParsedRoute = ParsedConfig['routes'][number];

/**
 * A route after the normalize pass: its unique name, its auth mode, timeouts and body limit resolved once, so
 * nothing downstream resolves a default again.
 */
export type RouteConfig = Omit<ParsedRoute, 'name' | 'auth' | 'timeout' | 'enabled' | 'validate' | 'upstream'> & {
  /** The declared upstream, or (a `models:` route) the first candidate's. */
  upstream: string;
  /** The declared name, or `METHODS path` (with `#index` when that repeats). */
  name: string;
  /** Position in the file: issues and compiled routes refer to it. */
  index: number;
  auth: AuthMode;
  /** The upstream's timeouts with the route's own `timeout` over them. */
  timeouts: Timeouts;
  maxBodySize: number;
  /** `enabled:` resolved (true unless the route says false). */
  enabled: boolean;
  /** `validate.openapi` resolved against the config file's directory (`file`). */
  validate?: ValidateConfig;
};

/** The config every part of the gateway reads: parsed, then normalized. */
export type Config = Omit<ParsedConfig, 'routes' | 'upstreams'> & {
  routes: RouteConfig[];
  upstreams: Record<string, UpstreamConfig>;
};

export type { UpstreamConfig };
export type { CorsConfig } from '../policies/cors.ts';
export type { RateLimitRule } from '../policies/rate-limit.ts';
