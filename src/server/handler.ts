import type { IncomingMessage, ServerResponse } from 'node:http';
import { GatewayError, sendProblem, toGatewayError } from '../errors.ts';
import { RequestContext, type CompiledRoute, type Lease, type Step } from '../pipeline/context.ts';
import { normalizePath, splitTarget } from '../routing/normalize.ts';
import { conditionsHold, type RouteTable } from '../routing/table.ts';
import { AMBIGUOUS_PARAMS, paramsRouteElsewhere } from '../routing/path-params.ts';
import { nextTraceparent, requestIdFrom } from '../observability/trace.ts';
import type { RequestTracing } from '../observability/tracing.ts';
import { forward, type ProxyEnv } from '../proxy/forward.ts';
import type { Logger } from '../observability/logger.ts';
import type { TrustedProxies } from './client-ip.ts';
import { peerAddress } from './client-ip.ts';
import type { AccessLog } from '../observability/access-log.ts';
import { checkRequestHead, type HeadLimits } from './request-head.ts';
import { closeAfterResponse } from './linger.ts';

/**
 * What the request path needs from the generation serving a request (src/runtime/generation.ts). A request
 * reads the runtime's current generation once, `enter()`s it, and uses only it until the exchange ends.
 */
export interface RequestPath extends ProxyEnv, Lease {
  readonly table: RouteTable;
  readonly logger: Logger;
  /** Writes the access line; null when access logging is off. */
  readonly accessLog: AccessLog | null;
  readonly trusted: TrustedProxies;
  /** Built-in endpoints on the main listener (/healthz, /readyz); answered before routing. */
  readonly builtins: Map<string, (req: IncomingMessage, res: ServerResponse) => void>;
  /** Picks among candidates whose header/query conditions hold; async when a body condition needs a peek. */
  readonly choose?: (ctx: RequestContext, candidates: readonly CompiledRoute[]) => CompiledRoute | null | Promise<CompiledRoute | null>;
  /** Answers a CORS preflight for the route serving the requested method; false when that route leaves CORS to the upstream. */
  readonly preflight?: (ctx: RequestContext) => boolean;
  enter(): void;
}

/** Where the request path finds the generation to serve a new request with (the runtime swaps it on reload). */
export interface RequestPathSource {
  readonly current: RequestPath;
  /** OpenTelemetry tracing (process-level); null when `observability.tracing` is not configured. */
  readonly tracing: RequestTracing | null;
}

type TrackedResponse = ServerResponse & { ctx?: RequestContext; path?: RequestPath };

/** The request path: identify, normalize, match, run the route's steps, forward. Errors end in one place. */
export function createRequestHandler(source: RequestPathSource, head: HeadLimits) {
  const onClose = function (this: TrackedResponse) {
    const ctx = this.ctx!;
    if (!this.writableFinished) {
      ctx.clientGone = true;
      if (ctx.abortUpstream !== null) ctx.abortUpstream();
    }
    const status = this.writableFinished ? this.statusCode : 499;
    finishExchange(this.path!, ctx, status);
    // source.tracing is set once in listen() and only cleared by close(), after the listeners stopped.
    if (ctx.trace !== null) source.tracing?.end(ctx, status);
  };

  return function handle(req: IncomingMessage, res: ServerResponse): void {
    const rt = source.current;
    rt.enter();
    const ctx = new RequestContext(req, res, performance.now());
    ctx.lease = rt;
    (res as TrackedResponse).ctx = ctx;
    (res as TrackedResponse).path = rt;
    // 'close' is emitted once per response: on() spares the wrapper once() allocates per request.
    res.on('close', onClose);
    ctx.requestId = requestIdFrom(req.headers['x-request-id'] as string | undefined);
    const tracing = source.tracing;
    if (tracing === null) ctx.traceparent = nextTraceparent(req.headers.traceparent as string | undefined);
    else tracing.start(ctx);
    const headProblem = checkRequestHead(req, head);
    if (headProblem !== null) return rt.fail(ctx, headProblem);

    const { path: rawPath, query } = splitTarget(req.url ?? '');
    const path = normalizePath(rawPath);
    if (path === null) return rt.fail(ctx, new GatewayError('bad_path', 'The request path is malformed (encoded "/", "\\" or NUL, or invalid percent-encoding).'));
    ctx.path = path;
    ctx.query = query;
    ctx.clientIp = rt.trusted.clientIp(peerAddress(req.socket.remoteAddress), req.headers['x-forwarded-for'] as string | undefined);

    const builtin = rt.builtins.get(path);
    if (builtin !== undefined && (req.method === 'GET' || req.method === 'HEAD')) {
      res.setHeader('x-request-id', ctx.requestId);
      ctx.status = -1;
      return builtin(req, res);
    }

    if (hasDuplicateCredentials(req.rawHeaders)) return rt.fail(ctx, DUPLICATE_CREDENTIALS);
    if (rt.preflight !== undefined && req.method === 'OPTIONS' && req.headers['access-control-request-method'] !== undefined && rt.preflight(ctx)) return;
    const m = rt.table.match(req.method ?? 'GET', path);
    if (path.indexOf(';') !== -1 && paramsRouteElsewhere(rt.table, req.method ?? 'GET', path, m)) return rt.fail(ctx, AMBIGUOUS_PARAMS);
    if (m.kind === 'not_found') return rt.fail(ctx, new GatewayError('not_found', `No route matches ${req.method} ${path}.`));
    if (m.kind === 'method_not_allowed') return rt.fail(ctx, new GatewayError('method_not_allowed', `${req.method} is not allowed here.`, { headers: { allow: m.allow } }));
    ctx.params = m.params;

    let route: CompiledRoute | null = null;
    if (rt.choose !== undefined) {
      const r = rt.choose(ctx, m.candidates);
      if (r instanceof Promise) {
        const end = ctx.trace !== null ? ctx.trace.phase('route body peek') : null;
        r.then((x) => { end?.(); proceed(rt, ctx, x); }, (e) => { end?.(e); rt.fail(ctx, toGatewayError(e)); });
        return;
      }
      route = r;
    } else {
      const q = m.needsQuery && query !== null ? new URLSearchParams(query) : null;
      for (const c of m.candidates) if (conditionsHold(c, req.headers, q)) { route = c; break; }
    }
    proceed(rt, ctx, route);
  };
}

