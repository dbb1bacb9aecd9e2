import { z } from 'zod';
import type { Issue } from '../config/errors.ts';
import type { RequestContext, Step } from '../pipeline/context.ts';
import type { Policy } from '../pipeline/policy.ts';
import { peerAddress, type TrustedProxies } from '../server/client-ip.ts';
import { HEADER_NAME, HEADER_VALUE } from './header-syntax.ts';

/**
 * Security headers on every response the gateway sends or passes through (docs/edge-security.md).
 * They are a floor, not a ceiling: a header the upstream sets itself is left as the upstream sent it.
 * The flat header arrays are built once per route; a request only picks one of two.
 */
export const securityHeadersSchema = z.union([z.enum(['default', 'off']), z.record(z.string(), z.string())]);
export type SecurityHeadersSetting = z.output<typeof securityHeadersSchema>;
export const securityHeadersRouteKeys = { securityHeaders: securityHeadersSchema.optional().describe('Security headers of this route: `default`, `off`, or { header: value } (adjusts the server\'s set).') };

interface Needs { server: { securityHeaders: SecurityHeadersSetting }; routes: ReadonlyArray<{ securityHeaders?: SecurityHeadersSetting }> }
type Route = { securityHeaders?: SecurityHeadersSetting };

/** API responses: no sniffing, no framing, no full URLs leaking in Referer. */
export const DEFAULT_SECURITY_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'strict-origin-when-cross-origin',
  'strict-transport-security': 'max-age=63072000; includeSubDomains',
});
const HSTS = 'strict-transport-security';
/** applyEdgeHeaders tracks which defaults the upstream sent in a 31-bit mask. */
export const MAX_SECURITY_HEADERS = 31;

/**
 * The header set for a route. `default` is the built-in set and `off` none; a map adjusts the set it
 * overrides (at server level the defaults, at route level the server's set): a value replaces or adds
 * a header, "" removes one.
 */
export function resolveSecurityHeaders(server: SecurityHeadersSetting, route: SecurityHeadersSetting | undefined): Map<string, string> {
  const defaults = new Map(Object.entries(DEFAULT_SECURITY_HEADERS));
  const serverSet = layer(defaults, server);
  return route === undefined ? serverSet : layer(route === 'default' ? defaults : serverSet, route);
}

function layer(base: Map<string, string>, s: SecurityHeadersSetting): Map<string, string> {
  if (s === 'off') return new Map();
  if (s === 'default') return new Map(Object.entries(DEFAULT_SECURITY_HEADERS));
  const out = new Map(base);
  for (const [k, v] of Object.entries(s)) {
    if (v === '') out.delete(k.toLowerCase());
    else out.set(k.toLowerCase(), v);
  }
  return out;
}

export function securityHeadersStep(headers: Map<string, string>, trusted: TrustedProxies): Step | undefined {
  const plain: string[] = [];
  const secure: string[] = [];
  for (const [k, v] of headers) {
    if (k !== HSTS) plain.push(k, v);
    secure.push(k, v);
  }
  if (secure.length === 0) return undefined;
  if (secure.length === plain.length) return (ctx) => { ctx.responseDefaults = plain; };
  // HSTS only means something on a response the browser received over TLS.
  return (ctx) => { ctx.responseDefaults = overHttps(ctx, trusted) ? secure : plain; };
}

/** Served over TLS, or behind a trusted proxy that says the client used https. */
function overHttps(ctx: RequestContext, trusted: TrustedProxies): boolean {
  const req = ctx.req;
  if ((req.socket as { encrypted?: boolean }).encrypted === true) return true;
  const proto = req.headers['x-forwarded-proto'];
  if (typeof proto !== 'string' || !proto.startsWith('https')) return false;
  // A chain of proxies lists the client-facing scheme first.
  const comma = proto.indexOf(',');
  if ((comma < 0 ? proto : proto.slice(0, comma)).trim() !== 'https') return false;
  return trusted.trusts(peerAddress(req.socket.remoteAddress));
}

export const securityHeadersPolicy: Policy<Needs, Route> = {
  name: 'security-headers',
  check(c, out) {
    checkSetting(c.server.securityHeaders, ['server', 'securityHeaders'], out);
    c.routes.forEach((r, i) => {
      if (r.securityHeaders === undefined) return;
      checkSetting(r.securityHeaders, ['routes', i, 'securityHeaders'], out);
      const n = resolveSecurityHeaders(c.server.securityHeaders, r.securityHeaders).size;
      if (n > MAX_SECURITY_HEADERS) out.push({ path: ['routes', i, 'securityHeaders'], message: `at most ${MAX_SECURITY_HEADERS} security headers per route (server and route sets together make ${n})` });
    });
  },
  compile({ config, route, env }) {
    return securityHeadersStep(resolveSecurityHeaders(config.server.securityHeaders, route.securityHeaders), env.trusted);
  },
};

/** Framing and content headers: "security headers" that would corrupt responses. */
const NOT_SECURITY = new Set(['content-length', 'transfer-encoding', 'connection', 'content-type', 'content-encoding', 'host', 'upgrade', 'keep-alive', 'set-cookie', 'x-request-id']);

function checkSetting(s: SecurityHeadersSetting, path: PropertyKey[], out: Issue[]): void {
  if (typeof s === 'string') return;
  const entries = Object.entries(s);
  if (entries.length > MAX_SECURITY_HEADERS) out.push({ path, message: `at most ${MAX_SECURITY_HEADERS} security headers` });
  for (const [k, v] of entries) {
    if (!HEADER_NAME.test(k)) out.push({ path: [...path, k], message: `"${k}" is not a header name` });
    else if (NOT_SECURITY.has(k.toLowerCase())) out.push({ path: [...path, k], message: `"${k}" is not a security header; the gateway or the upstream owns it` });
    if (!HEADER_VALUE.test(v)) out.push({ path: [...path, k], message: 'header values cannot contain line breaks or control characters' });
  }
}
