import type { Registry } from 'prom-client';

/** What the dashboard shows per route, over the last window and since the process started. */
export interface RouteTraffic {
  route: string;
  /** Requests per second over the window. */
  rps: number;
  /** Latency percentiles over the window from the duration histogram's buckets (ms); null without requests. */
  p50Ms: number | null;
  p99Ms: number | null;
  window: TrafficCounts;
  total: TrafficCounts;
}

export interface TrafficCounts {
  requests: number;
  status4xx: number;
  status5xx: number;
  /** 429 from the route's rate limit (gatehouse_rate_limited_total). */
  rateLimited: number;
  /** 402 from the route's quotas (gatehouse_quota_exceeded_total, every quota). */
  quotaExceeded: number;
}

interface Cumulative extends TrafficCounts {
  /** Cumulative bucket counts of gatehouse_request_duration_seconds, in `bounds` order (+Inf last). */
  buckets: number[];
}

interface Sample { at: number; routes: Map<string, Cumulative> }

const DURATION = 'gatehouse_request_duration_seconds';

/**
 * Per-route rate, latency percentiles and refusals, read from the counters and histograms the request path
 * already keeps (nothing is added to it): each sample reads the registry's cumulative values, and figures over
 * the window are the differences between the newest sample and the oldest one still inside the window.
 * Percentiles interpolate linearly inside a bucket, as Prometheus' histogram_quantile does.
 */
export class TrafficWindow {
  private readonly samples: Sample[] = [];
  private bounds: number[] = [];

  constructor(private readonly registry: Registry, readonly windowMs = 10_000) {}

  async sample(now = Date.now()): Promise<RouteTraffic[]> {
    const cur: Sample = { at: now, routes: await this.read() };
    // Sampling pauses while nobody watches: differences against a stale sample would not be "the last window".
    if (this.samples.length > 0 && now - this.samples[this.samples.length - 1].at > 2 * this.windowMs) this.samples.length = 0;
    // Snapshots also follow admin changes, which can come fast: keep at most two samples a second, so memory
    // stays bounded by the window whatever the rate of changes.
    const last = this.samples[this.samples.length - 1];
    if (last === undefined || now - last.at >= 500) this.samples.push(cur);
    while (this.samples.length > 2 && now - this.samples[1].at >= this.windowMs) this.samples.shift();
    const base = this.samples[0] === cur || this.samples[0].at === now ? null : this.samples[0];
    const seconds = base === null ? 0 : (now - base.at) / 1000;
    const out: RouteTraffic[] = [];
    for (const [route, c] of cur.routes) {
      const b = base?.routes.get(route);
      const delta = c.buckets.map((v, i) => v - (b?.buckets[i] ?? 0));
      const win: TrafficCounts = base === null
        ? { requests: 0, status4xx: 0, status5xx: 0, rateLimited: 0, quotaExceeded: 0 }
        : {
          requests: c.requests - (b?.requests ?? 0),
          status4xx: c.status4xx - (b?.status4xx ?? 0),
          status5xx: c.status5xx - (b?.status5xx ?? 0),
          rateLimited: c.rateLimited - (b?.rateLimited ?? 0),
          quotaExceeded: c.quotaExceeded - (b?.quotaExceeded ?? 0),
        };
      const observed = base === null ? 0 : delta[delta.length - 1] ?? 0;
      out.push({
        route,
        rps: seconds > 0 ? round(win.requests / seconds, 2) : 0,
        p50Ms: observed > 0 ? ms(quantile(0.5, this.bounds, delta)) : null,
        p99Ms: observed > 0 ? ms(quantile(0.99, this.bounds, delta)) : null,
        window: win,
        total: { requests: c.requests, status4xx: c.status4xx, status5xx: c.status5xx, rateLimited: c.rateLimited, quotaExceeded: c.quotaExceeded },
      });
    }
    return out;
  }

  private async read(): Promise<Map<string, Cumulative>> {
    const routes = new Map<string, Cumulative>();
    const at = (route: string): Cumulative => {
      let c = routes.get(route);
      if (c === undefined) { c = { requests: 0, status4xx: 0, status5xx: 0, rateLimited: 0, quotaExceeded: 0, buckets: [] }; routes.set(route, c); }
      return c;
    };
    for (const v of await values(this.registry, 'gatehouse_requests_total')) {
      const c = at(String(v.labels.route));
      c.requests += v.value;
      if (v.labels.status_class === '4xx') c.status4xx += v.value;
      else if (v.labels.status_class === '5xx') c.status5xx += v.value;
    }
    for (const v of await values(this.registry, 'gatehouse_rate_limited_total')) at(String(v.labels.route)).rateLimited += v.value;
    for (const v of await values(this.registry, 'gatehouse_quota_exceeded_total')) at(String(v.labels.route)).quotaExceeded += v.value;
    const bounds: number[] = [];
    for (const v of await values(this.registry, DURATION)) {
      if (v.metricName !== `${DURATION}_bucket`) continue;
      const le = v.labels.le === '+Inf' ? Infinity : Number(v.labels.le);
      const c = at(String(v.labels.route));
      if (c.buckets.length === bounds.length) bounds.push(le); // the first route's series give the bounds
      c.buckets.push(v.value);
    }
    if (bounds.length > 0) this.bounds = bounds;
    return routes;
  }
}

type Value = { value: number; labels: Record<string, string | number>; metricName?: string };

async function values(registry: Registry, name: string): Promise<Value[]> {
  const m = registry.getSingleMetric(name);
  if (m === undefined) return [];
  return (await m.get()).values as Value[];
}

/** The q-quantile of observations given cumulative bucket counts (Prometheus' histogram_quantile). */
export function quantile(q: number, bounds: readonly number[], cumulative: readonly number[]): number {
  const total = cumulative[cumulative.length - 1] ?? 0;
  if (total <= 0) return NaN;
  const rank = q * total;
  let i = cumulative.findIndex((c) => c >= rank);
  if (i < 0) i = cumulative.length - 1;
  // Past the last finite bound nothing is known but "more than it": say the bound.
  if (bounds[i] === Infinity) return bounds[i - 1] ?? 0;
  const lower = i === 0 ? 0 : bounds[i - 1];
  const below = i === 0 ? 0 : cumulative[i - 1];
  const inBucket = cumulative[i] - below;
  return inBucket <= 0 ? bounds[i] : lower + (bounds[i] - lower) * ((rank - below) / inBucket);
}

function ms(seconds: number): number | null {
  return Number.isFinite(seconds) ? round(seconds * 1000, 1) : null;
}

function round(n: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}
