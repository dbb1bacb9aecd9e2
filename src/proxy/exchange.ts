import type { Dispatcher } from 'undici';
import { GatewayError, toGatewayError } from '../errors.ts';
import type { BodyEncoder, RequestContext } from '../pipeline/context.ts';
import { replayBody } from '../pipeline/body-peek.ts';
import { OUTCOME_FAIL, OUTCOME_NEUTRAL, OUTCOME_OK, type Target } from '../upstreams/upstream.ts';
import { clientResponseHeaders, upstreamRequestHeaders } from './headers.ts';
import { applyEdgeHeaders } from './edge-headers.ts';
import { upstreamError, upstreamErrorCode } from './errors.ts';
import { mayRetry, retryLater, statusError } from './retry.ts';
import type { ProxyEnv } from './env.ts';

export type { ProxyEnv };

/**
 * One upstream exchange: undici's dispatch handler (the callback API, which undici uses natively)
 * bridging the upstream response to the client response with backpressure.
 */
export class Exchange implements Dispatcher.DispatchHandler {
  private readonly ctx: RequestContext;
  private readonly rt: ProxyEnv;
  private readonly target: Target;
  private resume: (() => void) | null = null;
  private done = false;
  /** Response head held until the first body byte (or the end), so a failure before it can still be a clean 504/502. */
  private head: string[] | null = null;
  /** Limit for a chunked request body; Infinity when the length was declared (and checked) up front. */
  private bodyLimit = Infinity;
  /** Retries already made for this request, and the targets they used (bit mask); see retry.ts. */
  private readonly attempt: number;
  private readonly tried: number;
  /** undici reached onConnect: the request is being written upstream (before it, nothing was sent). */
  private sent = false;
  /** A 5xx status this attempt answered and that will be retried: its body is read and dropped. */
  private discarded = 0;
  /** The compressor's stream when the route compresses this response (null: the body goes to the client as it is). */
  private encoder: BodyEncoder | null = null;
  /** This attempt's failure moves the request to the next model candidate (ctx.attempts). */
  private failingOver = false;

  constructor(ctx: RequestContext, rt: ProxyEnv, target: Target, attempt = 0, tried = 0) {
    this.ctx = ctx;
    this.rt = rt;
    this.target = target;
    this.attempt = attempt;
    this.tried = tried;
  }

  onConnect(abort: (err?: Error) => void): void {
    this.sent = true;
    if (this.ctx.clientGone) { abort(); return; }
    this.ctx.abortUpstream = abort;
  }

