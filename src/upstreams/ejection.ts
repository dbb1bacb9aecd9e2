import { OutcomeWindow } from './outcome-window.ts';

export interface EjectionOptions {
  /** Consecutive failed exchanges that eject a target. */
  failures: number;
  /** Or: this share of failures among the last `minRequests` exchanges. */
  failureRatio?: number;
  minRequests: number;
  /** First ejection length (ms); each ejection soon after a return doubles it, up to maxEjectFor. */
  ejectFor: number;
  maxEjectFor: number;
}

/**
 * Passive health from real traffic (outlier detection): a target that keeps failing is taken out of rotation
 * for a growing interval (1 s, 2 s, 4 s, … capped), then traffic is let back in full. A target that stays in
 * rotation for `maxEjectFor` after coming back is forgiven and starts again from `ejectFor`.
 *
 * Outcomes of exchanges started before the target's last ejection or return are ignored (see CircuitBreaker).
 */
export class PassiveHealth {
  /** performance.now() at which an ejected target returns; 0 when it is in rotation. */
  ejectedUntil = 0;
  /** Ejections since start. */
  ejections = 0;
  /** Length of the current (or last) ejection, ms. */
  lastEjectFor = 0;
  consecutiveFailures = 0;
  private level = 0;
  private since = 0;
  private returnedAt = Number.NEGATIVE_INFINITY;
  private readonly window: OutcomeWindow | null;
  private readonly o: EjectionOptions;

  constructor(o: EjectionOptions) {
    this.o = o;
    this.window = o.failureRatio !== undefined ? new OutcomeWindow(o.minRequests) : null;
  }

  /** Records an outcome; returns the ejection length (ms) when this outcome ejects the target, else 0. */
  record(failed: boolean, startedAt: number, now: number): number {
    if (this.ejectedUntil !== 0 || startedAt < this.since) return 0;
    if (!failed) {
      this.consecutiveFailures = 0;
      this.window?.add(false);
      return 0;
    }
    this.consecutiveFailures++;
    this.window?.add(true);
    if (this.consecutiveFailures < this.o.failures && !(this.window !== null && this.window.reached(this.o.failureRatio!))) return 0;
    if (now - this.returnedAt > this.o.maxEjectFor) this.level = 0;
    const ms = Math.min(this.o.maxEjectFor, this.o.ejectFor * 2 ** this.level);
    this.level = Math.min(this.level + 1, 30);
    this.ejectedUntil = now + ms;
    this.lastEjectFor = ms;
    this.ejections++;
    this.reset(now);
    return ms;
  }

  /** Lets the target back (the caller checked that the ejection is over). */
  readmit(now: number): void {
    this.ejectedUntil = 0;
    this.returnedAt = now;
    this.reset(now);
  }

  private reset(now: number): void {
    this.since = now;
    this.consecutiveFailures = 0;
    this.window?.clear();
  }
}
