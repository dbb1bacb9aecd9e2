import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import type { Target, Upstream } from '../upstreams/upstream.ts';
import type { Timeouts } from '../upstreams/schema.ts';

/**
 * The kernel types every layer may import: the request context, a pipeline step, a compiled route. They refer
 * to each other (a route holds steps over a context that holds the route), so they live in one leaf module.
 */

/**
 * A step of a route's pipeline. Returns nothing when it is done synchronously, a promise when it
 * must wait (JWKS, Redis, captcha). It rejects a request by throwing (or rejecting with) a GatewayError.
 */
export type Step = (ctx: RequestContext) => void | Promise<void>;

/** A compiled header/query condition: a plain function over already-parsed inputs. */
export type Condition = (headers: IncomingHttpHeaders, query: URLSearchParams | null) => boolean;

/** A route's `rewrite` as one function over the matched (normalized) path. */
export type Rewrite = (path: string, params: Record<string, string | undefined>) => string;

/** Everything a request on this route needs, built once at config load and frozen. */
export interface CompiledRoute {
  readonly name: string;
  readonly index: number;
  readonly methods: readonly string[];
  /** find-my-way paths (a prefix route is `/p` and `/p/*`). */
  readonly paths: readonly string[];
  readonly conditions: readonly Condition[];
  /** The conditions as a person reads them (`gatehouse routes`). */
  readonly conditionText: readonly string[];
  readonly upstream: Upstream;
  readonly timeouts: Timeouts;
  readonly rewrite: Rewrite | null;
  /** The rewrite as a person reads it: `→ /new`, `-/v1 +/api`, or `-`. */
  readonly rewriteText: string;
  /** The paths as declared (`/p/**` for a prefix route). */
  readonly pathText: string;
  readonly steps: readonly Step[];
  readonly policies: readonly string[];
  readonly websocket: boolean;
  readonly preserveHost: boolean;
  readonly maxBodySize: number;
  readonly auth: string;
  /** False for a route turned off with `enabled:` (it answers 404 or its `whenDisabled` status itself). */
  readonly enabled: boolean;
  /** Condition on a request-body field (content-based routing), evaluated on a bounded peek. */
  readonly bodyCondition: { field: string; test: (v: string | undefined) => boolean } | null;
}

/** Who the request is, once an auth policy has decided. */
export interface Identity {
  kind: 'jwt' | 'apikey' | 'forward';
  /** Subject (JWT `sub`) or consumer id. */
  id: string;
  consumer?: string;
  plan?: string;
  claims?: Record<string, unknown>;
  /** Epoch ms at which a WebSocket this identity opened is closed (a JWT's `exp`, when its provider says so). */
  expiresAt?: number;
}

/** Observes the upstream response as it streams (usage metering). Never buffers on the proxy's behalf. */
export interface ResponseTap {
  /** `headers`: the response head as the client gets it (flat [name, value, ...]). */
  onHeaders?(status: number, contentType: string | undefined, headers: readonly string[]): void;
  onData?(chunk: Buffer): void;
  /** ok: the response completed; otherwise it failed or the client went away. */
  onEnd(ok: boolean, status: number): void;
}

/** The body stream a compressor puts between the upstream and the client (a node:zlib stream; one made for an event stream flushes every write). */
export interface BodyEncoder {
  write(chunk: Buffer): boolean;
  end(): void;
  destroy(): void;
  on(event: 'data', fn: (chunk: Buffer) => void): this;
  on(event: 'end' | 'drain', fn: () => void): this;
  on(event: 'error', fn: (err: Error) => void): this;
  once(event: 'drain', fn: () => void): this;
  pause(): this;
  resume(): this;
}

/** Compresses a response as it streams (the compression policy sets one per request on routes that use it). */
export interface ResponseCompressor {
  /**
   * Decides from the upstream response head. Adjusts `headers` (flat [name, value, ...]) in place (Vary,
   * Content-Encoding, Content-Length) and returns the encoder the body goes through, or null to pass it as it is.
   */
  begin(status: number, headers: string[], contentType: string | undefined): BodyEncoder | null;
}

/**
 * The body the proxy sends instead of the client's (see src/pipeline/body-rewrite.ts for the contract).
 * `open()` is called once, when the proxy dispatches, after every step has run.
 */
export interface ForwardBody {
  open(): { body: Buffer | Readable; length: number };
}

/** One attempt of a model-routed request (the access log lists them; metrics count them). */
export interface ModelAttempt {
  upstream: string;
  model: string;
  /** ok, http_4xx, http_429, http_5xx, connect, timeout, cooling, busy, unavailable, client_gone. */
  result: string;
  /** Upstream status when one answered; 0 otherwise. */
  status: number;
  ms: number;
}

/** What model routing decided for a request: read by metering (price, labels), the access log and the cache. */
export interface ModelExchange {
  /** The model the client named. */
  readonly requested: string;
  /** The upstream and model of the current (finally: the answering) attempt. */
  upstream: string;
  model: string;
  /** The metric label of `model` (the config's allowlist, else "other"). */
  label: string;
  /** Models any attempt may forward to: a cost reservation takes the most expensive. */
  readonly candidates: readonly string[];
  readonly attempts: ModelAttempt[];
}

/**
 * Decides where each attempt of a request goes when a policy planned it (model routing with failover). The proxy
 * asks it for the first target instead of the route's upstream and, when an attempt fails before any byte reached
 * the client, whether another candidate takes over (src/policies/model-attempts.ts).
 */
