import type { ServerResponse } from 'node:http';

/**
 * Every error a client can see, declared once: stable code, HTTP status, title.
 * Codes are part of the wire contract (`urn:gatehouse:problem:<code>`); never rename one.
 */
export const ERRORS = {
  bad_request: { status: 400, title: 'Bad request' },
  bad_path: { status: 400, title: 'Malformed request path' },
  request_invalid: { status: 400, title: 'Request does not match the API schema' },
  unknown_model: { status: 400, title: 'Model not served here' },
  prompt_too_large: { status: 400, title: 'Prompt too large' },
  unauthorized: { status: 401, title: 'Authentication required' },
  invalid_token: { status: 401, title: 'Invalid credentials' },
  quota_exceeded: { status: 402, title: 'Quota exceeded' },
  forbidden: { status: 403, title: 'Forbidden' },
  captcha_failed: { status: 403, title: 'Captcha verification failed' },
  cors_rejected: { status: 403, title: 'Origin not allowed' },
  not_found: { status: 404, title: 'No route matches this request' },
  method_not_allowed: { status: 405, title: 'Method not allowed' },
  conflict: { status: 409, title: 'Conflict' },
  request_timeout: { status: 408, title: 'Request timeout' },
  payload_too_large: { status: 413, title: 'Request body too large' },
  unsupported_media_type: { status: 415, title: 'Unsupported media type' },
  config_invalid: { status: 422, title: 'Config refused' },
  prompt_blocked: { status: 422, title: 'Prompt refused' },
  upgrade_required: { status: 426, title: 'Upgrade required' },
  rate_limited: { status: 429, title: 'Too many requests' },
  concurrency_limited: { status: 429, title: 'Too many requests in flight' },
  headers_too_large: { status: 431, title: 'Request header fields too large' },
  internal_error: { status: 500, title: 'Internal gateway error' },
  upstream_failed: { status: 502, title: 'Upstream service failed' },
  upstream_unavailable: { status: 503, title: 'Upstream service unavailable' },
  circuit_open: { status: 503, title: 'Upstream service unavailable (circuit open)' },
  captcha_unavailable: { status: 503, title: 'Captcha provider unavailable' },
  route_disabled: { status: 503, title: 'Endpoint turned off' },
  auth_unavailable: { status: 503, title: 'Authentication keys unavailable' },
  auth_service_unavailable: { status: 503, title: 'Authentication service unavailable' },
  store_unavailable: { status: 503, title: 'Rate limit store unavailable' },
  draining: { status: 503, title: 'Gateway is shutting down' },
  upstream_timeout: { status: 504, title: 'Upstream service timed out' },
} as const satisfies Record<string, { status: number; title: string }>;

export type ErrorCode = keyof typeof ERRORS;

/** A failure with a stable code and a message that is safe to show a client. */
export class GatewayError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  /** Extra response headers (Allow, Retry-After, WWW-Authenticate, ...). */
  readonly headers: Record<string, string> | undefined;
  /** Extra problem members (e.g. quota name, reset time). */
  readonly extra: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, detail?: string, opts?: { headers?: Record<string, string>; extra?: Record<string, unknown>; status?: number }) {
    super(detail ?? ERRORS[code].title);
    this.name = 'GatewayError';
    this.code = code;
    this.status = opts?.status ?? ERRORS[code].status;
    this.headers = opts?.headers;
    this.extra = opts?.extra;
  }
}

export function problemBody(err: GatewayError, requestId: string): string {
  return JSON.stringify({
    type: `urn:gatehouse:problem:${err.code}`,
    title: ERRORS[err.code].title,
    status: err.status,
    detail: err.message,
    code: err.code,
    requestId,
    ...err.extra,
  });
}

/**
 * The one place an error becomes a response. Headers already queued on `res`
 * (request id, CORS, rate-limit fields) are kept; the body is RFC 9457 problem+json.
 */
export function sendProblem(res: ServerResponse, err: GatewayError, requestId: string): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = problemBody(err, requestId);
  if (err.headers) {
    // HTTP/2 has no Connection header (node would drop it with a warning).
    const h2 = res.req?.httpVersionMajor === 2;
    for (const k in err.headers) if (!(h2 && k === 'connection')) res.setHeader(k, err.headers[k]);
  }
  res.setHeader('content-type', 'application/problem+json');
  res.setHeader('content-length', Buffer.byteLength(body));
  res.setHeader('cache-control', 'no-store');
  res.statusCode = err.status;
  res.end(res.req?.method === 'HEAD' ? undefined : body);
}

/** Anything thrown that is not a GatewayError is an internal error; its message never reaches the client. */
export function toGatewayError(err: unknown): GatewayError {
  return err instanceof GatewayError ? err : new GatewayError('internal_error', 'The gateway failed to handle this request.');
}
