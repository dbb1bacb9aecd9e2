import type { UpstreamConfig } from '../upstreams/schema.ts';
import { Upstream, type UpstreamEvents } from '../upstreams/upstream.ts';

export interface PreviousUpstreams {
  upstreams: ReadonlyMap<string, Upstream>;
  configs: Readonly<Record<string, UpstreamConfig>>;
}

/**
 * A generation's upstreams. Across a reload, an upstream whose settings (and whole fallback chain) are unchanged
 * is the same object: its pools, in-flight counts, health checks, circuits, ejections and admin-set weights go
 * on as if nothing happened. A changed one is built anew and, when the generation is activated, adopts what
 * still applies from its predecessor (state per target URL, see Upstream.adopt); the predecessor's pools drain
 * with the old generation. Adoption waits for activation because it rebinds the predecessor's circuits: a
 * compile that fails must leave the live generation untouched.
 * Builds objects only: no connection is opened and no check starts until the generation is activated.
 */
export function buildUpstreams(configs: Readonly<Record<string, UpstreamConfig>>, events: UpstreamEvents, prev: PreviousUpstreams | null): { upstreams: Map<string, Upstream>; adopt: () => void } {
  const chain = (name: string): string[] => {
    const out: string[] = [];
    const seen = new Set([name]);
    for (let next = configs[name].fallback; next !== undefined && !seen.has(next) && Object.hasOwn(configs, next); next = configs[next].fallback) {
      seen.add(next);
      out.push(next);
    }
    return out;
  };
  const keep = new Set<string>();
  if (prev !== null) {
    for (const name of Object.keys(configs)) {
      if (prev.upstreams.has(name) && Object.hasOwn(prev.configs, name) && JSON.stringify(prev.configs[name]) === JSON.stringify(configs[name])) keep.add(name);
    }
    // A kept upstream's fallbacks are objects too: if one of them is rebuilt, so is it.
    for (let changed = true; changed;) {
      changed = false;
      for (const name of keep) {
        const old = prev.upstreams.get(name)!.fallbacks.map((u) => u.name);
        const now = chain(name);
        if (old.length !== now.length || now.some((n, i) => n !== old[i] || !keep.has(n))) { keep.delete(name); changed = true; }
      }
    }
  }

  const out = new Map<string, Upstream>();
  const adoptions: Array<() => void> = [];
  for (const [name, cfg] of Object.entries(configs)) {
    if (keep.has(name)) { out.set(name, prev!.upstreams.get(name)!); continue; }
    const up = new Upstream(name, cfg, events);
    const before = prev?.upstreams.get(name);
    if (before !== undefined) adoptions.push(() => up.adopt(before, prev!.configs[name], cfg));
    out.set(name, up);
  }
  // fallback chains, resolved once: a → b → c becomes a.fallbacks = [b, c] (a cycle stops where it would repeat)
  for (const [name, up] of out) if (!keep.has(name)) up.fallbacks = chain(name).map((n) => out.get(n)!);
  return { upstreams: out, adopt: () => { for (const a of adoptions) a(); } };
}
