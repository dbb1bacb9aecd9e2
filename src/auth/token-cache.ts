/**
 * A bounded map of tokens that already passed verification, so the signature check (tens of µs for RS256,
 * over 100 µs for ES256) runs once per token rather than once per request. Only successes are stored; each
 * entry carries the time it stops being valid (the token's `exp`, capped by the cache TTL). Eviction is
 * oldest-first once `maxEntries` is reached: the bound matters more than the hit rate under churn.
 *
 * Trade-off: a token verified once stays accepted until its entry lapses even if its signing key is removed
 * from the JWKS in the meantime, so revocation by key removal takes effect within the TTL, not instantly.
 */
export class VerifiedTokenCache<V extends { readonly until: number }> {
  private readonly map = new Map<string, V>();

  constructor(private readonly maxEntries: number) {}

  get(token: string, now: number): V | undefined {
    const e = this.map.get(token);
    if (e === undefined) return undefined;
    if (e.until > now) return e;
    this.map.delete(token);
    return undefined;
  }

  set(token: string, value: V): void {
    if (this.maxEntries <= 0) return;
    if (this.map.size >= this.maxEntries) {
      const oldest = this.map.keys().next();
      if (!oldest.done) this.map.delete(oldest.value);
    }
    this.map.set(token, value);
  }

  get size(): number {
    return this.map.size;
  }

  clear(): void {
    this.map.clear();
  }
}
