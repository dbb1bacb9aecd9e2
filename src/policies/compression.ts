import { z } from 'zod';
import { constants, createBrotliCompress, createGzip } from 'node:zlib';
import { obj, size } from '../config/zod-helpers.ts';
import type { Issue } from '../config/errors.ts';
import type { BodyEncoder, ResponseCompressor, Step } from '../pipeline/context.ts';
import type { Policy } from '../pipeline/policy.ts';

/**
 * `compression:` on a route: responses compressed with brotli or gzip (node:zlib) when the client's
 * Accept-Encoding allows it, the response's media type is listed and its body is not known to be smaller than
 * `minSize`. Streamed (zlib's own 16 KiB window is all that is held). Never on a response the upstream already
 * encoded, never on `text/event-stream` unless that type is listed by name (then each upstream chunk is flushed
 * as it comes, so events are not held back), never on 204/206/304, `Cache-Control: no-transform` or HEAD.
 * `Vary: Accept-Encoding` on every response of a listed type. Routes without the key run nothing.
 */
const ENCODINGS = ['br', 'gzip'] as const;
type Encoding = (typeof ENCODINGS)[number];
export const DEFAULT_COMPRESSIBLE = ['application/json', 'application/*+json', 'application/x-ndjson', 'application/javascript', 'application/xml', 'application/*+xml', 'image/svg+xml', 'text/*'];

