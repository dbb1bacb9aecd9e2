import { OutcomeWindow } from './outcome-window.ts';

export const CLOSED = 0;
export const HALF_OPEN = 1;
export const OPEN = 2;
export type CircuitState = typeof CLOSED | typeof HALF_OPEN | typeof OPEN;
export const STATE_NAMES = ['closed', 'half_open', 'open'] as const;

export interface BreakerOptions {
  /** Consecutive failures that open the circuit. */
  failures: number;
  /** Or: this share of failures among the last `minRequests` outcomes. */
  failureRatio?: number;
  minRequests: number;
  /** How long the circuit stays open before probes are let through (ms). */
  resetAfter: number;
  /** Probe requests allowed at once while half-open; this many successes close the circuit. */
  halfOpenRequests: number;
}

export type TransitionListener = (from: CircuitState, to: CircuitState) => void;

/**
 * CLOSED → OPEN after N consecutive failures (or a failure ratio over a minimum of requests) → HALF_OPEN once
 * `resetAfter` has passed, with a limited number of probes → CLOSED when they succeed, OPEN again when one fails.
 *
 * Time is `performance.now()` milliseconds, passed in by the caller. Every outcome carries the time its
 * exchange started: an outcome of an exchange started before the last transition describes the previous
 * state (a request that was already in flight when the circuit opened) and is ignored, so a late failure
 * never re-opens a circuit its probes just closed, and probe slots are accounted exactly.
 */
export class CircuitBreaker {
  state: CircuitState = CLOSED;
  /** When the current state began. */
  since = 0;
  /** When an open circuit lets its first probe through. */
  openUntil = 0;
  consecutiveFailures = 0;
  /** Times the circuit has opened since start. */
  opened = 0;
  private probes = 0;
  private probeSuccesses = 0;
  private readonly window: OutcomeWindow | null;
  private readonly o: BreakerOptions;
  private onTransition: TransitionListener;

  constructor(o: BreakerOptions, onTransition: TransitionListener = () => {}) {
    this.o = o;
    this.onTransition = onTransition;
    this.window = o.failureRatio !== undefined ? new OutcomeWindow(o.minRequests) : null;
  }

  /** Where transitions are reported from now on (a reload hands the breaker to the next generation's target). */
  listen(fn: TransitionListener): void {
    this.onTransition = fn;
  }

  /** Whether a request may pass now (does not take a probe slot). Moves OPEN → HALF_OPEN once the reset time has come. */
  canPass(now: number): boolean {
    if (this.state === CLOSED) return true;
    if (this.state === OPEN) {
      if (now < this.openUntil) return false;
      this.transition(HALF_OPEN, now);
    }
    if (this.probes < this.o.halfOpenRequests) return true;
    // Probes that never reported (a path that ended without an outcome) must not wedge the circuit half-open.
    if (now - this.since < this.o.resetAfter) return false;
    this.since = now;
    this.probes = 0;
    this.probeSuccesses = 0;
    return true;
  }

  /** Takes a probe slot; call once for the request actually sent after canPass() said yes. */
  acquire(): void {
    if (this.state === HALF_OPEN) this.probes++;
  }

  /** An exchange's outcome: failed true/false, or null when it says nothing about the upstream (client left). */
  record(failed: boolean | null, startedAt: number, now: number): void {
    if (startedAt < this.since) return;
    if (this.state === CLOSED) {
      if (failed === null) return;
      if (failed) {
        this.consecutiveFailures++;
        this.window?.add(true);
        if (this.consecutiveFailures >= this.o.failures || (this.window !== null && this.window.reached(this.o.failureRatio!))) this.open(now);
      } else {
        this.consecutiveFailures = 0;
        this.window?.add(false);
      }
      return;
    }
    if (this.state !== HALF_OPEN) return;
    if (this.probes > 0) this.probes--;
    if (failed === null) return;
    if (failed) this.open(now);
    else if (++this.probeSuccesses >= this.o.halfOpenRequests) this.transition(CLOSED, now);
  }

  /** Milliseconds until the circuit lets a request through (0 when it would now; about a second while probes are out). */
  retryAfterMs(now: number): number {
    if (this.state === OPEN) return Math.max(0, this.openUntil - now);
    if (this.state === HALF_OPEN && this.probes >= this.o.halfOpenRequests) return 1000;
    return 0;
  }

  private open(now: number): void {
    this.openUntil = now + this.o.resetAfter;
    this.opened++;
    this.transition(OPEN, now);
  }

  private transition(to: CircuitState, now: number): void {
    const from = this.state;
    this.state = to;
    this.since = now;
    this.consecutiveFailures = 0;
    this.probes = 0;
    this.probeSuccesses = 0;
    this.window?.clear();
    this.onTransition(from, to);
  }
}
