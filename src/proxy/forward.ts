import { toGatewayError } from '../errors.ts';
import type { RequestContext } from '../pipeline/context.ts';
import { failover } from '../upstreams/failover.ts';
import { attemptSender, dispatchTo, type ProxyEnv } from './exchange.ts';

export type { ProxyEnv };

/**
 * Sends the request to a target of the route's upstream and streams the answer back.
 * Request and response bodies flow with backpressure; nothing is buffered.
 */
export function forward(ctx: RequestContext, rt: ProxyEnv): void {
  // A step answered the request itself (a response-cache hit).
  if (ctx.serve !== null) return ctx.serve(ctx);
  // Model routing planned the attempts: it picks each one's target (and may wait for the store first).
  if (ctx.attempts !== null) return ctx.attempts.start(attemptSender(ctx, rt, 0), (e) => { if (!ctx.clientGone) rt.fail(ctx, toGatewayError(e)); });
  const upstream = ctx.route!.upstream;
  // No target (circuit open, all down): a fallback upstream's, or a 503 problem (circuit_open / degraded message) without any upstream call.
  dispatchTo(ctx, rt, upstream.pick() ?? failover(upstream));
}
