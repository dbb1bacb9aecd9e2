import type { RequestContext } from '../pipeline/context.ts';
import { failover } from '../upstreams/failover.ts';
import { dispatchTo, type ProxyEnv } from './exchange.ts';

export type { ProxyEnv };

/**
 * Sends the request to a target of the route's upstream and streams the answer back.
 * Request and response bodies flow with backpressure; nothing is buffered.
 */
export function forward(ctx: RequestContext, rt: ProxyEnv): void {
  const upstream = ctx.route!.upstream;
  // No target (circuit open, all down): a fallback upstream's, or a 503 problem (circuit_open / degraded message) without any upstream call.
  dispatchTo(ctx, rt, upstream.pick() ?? failover(upstream));
}
