import { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { GatewayError } from '../errors.ts';
import type { RequestContext } from '../server/context.ts';
import type { Target } from '../upstreams/upstream.ts';
import { upstreamRequestHeaders } from './headers.ts';
import { Exchange, type ProxyRuntime } from './exchange.ts';

export type { ProxyRuntime };

/**
 * Sends the request to a target of the route's upstream and streams the answer back.
 * Request and response bodies flow with backpressure; nothing is buffered.
 */
export function forward(ctx: RequestContext, rt: ProxyRuntime): void {
  const route = ctx.route!;
  const target = route.upstream.pick();
  if (target === null) {
    throw new GatewayError('upstream_unavailable', 'No healthy instance of the upstream service is available.', { headers: { 'retry-after': '5' } });
  }
  dispatchTo(ctx, rt, target);
}

export function dispatchTo(ctx: RequestContext, rt: ProxyRuntime, target: Target): void {
  const { req } = ctx;
  const route = ctx.route!;
  const h = req.headers;
  const cl = h['content-length'];
  const hasBody = (cl !== undefined && cl !== '0') || h['transfer-encoding'] !== undefined;
  if (hasBody && cl !== undefined && Number(cl) > route.maxBodySize) {
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

  const exchange = new Exchange(ctx, rt, target);
  let body: Dispatcher.DispatchOptions['body'] = null;
  if (hasBody) {
    if (cl === undefined) exchange.limitChunkedBody(route.maxBodySize);
    else ctx.bytesIn = Number(cl);
    body = ctx.bodyPrefix !== null ? Readable.from(withPrefix(ctx.bodyPrefix, req), { objectMode: false }) : req;
  }
  target.inflight++;
  ctx.target = target.origin;
  ctx.upstreamStart = performance.now();
  target.pool.dispatch({
    path,
    method: req.method as Dispatcher.HttpMethod,
    headers,
    body,
    headersTimeout: route.timeouts.response,
    bodyTimeout: route.timeouts.idle,
  }, exchange);
}

/** Replays bytes a policy already read (a bounded peek), then the rest of the body. */
async function* withPrefix(prefix: Buffer, rest: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  if (prefix.length) yield prefix;
  for await (const chunk of rest) yield chunk;
}
