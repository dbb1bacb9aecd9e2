// When and how long to wait before trying a call again. Only calls that may be repeated are retried
// (idempotent methods, or a call its caller marked idempotent), and only as often and as late as allowed.
import { GatewayProblem } from './problem.ts';

export interface RetryOptions {
  /** Attempts in all, the first included (1 = no retry). Default 3. */
  attempts?: number;
  /** The longest wait before an attempt, ms. A server asking for longer is not retried: its problem is thrown. Default 30 000. */
  maxDelay?: number;
  /** First backoff step for failures that state no wait (network errors, 502/504), ms; doubles per attempt, with jitter. Default 250. */
  baseDelay?: number;
  /** Statuses worth another attempt. Default 408, 429, 502, 503, 504. */
  statuses?: readonly number[];
}

export type ResolvedRetry = Required<RetryOptions>;

export const RETRY_DEFAULTS: ResolvedRetry = { attempts: 3, maxDelay: 30_000, baseDelay: 250, statuses: [408, 429, 502, 503, 504] };

/** Methods that RFC 9110 makes idempotent: repeating them has the effect of sending them once. */
export const IDEMPOTENT_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);

export function resolveRetry(...layers: Array<RetryOptions | false | undefined>): ResolvedRetry {
  let r = RETRY_DEFAULTS;
  for (const l of layers) {
    if (l === false) r = { ...r, attempts: 1 };
    else if (l !== undefined) r = { ...r, ...definedOnly(l) };
  }
  return r;
}

function definedOnly(o: RetryOptions): RetryOptions {
  const out: RetryOptions = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}

/**
 * How long to wait before attempt `attempt + 1` after `failure` (a problem, or a network error), in ms; null
 * when not to retry. A stated wait wins: `Retry-After`, else the longest `t` of an exhausted `RateLimit` item;
 * otherwise exponential backoff with full jitter.
 */
export function retryDelay(failure: unknown, attempt: number, opts: ResolvedRetry): number | null {
  if (attempt >= opts.attempts) return null;
  let stated: number | undefined;
  if (failure instanceof GatewayProblem) {
    if (!opts.statuses.includes(failure.status)) return null;
    stated = failure.retryAfter;
    if (stated === undefined && failure.rateLimit !== undefined) {
      for (const l of failure.rateLimit.limits) if (l.remaining <= 0 && l.reset !== undefined) stated = Math.max(stated ?? 0, l.reset);
    }
  } else if (!isNetworkError(failure)) return null;
  if (stated !== undefined) {
    const ms = stated * 1000;
    return ms > opts.maxDelay ? null : ms;
  }
  const cap = Math.min(opts.maxDelay, opts.baseDelay * 2 ** (attempt - 1));
  return Math.round(cap / 2 + Math.random() * (cap / 2));
}

/** fetch() rejects with a TypeError when the connection fails; an abort or timeout is the caller's decision, never retried. */
export function isNetworkError(e: unknown): boolean {
  return e instanceof TypeError;
}

/** Resolves after `ms`, or rejects with the signal's reason when it aborts first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) { reject(signal.reason); return; }
    const onAbort = () => { clearTimeout(timer); reject(signal!.reason); };
    const timer = setTimeout(() => { signal?.removeEventListener('abort', onAbort); resolve(); }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
