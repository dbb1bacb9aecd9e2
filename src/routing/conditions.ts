import type { Condition } from '../pipeline/context.ts';

export type { Condition };
export type ValueTest = { equals?: string; in?: string[]; prefix?: string; present?: boolean };

export function compileValueTest(t: ValueTest): (v: string | undefined) => boolean {
  if (t.present === false) return (v) => v === undefined;
  const set = t.in ? new Set(t.in) : null;
  return (v) => v !== undefined && (t.equals === undefined || v === t.equals) && (set === null || set.has(v)) && (t.prefix === undefined || v.startsWith(t.prefix));
}

export function compileConditions(match: { headers?: Record<string, ValueTest>; query?: Record<string, ValueTest> }): Condition[] {
  const out: Condition[] = [];
  for (const [name, t] of Object.entries(match.headers ?? {})) {
    const key = name.toLowerCase();
    const test = compileValueTest(t);
    out.push((h) => { const v = h[key]; return test(Array.isArray(v) ? v[0] : v); });
  }
  for (const [name, t] of Object.entries(match.query ?? {})) {
    const test = compileValueTest(t);
    out.push((_h, q) => test(q?.get(name) ?? undefined));
  }
  return out;
}

export function describeTest(t: ValueTest): string {
  if (t.present === false) return 'absent';
  const parts: string[] = [];
  if (t.equals !== undefined) parts.push(`= ${t.equals}`);
  if (t.in) parts.push(`in [${t.in.join(', ')}]`);
  if (t.prefix !== undefined) parts.push(`starts with ${t.prefix}`);
  return parts.join(' and ') || 'present';
}
