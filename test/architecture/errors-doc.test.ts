// The error table (src/errors.ts) and its documentation (docs/errors.md) say the same thing: every code is
// documented with its status and title, nothing is documented that the table does not have, and every code is
// one the gateway's code can actually raise.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { ERRORS } from '../../src/errors.ts';

const ROOT = join(import.meta.dirname, '..', '..');

function documented(): Map<string, { status: number; title: string }> {
  const out = new Map<string, { status: number; title: string }>();
  for (const line of readFileSync(join(ROOT, 'docs', 'errors.md'), 'utf8').split('\n')) {
    const m = /^\| `([a-z_]+)` \| (\d{3}) \| ([^|]+?) \|/.exec(line);
    if (m) out.set(m[1], { status: Number(m[2]), title: m[3].trim() });
  }
  return out;
}

function sources(dir: string): string {
  let text = '';
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    // The client SDK lists every code (it parses them); listing is not raising.
    if (e.isDirectory()) { if (p !== join(ROOT, 'src', 'client')) text += sources(p); }
    else if (e.name.endsWith('.ts') && p !== join(ROOT, 'src', 'errors.ts')) text += readFileSync(p, 'utf8');
  }
  return text;
}

test('docs/errors.md lists every error code with its status and title, and no other', () => {
  const docs = documented();
  for (const [code, e] of Object.entries(ERRORS)) {
    assert.ok(docs.has(code), `${code} is missing from docs/errors.md`);
    assert.deepEqual(docs.get(code), { status: e.status, title: e.title }, `docs/errors.md row for ${code}`);
  }
  for (const code of docs.keys()) assert.ok(Object.hasOwn(ERRORS, code), `docs/errors.md documents ${code}, which src/errors.ts does not have`);
});

test('every code in the table is raised somewhere in src/', () => {
  const src = sources(join(ROOT, 'src'));
  for (const code of Object.keys(ERRORS)) assert.ok(src.includes(`'${code}'`), `nothing in src/ raises ${code}`);
});
