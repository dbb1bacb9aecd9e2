// The client SDK (`gatehouse/client`): src/client/ compiled on its own (tsconfig.client.json) with declarations,
// so the package ships types for it. Used by scripts/build.mjs and by the packaging test.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createRequire } from 'node:module';

const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');

/** Compiles src/client/ into `outDir` (default dist/client); returns tsc's exit status. */
export function buildClient(root, outDir = join(root, 'dist', 'client')) {
  const r = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.client.json'), '--outDir', outDir], { stdio: 'inherit' });
  if (r.status === 0) rewriteDeclarationImports(outDir);
  return r.status ?? 1;
}

/** tsc keeps the sources' `./x.ts` specifiers in declarations; a consumer's compiler resolves `./x.js` to the `.d.ts`. */
function rewriteDeclarationImports(dir) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) rewriteDeclarationImports(p);
    else if (p.endsWith('.d.ts')) writeFileSync(p, readFileSync(p, 'utf8').replace(/(from\s+['"]\.{1,2}\/[^'"]+)\.ts(['"])/g, '$1.js$2'));
  }
}
