import type { IncomingHttpHeaders } from 'node:http';
import { foldHeaderName, type HeaderFilter } from './strip-headers.ts';

/**
 * Hop-by-hop (RFC 9110 §7.6.1) plus headers the gateway owns and rebuilds itself, and `Proxy` (httpoxy,
 * CVE-2016-5385: CGI-style servers turn it into HTTP_PROXY, which HTTP clients take as their outbound proxy).
 */
const REQUEST_DROP = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'proxy-authorization',
  'host', 'expect', 'forwarded', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-real-ip',
  'x-request-id', 'traceparent', 'proxy',
]);
const X_FORWARDED = 'x-forwarded-';
const RESPONSE_DROP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'server', 'x-powered-by']);
/** Kept on WebSocket handshakes, where they are the point. */
const UPGRADE_KEEP = new Set(['connection', 'upgrade']);

export interface ForwardedFacts {
  clientIp: string;
  peer: string;
  peerTrusted: boolean;
  tls: boolean;
  requestId: string;
  traceparent: string;
  host: string;
}

/**
 * Headers for the upstream request. `strip` holds identity headers the gateway sets itself (X-User-Id,
 * X-Consumer-Id, ...) and `server.stripHeaders`: inbound copies are always removed so a client cannot spoof them.
 * Every name is compared folded (`X_User_Id` is `x-user-id`), and an `X-Forwarded-*` the gateway does not build
 * itself (`-Prefix`, `-Port`, `-Client-Cert`, ...) passes only from a trusted peer, like the ones it does.
 */
export function upstreamRequestHeaders(h: IncomingHttpHeaders, f: ForwardedFacts, strip: HeaderFilter, extra: string[] | null, upgrade: boolean): Record<string, string | string[]> {
  const listed = connectionListed(h.connection);
  const out: Record<string, string | string[]> = {};
  for (const k in h) {
    // HTTP/2 pseudo-headers (`:method`, `:path`, `:authority`, `:scheme`) are the request line, not headers.
    if (k.charCodeAt(0) === 58) continue;
    // Inbound names are already lowercase (node:http, HTTP/2): only `_` and `.` can need folding.
    const n = k.indexOf('_') === -1 && k.indexOf('.') === -1 ? k : foldHeaderName(k);
    if ((REQUEST_DROP.has(n) && !(upgrade && UPGRADE_KEEP.has(k))) || strip.has(n) || (listed !== null && listed.has(k))) continue;
    if (!f.peerTrusted && n.length > 12 && n.startsWith(X_FORWARDED)) continue;
    const v = h[k];
    if (v !== undefined) out[k] = v;
  }
  const xff = h['x-forwarded-for'];
  out['x-forwarded-for'] = f.peerTrusted && xff ? `${Array.isArray(xff) ? xff.join(', ') : xff}, ${f.peer}` : f.peer;
  const proto = f.peerTrusted ? h['x-forwarded-proto'] : undefined;
  out['x-forwarded-proto'] = typeof proto === 'string' ? proto : f.tls ? 'https' : 'http';
  const fhost = f.peerTrusted ? h['x-forwarded-host'] : undefined;
  out['x-forwarded-host'] = typeof fhost === 'string' ? fhost : (h.host ?? '');
  out['x-real-ip'] = f.clientIp;
  out['x-request-id'] = f.requestId;
  out.traceparent = f.traceparent;
  out.host = f.host;
  if (extra !== null) for (let i = 0; i < extra.length; i += 2) out[extra[i].toLowerCase()] = extra[i + 1];
  return out;
}

/**
 * Response headers from undici's raw [name, value, ...] buffers, minus hop-by-hop and server fingerprints.
 * `badFraming`: a Transfer-Encoding other than exactly `chunked` (`chunked, chunked`, `gzip, chunked`, a second
 * header): undici reads such a body as chunked anyway, but another hop may not (RFC 9112 §6.1), so it is a 502.
 */
export function clientResponseHeaders(raw: Buffer[] | string[], upgrade: boolean): { headers: string[]; contentType: string | undefined; badFraming: boolean } {
  const out: string[] = [];
  let listed: Set<string> | null = null;
  let contentType: string | undefined;
  let te = 0;
  let badFraming = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i].toString('latin1');
    const lower = name.toLowerCase();
    const value = raw[i + 1].toString('latin1');
    if (lower === 'transfer-encoding' && (++te > 1 || value.trim().toLowerCase() !== 'chunked')) badFraming = true;
    if (lower === 'connection') listed = connectionListed(value);
    if (RESPONSE_DROP.has(lower) && !(upgrade && UPGRADE_KEEP.has(lower))) continue;
    if (lower === 'content-type') contentType = value;
    out.push(name, value);
  }
  if (listed === null) return { headers: out, contentType, badFraming };
  const kept: string[] = [];
  for (let i = 0; i < out.length; i += 2) if (!listed.has(out[i].toLowerCase())) kept.push(out[i], out[i + 1]);
  return { headers: kept, contentType, badFraming };
}

/** Names a Connection header lists (besides keep-alive/close/upgrade tokens), which are hop-by-hop too. */
function connectionListed(v: string | string[] | undefined): Set<string> | null {
  if (v === undefined) return null;
  const s = (Array.isArray(v) ? v.join(',') : v).toLowerCase();
  if (s === 'keep-alive' || s === 'close' || s === 'upgrade') return null;
  const set = new Set<string>();
  for (const t of s.split(',')) { const n = t.trim(); if (n && n !== 'keep-alive' && n !== 'close' && n !== 'upgrade') set.add(n); }
  return set.size ? set : null;
}
