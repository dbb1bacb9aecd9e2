/**
 * Retries may be at most `ratio` of the requests sent to an upstream over a sliding window (with a small
 * floor so a quiet upstream can still retry), so an outage is never multiplied by the retry count:
 * when every target fails, upstream calls stay near requests × (1 + ratio), not requests × (1 + attempts).
 *
 * The window is `buckets` slots of `windowMs / buckets`, rolled lazily when touched (no timer).
 * Time is performance.now() milliseconds.
 */
export class RetryBudget {
  readonly ratio: number;
  readonly minRetries: number;
  readonly windowMs: number;
  private readonly requests: Uint32Array;
  private readonly retries: Uint32Array;
  private readonly slotMs: number;
  private head = 0;
  private headStart = 0;
  private requestSum = 0;
  private retrySum = 0;

  constructor(ratio: number, minRetries: number, windowMs = 10_000, buckets = 10) {
    this.ratio = ratio;
    this.minRetries = minRetries;
    this.windowMs = windowMs;
    this.slotMs = windowMs / buckets;
    this.requests = new Uint32Array(buckets);
    this.retries = new Uint32Array(buckets);
  }

  /** Counts a request (its first attempt). */
  deposit(now: number): void {
    this.roll(now);
    this.requests[this.head]++;
    this.requestSum++;
  }

  /** Takes one retry from the budget; false (and nothing taken) when the budget is spent. */
  withdraw(now: number): boolean {
    this.roll(now);
    if (this.retrySum + 1 > Math.max(this.minRetries, this.ratio * this.requestSum)) return false;
    this.retries[this.head]++;
    this.retrySum++;
    return true;
  }

  /** Requests and retries in the current window (admin API). */
  usage(now: number): { requests: number; retries: number; allowed: number } {
    this.roll(now);
    return { requests: this.requestSum, retries: this.retrySum, allowed: Math.floor(Math.max(this.minRetries, this.ratio * this.requestSum)) };
  }

  private roll(now: number): void {
    if (now < this.headStart + this.slotMs) return;
    const n = this.requests.length;
    const steps = Math.floor((now - this.headStart) / this.slotMs);
    if (steps >= n) {
      this.requests.fill(0);
      this.retries.fill(0);
      this.requestSum = 0;
      this.retrySum = 0;
      this.headStart = now;
      return;
    }
    for (let i = 0; i < steps; i++) {
      this.head = this.head + 1 === n ? 0 : this.head + 1;
      this.requestSum -= this.requests[this.head];
      this.retrySum -= this.retries[this.head];
      this.requests[this.head] = 0;
      this.retries[this.head] = 0;
    }
    this.headStart += steps * this.slotMs;
  }
}
