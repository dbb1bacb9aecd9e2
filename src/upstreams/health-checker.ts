import { Client } from './undici.ts';

export interface HealthCheckConfig {
  path: string;
  interval: number;
  timeout: number;
  healthyThreshold: number;
  unhealthyThreshold: number;
  expectStatus?: number[];
}

/** What a checker needs from its target. */
export interface CheckedTarget {
  readonly origin: string;
  readonly host: string;
  healthy: boolean;
}

/**
 * Active health checks for one target, in the background: GET `path` every `interval` (±10% jitter, the first
 * one at a random point of the first second so a fleet of targets is not probed in lockstep). A check never
 * overlaps the previous one and never blocks a request: it runs on its own one-connection client, not the
 * target's pool, so a pool full of hanging requests cannot starve it, and requests only ever read the result.
 *
 * `unhealthyThreshold` failed checks in a row take the target out of rotation; `healthyThreshold` passing
 * checks in a row bring it back. A check fails on a connect error, a timeout (connect + headers + body within
 * `timeout`) or a status outside `expectStatus` (default: 2xx and 3xx).
 */
export class HealthChecker {
  /** Last check: status code (0 when none came back), duration, wall-clock time, error code. */
  lastStatus = 0;
  lastMs = -1;
  lastAt = 0;
  lastError: string | null = null;
  checks = 0;
  consecutiveOk = 0;
  consecutiveFailed = 0;
  private readonly client: Client;
  private timer: NodeJS.Timeout | null = null;
  private abort: AbortController | null = null;
  private stopped = false;
  private readonly target: CheckedTarget;
  private readonly cfg: HealthCheckConfig;
  private readonly onChange: (healthy: boolean) => void;
  private readonly onCheck: (ok: boolean, seconds: number) => void;

  constructor(target: CheckedTarget, cfg: HealthCheckConfig, onChange: (healthy: boolean) => void, onCheck: (ok: boolean, seconds: number) => void = () => {}) {
    this.target = target;
    this.cfg = cfg;
    this.onChange = onChange;
    this.onCheck = onCheck;
    this.client = new Client(target.origin, {
      connect: { timeout: cfg.timeout },
      headersTimeout: cfg.timeout,
      bodyTimeout: cfg.timeout,
      keepAliveTimeout: Math.min(cfg.interval * 2, 30_000),
      pipelining: 1,
    });
  }

  start(): void {
    this.schedule(Math.random() * Math.min(this.cfg.interval, 1000));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.abort?.abort();
    await this.client.destroy().catch(() => {});
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => { this.timer = null; void this.run(); }, ms);
    this.timer.unref();
  }

  private async run(): Promise<void> {
    const ac = new AbortController();
    this.abort = ac;
    const deadline = setTimeout(() => ac.abort(), this.cfg.timeout);
    const t0 = performance.now();
    let status = 0;
    let error: string | null = null;
    try {
      const res = await this.client.request({ path: this.cfg.path, method: 'GET', headers: { host: this.target.host, 'user-agent': 'gatehouse-health-check' }, signal: ac.signal });
      status = res.statusCode;
      await res.body.dump({ limit: 64 * 1024 });
    } catch (e) {
      error = ac.signal.aborted ? 'timeout' : ((e as { code?: string }).code ?? (e as Error).name ?? 'error');
    } finally {
      clearTimeout(deadline);
      this.abort = null;
    }
    if (this.stopped) return;
    const expected = this.cfg.expectStatus;
    const ok = error === null && (expected ? expected.includes(status) : status >= 200 && status < 400);
    if (error === null && !ok) error = `status ${status}`;
    this.lastStatus = status;
    this.lastMs = performance.now() - t0;
    this.lastAt = Date.now();
    this.lastError = error;
    this.checks++;
    this.record(ok);
    this.schedule(this.cfg.interval * (0.9 + Math.random() * 0.2));
  }

  private record(ok: boolean): void {
    this.onCheck(ok, this.lastMs / 1000);
    if (ok) {
      this.consecutiveFailed = 0;
      this.consecutiveOk++;
      if (!this.target.healthy && this.consecutiveOk >= this.cfg.healthyThreshold) this.onChange(true);
    } else {
      this.consecutiveOk = 0;
      this.consecutiveFailed++;
      if (this.target.healthy && this.consecutiveFailed >= this.cfg.unhealthyThreshold) this.onChange(false);
    }
  }
}
