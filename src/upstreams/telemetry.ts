import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { Logger } from '../observability/logger.ts';
import { STATE_NAMES, type CircuitState } from './circuit-breaker.ts';
import type { Target, Upstream, UpstreamEvents } from './upstream.ts';

/** Label value for the upstream-wide circuit (a target label is always a URL, so this cannot collide). */
export const WHOLE_UPSTREAM = '*';

/**
 * Logs and metrics for upstream state changes. Labels are bounded by the config: upstream names and target
 * labels (origin + base path, never credentials). Nothing here runs per request on the happy path.
 */
export class UpstreamTelemetry implements UpstreamEvents {
  private readonly log: Logger;
  private readonly targetUp: Gauge;
  private readonly targetHealthy: Gauge;
  private readonly targetWeight: Gauge;
  private readonly circuitState: Gauge;
  private readonly transitions: Counter;
  private readonly ejections: Counter;
  private readonly healthChecks: Counter;
  private readonly checkDuration: Histogram;
  private readonly retries: Counter;
  private readonly exhausted: Counter;
  private readonly fallbacks: Counter;
  private readonly rejected: Counter;

  constructor(logger: Logger, registry: Registry) {
    this.log = logger;
    const registers = [registry];
    this.targetUp = new Gauge({ name: 'gatehouse_upstream_target_up', help: 'Whether a target is in rotation (1: healthy, not ejected, circuit closed).', labelNames: ['upstream', 'target'], registers });
    this.targetHealthy = new Gauge({ name: 'gatehouse_upstream_target_healthy', help: 'Active health check verdict per target (1 healthy).', labelNames: ['upstream', 'target'], registers });
    this.targetWeight = new Gauge({ name: 'gatehouse_upstream_target_weight', help: 'Current balancing weight per target (0: standby).', labelNames: ['upstream', 'target'], registers });
    this.circuitState = new Gauge({ name: 'gatehouse_circuit_state', help: 'Circuit state: 0 closed, 1 half-open, 2 open (target "*": the upstream-wide circuit).', labelNames: ['upstream', 'target'], registers });
    this.transitions = new Counter({ name: 'gatehouse_circuit_transitions_total', help: 'Circuit state transitions.', labelNames: ['upstream', 'target', 'to'], registers });
    this.ejections = new Counter({ name: 'gatehouse_upstream_ejections_total', help: 'Targets ejected by passive health (failures seen in real traffic).', labelNames: ['upstream', 'target'], registers });
    this.healthChecks = new Counter({ name: 'gatehouse_upstream_health_checks_total', help: 'Active health checks by result.', labelNames: ['upstream', 'target', 'result'], registers });
    this.checkDuration = new Histogram({ name: 'gatehouse_upstream_health_check_duration_seconds', help: 'How long active health checks took (a timed-out check counts its timeout), by upstream.', labelNames: ['upstream'], buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers });
    this.retries = new Counter({ name: 'gatehouse_upstream_retries_total', help: 'Retries sent to an upstream.', labelNames: ['upstream'], registers });
    this.exhausted = new Counter({ name: 'gatehouse_upstream_retry_budget_exhausted_total', help: 'Retries not sent because the retry budget was spent.', labelNames: ['upstream'], registers });
    this.fallbacks = new Counter({ name: 'gatehouse_upstream_fallbacks_total', help: 'Requests served by a fallback upstream because no target of theirs could.', labelNames: ['upstream', 'fallback'], registers });
    this.rejected = new Counter({ name: 'gatehouse_upstream_unavailable_total', help: 'Requests answered without an upstream call because nothing could serve (circuit open, all targets down).', labelNames: ['upstream', 'code'], registers });
  }

  /** Sets every gauge to its starting value, so dashboards see each target from the start. */
  init(upstreams: Iterable<Upstream>): void {
    for (const up of upstreams) {
      for (const t of up.targets) {
        this.targetUp.labels(up.name, t.label).set(t.ready ? 1 : 0);
        this.targetHealthy.labels(up.name, t.label).set(t.healthy ? 1 : 0);
        this.targetWeight.labels(up.name, t.label).set(t.weight);
        if (t.breaker !== null) this.circuitState.labels(up.name, t.label).set(t.breaker.state);
      }
      if (up.breaker !== null) this.circuitState.labels(up.name, WHOLE_UPSTREAM).set(up.breaker.state);
    }
  }

  circuit(up: Upstream, target: Target | null, from: CircuitState, to: CircuitState): void {
    const label = target?.label ?? WHOLE_UPSTREAM;
    this.circuitState.labels(up.name, label).set(to);
    this.transitions.labels(up.name, label, STATE_NAMES[to]).inc();
    const fields = { upstream: up.name, target: label, from: STATE_NAMES[from], to: STATE_NAMES[to] };
    const b = target?.breaker ?? up.breaker;
    if (to === 2) this.log.warn({ ...fields, retryInMs: b ? Math.round(b.openUntil - performance.now()) : undefined }, 'circuit opened');
    else this.log.info(fields, to === 1 ? 'circuit half-open: letting probes through' : 'circuit closed');
  }

  ejected(t: Target, ms: number): void {
    this.ejections.labels(t.upstream.name, t.label).inc();
    this.log.warn({ upstream: t.upstream.name, target: t.label, ejectForMs: ms, ejections: t.passive?.ejections }, 'target ejected after failures in traffic');
  }

  readmitted(t: Target): void {
    this.log.info({ upstream: t.upstream.name, target: t.label }, 'ejected target back in rotation');
  }

  health(t: Target, healthy: boolean): void {
    this.targetHealthy.labels(t.upstream.name, t.label).set(healthy ? 1 : 0);
    const c = t.checker;
    const fields = { upstream: t.upstream.name, target: t.label, status: c?.lastStatus || undefined, error: c?.lastError ?? undefined };
    if (healthy) this.log.info(fields, 'target healthy');
    else this.log.warn(fields, 'target unhealthy');
  }

  check(t: Target, ok: boolean, seconds: number): void {
    this.healthChecks.labels(t.upstream.name, t.label, ok ? 'ok' : 'fail').inc();
    this.checkDuration.labels(t.upstream.name).observe(seconds);
  }

  available(t: Target): void {
    this.targetUp.labels(t.upstream.name, t.label).set(t.ready ? 1 : 0);
  }

  weights(up: Upstream): void {
    for (const t of up.targets) this.targetWeight.labels(up.name, t.label).set(t.weight);
    this.log.info({ upstream: up.name, weights: Object.fromEntries(up.targets.map((t) => [t.label, t.weight])) }, 'upstream weights changed');
  }

  retry(up: Upstream): void {
    this.retries.labels(up.name).inc();
  }

  budgetExhausted(up: Upstream): void {
    this.exhausted.labels(up.name).inc();
  }

  fallback(up: Upstream, to: Upstream): void {
    this.fallbacks.labels(up.name, to.name).inc();
  }

  unavailable(up: Upstream, code: string): void {
    this.rejected.labels(up.name, code).inc();
  }
}
