import { Registry, Counter, Gauge, collectDefaultMetrics } from 'prom-client';
import { HotCounter, HotHistogram, type HotCounterChild, type HotHistogramChild } from './hot-metrics.ts';

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'OTHER'];
const CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx'];
const LATENCY = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/**
 * Refusals the dashboards break down by reason: the error code (one bounded table, src/errors.ts) of the
 * policies that refuse a client. Any other code is not a refusal of these kinds.
 */
const REFUSALS: ReadonlyMap<string, string> = new Map([
  ['unauthorized', 'auth'], ['invalid_token', 'auth'], ['forbidden', 'auth'], ['auth_unavailable', 'auth'], ['auth_service_unavailable', 'auth'],
  ['captcha_required', 'captcha'], ['captcha_failed', 'captcha'], ['captcha_unavailable', 'captcha'],
  ['cors_rejected', 'cors'],
]);

function methodIndex(m: string): number {
  switch (m) {
    case 'GET': return 0; case 'HEAD': return 1; case 'POST': return 2; case 'PUT': return 3;
    case 'PATCH': return 4; case 'DELETE': return 5; case 'OPTIONS': return 6; default: return 7;
  }
}

/** A route's request series, resolved on its first request: counters by method × status class, and its duration. */
interface RouteSeries { counts: Array<HotCounterChild | undefined>; duration: HotHistogramChild }

/**
 * Gateway metrics. Labels are bounded by construction: route names from the config (or "none"),
 * a fixed set of methods, status classes, upstream names. A raw path never becomes a label.
 */
export class Metrics {
  readonly registry = new Registry();
  // Touched by every request: src/observability/hot-metrics.ts (pre-resolved children, no label hashing).
  readonly requests = new HotCounter('gatehouse_requests_total', 'Requests handled, by route, method and status class.', ['route', 'method', 'status_class'], this.registry);
  readonly duration = new HotHistogram('gatehouse_request_duration_seconds', 'Time from request received to response finished.', ['route'], [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120], this.registry);
  readonly upstreamDuration = new HotHistogram('gatehouse_upstream_duration_seconds', 'Time from dispatch to upstream response headers.', ['upstream'], [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60], this.registry);
  readonly upstreamErrors = new Counter({ name: 'gatehouse_upstream_errors_total', help: 'Upstream failures by upstream and error code.', labelNames: ['upstream', 'code'], registers: [this.registry] });
  readonly activeConnections = new Gauge({ name: 'gatehouse_active_connections', help: 'Open client connections.', registers: [this.registry] });
  readonly inflightStreams = new Gauge({ name: 'gatehouse_inflight_streams', help: 'Streaming responses (SSE) and WebSocket tunnels in progress.', labelNames: ['kind'], registers: [this.registry] });
  readonly configReloads = new Counter({ name: 'gatehouse_config_reloads_total', help: 'Config reloads by result (success: a new generation serves; failure: the file was refused and the live config kept serving).', labelNames: ['result'], registers: [this.registry] });
  readonly configGeneration = new Gauge({ name: 'gatehouse_config_generation', help: 'Number of the config generation serving new requests (1 at start, +1 per successful reload).', registers: [this.registry] });
  readonly configLoadedAt = new Gauge({ name: 'gatehouse_config_last_reload_success_timestamp_seconds', help: 'When the serving config generation was activated (Unix time).', registers: [this.registry] });
  readonly http2Goaways = new Counter({ name: 'gatehouse_http2_flood_goaways_total', help: 'HTTP/2 connections sent GOAWAY for exceeding a flood limit (rapid_reset, ping_flood, settings_flood).', labelNames: ['reason'], registers: [this.registry] });
  readonly tlsCertificateExpiry = new Gauge({ name: 'gatehouse_tls_certificate_expiry_timestamp_seconds', help: 'When each serving TLS certificate expires (Unix time), by its first server name.', labelNames: ['certificate'], registers: [this.registry] });
  // Per request too (every upstream answer): ours, like the three above.
  readonly ttfb = new HotHistogram('gatehouse_time_to_first_byte_seconds', 'Time from request received to the first response byte sent (the head of an upstream answer), by route.', ['route'], LATENCY, this.registry);
  readonly ttfe = new HotHistogram('gatehouse_time_to_first_event_seconds', 'Server-sent event streams: time from request received to the first event bytes sent (time to first token), by route.', ['route'], LATENCY, this.registry);
  readonly refusals = new Counter({ name: 'gatehouse_refusals_total', help: 'Requests refused by auth, captcha or CORS, by route, kind and reason (the problem code).', labelNames: ['route', 'kind', 'reason'], registers: [this.registry] });
  readonly tracingDropped = new Counter({ name: 'gatehouse_tracing_spans_dropped_total', help: 'Spans not exported: queue_full (the export queue was at observability.tracing.maxQueueSize) or export_failed (the collector refused or was unreachable).', labelNames: ['reason'], registers: [this.registry] });
  /** Where log lines dropped for a stuck stdout are counted (src/observability/log-sink.ts); set by the runtime. */
  logSink: { readonly dropped: number } | null = null;
  readonly logLinesDropped: Counter;
  private readonly routes = new Map<string, RouteSeries>();
  private readonly firstBytes = new Map<string, HotHistogramChild>();
  private readonly firstEvents = new Map<string, HotHistogramChild>();

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    const metrics = this;
    this.logLinesDropped = new Counter({
      name: 'gatehouse_log_lines_dropped_total',
      help: 'Log lines (access and gateway) dropped because the stdout reader fell 16 MiB behind.',
      registers: [this.registry],
      // Read from the sink at scrape time: the sink counts, nothing is added on the logging path.
      collect() { this.reset(); const n = metrics.logSink?.dropped ?? 0; if (n > 0) this.inc(n); },
    });
    if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry, prefix: 'gatehouse_' });
  }

  /** Records a finished request: one map lookup by route name, then array slots. */
  observeRequest(route: string, method: string, status: number, seconds: number): void {
    let r = this.routes.get(route);
    if (r === undefined) { r = { counts: new Array(METHODS.length * CLASSES.length), duration: this.duration.child(route) }; this.routes.set(route, r); }
    let cls = ((status / 100) | 0) - 1;
    if (cls < 0 || cls > 4) cls = 4;
    const slot = methodIndex(method) * CLASSES.length + cls;
    let c = r.counts[slot];
    if (c === undefined) c = r.counts[slot] = this.requests.child(route, METHODS[slot / CLASSES.length | 0], CLASSES[cls]);
    c.inc();
    r.duration.observe(seconds);
  }

  /** The first byte of an upstream answer went to the client, `seconds` after the request arrived. */
  observeFirstByte(route: string, seconds: number): void {
    let h = this.firstBytes.get(route);
    if (h === undefined) { h = this.ttfb.child(route); this.firstBytes.set(route, h); }
    h.observe(seconds);
  }

  /** The first event of a server-sent event stream went to the client. */
  observeFirstEvent(route: string, seconds: number): void {
    let h = this.firstEvents.get(route);
    if (h === undefined) { h = this.ttfe.child(route); this.firstEvents.set(route, h); }
    h.observe(seconds);
  }

  /** Counts a refused request when its code is an auth, captcha or CORS refusal; other codes are ignored. */
  observeRefusal(route: string, code: string): void {
    const kind = REFUSALS.get(code);
    if (kind !== undefined) this.refusals.labels(route, kind, code).inc();
  }
}
