/**
 * Model names as the config writes them: exact names, and patterns ending in `*` (a prefix; `*` alone matches
 * any model). An exact name wins, then the longest prefix. Compiled once; a lookup is one Map get, then a scan
 * of the (few) patterns.
 */
export class ModelTable<T> {
  private readonly exact = new Map<string, T>();
  private readonly prefixes: Array<[string, T]> = [];

  constructor(entries: Iterable<readonly [string, T]>) {
    for (const [name, v] of entries) {
      if (name.endsWith('*')) this.prefixes.push([name.slice(0, -1), v]);
      else this.exact.set(name, v);
    }
    this.prefixes.sort((a, b) => b[0].length - a[0].length);
  }

  get(model: string): T | undefined {
    const v = this.exact.get(model);
    if (v !== undefined) return v;
    for (const [p, x] of this.prefixes) if (model.startsWith(p)) return x;
    return undefined;
  }

  /** The exact names (patterns excluded). */
  names(): string[] {
    return [...this.exact.keys()];
  }
}

/** Whether a config key is a pattern rather than one model. */
export const isPattern = (name: string): boolean => name.endsWith('*');
