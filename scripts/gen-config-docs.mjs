// Regenerates what is derived from the config schema (src/config/schema.ts and its leaves):
//   schema/gatehouse.schema.json            the published JSON Schema (`# yaml-language-server: $schema=` lines)
//   docs/configuration.md                   its generated key reference section (the prose around it is kept)
// `--check` writes nothing and exits 1 naming the stale files. test/config/schema-docs.test.ts runs the same check.
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tsImport } from 'tsx/esm/api';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const m = await tsImport('../src/config/schema-doc.ts', import.meta.url);
const check = process.argv.includes('--check');
const targets = [
  { file: 'schema/gatehouse.schema.json', text: () => m.schemaFileText() },
  { file: 'docs/configuration.md', text: (old) => m.withReference(old) },
];
const stale = [];
for (const t of targets) {
  const path = join(root, t.file);
  let old = '';
  try { old = readFileSync(path, 'utf8'); } catch {}
  const next = t.text(old);
  if (next === old) continue;
  stale.push(t.file);
  if (!check) { mkdirSync(dirname(path), { recursive: true }); writeFileSync(path, next); }
}
if (check && stale.length) {
  process.stderr.write(`out of date: ${stale.join(', ')}; run: node scripts/gen-config-docs.mjs\n`);
  process.exit(1);
}
process.stdout.write(stale.length ? `${check ? 'stale' : 'wrote'}: ${stale.join(', ')}\n` : 'up to date\n');
