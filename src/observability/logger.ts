import { pino, type Logger } from 'pino';
import { createRequire } from 'node:module';
import { LogSink } from './log-sink.ts';

// pino-pretty is for development only; loading it lazily keeps it out of production processes.
const requireLazy = createRequire(import.meta.url);

export type { Logger };

/**
 * JSON to stdout in staging/production; human-readable in development.
 * No redaction pass: pino's path redaction costs ~6% of the proxy's CPU, and the access log never copies
 * headers or raw query strings in the first place. Code must not log request headers or bodies.
 */
export function createLogger(opts: { level: string; format: 'json' | 'pretty'; destination?: NodeJS.WritableStream }): Logger {
  const base = {
    level: opts.level,
    base: undefined,
    // epoch milliseconds: ISO formatting per line costs more than the rest of the access log
    timestamp: pino.stdTimeFunctions.epochTime,
  };
  if (opts.format === 'pretty') return pino(base, (requireLazy('pino-pretty') as typeof import('pino-pretty'))({ colorize: process.stdout.isTTY, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,type', singleLine: true, destination: opts.destination as never }));
  if (opts.destination) return pino(base, opts.destination as never);
  return pino(base, stdoutSink());
}

/** One sink per process for fd 1, shared by every logger made (a reload makes none, but tests and workers may). */
let stdout: LogSink | null = null;
function stdoutSink(): LogSink {
  if (stdout === null) {
    const sink = stdout = new LogSink(1);
    process.once('exit', () => sink.flushSync());
  }
  return stdout;
}

/** The logger's destination stream (pino keeps it under a symbol). */
export function destinationOf(logger: Logger): { write(s: string): unknown } {
  return (logger as unknown as Record<symbol, { write(s: string): unknown }>)[pino.symbols.streamSym];
}

/** The LogSink a logger writes to, or null when it writes elsewhere (a test's stream, pino-pretty). */
export function logSinkOf(logger: Logger): LogSink | null {
  const d = destinationOf(logger);
  return d instanceof LogSink ? d : null;
}
