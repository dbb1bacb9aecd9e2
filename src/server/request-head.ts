import type { IncomingMessage } from 'node:http';
import { GatewayError } from '../errors.ts';

/**
 * What node's HTTP parsers accept but a gateway must not pass on, checked once per request before routing. Each
 * check costs a comparison on the common request; the work is on the rare one that fails.
 *  - more header fields than `server.limits.maxHeaderCount` → 431 (node would keep only its first 2,000, silently);
 *  - an HTTP version other than 1.0/1.1 on an HTTP/1 connection (HTTP/0.9, "HTTP/2.0" in a request line) → 400;
 *  - Transfer-Encoding other than exactly `chunked` (RFC 9112 §6.1, §6.3): not chunked last → 400, another coding
 *    before it → 501; any Transfer-Encoding in an HTTP/1.0 request → 400;
 *  - a raw "#" in the target (RFC 3986 §3.5: a fragment is never sent) → 400;
 *  - Host that is not an RFC 3986 authority without userinfo (valid port, no "@") → 400; over HTTP/2 a `host`
 *    that differs from `:authority` (RFC 9113 §8.3.1) → 400;
 *  - an absolute-form target whose authority differs from Host (RFC 9112 §3.2.2) → 400.
 * Framing and Host problems end the connection (the client and the gateway may not agree on where the next
 * request starts).
 */

const CLOSE = { connection: 'close' } as const;

export interface HeadLimits {
  /** Header fields (not counting HTTP/2 pseudo-headers) a request may carry. */
  maxHeaderCount: number;
}

export function checkRequestHead(req: IncomingMessage, limits: HeadLimits): GatewayError | null {
  const raw = req.rawHeaders;
  if (raw.length > limits.maxHeaderCount * 2 && fieldCount(raw) > limits.maxHeaderCount) {
    return new GatewayError('headers_too_large', `The request has more than ${limits.maxHeaderCount} header fields (server.limits.maxHeaderCount).`, { headers: CLOSE });
  }
  const h2 = req.httpVersionMajor === 2;
  if (!h2 || !('stream' in req)) {
    if (req.httpVersionMajor !== 1 || req.httpVersionMinor > 1) return new GatewayError('bad_request', 'Only HTTP/1.0, HTTP/1.1 and HTTP/2 are spoken here.', { headers: CLOSE });
    const te = req.headers['transfer-encoding'];
    if (te !== undefined && (te !== 'chunked' || req.httpVersionMinor === 0)) {
      const e = transferCodingProblem(te, req.httpVersionMinor);
      if (e !== null) return e;
    }
  }
  const url = req.url ?? '';
  if (url.includes('#')) return new GatewayError('bad_request', 'The request target contains a raw "#" (a fragment is never sent to a server).', { headers: CLOSE });
  const host = req.headers.host;
  if (host !== undefined && host !== lastGoodHost) {
    if (!isAuthority(host)) return new GatewayError('bad_request', 'The Host header is not a valid authority (host[:port], without user information).', { headers: CLOSE });
    lastGoodHost = host;
  }
  if (h2) {
    // src/server/listener.ts copies :authority into host when the client sent no host of its own
    const authority = req.headers[':authority'] as string | undefined;
    if (authority !== undefined && authority !== host && (!isAuthority(authority) || host === undefined || !sameAuthority(authority, host))) {
      return new GatewayError('bad_request', 'The host header and :authority disagree.');
    }
  }
  if (url.charCodeAt(0) !== 47 /* / */ && url !== '*') {
    const authority = absoluteAuthority(url);
    if (authority !== null && (!isAuthority(authority) || host === undefined || !sameAuthority(authority, host, url.charCodeAt(4) === 115 /* s */ ? '443' : '80'))) {
      return new GatewayError('bad_request', 'The authority of the absolute-form request target does not match the Host header.', { headers: CLOSE });
    }
  }
  return null;
}

/** The Host most recently found valid: nearly every request repeats it, and then nothing is parsed. */
let lastGoodHost = '\0'; // never a header value (node refuses NUL), so the first Host is always checked

function fieldCount(raw: readonly string[]): number {
  let n = 0;
  for (let i = 0; i < raw.length; i += 2) if (raw[i].charCodeAt(0) !== 58 /* : */) n++;
  return n;
}

function transferCodingProblem(te: string, minor: number): GatewayError | null {
  if (minor === 0) return new GatewayError('bad_request', 'Transfer-Encoding is not defined for HTTP/1.0 (RFC 9112 §6.1).', { headers: CLOSE });
  const codings = te.split(',').map((c) => c.trim().toLowerCase());
  if (codings.length === 1 && codings[0] === 'chunked') return null;
  if (codings[codings.length - 1] !== 'chunked' || codings.indexOf('chunked') !== codings.length - 1) {
    return new GatewayError('bad_request', 'Transfer-Encoding must end with chunked, once (RFC 9112 §6.3).', { headers: CLOSE });
  }
  return new GatewayError('transfer_coding_unsupported', 'Only the chunked transfer coding is supported.', { headers: CLOSE });
}

// RFC 3986 §3.2.2 host (IP-literal, IPv4address or reg-name; reg-name non-empty here) and §3.2.3 port.
const AUTHORITY = /^(?:\[(?:[0-9A-Fa-f:.]+|[vV][0-9A-Fa-f]+\.[A-Za-z0-9\-._~!$&'()*+,;=:]+)\]|(?:[A-Za-z0-9\-._~!$&'()*+,;=]|%[0-9A-Fa-f]{2})+)(?::([0-9]{1,5}))?$/;

/** An RFC 3986 authority without userinfo, with a port (if any) of 1-5 digits up to 65535. */
export function isAuthority(s: string): boolean {
  const m = AUTHORITY.exec(s);
  return m !== null && (m[1] === undefined || Number(m[1]) <= 65535);
}

/** The authority of an `http://` or `https://` absolute-form target; null for any other form. */
export function absoluteAuthority(url: string): string | null {
  const m = /^https?:\/\/([^/?#]*)/i.exec(url);
  return m === null ? null : m[1];
}

/** Case-insensitive, and a port equal to the scheme's default counts as absent. */
function sameAuthority(a: string, b: string, defaultPort = ''): boolean {
  if (a.length === b.length && a.toLowerCase() === b.toLowerCase()) return true;
  return withoutPort(a, defaultPort) === withoutPort(b, defaultPort);
}

function withoutPort(s: string, defaultPort: string): string {
  const l = s.toLowerCase();
  const i = l.lastIndexOf(':');
  if (i === -1 || l.endsWith(']')) return l;
  const port = l.slice(i + 1);
  return port === defaultPort || (defaultPort === '' && (port === '80' || port === '443')) ? l.slice(0, i) : l;
}
