import type { IncomingMessage } from 'node:http';
import { PassThrough, type Readable } from 'node:stream';
import { GatewayError } from '../errors.ts';
import type { RequestContext } from './context.ts';

/**
 * A bounded look at the start of a request body (a captcha token, a content-routing field) that
 * leaves the rest of the body on the wire: the bytes read are kept in `ctx.bodyPrefix` and the
 * proxy replays them, unchanged, before the remainder (see `replayBody`).
 */

export interface Peek { bytes: Buffer; complete: boolean }

const EMPTY: Peek = Object.freeze({ bytes: Buffer.alloc(0), complete: true }) as Peek;
/** One peek per request, shared by every caller (content routing, captcha): the body can be read only once. */
const peeks = new WeakMap<RequestContext, { promise: Promise<Peek>; result: Peek | null }>();

/** Reads up to `cap` bytes of the request body without consuming the rest; stores them in ctx.bodyPrefix so the proxy replays them unchanged before the remainder. Idempotent: a second call returns the same bytes. Resolves with { bytes, complete } where complete = the whole body fit in the cap. */
export function peekBody(ctx: RequestContext, cap: number): Promise<{ bytes: Buffer; complete: boolean }> {
  const prior = peeks.get(ctx);
  if (prior !== undefined) {
    // A later caller that wants more than was read gets the rest up to its own cap.
    if (prior.result === null || prior.result.complete || prior.result.bytes.length >= cap) return prior.promise.then((p) => clip(p, cap));
  } else {
    const h = ctx.req.headers;
    const cl = h['content-length'];
    if ((cl === undefined || cl === '0') && h['transfer-encoding'] === undefined) return Promise.resolve(EMPTY);
    if (cl !== undefined && ctx.route !== null && Number(cl) > ctx.route.maxBodySize) {
      return Promise.reject(new GatewayError('payload_too_large', `The request body exceeds this route's limit of ${ctx.route.maxBodySize} bytes.`, { headers: { connection: 'close' } }));
    }
    // If the request fails before the proxy takes the body, what is left must still be drained.
    ctx.finally(drainRest);
  }
  const before = ctx.bodyPrefix;
  const entry = { promise: null as unknown as Promise<Peek>, result: null as Peek | null };
  entry.promise = readPrefix(ctx.req, cap, before).then((p) => {
    ctx.bodyPrefix = p.bytes;
    entry.result = p;
    return p;
  });
  peeks.set(ctx, entry);
  return entry.promise;
}

function clip(p: Peek, cap: number): Peek {
  return p.bytes.length <= cap ? p : { bytes: p.bytes.subarray(0, cap), complete: false };
}

/**
 * Pulls chunks with read() until more than `cap` bytes or the end have been seen. The surplus
 * of the last chunk is unshifted back, so past the cap at most the stream's own buffer
 * (one high-water mark) is held; the socket is paused by ordinary backpressure.
 */
function readPrefix(req: IncomingMessage, cap: number, already: Buffer | null): Promise<Peek> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = already !== null && already.length ? [already] : [];
    let n = already?.length ?? 0;
    const cl = req.headers['content-length'];
    const declared = cl === undefined ? -1 : Number(cl);
    let settled = false;
    const done = (complete: boolean, err?: Error) => {
      if (settled) return;
      settled = true;
      req.off('readable', onReadable).off('end', onEnd).off('error', onError).off('close', onClose);
      if (err !== undefined) reject(err);
      else resolve({ bytes: chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, n), complete });
    };
    const onReadable = () => {
      let chunk: Buffer | null;
      while ((chunk = req.read() as Buffer | null) !== null) {
        if (n + chunk.length > cap) {
          const keep = cap - n;
          if (keep > 0) { chunks.push(chunk.subarray(0, keep)); n = cap; }
          req.unshift(chunk.subarray(keep));
          return done(false);
        }
        chunks.push(chunk);
        n += chunk.length;
        // With a declared length there is no need to wait for one more byte to know the body goes on.
        if (n === cap && declared > cap) return done(false);
      }
    };
    const onEnd = () => done(true);
    const onError = (err: Error) => done(false, clientGone(err));
    const onClose = () => done(false, clientGone());
    if (req.readableEnded) return done(true);
    req.on('readable', onReadable).on('end', onEnd).on('error', onError).on('close', onClose);
  });
}

function clientGone(err?: Error): GatewayError {
  const e = new GatewayError('bad_request', 'The request body ended before it was complete.');
  if (err !== undefined) e.cause = err;
  return e;
}

