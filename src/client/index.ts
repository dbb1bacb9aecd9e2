// gatehouse/client: calling services behind a Gatehouse gateway from TypeScript or JavaScript. Node 20+ and
// browsers; no dependency (global fetch, AbortSignal, TextDecoder; a WebSocket constructor is passed in where
// the platform has none). It ships to clients, so it imports nothing outside src/client/.
import { GatewayProblem } from './problem.ts';
import { IDEMPOTENT_METHODS, resolveRetry, retryDelay, sleep, type RetryOptions } from './retry.ts';
import { SseStream } from './sse.ts';
import { openWebSocket, webSocketConstructor, type WebSocketAuthMode, type WebSocketConstructor, type WebSocketLike } from './websocket.ts';

export { GatewayProblem, GATEWAY_ERROR_CODES, parseRateLimit, parseRetryAfter, type GatewayErrorCode, type RateLimitInfo, type RateLimitPolicy, type RateLimitState } from './problem.ts';
export { RETRY_DEFAULTS, IDEMPOTENT_METHODS, type RetryOptions } from './retry.ts';
export { SseStream, parseEventStream, type SseEvent, type StreamUsage } from './sse.ts';
export type { WebSocketLike, WebSocketConstructor, WebSocketAuthMode } from './websocket.ts';

type TokenSource = string | (() => string | Promise<string>);

export interface GatehouseOptions {
  /** The gateway's base URL, e.g. `https://api.example.com` (a path prefix is kept). */
  baseUrl: string | URL;
  /** An API key, sent in `apiKeyHeader`. */
  apiKey?: string;
  /** The gateway's `auth.apiKeys.header`. Default `x-api-key`. */
  apiKeyHeader?: string;
  /** A JWT (or a function giving the current one), sent as `Authorization: Bearer …`. */
  token?: TokenSource;
  /**
   * Called when the gateway answers 401: returns a fresh token, which replaces `token`, and the call is sent
   * once more. Concurrent 401s share one refresh.
   */
  refreshToken?: () => Promise<string>;
  /** Headers sent with every call. */
  headers?: Record<string, string>;
  /** Retries of idempotent calls (`false`: none). */
  retry?: RetryOptions | false;
  /** How long one attempt may wait for its response, ms (headers; and the body, for the JSON helpers). Default 60 000; 0: no limit. */
  timeout?: number;
  /** A fetch to use instead of the global one. */
  fetch?: typeof fetch;
  /** WebSocket constructor for `websocket()` (e.g. `ws`'s default export); default `globalThis.WebSocket`. */
  WebSocket?: WebSocketConstructor;
  /** Called before each retry (for logs): the attempt about to be made, the wait, and what failed. */
  onRetry?: (info: { attempt: number; delay: number; error: unknown; method: string; url: string }) => void;
}

export type Query = Record<string, string | number | boolean | undefined>;

export interface CallOptions {
  /** A JSON body (serialized, `content-type: application/json`). */
  json?: unknown;
  /** A raw body. A stream body is sent once: never retried. */
  body?: RequestInit['body'];
  headers?: Record<string, string>;
  query?: Query;
  signal?: AbortSignal;
  /** Overrides the client's timeout for this call, ms. */
  timeout?: number;
  /** Retry this call as if it were idempotent (e.g. a POST carrying an idempotency key); `false` never retries it. */
  idempotent?: boolean;
  /** Overrides the client's retry settings for this call. */
  retry?: RetryOptions | false;
}

export interface StreamOptions extends CallOptions {
  /** Default POST when there is a body, else GET. */
  method?: string;
  /** The data that ends the stream (not yielded). Default `[DONE]`; null: none. */
  doneData?: string | null;
  /** Resume after this event id (`Last-Event-ID`). */
  lastEventId?: string;
}

export interface WebSocketOptions {
  query?: Query;
  protocols?: string | string[];
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** Handshake timeout, ms (default: the client's timeout). */
  timeout?: number;
  /**
   * Where the credential goes: `header` (default with a constructor passed in, as `ws` takes headers) or `query`
   * (default with the platform's WebSocket: browsers cannot set handshake headers; JWTs only, on a gateway whose
   * JWT provider sets `queryParam`).
   */
  auth?: WebSocketAuthMode;
  /** The query parameter for `auth: 'query'`. Default `access_token`. */
  queryParam?: string;
  WebSocket?: WebSocketConstructor;
}

/** A client for one gateway. Every call throws a GatewayProblem for a non-2xx answer. */
export class Gatehouse {
  private readonly base: URL;
  private readonly opts: GatehouseOptions;
  private readonly fetch: typeof fetch;
  private token: TokenSource | undefined;
  private refreshing: Promise<string> | null = null;