function proceed(rt: RequestPath, ctx: RequestContext, route: CompiledRoute | null): void {
  if (route === null) return rt.fail(ctx, new GatewayError('not_found', `No route matches ${ctx.req.method} ${ctx.path}.`));
  ctx.route = route;
  try {
    const pending = runSteps(ctx, route.steps, 0);
    if (pending !== undefined) { pending.then(() => send(rt, ctx), (e) => rt.fail(ctx, toGatewayError(e))); return; }
    forward(ctx, rt);
  } catch (e) {
    rt.fail(ctx, toGatewayError(e));
  }
}

function send(rt: RequestPath, ctx: RequestContext): void {
  if (ctx.clientGone) return;
  try { forward(ctx, rt); } catch (e) { rt.fail(ctx, toGatewayError(e)); }
}

/**
 * Node keeps only the first of several Authorization or Host headers; a second one that some other hop reads
 * is a request-smuggling and auth-confusion vector, so such requests are refused outright (400). Counted on
 * rawHeaders by length and char code: nothing is allocated.
 */
export function hasDuplicateCredentials(raw: readonly string[]): boolean {
  let auth = 0;
  let host = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const n = raw[i];
    if (n.length === 4) { if (sameLower(n, 'host') && ++host > 1) return true; }
    else if (n.length === 13 && sameLower(n, 'authorization') && ++auth > 1) return true;
  }
  return false;
}

function sameLower(s: string, lower: string): boolean {
  for (let i = 0; i < lower.length; i++) if ((s.charCodeAt(i) | 0x20) !== lower.charCodeAt(i)) return false;
  return true;
}

export const DUPLICATE_CREDENTIALS = new GatewayError('bad_request', 'The request has more than one Authorization or Host header.', { headers: { connection: 'close' } });

/** Runs steps synchronously until one needs to wait; only then does a promise exist. */
function runSteps(ctx: RequestContext, steps: readonly Step[], from: number): Promise<void> | undefined {
  for (let i = from; i < steps.length; i++) {
    const r = steps[i](ctx);
    if (r !== undefined) {
      // A step that waited (JWKS fetch, store call, captcha verify, body peek) is a child span when tracing is on.
      if (ctx.trace !== null) return traced(ctx, r, ctx.trace.phase(`policy ${ctx.route!.policies[i] ?? i}`)).then(() => runSteps(ctx, steps, i + 1));
      return r.then(() => runSteps(ctx, steps, i + 1));
    }
  }
  return undefined;
}

function traced(ctx: RequestContext, p: Promise<void>, end: (err?: unknown) => void): Promise<void> {
  return p.then(() => end(), (e) => { end(e); throw e; });
}

/** Renders a GatewayError with the headers policies already queued (CORS, RateLimit) and the request id. */
export function failWith(ctx: RequestContext, err: GatewayError, draining: boolean): void {
  const res = ctx.res;
  ctx.errorCode ??= err.code;
  ctx.status = err.status;
  if (res.headersSent || ctx.clientGone) { if (!res.writableEnded) res.destroy(); return; }
  res.setHeader('x-request-id', ctx.requestId);
  const extra = ctx.responseHeaders;
  if (extra !== null) for (let i = 0; i < extra.length; i += 2) res.appendHeader(extra[i], extra[i + 1]);
  const defaults = ctx.responseDefaults;
  if (defaults !== null) for (let i = 0; i < defaults.length; i += 2) res.setHeader(defaults[i], defaults[i + 1]);
  if (draining && ctx.req.httpVersionMajor !== 2) res.setHeader('connection', 'close');
  // The request body will not be read: the connection closes once the answer is out (src/server/linger.ts).
  if (err.headers?.connection === 'close') closeAfterResponse(res);
  sendProblem(res, err, ctx.requestId);
}

/**
 * Once per exchange (HTTP or WebSocket): finish hooks, metrics, the access line; then the generation is released.
 * 499: the client left first.
 */
export function finishExchange(rt: RequestPath, ctx: RequestContext, status: number): void {
  if (ctx.onFinish !== null) for (const fn of ctx.onFinish) { try { fn(ctx); } catch (e) { rt.logger.error({ err: e }, 'finish hook failed'); } }
  if (ctx.status !== -1) { // built-in endpoints are not traffic
    const ms = performance.now() - ctx.start;
    const route = ctx.route?.name ?? 'none';
    rt.metrics.observeRequest(route, ctx.req.method ?? 'GET', status, ms / 1000);
    if (ctx.errorCode !== undefined) rt.metrics.observeRefusal(route, ctx.errorCode);
    if (rt.accessLog !== null) rt.accessLog(ctx, status, ms);
  }
  if (ctx.lease !== null) { const l = ctx.lease; ctx.lease = null; l.release(); }
}
