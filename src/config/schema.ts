import { z } from 'zod';
import { obj, duration, size, positiveInt, listenAddress, explainUnion } from './zod-helpers.ts';

/**
 * The configuration contract (see docs/configuration.md). This file is the single
 * source of truth: types, validation, defaults and the JSON Schema (`gatehouse schema`).
 */

const environment = z.enum(['development', 'staging', 'production']);
const authMode = z.enum(['public', 'jwt', 'apikey', 'any']);

// ---- browser-facing edge -------------------------------------------------
export const corsSchema = obj({
  origins: z.array(z.string()).prefault([]),
  credentials: z.boolean().prefault(false),
  methods: z.array(z.string()).prefault(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE']),
  headers: z.array(z.string()).prefault(['authorization', 'content-type', 'x-api-key', 'x-request-id']),
  exposeHeaders: z.array(z.string()).prefault(['x-request-id', 'ratelimit', 'ratelimit-policy', 'retry-after']),
  maxAge: duration.prefault('10m'),
});
export const securityHeadersSchema = z.union([z.enum(['default', 'off']), z.record(z.string(), z.string())]);

// ---- timeouts --------------------------------------------------------------
/** One duration (the response timeout) or each phase separately. */
export const timeoutSchema = z.union([
  duration.transform((response) => ({ response })),
  obj({ connect: duration.optional(), response: duration.optional(), idle: duration.optional() }),
], { error: explainUnion('expected a duration ("30s") or { connect, response, idle }') });
export type TimeoutInput = { connect?: number; response?: number; idle?: number };

// ---- traffic control --------------------------------------------------------
export const rateLimitRule = obj({
  limit: positiveInt,
  window: duration,
  by: z.string().regex(/^(consumer|ip|route|header:[A-Za-z0-9-]+)$/, 'use consumer, ip, route or header:<name>').optional(),
  unit: z.enum(['requests', 'tokens']).prefault('requests'),
  cost: positiveInt.prefault(1),
  /** When the state store cannot answer: allow (open) or refuse with 503 (closed); default `state.redis.onError`. */
  onError: z.enum(['open', 'closed']).optional(),
});
const quotaLimit = obj({ limit: positiveInt, period: z.enum(['day', 'month']) });
/** A bytes quota reads like the sizes elsewhere: `limit: 10gb`. */
const bytesQuotaLimit = obj({ limit: size.refine((n) => n > 0, 'a quota limit must be positive'), period: z.enum(['day', 'month']) });
export const planSchema = obj({
  rateLimit: z.array(rateLimitRule).prefault([]),
  quota: obj({ requests: quotaLimit.optional(), tokens: quotaLimit.optional(), bytes: bytesQuotaLimit.optional() }).optional(),
});

// ---- identity ---------------------------------------------------------------
export const jwtProviderSchema = obj({
  name: z.string().min(1),
  issuer: z.string().optional(),
  audiences: z.array(z.string()).prefault([]),
  jwksUri: z.string().url().optional(),
  secret: z.string().optional(),
  publicKey: z.string().optional(),
  algorithms: z.array(z.enum(['HS256', 'HS384', 'HS512', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'])).min(1).optional(),
  clockSkew: duration.prefault('30s'),
  claimsToHeaders: z.record(z.string(), z.string()).prefault({}),
  queryParam: z.string().optional(),
  /** Claim whose value becomes the identity's plan (when it names a configured plan). */
  planClaim: z.string().prefault('plan'),
  jwksCache: obj({
    cooldown: duration.prefault('30s'),
    minTtl: duration.prefault('5m'),
    maxTtl: duration.prefault('24h'),
    timeout: duration.prefault('5s'),
  }).prefault({}),
});
const claimValue = z.union([z.string(), z.number(), z.boolean()]);
export const authorizeSchema = obj({
  consumers: z.array(z.string()).min(1).optional(),
  plans: z.array(z.string()).min(1).optional(),
  claims: z.record(z.string(), z.union([claimValue, z.array(claimValue).min(1)])).optional(),
});
export const captchaSchema = obj({
  provider: z.enum(['recaptcha-v2', 'recaptcha-v3', 'hcaptcha', 'turnstile']),
  secret: z.string(),
  minScore: z.number().min(0).max(1).prefault(0.5),
  action: z.string().optional(),
  hostnames: z.array(z.string()).optional(),
  tokenField: z.string().optional(),
  tokenHeader: z.string().optional(),
  verifyUrl: z.string().url().optional(),
  timeout: duration.prefault('5s'),
});

// ---- upstreams ----------------------------------------------------------------
export const targetSchema = obj({ url: z.string().url(), weight: z.number().int().min(0).prefault(100) });
export const upstreamSchema = obj({
  targets: z.array(z.union([z.string().url().transform((url) => ({ url, weight: 100 })), targetSchema], { error: explainUnion('expected a URL or { url, weight }') })).min(1),
  balance: z.enum(['round-robin', 'least-request', 'weighted']).prefault('round-robin'),
  timeout: timeoutSchema.optional(),
  pool: obj({ connections: positiveInt.prefault(128), keepAlive: duration.prefault('60s') }).prefault({}),
  health: obj({
    path: z.string().prefault('/health'),
    interval: duration.prefault('30s'),
    timeout: duration.prefault('2s'),
    healthyThreshold: positiveInt.prefault(1),
    unhealthyThreshold: positiveInt.prefault(2),
    expectStatus: z.array(z.number().int()).optional(),
  }).optional(),
  circuitBreaker: obj({
    failures: positiveInt.prefault(5),
    failureRatio: z.number().gt(0).max(1).optional(),
    minRequests: positiveInt.prefault(20),
    resetAfter: duration.prefault('60s'),
    halfOpenRequests: positiveInt.prefault(1),
  }).optional(),
  /** Passive health: targets that keep failing in real traffic are ejected for a growing interval (docs/upstreams.md). */
  passiveHealth: obj({
    failures: positiveInt.prefault(5),
    failureRatio: z.number().gt(0).max(1).optional(),
    minRequests: positiveInt.prefault(20),
    ejectFor: duration.prefault('1s'),
    maxEjectFor: duration.prefault('30s'),
  }).optional(),
  retry: obj({
    attempts: z.number().int().min(0).prefault(2),
    budget: z.string().regex(/^\d+(\.\d+)?%$/, 'a percentage, e.g. "20%"').prefault('20%'),
    backoff: duration.prefault('25ms'),
    /** Retries allowed per 10 s window even when the budget's percentage of traffic is smaller. */
    minRetries: z.number().int().min(0).prefault(10),
    /** Upstream statuses retried on another target (idempotent, bodyless requests only). */
    retryOn: z.array(z.number().int().min(500).max(599)).prefault([502, 503, 504]),
  }).optional(),
  fallback: z.string().optional(),
  degraded: obj({ message: z.string(), status: z.number().int().min(400).max(599).prefault(503) }).optional(),
  critical: z.boolean().prefault(true),
});

// ---- routes -------------------------------------------------------------------
const valueCondition = z.union([
  z.string().transform((equals) => ({ equals })),
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
  upstream: z.string(),
  auth: authMode.optional(),
  authorize: authorizeSchema.optional(),
  timeout: timeoutSchema.optional(),
  rewrite: obj({ stripPrefix: z.string().optional(), addPrefix: z.string().optional(), path: z.string().optional() }).optional(),
  websocket: z.boolean().prefault(false),
  preserveHost: z.boolean().prefault(false),
  limits: obj({ maxBodySize: size.optional() }).optional(),
  contentTypes: z.array(z.string()).optional(),
  cors: z.union([z.literal(false), corsSchema]).optional(),
  securityHeaders: securityHeadersSchema.optional(),
  captcha: z.string().optional(),
  rateLimit: z.array(rateLimitRule).optional(),
  quota: obj({
    usage: z.enum(['requests', 'tokens', 'bytes']).prefault('requests'),
    /** Tokens reserved per request when the body names no max_tokens (see docs/traffic-control.md). */
    reserve: positiveInt.prefault(1000),
    onError: z.enum(['open', 'closed']).optional(),
  }).optional(),
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
    securityHeaders: securityHeadersSchema.prefault('default'),
    shutdownGrace: duration.prefault('30s'),
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
    }).prefault({}),
  }).prefault({}),
  state: obj({
    store: z.enum(['memory', 'redis']).prefault('memory'),
    redis: obj({ url: z.string().prefault('redis://127.0.0.1:6379'), keyPrefix: z.string().prefault('gh:'), timeout: duration.prefault('50ms'), onError: z.enum(['open', 'closed']).prefault('open') }).optional(),
  }).prefault({}),
  auth: obj({
    jwt: z.array(jwtProviderSchema).prefault([]),
    apiKeys: obj({ header: z.string().prefault('x-api-key'), hideCredentials: z.boolean().prefault(true) }).prefault({}),
    /** Verified JWTs kept so a token's signature is checked once, not per request (see docs/authentication.md). */
    tokenCache: obj({ ttl: duration.prefault('30s'), maxEntries: z.number().int().min(0).prefault(10000) }).prefault({}),
  }).prefault({}),
  consumers: z.array(obj({ id: z.string().min(1), plan: z.string().optional(), keys: z.array(z.string().regex(/^sha256:[0-9a-f]{64}$/, 'keys are stored as hashes: run `gatehouse hash-key` and paste its sha256:… output')).prefault([]) })).prefault([]),
  plans: z.record(z.string(), planSchema).prefault({}),
  captcha: z.record(z.string(), captchaSchema).prefault({}),
  upstreams: z.record(z.string(), upstreamSchema),
  defaults: obj({ auth: authMode.optional(), timeout: timeoutSchema.optional(), plan: z.string().optional() }).prefault({}),
  routes: z.array(routeSchema).min(1, 'a gateway needs at least one route'),
});

export type Config = z.output<typeof configSchema>;
export type RouteConfig = Config['routes'][number];
export type UpstreamConfig = Config['upstreams'][string];
export type CorsConfig = z.output<typeof corsSchema>;
export type RateLimitRule = z.output<typeof rateLimitRule>;
