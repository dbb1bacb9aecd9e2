import type { AuthSection } from './schema.ts';

/** Set for API-key consumers. */
export const CONSUMER_ID_HEADER = 'x-consumer-id';
export const CONSUMER_PLAN_HEADER = 'x-consumer-plan';

/**
 * Every request header the gateway may set from an identity. The proxy removes inbound copies of all of them
 * on every route (public ones too), so an upstream can trust them whatever the route's auth.
 */
export function identityHeaderNames(auth: AuthSection): string[] {
  const names = [CONSUMER_ID_HEADER, CONSUMER_PLAN_HEADER];
  for (const p of auth.jwt) for (const h of Object.values(p.claimsToHeaders)) names.push(h.toLowerCase());
  return names;
}

/**
 * A claim as a header value: strings as they are, numbers and booleans as text, arrays joined with ",",
 * objects as JSON. Anything outside printable ASCII is percent-encoded (a header cannot carry it, and a
 * CR/LF would split the request). undefined when the claim is absent.
 */
export function claimHeaderValue(v: unknown): string | undefined {
  const s = claimText(v);
  if (s === undefined) return undefined;
  return /^[\x20-\x7e]*$/.test(s) ? s : encodeURIComponent(s);
}

/**
 * A claim for an identity header (`claimsToHeaders`): as claimHeaderValue, but null when the value holds CR, LF or
 * NUL. An identity with those has no innocent reading, so the token is refused rather than the value encoded.
 */
export function identityHeaderValue(v: unknown): string | undefined | null {
  const s = claimText(v);
  if (s === undefined) return undefined;
  if (/^[\x20-\x7e]*$/.test(s)) return s;
  return /[\r\n\0]/.test(s) ? null : encodeURIComponent(s);
}

function claimText(v: unknown): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return v.map((x) => (typeof x === 'string' ? x : JSON.stringify(x))).join(',');
  return JSON.stringify(v);
}

/** Headers no claim may be mapped to: the gateway owns them, or they change how the request is framed or routed. */
export const RESERVED_HEADERS = new Set([
  'host', 'authorization', 'proxy-authorization', 'cookie', 'content-length', 'content-type', 'transfer-encoding', 'connection',
  'keep-alive', 'upgrade', 'te', 'trailer', 'expect', 'forwarded', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host',
  'x-forwarded-port', 'x-real-ip', 'x-request-id', 'traceparent', 'tracestate',
]);
