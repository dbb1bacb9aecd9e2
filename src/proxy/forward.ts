import type { Dispatcher } from 'undici';
import { GatewayError } from '../errors.ts';
import type { RequestContext } from '../server/context.ts';
import type { Target } from '../upstreams/upstream.ts';
import { upstreamRequestHeaders } from './headers.ts';
import { Exchange, type ProxyRuntime } from './exchange.ts';
import { failover } from '../upstreams/failover.ts';
import { replayBody } from './body-peek.ts';

export type { ProxyRuntime };

/**
 * Sends the request to a target of the route's upstream and streams the answer back.
 * Request and response bodies flow with backpressure; nothing is buffered.
 */
export function forward(ctx: RequestContext, rt: ProxyRuntime): void {
  const upstream = ctx.route!.upstream;
  // No target (circuit open, all down): a fallback upstream's, or a 503 problem (circuit_open / degraded message) without any upstream call.
  dispatchTo(ctx, rt, upstream.pick() ?? failover(upstream));
}

/** `attempt`/`tried`: retries so far and the targets they used (bit mask); 0 for a request's first exchange. */
export function dispatchTo(ctx: RequestContext, rt: ProxyRuntime, target: Target, attempt = 0, tried = 0): void {
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

  const exchange = new Exchange(ctx, rt, target, attempt, tried);
  let body: Dispatcher.DispatchOptions['body'] = null;
  if (hasBody) {
    if (cl === undefined) exchange.limitChunkedBody(route.maxBodySize);
    else ctx.bytesIn = Number(cl);
    body = ctx.bodyPrefix !== null ? replayBody(ctx.bodyPrefix, req) : req;
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