export interface AttemptPlan {
  /** Sends the first attempt (`send`, now or after a store call) or refuses (`fail`). */
  start(send: (t: Target) => void, fail: (err: unknown) => void): void;
  /**
   * The attempt on `t` failed before any response byte went to the client: it answered `status` (raw undici
   * headers in `raw`) or failed with `err` (status 0; `sent`: the request was being written). True when the next
   * candidate will take the request (`next` follows); false leaves this failure to the client.
   */
  shouldFailover(t: Target, status: number, raw: ReadonlyArray<Buffer | string> | null, err: Error | null, sent: boolean): boolean;
  next(send: (t: Target) => void, fail: (err: unknown) => void): void;
  /** The attempt on `t` ended (answered, failed or failed over): releases its lease, records it. */
  ended(t: Target, status: number, err: unknown, failedOver: boolean): void;
}

/**
 * A request's OpenTelemetry spans when tracing is on (src/observability/tracing.ts); ctx.trace is null otherwise,
 * and every hook below sits behind that one null check.
 */
export interface RequestTrace {
  /** A child span for a phase that had to wait (a step's promise, a body peek); returns its end. */
  phase(name: string): (err?: unknown) => void;
  /** A client span for one upstream attempt: its context is the traceparent that attempt sends. */
  attempt(method: string, upstream: string, host: string, resend: number): AttemptSpan;
}

export interface AttemptSpan {
  readonly traceparent: string;
  /** `status`: the upstream's status (0 when none answered); `err`: why the attempt failed, or null. */
  end(status: number, err: unknown): void;
}

/** Edits a route's header rules make to the upstream's response head (flat [name, value, ...]), in place. */
export type ResponseEdit = (headers: string[], ctx: RequestContext) => void;

/**
 * The generation a request runs on: it keeps serving this request, stream or tunnel even after a reload swaps
 * in a newer one, and is told when the exchange ends so it can close what only it still uses.
 */
export interface Lease {
  release(): void;
}

/**
 * Per-request state, one object per request with a fixed shape (fields are declared up front
 * so V8 keeps one hidden class). Policies read and write it; the proxy consumes it.
 */
export class RequestContext {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly start: number;
  requestId = '';
  traceparent = '';
  clientIp = '';
  /** Normalized path that was matched and will be forwarded (before rewrite). */
  path = '';
  /** Raw query string without "?", byte for byte; null when the target had none. */
  query: string | null = null;
  route: CompiledRoute | null = null;
  params: Record<string, string | undefined> = {};
  identity: Identity | null = null;
  /** Extra request headers for the upstream (identity headers, ...): flat [name, value, ...]. */
  upstreamHeaders: string[] | null = null;
  /** Extra response headers for the client (CORS, RateLimit, ...): flat [name, value, ...]. */
  responseHeaders: string[] | null = null;
  /** Response headers sent unless the upstream sent the same one (security headers): flat [name, value, ...], lowercase names. */
  responseDefaults: readonly string[] | null = null;
  /** The route answers CORS at the gateway: the upstream's own Access-Control-* response headers are dropped. */
  dropUpstreamCors = false;
  /** Bytes a policy already read from the request body (a bounded peek), replayed before the rest. */
  bodyPrefix: Buffer | null = null;
  /** A replacement for the forwarded body (body rewrites); null: the client's body goes up as it came. */
  forwardBody: ForwardBody | null = null;
  /** Header rules for the upstream's response; null on routes without any. */
  responseEdit: ResponseEdit | null = null;
  tap: ResponseTap | null = null;
  /** Set by the compression policy on routes that use it; null elsewhere (the proxy then does nothing extra). */
  compressor: ResponseCompressor | null = null;
  /** Aborts the in-flight upstream exchange (set by the proxy once connected). */
  abortUpstream: ((err?: Error) => void) | null = null;
  /** The client closed its connection before the response finished. */
  clientGone = false;
  /** The response is an event stream (for metrics). */
  streaming = false;
  /** Model routing's decisions (null on other routes). */
  ai: ModelExchange | null = null;
  /** Where each attempt goes, when a policy planned it (model routing); null: the route's upstream. */
  attempts: AttemptPlan | null = null;
  /** A step answers the request itself (a response-cache hit): the proxy calls this instead of dispatching. */
  serve: ((ctx: RequestContext) => void) | null = null;
  /** The response cache's verdict (an RFC 9211 Cache-Status value); null on routes without a cache. */
  cacheStatus: string | null = null;
  /** The answer came from the response cache: metering settles 0 tokens and 0 cost. */
  cacheHit = false;
  /** Spans of this request; null unless tracing is on. */
  trace: RequestTrace | null = null;
  /** Tokens metering settled (model as the response named it); null on unmetered routes. */
  usage: { model: string | undefined; input: number; output: number } | null = null;
  /** Called once when the exchange ends, whatever the outcome (quota settlement, refunds). */
  onFinish: Array<(ctx: RequestContext) => void> | null = null;
  // access-log facts
  status = 0;
  errorCode: string | undefined = undefined;
  target: string | undefined = undefined;
  upstreamStart = 0;
  upstreamMs = -1;
  bytesIn = 0;
  bytesOut = 0;

  /** The generation serving this exchange; released once when it ends. */
  lease: Lease | null = null;

  constructor(req: IncomingMessage, res: ServerResponse, start: number) {
    this.req = req;
    this.res = res;
    this.start = start;
  }

  addResponseHeader(name: string, value: string): void {
    (this.responseHeaders ??= []).push(name, value);
  }

  addUpstreamHeader(name: string, value: string): void {
    (this.upstreamHeaders ??= []).push(name, value);
  }

  finally(fn: (ctx: RequestContext) => void): void {
    (this.onFinish ??= []).push(fn);
  }
}
