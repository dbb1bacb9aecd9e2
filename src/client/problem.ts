// Errors as the gateway sends them (RFC 9457 problem+json) and the rate-limit fields beside them
// (draft-ietf-httpapi-ratelimit-headers: `RateLimit-Policy` and `RateLimit`, as structured-field lists).
// This module ships to clients: it imports nothing from the gateway's server code.

/**
 * The codes of the gateway's error table (`docs/errors.md`). A test keeps this list equal to the server's.
 * Responses that are not the gateway's own problem documents get `http_<status>` instead.
 */
export const GATEWAY_ERROR_CODES = [
  'bad_request', 'bad_path', 'request_invalid', 'unknown_model', 'prompt_too_large', 'captcha_required',
  'unauthorized', 'invalid_token', 'quota_exceeded', 'forbidden', 'captcha_failed', 'cors_rejected', 'not_found',
  'method_not_allowed', 'conflict', 'request_timeout', 'payload_too_large', 'unsupported_media_type',
  'config_invalid', 'prompt_blocked', 'upgrade_required', 'rate_limited', 'concurrency_limited', 'headers_too_large',
  'internal_error', 'transfer_coding_unsupported', 'upstream_failed', 'upstream_unavailable', 'circuit_open',
  'captcha_unavailable', 'route_disabled', 'auth_unavailable', 'auth_service_unavailable', 'store_unavailable',
  'draining', 'upstream_timeout',
] as const;
export type GatewayErrorCode = (typeof GATEWAY_ERROR_CODES)[number];

/** One `RateLimit-Policy` item: `"1m";q=100;w=60` is 100 per 60 s. */
export interface RateLimitPolicy {
  name: string;
  /** q: the quota (requests, or `unit`s). */
  quota: number;
  /** w: the window, seconds. */
  window?: number;
  /** qu: what the quota counts (`requests` when absent; the gateway uses `tokens` for token limits). */
  unit?: string;
}

/** One `RateLimit` item: `"1m";r=0;t=12` is nothing left, back in 12 s. */
export interface RateLimitState {
  name: string;
  /** r: what is left in the current window. */
  remaining: number;
  /** t: seconds until the quota is back. */
  reset?: number;
}

export interface RateLimitInfo {
  policies: RateLimitPolicy[];
  limits: RateLimitState[];
}

const PROBLEM_PREFIX = 'urn:gatehouse:problem:';

/** A non-2xx answer, parsed. Thrown by every call of the client. */
export class GatewayProblem extends Error {
  /** HTTP status. */
  readonly status: number;
  /** The gateway's stable code (`rate_limited`, `invalid_token`, …), or `http_<status>` for an upstream's own error. */
  readonly code: GatewayErrorCode | `http_${number}` | (string & {});
  readonly type: string;
  readonly title: string;
  readonly detail: string | undefined;
  /** The request id the gateway logged (`X-Request-Id`); quote it in a support ticket. */
  readonly requestId: string | undefined;
  /** Seconds the server asked to wait (`Retry-After`, seconds or an HTTP date), when it said. */
  readonly retryAfter: number | undefined;
  /** `RateLimit-Policy` and `RateLimit` fields of the response, when present. */
  readonly rateLimit: RateLimitInfo | undefined;
  /** True when the body is the gateway's own problem document (rather than an upstream's error passed through). */
  readonly fromGateway: boolean;
  /** The parsed JSON body (problem members and extensions), or undefined when the body was not JSON. */
  readonly body: Record<string, unknown> | undefined;
  readonly headers: Headers;

  constructor(init: { status: number; headers: Headers; body?: Record<string, unknown>; text?: string }) {
    const b = init.body;
    const str = (k: string): string | undefined => (typeof b?.[k] === 'string' ? (b[k] as string) : undefined);
    const type = str('type') ?? 'about:blank';
    const fromGateway = type.startsWith(PROBLEM_PREFIX);
    const title = str('title') ?? `HTTP ${init.status}`;
    const detail = str('detail') ?? (b === undefined && init.text ? init.text.slice(0, 200) : undefined);
    super(detail === undefined ? title : `${title}: ${detail}`);
    this.name = 'GatewayProblem';
    this.status = init.status;
    this.code = str('code') ?? (fromGateway ? type.slice(PROBLEM_PREFIX.length) : `http_${init.status}`);
    this.type = type;
    this.title = title;
    this.detail = detail;
    this.requestId = str('requestId') ?? init.headers.get('x-request-id') ?? undefined;
    this.retryAfter = parseRetryAfter(init.headers.get('retry-after'));
    this.rateLimit = parseRateLimit(init.headers);
    this.fromGateway = fromGateway;
    this.body = b;
    this.headers = init.headers;
  }

