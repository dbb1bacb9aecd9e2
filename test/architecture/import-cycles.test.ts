// The module graph of src/ has no cycles, type-only imports included (they tie modules together just the same),
// and the kernel (src/pipeline/) only depends downwards.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';

const SRC = join(import.meta.dirname, '..', '..', 'src');
const IMPORT = /(?:^|\n)\s*(?:import|export)\b[^;]*?from\s+["'](\.[^"']+)["']/g;

function graph(): Map<string, Set<string>> {
  const files: string[] = [];
  (function walk(d: string) {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.ts')) files.push(p);
    }
  })(SRC);
  const g = new Map<string, Set<string>>();
  for (const f of files) {
    const deps = new Set<string>();
    for (const m of readFileSync(f, 'utf8').matchAll(IMPORT)) {
      let t = normalize(join(dirname(f), m[1])).replace(/\.js$/, '.ts');
      if (!t.endsWith('.ts')) t = existsSync(t + '.ts') ? t + '.ts' : join(t, 'index.ts');
      if (t !== f) deps.add(t);
    }
    g.set(f, deps);
  }
  return g;
}

function cycles(g: Map<string, Set<string>>): string[] {
  const state = new Map<string, number>();
  const stack: string[] = [];
  const out: string[] = [];
  const visit = (n: string) => {
    state.set(n, 1);
    stack.push(n);
    for (const d of g.get(n) ?? []) {
      if (!g.has(d)) continue;
      if (state.get(d) === 1) out.push(stack.slice(stack.indexOf(d)).concat(d).map((p) => relative(SRC, p)).join(' -> '));
      else if (!state.has(d)) visit(d);
    }
    stack.pop();
    state.set(n, 2);
  };
  for (const f of g.keys()) if (!state.has(f)) visit(f);
  return out;
}

test('src/ has no import cycles (type-only imports count)', () => {
  assert.deepEqual(cycles(graph()), []);
});

test('the kernel (src/pipeline/) imports nothing above it: no server, routing, policies, proxy, runtime, admin or cli', () => {
  const above = ['server/handler', 'routing/', 'policies/', 'proxy/', 'runtime/', 'admin/', 'cli/', 'config/schema', 'gateway'];
  for (const [f, deps] of graph()) {
    if (!relative(SRC, f).startsWith('pipeline/')) continue;
    for (const d of deps) {
      const rel = relative(SRC, d);
      assert.ok(!above.some((a) => rel.startsWith(a)), `${relative(SRC, f)} imports ${rel}`);
    }
  }
});

test('the cycle finder finds a cycle when there is one', () => {
  const g = new Map([[join(SRC, 'a.ts'), new Set([join(SRC, 'b.ts')])], [join(SRC, 'b.ts'), new Set([join(SRC, 'a.ts')])]]);
  assert.deepEqual(cycles(g), ['a.ts -> b.ts -> a.ts']);
});
