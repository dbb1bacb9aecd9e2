import { destinationOf, logSinkOf, type Logger } from './logger.ts';
import type { RequestContext } from '../pipeline/context.ts';

export type AccessLog = (ctx: RequestContext, status: number, ms: number) => void;

const round2 = (n: number) => Math.round(n * 100) / 100;
const str = JSON.stringify;

/**
 * Quoted forms of the values that come from bounded sets (route names and upstream origins from the config, the
 * HTTP methods llhttp accepts): JSON.stringify cost ~55-130 ns a call, the lookup ~10 (bench/access-line.ts).
 * Capped so that a set that turns out unbounded costs a stringify, never memory.
 */
const QUOTED = new Map<string, string>();
function quoted(s: string): string {
  let q = QUOTED.get(s);
  if (q === undefined) { q = str(s); if (QUOTED.size < 4096) QUOTED.set(s, q); }
  return q;
}

/**
 * One line per request, built from facts the gateway owns: the path is the normalized path without its query
 * string, and no header is copied, so tokens, cookies and API keys cannot leak here.
 * The line is serialized by hand and written straight to the logger's destination (the same stream and line
 * format as pino's own lines): pino's generic serializer cost ~7% of the proxy's CPU in a profile under load.
 * Null when access logging is off or the logger's level hides info lines.
 */
export function createAccessLog(logger: Logger, enabled: boolean): AccessLog | null {
  if (!enabled || !logger.isLevelEnabled('info')) return null;
  const sink = logSinkOf(logger);
  const stream = destinationOf(logger);
  // The process's own stdout sink lets access lines wait for a full chunk (src/observability/log-sink.ts).
  const out = sink !== null ? (s: string) => sink.writeLazy(s) : (s: string) => { stream.write(s); };
  return (ctx, status, ms) => {
    // The request id and the client IP need no escaping: an id is a UUID or passed REQUEST_ID's charset
    // (src/observability/trace.ts), an address came from the socket or passed isIP (src/server/client-ip.ts).
    let line = `{"level":30,"time":${Date.now()},"type":"access","requestId":"${ctx.requestId}","method":${quoted(ctx.req.method ?? 'GET')}`;
    if (ctx.route !== null) line += `,"route":${quoted(ctx.route.name)}`;
    line += `,"path":${str(ctx.path)},"status":${status},"bytesIn":${ctx.bytesIn},"bytesOut":${ctx.bytesOut},"durationMs":${round2(ms)}`;
    if (ctx.clientIp) line += `,"clientIp":"${ctx.clientIp}"`;
    const consumer = ctx.identity?.consumer ?? ctx.identity?.id;
    if (consumer !== undefined) line += `,"consumer":${str(consumer)}`;
    if (ctx.target !== undefined) line += `,"upstream":${quoted(ctx.target)}`;
    if (ctx.upstreamMs >= 0) line += `,"upstreamMs":${round2(ctx.upstreamMs)}`;
    if (ctx.errorCode !== undefined) line += `,"error":${str(ctx.errorCode)}`;
    // Model routing: the model asked for and every attempt (upstream, model, result, status, ms); names only, never content.
    if (ctx.ai !== null) line += `,"model":${str(ctx.ai.requested)},"attempts":${str(ctx.ai.attempts)}`;
    if (ctx.cacheStatus !== null) line += `,"cache":${str(ctx.cacheHit ? 'hit' : 'miss')}`;
    out(line + '}\n');
  };
}
