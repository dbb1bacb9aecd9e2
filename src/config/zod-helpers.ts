import { z } from 'zod';
import { parseDuration, parseSize } from './units.ts';
import { suggest } from './suggest.ts';

/**
 * An object that rejects unknown keys with a "did you mean" hint: the most common
 * config mistake is a misspelt key that would otherwise be silently ignored.
 */
export function obj<T extends z.ZodRawShape>(shape: T) {
  const known = Object.keys(shape);
  return z.strictObject(shape, {
    error: (iss) => {
      if (iss.code !== 'unrecognized_keys') return undefined;
      return iss.keys.map((k) => {
        const s = suggest(k, known);
        return `unknown key "${k}"${s ? ` (did you mean "${s}"?)` : ''}`;
      }).join('; ');
    },
  });
}

export const duration = z.string({ error: 'expected a duration with a unit, e.g. "30s"' }).transform((v, ctx) => {
  const r = parseDuration(v);
  if (typeof r === 'string') { ctx.addIssue({ code: 'custom', message: r }); return z.NEVER; }
  return r;
}).meta({ format: 'duration' });

export const size = z.union([z.string(), z.number()], { error: 'expected a size, e.g. "10mb"' }).transform((v, ctx) => {
  const r = parseSize(v);
  if (typeof r === 'string') { ctx.addIssue({ code: 'custom', message: r }); return z.NEVER; }
  return r;
}).meta({ format: 'size' });

/**
 * A positive integer, also from a string of digits: `limit: "${RATE_LIMIT_REQUESTS:-100}"` must be quoted inside
 * a flow mapping (`{ … }`), and quoted scalars stay strings after interpolation.
 */
export const positiveInt = z.preprocess((v) => (typeof v === 'string' && /^\d+$/.test(v.trim()) ? Number(v) : v), z.number({ error: 'expected a whole number' }).int().positive());

/** `host:port`, `:port` or a bare port. */
export const listenAddress = z.union([z.string(), z.number()]).transform((v, ctx) => {
  const s = String(v);
  const m = /^(?:\[([^\]]+)\]|([^:\s]*)):(\d{1,5})$/.exec(s) ?? (/^\d{1,5}$/.test(s) ? [s, undefined, '', s] : null);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) { ctx.addIssue({ code: 'custom', message: `"${s}" is not a listen address; use host:port, e.g. 0.0.0.0:8000` }); return z.NEVER; }
  return { host: m[1] ?? (m[2] || '0.0.0.0'), port };
});
export type ListenAddress = { host: string; port: number };

/**
 * Error option for a union of a shorthand (string) and a long form (object): zod reports a failed union as
 * "Invalid input"; this names what was wrong in the form the user chose instead.
 */
export function explainUnion(fallback: string) {
  return (iss: { code?: string; input?: unknown; errors?: ReadonlyArray<ReadonlyArray<{ path: PropertyKey[]; message: string }>> }) => {
    if (iss.code !== 'invalid_union' || !iss.errors) return undefined;
    const first = iss.errors[typeof iss.input === 'object' && iss.input !== null ? iss.errors.length - 1 : 0]?.[0];
    return first ? `${first.path.length ? `${first.path.join('.')}: ` : ''}${first.message}` : fallback;
  };
}

