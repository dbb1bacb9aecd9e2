import { Registry, Counter, Histogram, Gauge, collectDefaultMetrics } from 'prom-client';

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);
const CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx'];

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
  private readonly children = new Map<string, { count: ReturnType<Counter['labels']> }>();
  private readonly durations = new Map<string, ReturnType<Histogram['labels']>>();

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
}
