import { Registry, Counter, Histogram, Gauge, collectDefaultMetrics } from 'prom-client';

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);
const CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx'];
const LATENCY = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/**
 * Refusals the dashboards break down by reason: the error code (one bounded table, src/errors.ts) of the
 * policies that refuse a client. Any other code is not a refusal of these kinds.
 */
const REFUSALS: ReadonlyMap<string, string> = new Map([
  ['unauthorized', 'auth'], ['invalid_token', 'auth'], ['forbidden', 'auth'], ['auth_unavailable', 'auth'], ['auth_service_unavailable', 'auth'],
  ['captcha_failed', 'captcha'], ['captcha_unavailable', 'captcha'],
  ['cors_rejected', 'cors'],
]);

/**
 * Gateway metrics. Labels are bounded by construction: route names from the config (or "none"),
 * a fixed set of methods, status classes, upstream names. A raw path never becomes a label.
 */
export class Metrics {
  readonly registry = new Registry();
  readonly requests = new Counter({ name: 'gatehouse_requests_total', help: 'Requests handled, by route, method and status class.', labelNames: ['route', 'method', 'status_class'], registers: [this.registry] });
  readonly duration = new Histogram({ name: 'gatehouse_request_duration_seconds', help: 'Time from request received to response finished.', labelNames: ['route'], buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120], registers: [this.registry] });
  readonly upstreamDuration = new Histogram({ name: 'gatehouse_upstream_duration_seconds', help: 'Time from dispatch to upstream response headers.', labelNames: ['upstream'], buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60], registers: [this.registry] });
  readonly upstreamErrors = new Counter({ name: 'gatehouse_upstream_errors_total', help: 'Upstream failures by upstream and error code.', labelNames: ['upstream', 'code'], registers: [this.registry] });
  readonly activeConnections = new Gauge({ name: 'gatehouse_active_connections', help: 'Open client connections.', registers: [this.registry] });
  readonly inflightStreams = new Gauge({ name: 'gatehouse_inflight_streams', help: 'Streaming responses (SSE) and WebSocket tunnels in progress.', labelNames: ['kind'], registers: [this.registry] });
  readonly configReloads = new Counter({ name: 'gatehouse_config_reloads_total', help: 'Config reloads by result (success: a new generation serves; failure: the file was refused and the live config kept serving).', labelNames: ['result'], registers: [this.registry] });
  readonly configGeneration = new Gauge({ name: 'gatehouse_config_generation', help: 'Number of the config generation serving new requests (1 at start, +1 per successful reload).', registers: [this.registry] });
  readonly configLoadedAt = new Gauge({ name: 'gatehouse_config_last_reload_success_timestamp_seconds', help: 'When the serving config generation was activated (Unix time).', registers: [this.registry] });
  readonly http2Goaways = new Counter({ name: 'gatehouse_http2_flood_goaways_total', help: 'HTTP/2 connections sent GOAWAY for exceeding a flood limit (rapid_reset, ping_flood, settings_flood).', labelNames: ['reason'], registers: [this.registry] });
  readonly tlsCertificateExpiry = new Gauge({ name: 'gatehouse_tls_certificate_expiry_timestamp_seconds', help: 'When each serving TLS certificate expires (Unix time), by its first server name.', labelNames: ['certificate'], registers: [this.registry] });
  readonly ttfb = new Histogram({ name: 'gatehouse_time_to_first_byte_seconds', help: 'Time from request received to the first response byte sent (the head of an upstream answer), by route.', labelNames: ['route'], buckets: LATENCY, registers: [this.registry] });
  readonly ttfe = new Histogram({ name: 'gatehouse_time_to_first_event_seconds', help: 'Server-sent event streams: time from request received to the first event bytes sent (time to first token), by route.', labelNames: ['route'], buckets: LATENCY, registers: [this.registry] });
  readonly refusals = new Counter({ name: 'gatehouse_refusals_total', help: 'Requests refused by auth, captcha or CORS, by route, kind and reason (the problem code).', labelNames: ['route', 'kind', 'reason'], registers: [this.registry] });
  readonly tracingDropped = new Counter({ name: 'gatehouse_tracing_spans_dropped_total', help: 'Spans not exported: queue_full (the export queue was at observability.tracing.maxQueueSize) or export_failed (the collector refused or was unreachable).', labelNames: ['reason'], registers: [this.registry] });
  private readonly children = new Map<string, { count: ReturnType<Counter['labels']> }>();
  private readonly durations = new Map<string, ReturnType<Histogram['labels']>>();
  private readonly firstBytes = new Map<string, ReturnType<Histogram['labels']>>();
  private readonly firstEvents = new Map<string, ReturnType<Histogram['labels']>>();

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry, prefix: 'gatehouse_' });
  }

  /** Records a finished request; label children are cached so the hot path does no label hashing. */
  observeRequest(route: string, method: string, status: number, seconds: number): void {
    const m = METHODS.has(method) ? method : 'OTHER';
    const cls = CLASSES[Math.floor(status / 100) - 1] ?? '5xx';
    const key = `${route}\u0000${m}\u0000${cls}`;
    let c = this.children.get(key);
    if (!c) { c = { count: this.requests.labels(route, m, cls) }; this.children.set(key, c); }
    c.count.inc();
    let d = this.durations.get(route);
    if (!d) { d = this.duration.labels(route); this.durations.set(route, d); }
    d.observe(seconds);
  }

  /** The first byte of an upstream answer went to the client, `seconds` after the request arrived. */
  observeFirstByte(route: string, seconds: number): void {
    let h = this.firstBytes.get(route);
    if (h === undefined) { h = this.ttfb.labels(route); this.firstBytes.set(route, h); }
    h.observe(seconds);
  }

  /** The first event of a server-sent event stream went to the client. */
  observeFirstEvent(route: string, seconds: number): void {
    let h = this.firstEvents.get(route);
    if (h === undefined) { h = this.ttfe.labels(route); this.firstEvents.set(route, h); }
    h.observe(seconds);
  }

  /** Counts a refused request when its code is an auth, captcha or CORS refusal; other codes are ignored. */
  observeRefusal(route: string, code: string): void {
    const kind = REFUSALS.get(code);
    if (kind !== undefined) this.refusals.labels(route, kind, code).inc();
  }
}