  constructor(opts: GatehouseOptions) {
    this.base = new URL(opts.baseUrl);
    if (!this.base.pathname.endsWith('/')) this.base.pathname += '/';
    this.opts = opts;
    this.token = opts.token;
    const f = opts.fetch ?? globalThis.fetch;
    if (typeof f !== 'function') throw new Error('No fetch implementation: pass { fetch }');
    this.fetch = f;
  }

  /** The absolute URL of `path` (relative to the base URL) with `query`. A path may not leave the gateway's origin. */
  url(path: string, query?: Query): URL {
    const u = new URL(path.replace(/^\/+/, ''), this.base);
    if (u.origin !== this.base.origin) throw new Error(`${path}: not a path on ${this.base.origin} (the client sends its credentials to the gateway only)`);
    if (query !== undefined) for (const [k, v] of Object.entries(query)) if (v !== undefined) u.searchParams.set(k, String(v));
    return u;
  }

  /** One call; resolves with the response (2xx/3xx) whose body is yours to read. */
  request(method: string, path: string, opts: CallOptions = {}): Promise<Response> {
    return this.send(method.toUpperCase(), path, opts, 'response').then((r) => r.response);
  }

  /** One call whose answer is JSON (undefined for an empty body). */
  async json<T = unknown>(method: string, path: string, opts: CallOptions = {}): Promise<T> {
    const { response, done } = await this.send(method.toUpperCase(), path, opts, 'json');
    try {
      const text = await response.text();
      return (text === '' ? undefined : JSON.parse(text)) as T;
    } finally { done(); }
  }

  get<T = unknown>(path: string, opts?: CallOptions): Promise<T> { return this.json<T>('GET', path, opts); }
  delete<T = unknown>(path: string, opts?: CallOptions): Promise<T> { return this.json<T>('DELETE', path, opts); }
  post<T = unknown>(path: string, json?: unknown, opts?: CallOptions): Promise<T> { return this.json<T>('POST', path, { ...opts, json }); }
  put<T = unknown>(path: string, json?: unknown, opts?: CallOptions): Promise<T> { return this.json<T>('PUT', path, { ...opts, json }); }
  patch<T = unknown>(path: string, json?: unknown, opts?: CallOptions): Promise<T> { return this.json<T>('PATCH', path, { ...opts, json }); }

  /**
   * A server-sent event stream: resolves once the response has started (retries and token refresh apply up to
   * then), then iterate it. The timeout covers the wait for the response, not the stream; use `signal` or
   * `close()` to end it.
   */
  async stream(path: string, opts: StreamOptions = {}): Promise<SseStream> {
    const method = (opts.method ?? (opts.json !== undefined || opts.body != null ? 'POST' : 'GET')).toUpperCase();
    const headers: Record<string, string> = { accept: 'text/event-stream', ...opts.headers };
    if (opts.lastEventId !== undefined) headers['last-event-id'] = opts.lastEventId;
    const { response, abort } = await this.send(method, path, { ...opts, headers }, 'stream');
    return new SseStream(response, { doneData: opts.doneData === undefined ? '[DONE]' : opts.doneData, stop: abort });
  }

  /**
   * Opens a WebSocket to `path` (http(s) base → ws(s)) with the client's credential and resolves once it is
   * open. A 401 on the handshake refreshes the token once (when `refreshToken` is set) and tries again.
   */
  async websocket(path: string, opts: WebSocketOptions = {}): Promise<WebSocketLike> {
    const Ctor = webSocketConstructor(opts.WebSocket ?? this.opts.WebSocket);
    const mode: WebSocketAuthMode = opts.auth ?? (opts.WebSocket ?? this.opts.WebSocket ? 'header' : 'query');
    const u = this.url(path, opts.query);
    u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
    for (let refreshed = false; ; refreshed = true) {
      const headers: Record<string, string> = { ...this.opts.headers, ...opts.headers };
      let query: { name: string; value: string } | undefined;
      if (mode === 'header') Object.assign(headers, await this.authHeaders());
      else {
        const token = await this.currentToken();
        if (token === undefined) throw new Error("auth: 'query' carries a JWT (the gateway takes API keys in headers only): set `token`, or use a WebSocket that sends headers (ws)");
        query = { name: opts.queryParam ?? 'access_token', value: token };
      }
      try {
        return await openWebSocket(u.href, { WebSocket: Ctor, mode, headers, query, protocols: opts.protocols, signal: opts.signal, timeout: opts.timeout ?? this.opts.timeout ?? 60_000 });
      } catch (e) {
        if (!refreshed && e instanceof GatewayProblem && e.status === 401 && this.opts.refreshToken !== undefined) { await this.refresh(); continue; }
        throw e;
      }
    }
  }

