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
  obj({ equals: z.string().optional(), in: z.array(z.string()).optional(), prefix: z.string().optional(), present: z.boolean().optional() }),
]);
export const routeSchema = obj({
  name: z.string().regex(/^[A-Za-z0-9_.:-]+$/, 'use letters, digits, "-", "_", "." or ":"').optional(),
  match: obj({
    path: z.string().startsWith('/', 'paths start with "/"').optional(),
    paths: z.array(z.string().startsWith('/', 'paths start with "/"')).min(1).optional(),
    prefix: z.boolean().prefault(false),
    methods: z.array(z.string().toUpperCase().pipe(z.enum(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']))).min(1).optional(),
    headers: z.record(z.string(), valueCondition).optional(),
    query: z.record(z.string(), valueCondition).optional(),
    body: obj({ field: z.string(), equals: z.string().optional(), in: z.array(z.string()).optional(), prefix: z.string().optional() }).optional(),
  }),
  /** Optional on a route with `models:` (its candidates name their upstreams). */
  upstream: z.string().optional(),
  timeout: timeoutSchema.optional(),
  rewrite: obj({ stripPrefix: z.string().optional(), addPrefix: z.string().optional(), path: z.string().optional() }).optional(),
  websocket: z.boolean().prefault(false),
  preserveHost: z.boolean().prefault(false),
  limits: obj({ maxBodySize: size.optional() }).optional(),
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
  rateLimit: z.array(rateLimitRule).prefault([]),
  quota: planQuotaSchema.optional(),
  /** Requests in flight per consumer on the plan, across its routes (src/policies/concurrency.ts). */
  concurrency: concurrencyRule.optional(),
});

// ---- the whole file ------------------------------------------------------------
export const configSchema = obj({
  server: obj({
    listen: listenAddress.prefault('0.0.0.0:8000'),
    environment: environment.prefault('development'),
    trustedProxies: z.array(z.string()).prefault([]),
    limits: obj({
      maxBodySize: size.prefault('10mb'),
      maxHeaderSize: size.prefault('16kb'),
      headersTimeout: duration.prefault('10s'),
      requestTimeout: duration.prefault('300s'),
      keepAliveTimeout: duration.prefault('5s'),
      maxConnections: positiveInt.optional(),
      /** Bytes of a request body read to evaluate `match.body` conditions (then replayed to the upstream). */
      bodyPeek: size.prefault('64kb'),
    }).prefault({}),
    cors: corsSchema.optional(),
    /** Aliases of the built-in `/healthz` (seed 000's `GET /health`): answered before routing, like it. */
    health: obj({ paths: z.array(z.string().startsWith('/', 'paths start with "/"')).prefault([]) }).prefault({}),
    /** The built-in information page at `GET /` (seed 004): off unless enabled. */
    info: obj({
      enabled: z.boolean().prefault(false),
      name: z.string().prefault('gatehouse'),
      /** Extra links shown on the page (docs, status page, ...): name → URL or path. */
      links: z.record(z.string(), z.string()).prefault({}),
    }).prefault({}),
    securityHeaders: securityHeadersSchema.prefault('default'),
    shutdownGrace: duration.prefault('30s'),
    /** TLS on the main listener (certificates by SNI, optional client certificates); src/server/tls.ts. */
    tls: tlsSchema.optional(),
    http2: http2Schema.prefault({}),
  }).prefault({}),
  admin: obj({
    listen: listenAddress.prefault('127.0.0.1:9901'),
    token: z.string().prefault(''),
    enabled: z.boolean().prefault(true),
  }).prefault({}),
  observability: obj({
    log: obj({ level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).prefault('info'), format: z.enum(['json', 'pretty']).optional(), accessLog: z.boolean().prefault(true) }).prefault({}),
    metrics: obj({
      enabled: z.boolean().prefault(true),
      /** Add a `consumer` label to token counters (unbounded cardinality: one series per consumer). */
      consumerLabels: z.boolean().prefault(false),
      /** Model names the `model` label of token metrics may take (others are "other"); default: the models the config names. */
      models: z.array(z.string()).optional(),
    }).prefault({}),
    tracing: obj({
      endpoint: z.url({ protocol: /^https?$/ }).describe('OTLP/HTTP traces endpoint of the collector (JSON encoding), e.g. http://otel-collector:4318/v1/traces. Tracing is on when this section is present.'),
      sampleRatio: z.number().min(0).max(1).prefault(1).describe('Share of new traces recorded (0..1). A request that carries a traceparent follows its caller\'s sampled flag (parent-based).'),
      headers: z.record(z.string(), z.string()).prefault({}).describe('Headers sent with every export (e.g. an Authorization for the collector); treated as secrets: use ${VAR}, never logged.'),
      serviceName: z.string().min(1).prefault('gatehouse').describe('The service.name resource attribute of every span.'),
      maxQueueSize: z.number().int().min(1).max(1_000_000).prefault(2048).describe('Spans waiting for export at most; past it spans are dropped and counted (gatehouse_tracing_spans_dropped_total), so a down collector never grows memory.'),
    }).optional().describe('OpenTelemetry tracing over OTLP/HTTP (docs/observability.md). Read at start: a reload that changes it takes effect at the next restart.'),
  }).prefault({}),
  state: stateSchema.prefault({}),
  auth: authSectionSchema.prefault({}),
  consumers: z.array(consumerSchema).prefault([]),
  plans: z.record(z.string(), planSchema).prefault({}),
  captcha: z.record(z.string(), captchaSchema).prefault({}),
  /** Prices per model, for `quota.usage: cost` budgets (docs/ai-traffic.md). */
  pricing: pricingSchema.optional(),
  upstreams: z.record(z.string(), upstreamSchema),
  defaults: obj({ auth: authModeSchema.optional(), timeout: timeoutSchema.optional(), plan: z.string().optional() }).prefault({}),
  routes: z.array(routeSchema).min(1, 'a gateway needs at least one route'),
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
