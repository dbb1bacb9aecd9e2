import { GatewayError, toGatewayError } from '../errors.ts';
import type { RequestContext } from '../pipeline/context.ts';
import type { Target } from '../upstreams/upstream.ts';
import { IDEMPOTENT_METHODS } from '../upstreams/retry-policy.ts';
import { fallbackTarget } from '../upstreams/failover.ts';
import type { ProxyEnv } from './env.ts';

/**
 * Retries, decided inside the proxy when an attempt fails before anything reached the client. Everything here
 * runs on the failure path only; a request whose upstream answers never touches it.
 *
 * A request may go again when its upstream has a `retry:` policy with attempts left, the retry budget has room
 * (taken here), and it can be replayed:
 * - nothing was written upstream (connect refused or timed out: undici never called onConnect): any method,
 *   and a body too as long as not a byte of it was read;
 * - otherwise only a bodyless idempotent request (GET, HEAD, OPTIONS, PUT, DELETE), since the upstream may
 *   have acted on it and a streamed body cannot be read twice.
 */
export function mayRetry(ctx: RequestContext, target: Target, attempt: number, sent: boolean): boolean {
  const up = target.upstream;
  const policy = up.retry;
  if (policy === null || attempt >= policy.attempts || ctx.clientGone || ctx.res.headersSent) return false;
  if (!replayable(ctx, sent)) return false;
  if (!policy.budget.withdraw(performance.now())) {
    up.events.budgetExhausted(up);
    return false;
  }
  up.events.retry(up);
  return true;
}

function replayable(ctx: RequestContext, sent: boolean): boolean {
  const req = ctx.req;
  const h = req.headers;
  const cl = h['content-length'];
  const hasBody = (cl !== undefined && cl !== '0') || h['transfer-encoding'] !== undefined;
  if (!hasBody) return !sent || IDEMPOTENT_METHODS.has(req.method ?? 'GET');
  return !sent && cl !== undefined && ctx.bodyPrefix === null && !req.readableDidRead;
}

/**
 * Sends the request again (`send`) after a backoff, to a target it has not tried when there is one (else the
 * same upstream's best, else a fallback's). `tried`: bit mask of the targets already used. `giveUp` answers the
 * client with the failure that prompted the retry when nothing can take it, or ends quietly if the client left.
 */
export function retryLater(ctx: RequestContext, rt: ProxyEnv, failed: Target, attempt: number, send: (next: Target) => void, tried: number, giveUp: (clientGone: boolean) => void): void {
  const up = failed.upstream;
  const timer = setTimeout(() => {
    ctx.abortUpstream = null;
    if (ctx.clientGone) return giveUp(true);
    const next = up.pick(tried) ?? fallbackTarget(up);
    if (next === null) return giveUp(false);
    try {
      send(next);
    } catch (e) {
      giveUp(true);
      rt.fail(ctx, toGatewayError(e));
    }
  }, up.retry!.delay(attempt));
  // The request handler calls abortUpstream when the client leaves: the retry is cancelled, not sent.
  ctx.abortUpstream = () => { clearTimeout(timer); ctx.abortUpstream = null; giveUp(true); };
}

/** What the client reads when a retried status (502/503/504) was the last word and no target could take the retry. */
export function statusError(status: number): GatewayError {
  if (status === 504) return new GatewayError('upstream_timeout', 'The upstream service did not respond in time.', { extra: { cause: 'upstream_status' } });
  if (status === 503) return new GatewayError('upstream_unavailable', 'The upstream service is unavailable.', { headers: { 'retry-after': '1' } });
  return new GatewayError('upstream_failed', 'The upstream service failed.', { extra: { cause: 'upstream_status' } });
}
