import type { Registry } from 'prom-client';

/**
 * Counters and histograms for the few series every request touches (requests, request and upstream duration).
 * prom-client's label children are thin wrappers: each `inc()`/`observe()` re-validates the label object and
 * hashes it into a map key, ~0.5 µs per call and three calls per request (docs/performance.md). Here a child is
 * resolved once (per route, per upstream, per method and status class) and an observation is a bucket search
 * and two additions on a plain array. The series are read only when scraped: `get()` returns the shape
 * prom-client's Registry formats (and its cluster aggregator sums), so they sit in the same registry as the rest.
 */

interface MetricValue { labels: Record<string, string>; value: number; metricName?: string }
interface MetricData { name: string; help: string; type: 'counter' | 'histogram'; values: MetricValue[]; aggregator: 'sum' }

export class HotCounterChild {
  value = 0;
  constructor(readonly labels: Record<string, string>) {}
  inc(by = 1): void { this.value += by; }
}

export class HotCounter {
  readonly type = 'counter';
  readonly aggregator = 'sum';
  private readonly children = new Map<string, HotCounterChild>();

  constructor(readonly name: string, readonly help: string, private readonly labelNames: readonly string[], registry: Registry) {
    registry.registerMetric(this as never);
  }

  /** The child for these label values, made once; callers keep it (that is the point). */
  child(...values: string[]): HotCounterChild {
    const key = values.join('\u0000');
    let c = this.children.get(key);
    if (c === undefined) { c = new HotCounterChild(labelsOf(this.labelNames, values)); this.children.set(key, c); }
    return c;
  }

  get(): Promise<MetricData> {
    const values: MetricValue[] = [];
    for (const c of this.children.values()) values.push({ labels: c.labels, value: c.value });
    return Promise.resolve({ name: this.name, help: this.help, type: 'counter', values, aggregator: 'sum' });
  }

  reset(): void { for (const c of this.children.values()) c.value = 0; }
}

export class HotHistogramChild {
  /** Non-cumulative counts per bucket; the last slot is +Inf. Cumulated when scraped. */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  constructor(readonly labels: Record<string, string>, private readonly bounds: Float64Array) {
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(v: number): void {
    const b = this.bounds;
    let i = 0;
    while (i < b.length && v > b[i]) i++;
    this.counts[i]++;
    this.sum += v;
    this.count++;
  }
}

export class HotHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  private readonly bounds: Float64Array;
  private readonly children = new Map<string, HotHistogramChild>();

  constructor(readonly name: string, readonly help: string, private readonly labelNames: readonly string[], buckets: readonly number[], registry: Registry) {
    this.bounds = Float64Array.from([...buckets].sort((a, b) => a - b));
    registry.registerMetric(this as never);
  }

  child(...values: string[]): HotHistogramChild {
    const key = values.join('\u0000');
    let c = this.children.get(key);
    if (c === undefined) { c = new HotHistogramChild(labelsOf(this.labelNames, values), this.bounds); this.children.set(key, c); }
    return c;
  }

  get(): Promise<MetricData> {
    const values: MetricValue[] = [];
    const bucket = `${this.name}_bucket`;
    for (const c of this.children.values()) {
      let acc = 0;
      for (let i = 0; i < this.bounds.length; i++) {
        acc += c.counts[i];
        values.push({ labels: { ...c.labels, le: String(this.bounds[i]) }, value: acc, metricName: bucket });
      }
      values.push({ labels: { ...c.labels, le: '+Inf' }, value: c.count, metricName: bucket });
      values.push({ labels: c.labels, value: c.sum, metricName: `${this.name}_sum` });
      values.push({ labels: c.labels, value: c.count, metricName: `${this.name}_count` });
    }
    return Promise.resolve({ name: this.name, help: this.help, type: 'histogram', values, aggregator: 'sum' });
  }

  reset(): void { for (const c of this.children.values()) { c.counts.fill(0); c.sum = 0; c.count = 0; } }
}

function labelsOf(names: readonly string[], values: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < names.length; i++) out[names[i]] = values[i];
  return out;
}
