// npm run build: compile src/ to dist/ (tsc rewrites the .ts import specifiers), copy non-TS assets
// (Lua scripts, ...), and write the stamp bin/gatehouse.mjs compares against the sources.
import { spawnSync } from 'node:child_process';
import { cpSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { createRequire } from 'node:module';

const start = Date.now();
rmSync('dist', { recursive: true, force: true });
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
for (const project of ['tsconfig.build.json', 'tsconfig.client.json']) {
  const r = spawnSync(process.execPath, [tsc, '-p', project], { stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}
rewriteDeclarationImports('dist/client');
(function copy(dir) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) copy(p);
    else if (!p.endsWith('.ts')) { const to = join('dist', relative('src', p)); mkdirSync(dirname(to), { recursive: true }); cpSync(p, to); }
  }
})('src');
writeFileSync('dist/.build-stamp', String(start));

/**
 * The client SDK's declarations (tsconfig.client.json: `gatehouse/client` ships types) keep the sources' `./x.ts`
 * specifiers; a consumer's compiler resolves `./x.js` to the `.d.ts` beside it.
 */
function rewriteDeclarationImports(dir) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) rewriteDeclarationImports(p);
    else if (p.endsWith('.d.ts')) writeFileSync(p, readFileSync(p, 'utf8').replace(/(from\s+['"]\.{1,2}\/[^'"]+)\.ts(['"])/g, '$1.js$2'));
  }
}
