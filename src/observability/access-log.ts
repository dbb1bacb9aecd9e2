import type { Logger } from './logger.ts';
import type { RequestContext } from '../server/context.ts';

/**
 * One line per request, built from facts the gateway owns. The path is the normalized path
 * without its query string, and no header is copied: tokens, cookies and API keys cannot leak here.
 */
export function writeAccessLog(logger: Logger, ctx: RequestContext, status: number, ms: number): void {
  logger.info({
    type: 'access',
    requestId: ctx.requestId,
    method: ctx.req.method,
    route: ctx.route?.name,
    path: ctx.path,
    status,
    bytesIn: ctx.bytesIn,
    bytesOut: ctx.bytesOut,
    durationMs: Math.round(ms * 100) / 100,
    clientIp: ctx.clientIp || undefined,
    consumer: ctx.identity?.consumer ?? ctx.identity?.id,
    upstream: ctx.target,
    upstreamMs: ctx.upstreamMs >= 0 ? Math.round(ctx.upstreamMs * 100) / 100 : undefined,
    error: ctx.errorCode,
  });
}
