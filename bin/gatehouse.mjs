#!/usr/bin/env node
// Runs the compiled build (dist/, made by `npm run build`, which `npm install` runs) when it is at least as new
// as every source file; otherwise runs src/ through tsx's loader. The build saves ~30 MB of RSS (no transpiler
// in the process); the fallback keeps a fresh edit from running stale code.
import { existsSync, readdirSync, statSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import v8 from 'node:v8';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const stamp = join(root, 'dist', '.build-stamp');

function newestSource(dir) {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    newest = Math.max(newest, e.isDirectory() ? newestSource(p) : statSync(p).mtimeMs);
  }
  return newest;
}

let entry;
if (existsSync(stamp) && Number(readFileSync(stamp, 'utf8')) >= newestSource(join(root, 'src'))) {
  entry = pathToFileURL(join(root, 'dist', 'cli', 'index.js')).href;
} else {
  const { register } = await import('tsx/esm/api');
  register();
  entry = pathToFileURL(join(root, 'src', 'cli', 'index.ts')).href;
}
// `start`: keep V8's young generation at its initial size (1 MiB semi-spaces) while the modules load and the config
// is parsed and compiled. That work keeps many objects alive across scavenges, so V8 grows the young generation to
// its 16 MiB maximum during start-up and then keeps it: ~15 MB of RSS in an idle gateway, and under a streamed
// upload too (docs/performance.md, Memory). After listening, V8's own growth factor (2) is back: under sustained
// load the young generation grows again as it always did (within ~10 s at 3,000 req/s), so steady-state GC cost
// is unchanged. The growth factor is read by V8 each time it resizes, which is why setting it here takes effect.
// Any semi-space flag given on the command line or in NODE_OPTIONS (e.g. --semi-space-growth-factor=2 to opt out)
// is left alone.
const userSet = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)].some((a) => /semi[-_]space/.test(a));
const boot = process.argv[2] === 'start' && !userSet;
if (boot) v8.setFlagsFromString('--semi-space-growth-factor=1');
const { main } = await import(entry);
await main(process.argv.slice(2));
if (boot) v8.setFlagsFromString('--semi-space-growth-factor=2');