  /** Reads the response body (up to 64 KiB) and builds the problem. */
  static async from(res: Response): Promise<GatewayProblem> {
    let text = '';
    try { text = await readCapped(res, 64 * 1024); } catch { /* a body cut short still has a status */ }
    let body: Record<string, unknown> | undefined;
    const ct = res.headers.get('content-type') ?? '';
    if (/json/i.test(ct) || text.startsWith('{')) {
      try {
        const v = JSON.parse(text) as unknown;
        if (v !== null && typeof v === 'object' && !Array.isArray(v)) body = v as Record<string, unknown>;
      } catch { /* not JSON after all */ }
    }
    return new GatewayProblem({ status: res.status, headers: res.headers, body, text });
  }
}

async function readCapped(res: Response, cap: number): Promise<string> {
  if (res.body === null) return '';
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let out = '';
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    out += decoder.decode(value, { stream: true });
    if (out.length >= cap) { await reader.cancel(); break; }
  }
  return out + decoder.decode();
}

/** `Retry-After` as seconds from now: delay-seconds or an HTTP date; undefined when absent or malformed. */
export function parseRetryAfter(value: string | null | undefined, now = Date.now()): number | undefined {
  if (value === null || value === undefined) return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v);
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, Math.ceil((at - now) / 1000));
}

/** The IETF rate-limit fields of a response; undefined when it has neither. */
export function parseRateLimit(headers: Headers): RateLimitInfo | undefined {
  const policy = headers.get('ratelimit-policy');
  const state = headers.get('ratelimit');
  if (policy === null && state === null) return undefined;
  const policies: RateLimitPolicy[] = [];
  for (const item of parseSfList(policy ?? '')) {
    const q = num(item.params.q);
    if (q === undefined) continue;
    policies.push({ name: item.value, quota: q, window: num(item.params.w), unit: typeof item.params.qu === 'string' ? item.params.qu : undefined });
  }
  const limits: RateLimitState[] = [];
  for (const item of parseSfList(state ?? '')) {
    const r = num(item.params.r);
    if (r === undefined) continue;
    limits.push({ name: item.value, remaining: r, reset: num(item.params.t) });
  }
  return { policies, limits };
}

const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

type Bare = string | number | boolean;
interface SfItem { value: string; params: Record<string, Bare> }

/**
 * A structured-field list (RFC 8941) of items with parameters, enough for the rate-limit fields: strings,
 * tokens, integers, decimals and booleans. A malformed member ends the parse; what came before is kept.
 */
export function parseSfList(input: string): SfItem[] {
  const out: SfItem[] = [];
  let i = 0;
  const ws = () => { while (i < input.length && (input[i] === ' ' || input[i] === '\t')) i++; };
  const bare = (): Bare | undefined => {
    const c = input[i];
    if (c === '"') {
      let s = '';
      for (i++; i < input.length; i++) {
        if (input[i] === '\\') { s += input[++i] ?? ''; continue; }
        if (input[i] === '"') { i++; return s; }
        s += input[i];
      }
      return undefined;
    }
    if (c === '?') { i += 2; return input[i - 1] === '1'; }
    const m = /^-?\d+(?:\.\d+)?|^[A-Za-z*][A-Za-z0-9_\-.:%*/!#$&'^`|~+]*/.exec(input.slice(i));
    if (m === null) return undefined;
    i += m[0].length;
    return /^-?\d/.test(m[0]) ? Number(m[0]) : m[0];
  };
  while (i < input.length) {
    ws();
    if (i >= input.length) break;
    const v = bare();
    if (v === undefined) break;
    const params: Record<string, Bare> = {};
    while (input[i] === ';') {
      i++;
      ws();
      const k = /^[a-z*][a-z0-9_\-.*]*/.exec(input.slice(i));
      if (k === null) return out;
      i += k[0].length;
      if (input[i] === '=') { i++; const pv = bare(); if (pv === undefined) return out; params[k[0]] = pv; }
      else params[k[0]] = true;
    }
    out.push({ value: String(v), params });
    ws();
    if (i < input.length && input[i] !== ',') break;
    i++;
  }
  return out;
}
