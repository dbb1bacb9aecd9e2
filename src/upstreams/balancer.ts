/**
 * Load balancers. A balancer picks among the targets that can serve now: weight > 0 (weight 0 is a standby,
 * e.g. the idle colour of a blue-green pair) and either `ready` (the fast path: healthy, in rotation, circuit
 * closed) or `canServe()` (the slow path, only for targets that are not ready: it handles ejections that have
 * ended and circuits due for a probe).
 *
 * `exclude` is a bit mask of targets already tried by this request (a retry goes to a different target when
 * there is one); when only excluded targets can serve, one of them is returned anyway.
 *
 * Picking allocates nothing: state lives in typed arrays sized at construction.
 */
export interface Candidate {
  weight: number;
  inflight: number;
  ready: boolean;
  /** 1 << index for the first 31 targets, 0 beyond (those cannot be excluded). */
  readonly bit: number;
  canServe(): boolean;
}

export type BalanceKind = 'round-robin' | 'least-request' | 'weighted';

export interface Balancer {
  pick(targets: readonly Candidate[], exclude: number): Candidate | null;
  /** Forget accumulated state (after a weight change). */
  reset(): void;
}

export function createBalancer(kind: BalanceKind, size: number): Balancer {
  switch (kind) {
    case 'least-request': return new LeastRequest(size);
    case 'weighted': return new SmoothWeighted(size);
    default: return new RoundRobin();
  }
}

function usable(t: Candidate): boolean {
  return t.weight > 0 && (t.ready || t.canServe());
}

/** Plain rotation over the targets that can serve; weights other than 0 play no part. */
export class RoundRobin implements Balancer {
  private next = 0;

  pick(ts: readonly Candidate[], exclude: number): Candidate | null {
    const n = ts.length;
    let excluded: Candidate | null = null;
    for (let i = 0; i < n; i++) {
      let idx = this.next + i;
      if (idx >= n) idx -= n;
      const t = ts[idx];
      if (!usable(t)) continue;
      if ((exclude & t.bit) !== 0) { excluded ??= t; continue; }
      this.next = idx + 1 === n ? 0 : idx + 1;
      return t;
    }
    return excluded;
  }

  reset(): void {
    this.next = 0;
  }
}

/**
 * Power of two choices on in-flight requests: sample two targets (with probability proportional to weight),
 * send to the one with fewer in-flight requests per unit of weight. Avoids the herd a strict least-request
 * scan causes, and steers away from a slow target as its requests pile up.
 */
export class LeastRequest implements Balancer {
  private readonly idx: Int32Array;

  constructor(size: number) {
    this.idx = new Int32Array(size);
  }

  pick(ts: readonly Candidate[], exclude: number): Candidate | null {
    const idx = this.idx;
    let m = 0;
    let total = 0;
    let excluded: Candidate | null = null;
    for (let i = 0; i < ts.length; i++) {
      const t = ts[i];
      if (!usable(t)) continue;
      if ((exclude & t.bit) !== 0) { excluded ??= t; continue; }
      idx[m++] = i;
      total += t.weight;
    }
    if (m === 0) return excluded;
    if (m === 1) return ts[idx[0]];
    const a = ts[idx[this.sample(ts, m, total)]];
    let bi = this.sample(ts, m, total);
    let b = ts[idx[bi]];
    if (b === a) {
      // a second, distinct choice: the next candidate in the list
      bi = bi + 1 === m ? 0 : bi + 1;
      b = ts[idx[bi]];
    }
    // a.inflight / a.weight <= b.inflight / b.weight, without dividing
    return a.inflight * b.weight <= b.inflight * a.weight ? a : b;
  }

  private sample(ts: readonly Candidate[], m: number, total: number): number {
    let r = Math.random() * total;
    for (let j = 0; j < m; j++) {
      r -= ts[this.idx[j]].weight;
      if (r < 0) return j;
    }
    return m - 1;
  }

  reset(): void {}
}

/**
 * nginx's smooth weighted round-robin: each pick adds every target's weight to its running score, takes the
 * highest and subtracts the total from it. Weights 5,1,1 give a a b a c a a: the share is exact over each
 * cycle and the heavy target's turns are spread out, which suits canaries (weight 95/5).
 */
export class SmoothWeighted implements Balancer {
  private readonly current: Float64Array;

  constructor(size: number) {
    this.current = new Float64Array(size);
  }

  pick(ts: readonly Candidate[], exclude: number): Candidate | null {
    const cw = this.current;
    let best = -1;
    let total = 0;
    let excluded: Candidate | null = null;
    for (let i = 0; i < ts.length; i++) {
      const t = ts[i];
      if (!usable(t)) continue;
      if ((exclude & t.bit) !== 0) { excluded ??= t; continue; }
      cw[i] += t.weight;
      total += t.weight;
      if (best < 0 || cw[i] > cw[best]) best = i;
    }
    if (best < 0) return excluded;
    cw[best] -= total;
    return ts[best];
  }

  reset(): void {
    this.current.fill(0);
  }
}