  onHeaders(status: number, raw: Buffer[] | string[] | null, resume: () => void): boolean {
    if (status < 200) return true; // informational responses are not relayed
    const ctx = this.ctx;
    if (raw !== null && !framingAccepted(raw)) {
      // undici reads `chunked, chunked` as chunked; a cache or client behind us may not (RFC 9112 §6.1): never relayed.
      ctx.abortUpstream?.(Object.assign(new Error('upstream Transfer-Encoding other than chunked'), { code: 'HPE_INVALID_TRANSFER_ENCODING' }));
      return false;
    }
    const res = ctx.res;
    ctx.upstreamMs = performance.now() - ctx.upstreamStart;
    this.target.upstream.durationMetric.observe(ctx.upstreamMs / 1000);
    // 502/503/504 from one target of an upstream with retries: try another instead of relaying (the body is dropped).
    if (status >= 500 && this.target.upstream.retry !== null && this.target.upstream.retry.retriesStatus(status) && mayRetry(ctx, this.target, this.attempt, true)) {
      this.discarded = status;
      return true;
    }
    // Model routing: a 429 or 5xx from this candidate (as configured) goes to the next one instead, before any
    // byte of it reached the client; the plan records the provider's cooldown either way.
    if (status >= 400 && ctx.attempts !== null && ctx.attempts.shouldFailover(this.target, status, raw, null, true)) {
      this.discarded = status;
      this.failingOver = true;
      return true;
    }
    const { headers, contentType } = clientResponseHeaders(raw ?? [], false);
    if (ctx.responseDefaults !== null || ctx.dropUpstreamCors) applyEdgeHeaders(headers, ctx.responseDefaults, ctx.dropUpstreamCors);
    if (ctx.responseEdit !== null) ctx.responseEdit(headers, ctx);
    headers.push('x-request-id', ctx.requestId);
    if (ctx.responseHeaders !== null) for (let i = 0; i < ctx.responseHeaders.length; i++) headers.push(ctx.responseHeaders[i]);
    // HTTP/2 has no Connection header: a draining HTTP/2 connection was sent GOAWAY instead.
    if (this.rt.isDraining() && ctx.req.httpVersionMajor !== 2) headers.push('connection', 'close');
    ctx.status = status;
    if (ctx.compressor !== null) this.startEncoder(ctx, status, headers, contentType);
    if (contentType !== undefined && contentType.startsWith('text/event-stream')) {
      // SSE: headers go out now and each event as the upstream flushes it.
      res.writeHead(status, headers);
      res.flushHeaders();
      ctx.streaming = true;
      this.rt.metrics.inflightStreams.labels('sse').inc();
    } else {
      // Node would not send the head before the first body byte anyway; holding it keeps res.headersSent
      // false until then, so an idle timeout before any byte is answered with 504 rather than a cut connection.
      this.head = headers;
    }
    if (ctx.tap !== null) ctx.tap.onHeaders?.(status, contentType, headers);
    this.resume = resume;
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.discarded !== 0) return true;
    const ctx = this.ctx;
    if (this.encoder !== null) return this.encode(chunk);
    ctx.bytesOut += chunk.length;
    if (ctx.tap !== null) ctx.tap.onData?.(chunk);
    if (this.head !== null) this.writeHead();
    if (ctx.res.write(chunk)) return true;
    ctx.res.once('drain', this.resume!);
    return false;
  }

  onComplete(): void {
    if (this.discarded !== 0) return this.retry(null);
    this.finish(true);
    if (this.encoder !== null) { this.encoder.end(); return; } // the client response ends when the encoder does
    if (this.head !== null) this.writeHead();
    this.ctx.res.end();
  }

  /** Routes with `compression:` only: the response head decides, then the body goes through a zlib stream. */
  private startEncoder(ctx: RequestContext, status: number, headers: string[], contentType: string | undefined): void {
    const enc = ctx.compressor!.begin(status, headers, contentType);
    if (enc === null) return;
    this.encoder = enc;
    const res = ctx.res;
    const resumeEncoder = () => enc.resume();
    enc.on('data', (out: Buffer) => {
      if (this.head !== null) this.writeHead();
      ctx.bytesOut += out.length;
      if (!res.write(out)) { enc.pause(); res.once('drain', resumeEncoder); }
    });
    enc.on('end', () => { if (this.head !== null) this.writeHead(); res.end(); });
    enc.on('error', () => res.destroy());
  }

  private encode(chunk: Buffer): boolean {
    const ctx = this.ctx;
    if (ctx.tap !== null) ctx.tap.onData?.(chunk);
    const enc = this.encoder!;
    if (enc.write(chunk)) return true;
    enc.once('drain', this.resume!);
    return false;
  }

  private writeHead(): void {
    this.ctx.res.writeHead(this.ctx.status, this.head!);
    this.head = null;
  }

  /**
   * Called by undici after each request-body chunk went up. A chunked body is counted here, where undici
   * reads it (a 'data' listener of our own would start the flow before undici listens and lose bytes);
   * throwing aborts the exchange, and onError answers 413.
   */
  onBodySent(chunk: unknown): void {
    if (this.bodyLimit === Infinity) return;
    const ctx = this.ctx;
    ctx.bytesIn += typeof chunk === 'number' ? chunk : (chunk as Uint8Array).length;
    if (ctx.bytesIn > this.bodyLimit && ctx.errorCode === undefined) {
      ctx.errorCode = 'payload_too_large';
      throw new GatewayError('payload_too_large', `The request body exceeds this route's limit of ${this.bodyLimit} bytes.`, { headers: { connection: 'close' } });
    }
  }

  onError(err: Error): void {
    const ctx = this.ctx;
    // Nothing of this attempt reached the client (no head taken): another target may answer instead.
    if (this.discarded !== 0 || (this.resume === null && !(err instanceof GatewayError) && mayRetry(ctx, this.target, this.attempt, this.sent))) return this.retry(err);
    // Model routing: a connection failure (or timeout, as configured) before the response head: the next candidate.
    if (this.resume === null && !ctx.clientGone && ctx.attempts !== null && ctx.attempts.shouldFailover(this.target, 0, null, err, this.sent)) {
      this.failingOver = true;
      return this.retry(err);
    }
    this.finish(false, err);
    if (ctx.clientGone) return; // the client left; nothing to tell it
    const gerr = upstreamError(err);
    ctx.errorCode = gerr.code;
    if (!(err instanceof GatewayError)) this.rt.metrics.upstreamErrors.labels(this.target.upstream.name, upstreamErrorCode(err)).inc();
    // After the first response byte there is no honest way to report an error in-band:
    // abort the client connection so it never mistakes a truncated body for a complete one.
    if (ctx.res.headersSent) ctx.res.destroy();
    else this.rt.fail(ctx, gerr);
  }

  /** Counts a chunked request body (see onBodySent) and stops the exchange with 413 once it passes the route's limit. */
  limitChunkedBody(limit: number): void {
    this.bodyLimit = limit;
  }

  /**
   * `final` false: this attempt failed and the request goes again, so its end is not the request's end.
   * `upstreamFinal`: the attempt's outcome is its upstream's last word on this request (a model failover moves to
   * another upstream, so each candidate's circuit counts its own attempt as final).
   */
  private finish(ok: boolean, err?: unknown, final = true, upstreamFinal = final): void {
    if (this.done) return;
    this.done = true;
    this.target.inflight--;
    const ctx = this.ctx;
    ctx.abortUpstream = null;
    if (!ok && this.encoder !== null) this.encoder.destroy();
    if (ctx.streaming) this.rt.metrics.inflightStreams.labels('sse').dec();
    if (ctx.attempts !== null) ctx.attempts.ended(this.target, this.discarded !== 0 ? this.discarded : this.resume !== null ? ctx.status : 0, err ?? null, this.failingOver);
    if (final && ctx.tap !== null) ctx.tap.onEnd(ok && !ctx.clientGone, ctx.status);
    if (this.rt.report !== undefined) {
      // A client that hung up, or a body the gateway refused, says nothing about the upstream's health.
      const failed = this.discarded >= 500 || this.discarded === 0;
      const outcome = (ctx.clientGone && !ok) || err instanceof GatewayError ? OUTCOME_NEUTRAL : ok && ctx.status < 500 ? OUTCOME_OK : failed ? OUTCOME_FAIL : OUTCOME_NEUTRAL;
      this.rt.report(this.target, outcome, ctx.upstreamStart, upstreamFinal);
    }
  }

  /** This attempt failed before the client saw anything, and mayRetry() allowed another (budget taken), or the next model candidate takes it. */
  private retry(err: Error | null): void {
    const ctx = this.ctx;
    const status = this.discarded;
    const startedAt = ctx.upstreamStart;
    if (this.failingOver) {
      this.finish(false, err, false, true);
      if (err !== null && !(err instanceof GatewayError)) this.rt.metrics.upstreamErrors.labels(this.target.upstream.name, upstreamErrorCode(err)).inc();
      ctx.abortUpstream = null;
      if (ctx.clientGone) return;
      ctx.attempts!.next(attemptSender(ctx, this.rt, this.attempt + 1), (e) => {
        if (ctx.tap !== null) ctx.tap.onEnd(false, ctx.status);
        if (ctx.clientGone) return;
        const gerr = toGatewayError(e);
        ctx.errorCode = gerr.code;
        this.rt.fail(ctx, gerr);
      });
      return;
    }
    this.finish(false, err, false);
    if (err !== null && !(err instanceof GatewayError)) this.rt.metrics.upstreamErrors.labels(this.target.upstream.name, upstreamErrorCode(err)).inc();
    const attempt = this.attempt + 1;
    const tried = this.tried | this.target.bit;
    retryLater(ctx, this.rt, this.target, attempt, (next) => dispatchTo(ctx, this.rt, next, attempt, tried), tried, (clientGone) => {
      // Nothing could take the retry (or the client left during the backoff): this failure is the request's end.
      if (ctx.tap !== null) ctx.tap.onEnd(false, ctx.status);
      this.target.upstream.recordFinal(clientGone ? OUTCOME_NEUTRAL : OUTCOME_FAIL, startedAt);
      if (clientGone) return;
      const gerr = err !== null ? upstreamError(err) : statusError(status);
      ctx.errorCode = gerr.code;
      this.rt.fail(ctx, gerr);
    });
  }
}

