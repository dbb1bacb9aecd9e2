/**
 * `${VAR}` and `${VAR:-default}` in any string; a default may itself hold references (`${A:-${B:-x}}`), and is
 * only expanded when it is used. `$${` escapes a literal `${`. Any other `${` is malformed (`${A-b}`, `${1}`, an
 * unclosed `${A`): reported rather than kept as text, so a typo never reaches the config as a literal.
 * Returns the new string, the name of the first missing variable, or the first malformed reference.
 * A variable's value is inserted as it is: never expanded again.
 */
export type Interpolated = { value: string } | { missing: string } | { malformed: string };

const NAME = /[A-Za-z_][A-Za-z0-9_]*/y;

interface Scan { value: string; end: number; missing?: string; malformed?: string }

export function interpolate(input: string, env: NodeJS.ProcessEnv): Interpolated {
  if (!input.includes('${')) return { value: input };
  const r = expand(input, 0, env, false);
  if (r.malformed !== undefined) return { malformed: r.malformed };
  if (r.missing !== undefined) return { missing: r.missing };
  return { value: r.value };
}

/** Whether `s` is exactly one reference, its default nested or not (`${A}`, `${A:-${B:-x}}`): a list item that is one takes a comma-separated value as several items. */
export function isSingleReference(s: string): boolean {
  if (s[0] !== '$' || s[1] !== '{') return false;
  NAME.lastIndex = 2;
  const name = NAME.exec(s)?.[0];
  if (name === undefined) return false;
  const after = 2 + name.length;
  if (s[after] === '}') return after + 1 === s.length;
  if (s[after] !== ':' || s[after + 1] !== '-') return false;
  const d = expand(s, after + 2, {}, true);
  return d.malformed === undefined && d.end === s.length - 1;
}

/** Expands from `i` to the end of `s`, or (inside a default) to its closing `}`, which `end` points at. */
function expand(s: string, i: number, env: NodeJS.ProcessEnv, inDefault: boolean): Scan {
  let out = '';
  let missing: string | undefined;
  while (i < s.length) {
    const ch = s[i];
    if (inDefault && ch === '}') return { value: out, end: i, missing };
    if (ch === '$' && s[i + 1] === '$' && s[i + 2] === '{') { out += '${'; i += 3; continue; }
    if (ch !== '$' || s[i + 1] !== '{') { out += ch; i++; continue; }
    NAME.lastIndex = i + 2;
    const name = NAME.exec(s)?.[0];
    const after = i + 2 + (name?.length ?? 0);
    const bad = (): Scan => {
      // Quote the reference up to its brace when there is one nearby, else a short excerpt.
      const close = s.indexOf('}', i);
      return { value: '', end: s.length, malformed: s.slice(i, close >= 0 && close - i < 40 ? close + 1 : Math.min(s.length, after + 12)) };
    };
    if (name === undefined) return bad();
    const v = env[name];
    if (s[after] === '}') {
      if (v === undefined) missing ??= name;
      else out += v;
      i = after + 1;
    } else if (s[after] === ':' && s[after + 1] === '-') {
      const d = expand(s, after + 2, env, true);
      if (d.malformed !== undefined) return d;
      if (d.end >= s.length) return bad(); // no closing brace
      // An empty variable counts as unset when there is a default; the default's own references matter only then.
      if (v !== undefined && v !== '') out += v;
      else { out += d.value; if (d.missing !== undefined) missing ??= d.missing; }
      i = d.end + 1;
    } else return bad();
  }
  return { value: out, end: i, missing };
}
