import { randomFillSync } from 'node:crypto';

/** Random hex from a refilled pool: a request needs 8 random bytes, and one syscall per request is wasteful. */
const pool = Buffer.allocUnsafe(4096);
let offset = pool.length;
/** Offset of `bytes` fresh random bytes in `pool`. */
function take(bytes: number): number {
  if (offset + bytes > pool.length) { randomFillSync(pool); offset = 0; }
  const at = offset;
  offset += bytes;
  return at;
}
export function randomHex(bytes: number): string {
  const at = take(bytes);
  return pool.toString('hex', at, at + bytes);
}

/**
 * The ids every request gets are formatted into a scratch buffer and read out as one string: node's randomUUID()
 * joins 20 pieces (~600 bytes of garbage a request, the largest allocation after the access line), and a
 * hex-then-slice traceparent makes four strings for one.
 */
const HEX = Buffer.from('0123456789abcdef', 'latin1');
const scratch = Buffer.allocUnsafe(64);
function hexInto(from: number, bytes: number, to: number): number {
  for (let i = 0; i < bytes; i++) { const b = pool[from + i]; scratch[to++] = HEX[b >> 4]; scratch[to++] = HEX[b & 15]; }
  return to;
}

/** A random (version 4, RFC 9562 §5.4) UUID. */
export function newRequestId(): string {
  const at = take(16);
  pool[at + 6] = (pool[at + 6] & 0x0f) | 0x40;
  pool[at + 8] = (pool[at + 8] & 0x3f) | 0x80;
  let o = hexInto(at, 4, 0);
  scratch[o++] = 45; o = hexInto(at + 4, 2, o);
  scratch[o++] = 45; o = hexInto(at + 6, 2, o);
  scratch[o++] = 45; o = hexInto(at + 8, 2, o);
  scratch[o++] = 45; o = hexInto(at + 10, 6, o);
  return scratch.toString('latin1', 0, o);
}

/** `00-<new trace id>-<new span id>-01`. */
function newTraceparent(): string {
  const at = take(24);
  scratch[0] = 48; scratch[1] = 48; scratch[2] = 45;
  let o = hexInto(at, 16, 3);
  scratch[o++] = 45; o = hexInto(at + 16, 8, o);
  scratch[o++] = 45; scratch[o++] = 48; scratch[o++] = 49;
  return scratch.toString('latin1', 0, o);
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
  return newTraceparent();
}

const REQUEST_ID = /^[A-Za-z0-9._:@\/+=-]{1,128}$/;

/** An inbound X-Request-Id is kept when it is well-formed (so clients can correlate); otherwise a new one is made. */
export function requestIdFrom(inbound: string | undefined): string {
  return inbound !== undefined && REQUEST_ID.test(inbound) ? inbound : newRequestId();
}
