// gatehouse/client ships to applications that call the gateway: it may import only its own modules (no
// gateway server code, no package: it has no runtime dependency) and node: builtins; and its list of error
// codes is the gateway's error table.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { ERRORS } from '../../src/errors.ts';
import { GATEWAY_ERROR_CODES } from '../../src/client/index.ts';

const SRC = join(import.meta.dirname, '..', '..', 'src');
const CLIENT = join(SRC, 'client');
// Static imports and re-exports (type-only too), side-effect imports and dynamic import().
const SPECIFIERS = /(?:^|\n)\s*(?:import|export)\b[^;'"]*?from\s+["']([^"']+)["']|(?:^|\n)\s*import\s+["']([^"']+)["']|\bimport\s*\(\s*["']([^"']+)["']/g;

export function outsideImports(dir: string, text: (f: string) => string = (f) => readFileSync(f, 'utf8')): string[] {
  const bad: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!e.isFile() || !e.name.endsWith('.ts')) continue;
    const f = join(e.parentPath, e.name);
    for (const m of text(f).matchAll(SPECIFIERS)) {
      const spec = m[1] ?? m[2] ?? m[3];
      const inside = spec.startsWith('.') ? !relative(dir, join(dirname(f), spec)).startsWith('..') : spec.startsWith('node:');
      if (!inside) bad.push(`${relative(SRC, f)} imports ${spec}`);
    }
  }
  return bad;
}

test('src/client/ imports only src/client/ and node: builtins', () => {
  assert.deepEqual(outsideImports(CLIENT), []);
});

test('the check sees an import of server code, of a package and a dynamic one', () => {
  const fake: Record<string, string> = {
    [join(CLIENT, 'index.ts')]: "import { ERRORS } from '../errors.ts';\nexport type { X } from './x.ts';\nimport 'undici';\nconst m = await import('../gateway.ts');\nimport { a } from 'node:fs';",
  };
  const bad = outsideImports(CLIENT, (f) => fake[f] ?? '');
  assert.deepEqual(bad, ['client/index.ts imports ../errors.ts', 'client/index.ts imports undici', 'client/index.ts imports ../gateway.ts']);
});

test('GATEWAY_ERROR_CODES is the gateway\'s error table (src/errors.ts)', () => {
  assert.deepEqual([...GATEWAY_ERROR_CODES].sort(), Object.keys(ERRORS).sort());
});
