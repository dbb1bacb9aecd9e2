import type { ServerResponse } from 'node:http';
import { describeRoutes } from '../routing/describe.ts';
import { describeUpstream } from '../upstreams/status.ts';
import { adminProblem, type AdminHandler, type AdminHost } from './http.ts';
import { TrafficWindow } from './traffic.ts';
import { consumerUsageToday, USAGE_REFRESH_MS } from './consumer-usage.ts';

/** One snapshot a second while anyone watches. */
export const SNAPSHOT_INTERVAL_MS = 1000;
/** Dashboards watching one gateway at once; more answer 429. */
export const MAX_SUBSCRIBERS = 64;

type Usage = Awaited<ReturnType<typeof consumerUsageToday>> & { refreshedAt: string };

/**
 * `GET /admin/events`: Server-Sent Events, one `snapshot` event per second and one at once after a change (an
 * admin write, a reload). Each snapshot is computed once and the same bytes go to every subscriber, so ten open
 * dashboards cost what one does; nothing runs while none is open. Everything is read from state the gateway
 * already keeps (route table, upstream state, metric registry, usage records): the request path does no extra work.
 * A subscriber that cannot keep up skips snapshots rather than buffering them.
 */
export class DashboardEvents {
  private readonly subscribers = new Set<ServerResponse>();
  private readonly traffic: TrafficWindow;
  private timer: NodeJS.Timeout | null = null;
  private last: { text: string; at: number } | null = null;
  private running: Promise<void> | null = null;
  private again = false;
  private usage: Usage | null = null;
  private usageLoading: Promise<void> | null = null;

  constructor(private readonly host: AdminHost) {
    this.traffic = new TrafficWindow(host.metrics.registry);
    host.events.on('generation', () => this.changed());
    host.events.on('reload', () => this.changed());
  }

  readonly handler: AdminHandler = (req, res) => {
    if (this.subscribers.size >= MAX_SUBSCRIBERS) {
      return adminProblem(req, res, 'rate_limited', `At most ${MAX_SUBSCRIBERS} event streams at once; close a dashboard.`, { headers: { 'retry-after': '5' } });
    }
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', 'x-accel-buffering': 'no' });
    res.write('retry: 2000\n\n');
    this.subscribers.add(res);
    res.on('close', () => {
      this.subscribers.delete(res);
      if (this.subscribers.size === 0 && this.timer !== null) { clearInterval(this.timer); this.timer = null; }
    });
    if (this.last !== null && Date.now() - this.last.at < SNAPSHOT_INTERVAL_MS) res.write(this.last.text);
    else this.tick();
    if (this.timer === null) {
      this.timer = setInterval(() => this.tick(), SNAPSHOT_INTERVAL_MS);
      this.timer.unref();
    }
  };

  /** Something an operator changed: subscribers see it now rather than at the next tick. */
  changed(): void {
    if (this.subscribers.size > 0) this.tick();
  }

  /** The snapshot the stream sends (also what a test reads). */
  async snapshot() {
    const g = this.host.current;
    const now = Date.now();
    if (this.usage === null || now - Date.parse(this.usage.refreshedAt) >= USAGE_REFRESH_MS) {
      this.usageLoading ??= consumerUsageToday(this.host).then((u) => { this.usage = { ...u, refreshedAt: new Date().toISOString() }; }).finally(() => { this.usageLoading = null; });
      if (this.usage === null) await this.usageLoading;
    }
    return {
      at: new Date(now).toISOString(),
      generation: { id: g.id, hash: g.hash, loadedAt: g.loadedAt.toISOString(), file: g.file ?? null, lastReload: this.host.lastReload },
      routes: describeRoutes(g.table),
      upstreams: [...g.upstreams.values()].map((u) => describeUpstream(u)),
      traffic: { windowSeconds: this.traffic.windowMs / 1000, routes: await this.traffic.sample(now) },
      usage: this.usage,
    };
  }

  /** Computes one snapshot and sends it to everyone; a tick asked for meanwhile runs once this one is sent. */
  private tick(): void {
    if (this.running !== null) { this.again = true; return; }
    this.running = this.snapshot().then((s) => {
      const text = `event: snapshot\ndata: ${JSON.stringify(s)}\n\n`;
      this.last = { text, at: Date.now() };
      for (const res of this.subscribers) if (!res.writableNeedDrain) res.write(text);
    }, (e: unknown) => this.host.logger.warn({ err: e }, 'dashboard snapshot failed')).finally(() => {
      this.running = null;
      if (this.again) { this.again = false; if (this.subscribers.size > 0) this.tick(); }
    });
  }
}