const compressionObject = obj({
  types: z.array(z.string()).min(1).prefault(DEFAULT_COMPRESSIBLE).describe('Media types to compress: `type/subtype`, `type/*`, `application/*+json` (`text/event-stream` only when named).'),
  minSize: size.prefault('1kb').describe('A response whose Content-Length is below this is sent as it is (a response of unknown length is compressed).'),
  encodings: z.array(z.enum(ENCODINGS)).min(1).prefault(['br', 'gzip']).describe('Encodings offered, in order of preference when the client accepts several equally.'),
});
export const compressionRouteKeys = { compression: z.union([z.boolean(), compressionObject]).optional().describe('Compress responses with brotli or gzip: true (defaults) or { types, minSize, encodings } (docs/configuration.md).') };
export type CompressionSetting = z.output<typeof compressionObject>;
type Route = { compression?: boolean | CompressionSetting; websocket?: boolean };
const MEDIA_RANGE = /^[a-z0-9!#$&^_.+-]+\/(\*|\*\+[a-z0-9!#$&^_.+-]+|[a-z0-9!#$&^_.+-]+)$/;

/**
 * br quality 4 and gzip level 6: the usual streaming choices (quality 11 costs ~20x the CPU for a few %). An event
 * stream's encoder flushes on every write (one thread-pool round trip per upstream chunk, not two).
 */
function newEncoder(enc: Encoding, flushEach: boolean): BodyEncoder {
  if (enc === 'br') {
    return createBrotliCompress({ params: { [constants.BROTLI_PARAM_QUALITY]: 4 }, ...(flushEach ? { flush: constants.BROTLI_OPERATION_FLUSH } : {}) }) as unknown as BodyEncoder;
  }
  return createGzip({ level: 6, ...(flushEach ? { flush: constants.Z_SYNC_FLUSH } : {}) }) as unknown as BodyEncoder;
}

export function compressionStep(setting: CompressionSetting): Step {
  const exact = new Set<string>();
  const prefixes: string[] = [];
  const suffixed: Array<[string, string]> = [];
  for (const t of setting.types) {
    const m = t.trim().toLowerCase();
    if (m.endsWith('/*')) prefixes.push(m.slice(0, -1));
    else if (m.includes('/*+')) { const i = m.indexOf('/*+'); suffixed.push([m.slice(0, i + 1), m.slice(i + 2)]); }
    else exact.add(m);
  }
  // An event stream is only compressed when listed by name: `text/*` alone must not start buffering events.
  const sseListed = exact.has('text/event-stream');
  const listed = (media: string): boolean => {
    if (exact.has(media)) return true;
    if (media === 'text/event-stream') return false;
    for (const p of prefixes) if (media.startsWith(p)) return true;
    for (const [type, suffix] of suffixed) if (media.startsWith(type) && media.endsWith(suffix)) return true;
    return false;
  };
  const compressors = new Map<Encoding | 'identity', ResponseCompressor>();
  for (const enc of [...setting.encodings, 'identity'] as const) compressors.set(enc, compressor(enc, listed, sseListed, setting.minSize));
  const identity = compressors.get('identity')!;
  return (ctx) => {
    const h = ctx.req.headers;
    ctx.compressor = ctx.req.method === 'HEAD' ? identity : compressors.get(negotiate(h['accept-encoding'], setting.encodings)) ?? identity;
  };
}

function compressor(enc: Encoding | 'identity', listed: (media: string) => boolean, sseListed: boolean, minSize: number): ResponseCompressor {
  return {
    begin(status, headers, contentType) {
      if (contentType === undefined || status < 200 || status === 204 || status === 206 || status === 304) return null;
      const semi = contentType.indexOf(';');
      const media = (semi < 0 ? contentType : contentType.slice(0, semi)).trim().toLowerCase();
      const sse = media === 'text/event-stream';
      if (!(sse ? sseListed : listed(media))) return null;
      let length = -1;
      let etag = -1;
      let vary = -1;
      for (let i = 0; i < headers.length; i += 2) {
        const n = headers[i].toLowerCase();
        if (n === 'content-encoding') { if (headers[i + 1].trim().toLowerCase() !== 'identity') return null; }
        else if (n === 'cache-control') { if (/(^|,)\s*no-transform\s*(,|$)/i.test(headers[i + 1])) return null; }
        else if (n === 'content-length') length = i;
        else if (n === 'etag') etag = i;
        else if (n === 'vary') vary = i;
      }
      // The answer depends on Accept-Encoding for every response of this type, compressed this time or not.
      if (vary < 0) headers.push('vary', 'Accept-Encoding');
      else if (!/(^|,)\s*(\*|accept-encoding)\s*(,|$)/i.test(headers[vary + 1])) headers[vary + 1] += ', Accept-Encoding';
      if (enc === 'identity' || (length >= 0 && Number(headers[length + 1]) < minSize)) return null;
      // A compressed body is another representation: its length is unknown and a strong validator no longer holds.
      if (length >= 0) { headers.splice(length, 2); if (etag > length) etag -= 2; }
      if (etag >= 0 && !headers[etag + 1].startsWith('W/')) headers[etag + 1] = 'W/' + headers[etag + 1];
      headers.push('content-encoding', enc);
      return newEncoder(enc, sse);
    },
  };
}

/**
 * The best coding `accept` allows among `offered` (server order breaks ties), or 'identity'. No Accept-Encoding
 * means identity (RFC 9110 allows any coding then, but a client that says nothing often cannot decode).
 */
export function negotiate(accept: string | undefined, offered: readonly Encoding[]): Encoding | 'identity' {
  if (accept === undefined || accept === '') return 'identity';
  let star = -1;
  const q = new Map<string, number>();
  for (const part of accept.split(',')) {
    const [name, ...params] = part.split(';');
    const coding = name.trim().toLowerCase();
    let weight = 1;
    for (const p of params) {
      const m = /^\s*q\s*=\s*([0-9.]+)\s*$/i.exec(p);
      if (m) weight = Number(m[1]);
    }
    if (Number.isNaN(weight)) continue;
    if (coding === '*') star = weight;
    else q.set(coding === 'x-gzip' ? 'gzip' : coding, weight);
  }
  let best: Encoding | 'identity' = 'identity';
  let bestQ = 0;
  for (const enc of offered) {
    const w = q.get(enc) ?? (star >= 0 ? star : 0);
    if (w > bestQ) { best = enc; bestQ = w; }
  }
  return best;
}

export const compressionPolicy: Policy<{ routes: readonly Route[] }, Route> = {
  name: 'compression',
  check(c, out: Issue[]) {
    c.routes.forEach((r, i) => {
      const s = r.compression;
      if (s === undefined || s === false) return;
      if (r.websocket) out.push({ path: ['routes', i, 'compression'], message: 'a WebSocket route tunnels frames; compression does not apply (permessage-deflate is negotiated end to end)' });
      if (typeof s === 'object') s.types.forEach((t, j) => {
        if (!MEDIA_RANGE.test(t.trim().toLowerCase())) out.push({ path: ['routes', i, 'compression', 'types', j], message: `"${t}" is not a media type (type/subtype, type/* or type/*+suffix)` });
      });
    });
  },
  compile({ route }) {
    const s = route.compression;
    if (s === undefined || s === false) return undefined;
    return compressionStep(s === true ? compressionObject.parse({}) : s);
  },
};