  /** The credential headers a call carries now. */
  private async authHeaders(): Promise<Record<string, string>> {
    const h: Record<string, string> = {};
    const token = await this.currentToken();
    if (token !== undefined) h.authorization = `Bearer ${token}`;
    if (this.opts.apiKey !== undefined) h[(this.opts.apiKeyHeader ?? 'x-api-key').toLowerCase()] = this.opts.apiKey;
    return h;
  }

  private async currentToken(): Promise<string | undefined> {
    const t = this.token;
    return typeof t === 'function' ? await t() : t;
  }

  private refresh(): Promise<string> {
    this.refreshing ??= this.opts.refreshToken!().then(
      (t) => { this.token = t; this.refreshing = null; return t; },
      (e) => { this.refreshing = null; throw e; },
    );
    return this.refreshing;
  }

  /**
   * The attempt loop. Resolves with the response (2xx; 3xx too for `response`), `done` (stops the timeout; for
   * `json`, call it once the body is read) and `abort` (ends the exchange); rejects with a GatewayProblem, a
   * network error, or the signal's reason. Redirects are not followed: the credential would follow them.
   */
  private async send(method: string, path: string, opts: CallOptions, mode: 'response' | 'json' | 'stream'): Promise<{ response: Response; done: () => void; abort: () => void }> {
    const url = this.url(path, opts.query);
    const headers: Record<string, string> = { ...lower(this.opts.headers), ...lower(opts.headers) };
    let body: RequestInit['body'] = opts.body;
    if (opts.json !== undefined) { body = JSON.stringify(opts.json); headers['content-type'] ??= 'application/json'; }
    // A stream can be read once; such a call is never sent twice.
    const replayable = !isStream(body);
    const idempotent = opts.idempotent ?? IDEMPOTENT_METHODS.has(method);
    const retry = resolveRetry(this.opts.retry, opts.retry, idempotent && replayable ? undefined : false);
    const timeout = opts.timeout ?? this.opts.timeout ?? 60_000;
    let refreshed = false;

    for (let attempt = 1; ; attempt++) {
      const ctl = new AbortController();
      const signal = opts.signal === undefined ? ctl.signal : AbortSignal.any([opts.signal, ctl.signal]);
      const timer = timeout > 0 ? setTimeout(() => ctl.abort(new DOMException(`${method} ${url.pathname} took longer than ${timeout} ms`, 'TimeoutError')), timeout) : undefined;
      const done = () => clearTimeout(timer);
      let failure: unknown;
      let auth: Record<string, string>;
      try { auth = await this.authHeaders(); } catch (e) { done(); throw e; } // the caller's token source failed: not a network error
      try {
        const res = await this.fetch(url, { method, headers: { ...headers, ...auth }, body, signal, redirect: 'manual', ...(isStream(body) ? { duplex: 'half' } : {}) } as RequestInit);
        if (res.ok || (mode === 'response' && res.status < 400)) {
          if (mode !== 'json') done();
          return { response: res, done, abort: () => { done(); ctl.abort(new DOMException('The stream was closed', 'AbortError')); } };
        }
        if (res.status === 401 && !refreshed && this.opts.refreshToken !== undefined && replayable) {
          done();
          await res.body?.cancel().catch(() => {});
          refreshed = true;
          await this.refresh();
          attempt--;
          continue;
        }
        failure = await GatewayProblem.from(res);
        done();
      } catch (e) {
        done();
        if (signal.aborted) throw signal.reason;
        failure = e;
      }
      const delay = retryDelay(failure, attempt, retry);
      if (delay === null) throw failure;
      this.opts.onRetry?.({ attempt: attempt + 1, delay, error: failure, method, url: url.href });
      await sleep(delay, opts.signal);
    }
  }
}

/** A body that can be read once: a web stream or an async iterable (a Node stream). */
function isStream(body: unknown): boolean {
  return body !== null && typeof body === 'object' && (typeof (body as ReadableStream).getReader === 'function' || Symbol.asyncIterator in body);
}

function lower(h: Record<string, string> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (h !== undefined) for (const k of Object.keys(h)) out[k.toLowerCase()] = h[k];
  return out;
}
