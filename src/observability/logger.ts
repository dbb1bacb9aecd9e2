import { pino, type Logger } from 'pino';
import { createRequire } from 'node:module';

// pino-pretty is for development only; loading it lazily keeps it out of production processes.
const requireLazy = createRequire(import.meta.url);

export type { Logger };

/**
 * JSON to stdout in staging/production; human-readable in development.
 * No redaction pass: pino's path redaction costs ~6% of the proxy's CPU, and the access log never copies
 * headers or raw query strings in the first place. Code must not log request headers or bodies.
 */
/** Destinations createLogger buffers itself (stdout in JSON): access lines to them may be batched (access-log.ts). */
const buffered = new WeakSet<object>();
export const isBufferedDestination = (stream: object): boolean => buffered.has(stream);

export function createLogger(opts: { level: string; format: 'json' | 'pretty'; destination?: NodeJS.WritableStream }): Logger {
  const base = {
    level: opts.level,
    base: undefined,
    // epoch milliseconds: ISO formatting per line costs more than the rest of the access log
    timestamp: pino.stdTimeFunctions.epochTime,
  };
  if (opts.format === 'pretty') return pino(base, (requireLazy('pino-pretty') as typeof import('pino-pretty'))({ colorize: process.stdout.isTTY, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,type', singleLine: true, destination: opts.destination as never }));
  if (opts.destination) return pino(base, opts.destination as never);
  const dest = pino.destination({ sync: false, minLength: 4096 });
  buffered.add(dest);
  // Buffered for throughput, but a quiet gateway must not hold its lines (startup, errors) until 4 KiB pile up.
  setInterval(() => { try { dest.flush(); } catch { /* not open yet, or already closed */ } }, 1000).unref();
  return pino(base, dest);
}
