import type { Readable } from 'node:stream';
import type { ForwardBody, RequestContext } from './context.ts';
import { replayBody } from './body-peek.ts';

/**
 * Replacing the request body the proxy forwards: the kernel's one facility for it, used by the body transform,
 * claim injection, and whatever rewrites bodies next (a model-name rewrite, PII redaction).
 *
 * Contract
 * - A step sets `ctx.forwardBody` (through `replaceBody` or `setForwardBody`); the proxy calls its `open()` once,
 *   when it dispatches, after every step has run, and sends what it returns instead of the client's body.
 *   Rules that edit the same body share one ForwardBody (src/pipeline/request-body.ts records their edits and
 *   serializes once), so the last `open()` sees every edit.
 * - `open()` returns a Buffer (the whole body) or a Readable, and its length in bytes, or -1 when it is not
 *   known in advance. The proxy sends `Content-Length: <length>` for a known length and chunked transfer coding
 *   otherwise; the client's `Content-Length` and `Transfer-Encoding` are never forwarded with a replacement.
 * - The client's body may only be consumed through the shared peek (`peekBody`) and, for a streamed replacement,
 *   by piping the rest of `ctx.req` into it (`restOf`): what the peek read is in `ctx.bodyPrefix`. A replacement
 *   that needs to see past the peek must stream; it never buffers the whole body (at most `server.limits.bodyPeek`
 *   of what it rewrites).
 * - A stream may fail with a GatewayError (a malformed part, a refused value found late): the proxy aborts the
 *   upstream request and the client gets that error, as long as no response byte has been sent.
 * - The client's declared size was checked against the route's `limits.maxBodySize` before any of this; a
 *   chunked client body streamed through a replacement is counted as it goes up, like any chunked body.
 * - A replaced body is never retried on another target (the upstream may have read it).
 */

/** Forwards `body` (the whole body, its length known) instead of the client's. */
export function replaceBody(ctx: RequestContext, body: Buffer): void {
  ctx.forwardBody = { open: () => ({ body, length: body.length }) };
}

/** Forwards what `open` returns instead of the client's body (see the contract above). */
export function setForwardBody(ctx: RequestContext, fb: ForwardBody): void {
  ctx.forwardBody = fb;
}

/** The client's body from where the peek stopped: the peeked bytes followed by the unread rest of the request. */
export function restOf(ctx: RequestContext): Buffer | Readable {
  return replayBody(ctx.bodyPrefix ?? Buffer.alloc(0), ctx.req);
}
