import type { Identity } from '../pipeline/context.ts';

export type ClaimValue = string | number | boolean;
export interface AuthorizeRule {
  consumers?: string[];
  plans?: string[];
  claims?: Record<string, ClaimValue | ClaimValue[]>;
}

/**
 * A route's `authorize:` as one predicate, built at load. Every condition given must hold; a list means
 * "any of these". `consumers` matches the API-key consumer or the JWT subject; `claims` only JWT identities
 * (a claim matches when it equals a listed value or, being an array, contains one; `scope`/`scp` strings
 * are read as space-separated lists, as OAuth sends them).
 */
export function compileAuthorize(rule: AuthorizeRule | undefined): ((id: Identity) => boolean) | null {
  if (rule === undefined) return null;
  const consumers = rule.consumers ? new Set(rule.consumers) : null;
  const plans = rule.plans ? new Set(rule.plans) : null;
  const claims = Object.entries(rule.claims ?? {}).map(([name, want]) => ({ name, want: new Set((Array.isArray(want) ? want : [want]).map(String)), spaced: name === 'scope' || name === 'scp' }));
  return (id) => {
    if (consumers !== null && !consumers.has(id.consumer ?? id.id)) return false;
    if (plans !== null && (id.plan === undefined || !plans.has(id.plan))) return false;
    for (const c of claims) {
      const v = id.claims?.[c.name];
      if (!claimMatches(v, c.want, c.spaced)) return false;
    }
    return true;
  };
}

function claimMatches(v: unknown, want: Set<string>, spaced: boolean): boolean {
  if (v === undefined || v === null) return false;
  if (Array.isArray(v)) return v.some((x) => (typeof x === 'string' || typeof x === 'number' || typeof x === 'boolean') && want.has(String(x)));
  if (typeof v === 'string') return want.has(v) || (spaced && v.split(' ').some((s) => want.has(s)));
  if (typeof v === 'number' || typeof v === 'boolean') return want.has(String(v));
  return false;
}