/** After the response: a body the proxy never took is discarded, as Node does for unread bodies, so keep-alive goes on. */
function drainRest(ctx: RequestContext): void {
  const req = ctx.req;
  if (!req.complete && !req.destroyed && !req.readableFlowing) req.resume();
}

/**
 * The body to send upstream after a peek: the peeked bytes alone when they are the whole body,
 * else a stream of the prefix followed by the rest of `req`. Piping (rather than iterating
 * later) means other 'data' listeners on `req`, such as the chunked-body limit, see every chunk too.
 */
export function replayBody(prefix: Buffer, req: IncomingMessage): Buffer | Readable {
  if (req.readableEnded) return prefix;
  const out = new PassThrough();
  if (prefix.length) out.write(prefix);
  const fail = (err?: Error) => out.destroy(err ?? new Error('request body aborted'));
  req.once('error', fail).once('aborted', fail);
  req.pipe(out);
  return out;
}

// ---------------------------------------------------------------------------------------------

/** A field from a peeked body: JSON (dot path, e.g. "a.b.0.c"), application/x-www-form-urlencoded, or multipart/form-data (fields before the first file part). Undefined when absent or not parseable within the peek. */
export function extractField(bytes: Buffer, contentType: string | undefined, field: string): string | undefined {
  if (contentType === undefined || bytes.length === 0) return undefined;
  const semi = contentType.indexOf(';');
  const media = (semi < 0 ? contentType : contentType.slice(0, semi)).trim().toLowerCase();
  if (media === 'application/json' || media.endsWith('+json')) return jsonField(bytes, field);
  if (media === 'application/x-www-form-urlencoded') return formField(bytes, field);
  if (media === 'multipart/form-data') {
    const boundary = param(contentType, 'boundary');
    return boundary === undefined ? undefined : multipartField(bytes, boundary, field);
  }
  return undefined;
}

function jsonField(bytes: Buffer, path: string): string | undefined {
  let v: unknown;
  try { v = JSON.parse(bytes.toString('utf8')); } catch { return undefined; }
  for (const key of path.split('.')) {
    if (Array.isArray(v)) {
      if (!/^\d+$/.test(key)) return undefined;
      v = v[Number(key)];
    } else if (v !== null && typeof v === 'object') {
      if (!Object.hasOwn(v, key)) return undefined;
      v = (v as Record<string, unknown>)[key];
    } else return undefined;
  }
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return undefined;
}

/** A truncated peek may cut the last pair: its value is then the part that arrived (callers that care check `complete`). */
function formField(bytes: Buffer, field: string): string | undefined {
  const v = new URLSearchParams(bytes.toString('utf8')).get(field);
  return v === null ? undefined : v;
}

function param(contentType: string, name: string): string | undefined {
  for (const part of contentType.split(';').slice(1)) {
    const eq = part.indexOf('=');
    if (eq < 0 || part.slice(0, eq).trim().toLowerCase() !== name) continue;
    let v = part.slice(eq + 1).trim();
    if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) v = v.slice(1, -1);
    return v || undefined;
  }
  return undefined;
}

const CRLF2 = Buffer.from('\r\n\r\n');

/** Walks the parts in order; stops at the first file part (fields after it would need the file's bytes). */
function multipartField(bytes: Buffer, boundary: string, field: string): string | undefined {
  const delim = Buffer.from(`--${boundary}`);
  const next = Buffer.from(`\r\n--${boundary}`);
  let at = bytes.indexOf(delim);
  if (at < 0) return undefined;
  at += delim.length;
  for (;;) {
    // After a delimiter: "--" ends the body, else CRLF and the part's headers.
    if (bytes[at] === 0x2d && bytes[at + 1] === 0x2d) return undefined;
    const lineEnd = bytes.indexOf('\r\n', at);
    if (lineEnd < 0) return undefined;
    const headEnd = bytes.indexOf(CRLF2, lineEnd);
    if (headEnd < 0) return undefined;
    const head = bytes.toString('utf8', lineEnd + 2, headEnd);
    const disposition = /^content-disposition:(.*)$/im.exec(head)?.[1];
    if (disposition === undefined) return undefined;
    if (param(disposition, 'filename') !== undefined || /;\s*filename\*?=/i.test(disposition)) return undefined;
    const bodyStart = headEnd + 4;
    const end = bytes.indexOf(next, bodyStart);
    if (end < 0) return undefined; // the part runs past the peek
    if (param(disposition, 'name') === field) return bytes.toString('utf8', bodyStart, end);
    at = end + next.length;
  }
}