/** Sends an attempt of a planned request (model routing); a failure to dispatch (a refused body) is the client's answer. */
export function attemptSender(ctx: RequestContext, rt: ProxyEnv, attempt: number): (t: Target) => void {
  return (t) => {
    try {
      dispatchTo(ctx, rt, t, attempt);
    } catch (e) {
      ctx.attempts?.ended(t, 0, e, false);
      if (!ctx.clientGone) rt.fail(ctx, toGatewayError(e));
    }
  };
}

/** `attempt`/`tried`: retries so far and the targets they used (bit mask); 0 for a request's first exchange. */
export function dispatchTo(ctx: RequestContext, rt: ProxyEnv, target: Target, attempt = 0, tried = 0): void {
  const { req } = ctx;
  const route = ctx.route!;
  const h = req.headers;
  const cl = h['content-length'];
  const hasBody = (cl !== undefined && cl !== '0') || h['transfer-encoding'] !== undefined;
  if (hasBody && cl !== undefined && Number(cl) > route.maxBodySize) {
    throw new GatewayError('payload_too_large', `The request body exceeds this route's limit of ${route.maxBodySize} bytes.`);
  }
  // A peek that read a whole chunked body leaves nothing for the streaming limit to count.
  if (ctx.bodyPrefix !== null && ctx.bodyPrefix.length > route.maxBodySize) {
    throw new GatewayError('payload_too_large', `The request body exceeds this route's limit of ${route.maxBodySize} bytes.`);
  }

  let path = route.rewrite === null ? ctx.path : route.rewrite(ctx.path, ctx.params);
  if (target.basePath !== '') path = target.basePath + path;
  if (ctx.query !== null) path += '?' + ctx.query;

  const headers = upstreamRequestHeaders(h, {
    clientIp: ctx.clientIp,
    peer: rt.peer(req),
    peerTrusted: rt.peerTrusted(req),
    tls: rt.tls,
    requestId: ctx.requestId,
    traceparent: ctx.traceparent,
    host: route.preserveHost && h.host ? h.host : target.host,
  }, rt.identityHeaders, ctx.upstreamHeaders, false);
  // An LLM provider upstream: the provider's key replaces whatever credential the client sent (src/upstreams/provider.ts).
  if (target.upstream.credentials !== null) target.upstream.credentials(headers);

  const exchange = new Exchange(ctx, rt, target, attempt, tried);
  let body: Dispatcher.DispatchOptions['body'] = null;
  if (hasBody) {
    if (cl === undefined) exchange.limitChunkedBody(route.maxBodySize);
    else ctx.bytesIn = Number(cl);
    if (ctx.forwardBody === null) body = ctx.bodyPrefix !== null ? replayBody(ctx.bodyPrefix, req) : req;
  }
  if (ctx.forwardBody !== null) {
    // A rule rewrote the body (src/pipeline/body-rewrite.ts): its length, or chunked when it streams.
    const fb = ctx.forwardBody.open();
    body = fb.body;
    if (fb.length >= 0) headers['content-length'] = String(fb.length);
    else delete headers['content-length'];
  }
  target.inflight++;
  ctx.target = target.origin;
  ctx.upstreamStart = performance.now();
  // the retry budget is a share of requests: count each one once, on its first exchange
  if (attempt === 0 && target.upstream.retry !== null) target.upstream.retry.budget.deposit(ctx.upstreamStart);
  target.pool.dispatch({
    path,
    method: req.method as Dispatcher.HttpMethod,
    headers,
    body,
    headersTimeout: route.timeouts.response,
    bodyTimeout: route.timeouts.idle,
  }, exchange);
}

/** The upstream response's Transfer-Encoding is absent or exactly one `chunked` (the only coding a proxy relays). */
function framingAccepted(raw: Buffer[] | string[]): boolean {
  let seen = false;
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i].length !== 17 || raw[i].toString('latin1').toLowerCase() !== 'transfer-encoding') continue;
    if (seen || raw[i + 1].toString('latin1').trim().toLowerCase() !== 'chunked') return false;
    seen = true;
  }
  return true;
}
