import { randomFillSync, randomUUID } from 'node:crypto';

/** Random hex from a refilled pool: a request needs 8 random bytes, and one syscall per request is wasteful. */
const pool = Buffer.allocUnsafe(4096);
let offset = pool.length;
export function randomHex(bytes: number): string {
  if (offset + bytes > pool.length) { randomFillSync(pool); offset = 0; }
  const s = pool.toString('hex', offset, offset + bytes);
  offset += bytes;
  return s;
}

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;

/**
 * The caller's W3C trace context, or null when absent or invalid: invalid or all-zero ids are treated as
 * absent (§3.2.2.3). One parser for both the plain traceparent and OpenTelemetry spans (src/observability/tracing.ts).
 */
export function parseTraceparent(inbound: string | undefined): { traceId: string; spanId: string; flags: string } | null {
  if (inbound === undefined) return null;
  const m = TRACEPARENT.exec(inbound);
  if (m && m[1] !== 'ff' && !/^0+$/.test(m[2]) && !/^0+$/.test(m[3]) && (m[1] !== '00' || m[5] === undefined)) {
    return { traceId: m[2], spanId: m[3], flags: m[4] };
  }
  return null;
}

/** Continues the caller's trace with the gateway as a new parent span, or starts one (tracing off). */
export function nextTraceparent(inbound: string | undefined): string {
  const p = parseTraceparent(inbound);
  if (p !== null) return `00-${p.traceId}-${randomHex(8)}-${p.flags}`;
  // One hex conversion for both ids (a new trace id and the gateway's span id).
  const ids = randomHex(24);
  return `00-${ids.slice(0, 32)}-${ids.slice(32)}-01`;
}

const REQUEST_ID = /^[A-Za-z0-9._:@\/+=-]{1,128}$/;

/** An inbound X-Request-Id is kept when it is well-formed (so clients can correlate); otherwise a new one is made. */
export function requestIdFrom(inbound: string | undefined): string {
  return inbound !== undefined && REQUEST_ID.test(inbound) ? inbound : randomUUID();
}
