import { pino } from 'pino';
import { isBufferedDestination, type Logger } from './logger.ts';
import type { RequestContext } from '../pipeline/context.ts';

export type AccessLog = (ctx: RequestContext, status: number, ms: number) => void;

const round2 = (n: number) => Math.round(n * 100) / 100;
const str = JSON.stringify;

/**
 * One line per request, built from facts the gateway owns: the path is the normalized path without its query
 * string, and no header is copied, so tokens, cookies and API keys cannot leak here.
 * The line is serialized by hand and written straight to the logger's destination (the same stream and line
 * format as pino's own lines): pino's generic serializer cost ~7% of the proxy's CPU in a profile under load.
 * Null when access logging is off or the logger's level hides info lines.
 */
export function createAccessLog(logger: Logger, enabled: boolean): AccessLog | null {
  if (!enabled || !logger.isLevelEnabled('info')) return null;
  const stream = (logger as unknown as Record<symbol, LineSink>)[pino.symbols.streamSym];
  const out = isBufferedDestination(stream) ? lineBatcher(stream) : (s: string) => { stream.write(s); };
  return (ctx, status, ms) => {
    let line = `{"level":30,"time":${Date.now()},"type":"access","requestId":${str(ctx.requestId)},"method":${str(ctx.req.method)}`;
    if (ctx.route !== null) line += `,"route":${str(ctx.route.name)}`;
    line += `,"path":${str(ctx.path)},"status":${status},"bytesIn":${ctx.bytesIn},"bytesOut":${ctx.bytesOut},"durationMs":${round2(ms)}`;
    if (ctx.clientIp) line += `,"clientIp":${str(ctx.clientIp)}`;
    const consumer = ctx.identity?.consumer ?? ctx.identity?.id;
    if (consumer !== undefined) line += `,"consumer":${str(consumer)}`;
    if (ctx.target !== undefined) line += `,"upstream":${str(ctx.target)}`;
    if (ctx.upstreamMs >= 0) line += `,"upstreamMs":${round2(ctx.upstreamMs)}`;
    if (ctx.errorCode !== undefined) line += `,"error":${str(ctx.errorCode)}`;
    // Model routing: the model asked for and every attempt (upstream, model, result, status, ms); names only, never content.
    if (ctx.ai !== null) line += `,"model":${str(ctx.ai.requested)},"attempts":${str(ctx.ai.attempts)}`;
    if (ctx.cacheStatus !== null) line += `,"cache":${str(ctx.cacheHit ? 'hit' : 'miss')}`;
    out(line + '}\n');
  };
}

interface LineSink { write(s: string): unknown; flushSync?(): void }

/**
 * Access lines to the process's own stdout destination are handed over in batches of up to 16 KiB, at the
 * latest 100 ms after the first line of a batch. sonic-boom re-measures its whole pending string
 * (`Buffer.byteLength`) on every write and hands each 4 KiB to the libuv thread pool; a line per write cost
 * ~2.1 µs of CPU per request pinned to one core, a batch ~0.8 µs (docs/performance.md). One batcher per
 * destination, shared by every generation that logs to it, so lines keep their order across a reload.
 * Error and lifecycle lines are pino's own and are not delayed; `flushAccessLog()` (shutdown) and process exit
 * hand over what is pending.
 */
const BATCH_BYTES = 16_384;
const BATCH_MS = 100;
const batchers = new Map<LineSink, { add(line: string): void; flush(): void }>();

function lineBatcher(stream: LineSink): (line: string) => void {
  let b = batchers.get(stream);
  if (b === undefined) {
    let pending = '';
    let timer: NodeJS.Timeout | null = null;
    const flush = () => {
      if (timer !== null) { clearTimeout(timer); timer = null; }
      if (pending === '') return;
      const s = pending;
      pending = '';
      stream.write(s);
    };
    b = {
      flush,
      add(line) {
        pending += line;
        if (pending.length >= BATCH_BYTES) flush();
        else if (timer === null) { timer = setTimeout(flush, BATCH_MS); timer.unref(); }
      },
    };
    if (batchers.size === 0) process.once('exit', () => { flushAccessLog(); for (const s of batchers.keys()) { try { s.flushSync?.(); } catch { /* closing anyway */ } } });
    batchers.set(stream, b);
  }
  return b.add;
}

/** Hands every pending access line to its destination (before the logger's own flush at shutdown). */
export function flushAccessLog(): void {
  for (const b of batchers.values()) b.flush();
}
