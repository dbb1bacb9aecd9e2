import type { RequestContext } from '../pipeline/context.ts';
import { conditionsHold, type CompiledRoute } from './table.ts';
import { peekBody, extractField } from '../pipeline/body-peek.ts';

/**
 * Content-based routing: picks among a path's candidates (conditional ones first, as the table
 * sorted them). Header and query conditions are checked synchronously; only when the first
 * candidate still standing has a `match.body` condition is the request body peeked (up to `cap`
 * bytes, kept in `ctx.bodyPrefix` and replayed to the upstream), so routes without body
 * conditions never wait for or touch the body.
 */
export function createChooser(cap: number) {
  return function choose(ctx: RequestContext, candidates: readonly CompiledRoute[]): CompiledRoute | null | Promise<CompiledRoute | null> {
    let q: URLSearchParams | null | undefined;
    for (let i = 0; i < candidates.length; i++) {
      const c = candidates[i];
      if (c.conditions.length > 0) {
        if (q === undefined) q = ctx.query !== null ? new URLSearchParams(ctx.query) : null;
        if (!conditionsHold(c, ctx.req.headers, q)) continue;
      }
      if (c.bodyCondition === null) return c;
      return chooseByBody(ctx, candidates, i, q, cap);
    }
    return null;
  };
}

async function chooseByBody(ctx: RequestContext, candidates: readonly CompiledRoute[], from: number, q: URLSearchParams | null | undefined, cap: number): Promise<CompiledRoute | null> {
  const { bytes } = await peekBody(ctx, cap);
  const type = ctx.req.headers['content-type'];
  // Several candidates usually test the same field: extract it once.
  let lastField: string | undefined;
  let lastValue: string | undefined;
  for (let i = from; i < candidates.length; i++) {
    const c = candidates[i];
    if (c.conditions.length > 0) {
      if (q === undefined) q = ctx.query !== null ? new URLSearchParams(ctx.query) : null;
      if (!conditionsHold(c, ctx.req.headers, q)) continue;
    }
    const bc = c.bodyCondition;
    if (bc === null) return c;
    if (bc.field !== lastField) {
      lastField = bc.field;
      lastValue = asText(extractField(bytes, type, bc.field));
    }
    if (bc.test(lastValue)) return c;
  }
  return null;
}

/** JSON numbers and booleans compare by their text (`"project_id": 15` matches `in: ["15"]`); objects and arrays never match. */
function asText(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return undefined;
}
