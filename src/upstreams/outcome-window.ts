/**
 * The last `size` outcomes of a target or upstream (a count-based sliding window), for failure-ratio rules.
 * Count-based rather than time-based: a ratio needs a minimum number of requests anyway, and this needs no clock.
 */
export class OutcomeWindow {
  private readonly ring: Uint8Array;
  private next = 0;
  private filled = 0;
  failures = 0;

  constructor(size: number) {
    this.ring = new Uint8Array(size);
  }

  add(failed: boolean): void {
    const v = failed ? 1 : 0;
    if (this.filled === this.ring.length) this.failures -= this.ring[this.next];
    else this.filled++;
    this.ring[this.next] = v;
    this.failures += v;
    this.next = this.next + 1 === this.ring.length ? 0 : this.next + 1;
  }

  /** Whether the window is full and its failure share has reached `ratio`. */
  reached(ratio: number): boolean {
    return this.filled === this.ring.length && this.failures >= ratio * this.filled;
  }

  clear(): void {
    this.ring.fill(0);
    this.next = 0;
    this.filled = 0;
    this.failures = 0;
  }
}
