import type { Config } from './schema.ts';
import type { RefIssue } from './check.ts';
import { MAX_SECURITY_HEADERS } from '../policies/security-headers.ts';

/**
 * Browser-edge settings that would otherwise fail per request: header names and values the gateway
 * writes (an invalid one makes Node throw on every response), media types, captcha token sources.
 */
const TOKEN = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/;
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
const MEDIA_RANGE = /^[A-Za-z0-9!#$&^_.+-]+\/(\*|[A-Za-z0-9!#$&^_.+-]+)$/;
/** Framing and content headers: "security headers" that would corrupt responses. */
const NOT_SECURITY = new Set(['content-length', 'transfer-encoding', 'connection', 'content-type', 'content-encoding', 'host', 'upgrade', 'keep-alive', 'set-cookie', 'x-request-id']);

export function checkEdge(c: Config, out: RefIssue[]): void {
  checkSecurityHeaders(c.server.securityHeaders, ['server', 'securityHeaders'], out);
  checkCorsLists(c.server.cors, ['server', 'cors'], out);
  c.routes.forEach((r, i) => {
    if (r.securityHeaders !== undefined) checkSecurityHeaders(r.securityHeaders, ['routes', i, 'securityHeaders'], out);
    if (r.cors) checkCorsLists(r.cors, ['routes', i, 'cors'], out);
    r.contentTypes?.forEach((t, j) => {
      if (!MEDIA_RANGE.test(t.trim())) out.push({ path: ['routes', i, 'contentTypes', j], message: `"${t}" is not a media type (type/subtype or type/*, without parameters)` });
    });
    const cap = r.captcha !== undefined ? c.captcha[r.captcha] : undefined;
    if (cap !== undefined && r.websocket && cap.tokenHeader === undefined) {
      out.push({ path: ['routes', i, 'captcha'], message: 'a WebSocket handshake has no body: set tokenHeader on this captcha to read the token from a header' });
    }
  });
  for (const [name, cap] of Object.entries(c.captcha)) {
    if (cap.tokenHeader !== undefined && !TOKEN.test(cap.tokenHeader)) out.push({ path: ['captcha', name, 'tokenHeader'], message: `"${cap.tokenHeader}" is not a header name` });
    if (cap.verifyUrl !== undefined && !/^https?:\/\//.test(cap.verifyUrl)) out.push({ path: ['captcha', name, 'verifyUrl'], message: 'verifyUrl must be http:// or https://' });
    else if (cap.verifyUrl?.startsWith('http://') && c.server.environment === 'production' && !/^http:\/\/(localhost|127\.|\[::1\])/.test(cap.verifyUrl)) {
      out.push({ path: ['captcha', name, 'verifyUrl'], message: 'the captcha secret would cross the network in clear text; use https', warning: true });
    }
    if (cap.minScore !== 0.5 && cap.provider !== 'recaptcha-v3') out.push({ path: ['captcha', name, 'minScore'], message: `${cap.provider} returns no score; minScore applies to recaptcha-v3 only`, warning: true });
  }
}

function checkSecurityHeaders(s: Config['server']['securityHeaders'], path: PropertyKey[], out: RefIssue[]): void {
  if (typeof s === 'string') return;
  const entries = Object.entries(s);
  if (entries.length > MAX_SECURITY_HEADERS) out.push({ path, message: `at most ${MAX_SECURITY_HEADERS} security headers` });
  for (const [k, v] of entries) {
    if (!TOKEN.test(k)) out.push({ path: [...path, k], message: `"${k}" is not a header name` });
    else if (NOT_SECURITY.has(k.toLowerCase())) out.push({ path: [...path, k], message: `"${k}" is not a security header; the gateway or the upstream owns it` });
    if (!FIELD_VALUE.test(v)) out.push({ path: [...path, k], message: 'header values cannot contain line breaks or control characters' });
  }
}

function checkCorsLists(cors: { methods: string[]; headers: string[]; exposeHeaders: string[] } | undefined, path: PropertyKey[], out: RefIssue[]): void {
  if (!cors) return;
  for (const key of ['methods', 'headers', 'exposeHeaders'] as const) {
    cors[key].forEach((v, i) => {
      if (v !== '*' && !TOKEN.test(v)) out.push({ path: [...path, key, i], message: `"${v}" is not a ${key === 'methods' ? 'method' : 'header name'}` });
    });
  }
}
