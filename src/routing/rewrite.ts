import type { Rewrite } from '../pipeline/context.ts';

export type { Rewrite };

/** Compiles a route's `rewrite` into one function over the matched (normalized) path. Null when the path passes unchanged. */
export function compileRewrite(r: { stripPrefix?: string; addPrefix?: string; path?: string } | undefined): Rewrite | null {
  if (!r) return null;
  if (r.path !== undefined) return compileTemplate(r.path);
  const strip = r.stripPrefix?.replace(/\/$/, '');
  const add = r.addPrefix?.replace(/\/$/, '');
  if (!strip && !add) return null;
  return (path) => {
    let p = path;
    if (strip && (p === strip || p.startsWith(strip + '/'))) p = p.slice(strip.length) || '/';
    return add ? add + p : p;
  };
}

/** `/v2/get-response-physio/:id/*`: `:name` and `*` are filled from the match, re-encoded. */
function compileTemplate(tpl: string): Rewrite {
  const parts = tpl.split(/(:[A-Za-z_][A-Za-z0-9_]*|\*)/).filter((p) => p !== '');
  if (parts.length === 1 && !parts[0].startsWith(':') && parts[0] !== '*') return () => tpl;
  return (_path, params) => {
    let out = '';
    for (const p of parts) {
      if (p === '*') out += encodePathValue(params['*'] ?? '', true);
      else if (p[0] === ':') out += encodePathValue(params[p.slice(1)] ?? '', false);
      else out += p;
    }
    return out;
  };
}

function encodePathValue(v: string, keepSlash: boolean): string {
  const e = encodeURIComponent(v);
  return keepSlash ? e.replace(/%2F/g, '/') : e;
}
