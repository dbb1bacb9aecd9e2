import type { Logger } from '../observability/logger.ts';

/**
 * A warn logger that writes at most one line per `everyMs` per message: a Redis outage must not
 * turn into one log line per request. The next line after a quiet spell says how many were held back.
 */
export function throttledWarn(logger: Logger, everyMs: number): (msg: string, err?: unknown) => void {
  const last = new Map<string, { at: number; suppressed: number }>();
  return (msg, err) => {
    const now = Date.now();
    const s = last.get(msg);
    if (s !== undefined && now - s.at < everyMs) { s.suppressed++; return; }
    const suppressed = s?.suppressed ?? 0;
    last.set(msg, { at: now, suppressed: 0 });
    const e = err as { message?: string; code?: string } | undefined;
    logger.warn({ error: e?.message, code: e?.code, suppressed: suppressed || undefined }, msg);
  };
}
