import { pino, type Logger } from 'pino';
import pretty from 'pino-pretty';

export type { Logger };

/**
 * JSON to stdout in staging/production; human-readable in development.
 * Redaction is a second line of defence: the access log never copies headers or raw query strings in the first place.
 */
export function createLogger(opts: { level: string; format: 'json' | 'pretty'; destination?: NodeJS.WritableStream }): Logger {
  const base = {
    level: opts.level,
    base: undefined,
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: ['*.authorization', '*.cookie', '*.password', '*.token', '*.secret', '*["x-api-key"]', 'headers.*'], censor: '[redacted]' },
  };
  if (opts.format === 'pretty') return pino(base, pretty({ colorize: process.stdout.isTTY, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,type', singleLine: true, destination: opts.destination as never }));
  return pino(base, (opts.destination as never) ?? pino.destination({ sync: false, minLength: 4096 }));
}
