import { Registry, Counter, Gauge, collectDefaultMetrics } from 'prom-client';
import { HotCounter, HotHistogram, type HotCounterChild, type HotHistogramChild } from './hot-metrics.ts';

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'OTHER'];
const CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx'];

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
  private readonly routes = new Map<string, RouteSeries>();

  constructor(opts: { defaultMetrics?: boolean } = {}) {
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
}
