import { RetryBudget } from './retry-budget.ts';

/** Methods whose repetition has the same effect as one request (RFC 9110 §9.2.2), minus TRACE which we never route. */
export const IDEMPOTENT_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE']);

export interface RetryConfig {
  attempts: number;
  budget: string;
  backoff: number;
  minRetries: number;
  retryOn: number[];
}

/** An upstream's compiled `retry:` block. */
export class RetryPolicy {
  /** Retries after the first try (attempts: 2 → up to 3 tries). */
  readonly attempts: number;
  readonly backoff: number;
  readonly budget: RetryBudget;
  readonly budgetText: string;
  private readonly statuses = new Uint8Array(100);

  constructor(c: RetryConfig) {
    this.attempts = c.attempts;
    this.backoff = c.backoff;
    this.budgetText = c.budget;
    this.budget = new RetryBudget(parseFloat(c.budget) / 100, c.minRetries);
    for (const s of c.retryOn) if (s >= 500 && s <= 599) this.statuses[s - 500] = 1;
  }

  /** Whether an upstream answer with this status is worth another target (502/503/504 by default). */
  retriesStatus(status: number): boolean {
    return status >= 500 && status <= 599 && this.statuses[status - 500] === 1;
  }

  /** Exponential backoff with jitter for the n-th retry (1-based): half fixed, half random, capped at 1 s or 8 × backoff. */
  delay(n: number): number {
    const ceiling = Math.min(this.backoff * 2 ** (n - 1), Math.max(1000, this.backoff * 8));
    return ceiling / 2 + Math.random() * (ceiling / 2);
  }
}
