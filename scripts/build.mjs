// npm run build: compile src/ to dist/ (tsc rewrites the .ts import specifiers), the client SDK with its
// declarations (scripts/build-client.mjs), copy non-TS assets (Lua scripts, ...), and write the stamp
// bin/gatehouse.mjs compares against the sources.
import { spawnSync } from 'node:child_process';
import { cpSync, readdirSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { createRequire } from 'node:module';
import { buildClient } from './build-client.mjs';

const start = Date.now();
rmSync('dist', { recursive: true, force: true });
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
const r = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
if (r.status !== 0) process.exit(r.status ?? 1);
const c = buildClient(process.cwd());
if (c !== 0) process.exit(c);
(function copy(dir) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) copy(p);
    else if (!p.endsWith('.ts')) { const to = join('dist', relative('src', p)); mkdirSync(dirname(to), { recursive: true }); cpSync(p, to); }
  }
})('src');
writeFileSync('dist/.build-stamp', String(start));
