import type { IncomingMessage } from 'node:http';
import type { Dispatcher } from 'undici';
import { GatewayError } from '../errors.ts';
import type { RequestContext } from '../server/context.ts';
import type { Target } from '../upstreams/upstream.ts';
import type { Metrics } from '../observability/metrics.ts';
import { clientResponseHeaders } from './headers.ts';
import { upstreamError, upstreamErrorCode } from './errors.ts';

/** What the proxy needs from the running gateway, resolved once. */
export interface ProxyRuntime {
  metrics: Metrics;
  identityHeaders: ReadonlySet<string>;
  tls: boolean;
  peer(req: IncomingMessage): string;
  peerTrusted(req: IncomingMessage): boolean;
  isDraining(): boolean;
  /** Renders a gateway error for this exchange (headers already queued on ctx are kept). */
  fail(ctx: RequestContext, err: GatewayError): void;
  /** Called once per exchange with its outcome, for passive health and circuit breakers. */
  report?(target: Target, ok: boolean, err?: unknown): void;
}

/**
 * One upstream exchange: undici's dispatch handler (the callback API, which undici uses natively)
 * bridging the upstream response to the client response with backpressure.
 */
export class Exchange implements Dispatcher.DispatchHandler {
  private readonly ctx: RequestContext;
  private readonly rt: ProxyRuntime;
  private readonly target: Target;
  private resume: (() => void) | null = null;
  private done = false;

  constructor(ctx: RequestContext, rt: ProxyRuntime, target: Target) {
    this.ctx = ctx;
    this.rt = rt;
    this.target = target;
  }

  onConnect(abort: (err?: Error) => void): void {
    if (this.ctx.clientGone) { abort(); return; }
    this.ctx.abortUpstream = abort;
  }

  onHeaders(status: number, raw: Buffer[] | string[] | null, resume: () => void): boolean {
    if (status < 200) return true; // informational responses are not relayed
    const ctx = this.ctx;
    const res = ctx.res;
    ctx.upstreamMs = performance.now() - ctx.upstreamStart;
    ctx.route!.upstream.durationMetric.observe(ctx.upstreamMs / 1000);
    const { headers, contentType } = clientResponseHeaders(raw ?? [], false);
    headers.push('x-request-id', ctx.requestId);
    if (ctx.responseHeaders !== null) for (let i = 0; i < ctx.responseHeaders.length; i++) headers.push(ctx.responseHeaders[i]);
    if (this.rt.isDraining()) headers.push('connection', 'close');
    ctx.status = status;
    res.writeHead(status, headers);
    if (contentType !== undefined && contentType.startsWith('text/event-stream')) {
      // SSE: headers go out now and each event as the upstream flushes it.
      res.flushHeaders();
      ctx.streaming = true;
      this.rt.metrics.inflightStreams.labels('sse').inc();
    }
    if (ctx.tap !== null) ctx.tap.onHeaders?.(status, contentType);
    this.resume = resume;
    return true;
  }

  onData(chunk: Buffer): boolean {
    const ctx = this.ctx;
    ctx.bytesOut += chunk.length;
    if (ctx.tap !== null) ctx.tap.onData?.(chunk);
    if (ctx.res.write(chunk)) return true;
    ctx.res.once('drain', this.resume!);
    return false;
  }

  onComplete(): void {
    this.finish(true);
    this.ctx.res.end();
  }

  onError(err: Error): void {
    const ctx = this.ctx;
    this.finish(false, err);
    if (ctx.clientGone) return; // the client left; nothing to tell it
    const gerr = upstreamError(err);
    ctx.errorCode = gerr.code;
    if (!(err instanceof GatewayError)) this.rt.metrics.upstreamErrors.labels(ctx.route!.upstream.name, upstreamErrorCode(err)).inc();
    // After the first response byte there is no honest way to report an error in-band:
    // abort the client connection so it never mistakes a truncated body for a complete one.
    if (ctx.res.headersSent) ctx.res.destroy();
    else this.rt.fail(ctx, gerr);
  }

  /** Counts a chunked request body and stops the exchange with 413 once it passes the route's limit. */
  limitChunkedBody(limit: number): void {
    const ctx = this.ctx;
    ctx.req.on('data', (chunk: Buffer) => {
      ctx.bytesIn += chunk.length;
      if (ctx.bytesIn > limit && ctx.errorCode === undefined) {
        ctx.errorCode = 'payload_too_large';
        const err = new GatewayError('payload_too_large', `The request body exceeds this route's limit of ${limit} bytes.`, { headers: { connection: 'close' } });
        if (ctx.abortUpstream !== null) ctx.abortUpstream(err);
        else this.onError(err);
      }
    });
  }

  private finish(ok: boolean, err?: unknown): void {
    if (this.done) return;
    this.done = true;
    this.target.inflight--;
    const ctx = this.ctx;
    ctx.abortUpstream = null;
    if (ctx.streaming) this.rt.metrics.inflightStreams.labels('sse').dec();
    if (ctx.tap !== null) ctx.tap.onEnd(ok && !ctx.clientGone, ctx.status);
    // A client that hung up says nothing about the upstream's health.
    if (this.rt.report && !(ctx.clientGone && !ok) && !(err instanceof GatewayError)) this.rt.report(this.target, ok, err);
  }
}
