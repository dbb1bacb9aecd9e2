import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, existsSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { configJsonSchema, listKeys, schemaFileText, withReference, configReferenceMarkdown, DOC_BEGIN, DOC_END } from '../../src/config/schema-doc.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const REGEN = 'run `node scripts/gen-config-docs.mjs` and commit the result';

test('every key of the config schema has a description (editor hover docs)', () => {
  const keys = listKeys(configJsonSchema());
  assert.ok(keys.length > 300, `only ${keys.length} keys found: the walk misses part of the schema`);
  const missing = keys.filter((k) => !k.description?.trim()).map((k) => k.path);
  assert.deepEqual(missing, [], `keys without a description (add .describe('…') where the key is defined in src/):\n  ${missing.join('\n  ')}`);
});

test('the walk reaches keys inside arrays, maps and union variants', () => {
  const paths = new Set(listKeys(configJsonSchema()).map((k) => k.path));
  for (const p of ['routes[].match.headers.<header>.equals', 'upstreams.<name>.targets[].weight', 'plans.<name>.quota.cost.limit', 'routes[].models.<model>[].model', 'routes[].cors.origins', 'routes[].check.method']) {
    assert.ok(paths.has(p), `${p} not listed`);
  }
});

test('schema/gatehouse.schema.json is the schema (published in the package)', () => {
  const file = join(root, 'schema', 'gatehouse.schema.json');
  assert.ok(existsSync(file), `schema/gatehouse.schema.json is missing: ${REGEN}`);
  assert.ok(readFileSync(file, 'utf8') === schemaFileText(), `schema/gatehouse.schema.json is out of date: ${REGEN}`);
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { files: string[] };
  assert.ok(pkg.files.includes('schema'), 'package.json "files" must include schema/');
});

test("docs/configuration.md's key reference is generated from the schema", () => {
  const doc = readFileSync(join(root, 'docs', 'configuration.md'), 'utf8');
  assert.ok(doc.includes(DOC_BEGIN) && doc.includes(DOC_END), 'docs/configuration.md lost its generated-section markers');
  assert.ok(withReference(doc) === doc, `the key reference in docs/configuration.md is out of date: ${REGEN}`);
  // hand-written prose around the section survives regeneration
  assert.match(withReference(doc.replace(DOC_END, 'stale text\n' + DOC_END)), /## Loading and precedence/);
  assert.doesNotMatch(withReference(doc.replace(DOC_END, 'stale text\n' + DOC_END)), /stale text/);
  // a key's description change shows up as drift
  const ref = configReferenceMarkdown();
  assert.match(ref, /\| `routes\[\]\.check\.path` \| string \| required \|/);
});

test('every example config points the YAML language server at the published schema by a working relative path', () => {
  const files: string[] = [];
  const walk = (d: string) => { for (const e of readdirSync(d)) { const p = join(d, e); if (statSync(p).isDirectory()) walk(p); else if (/\.ya?ml$/.test(e)) files.push(p); } };
  walk(join(root, 'examples'));
  assert.ok(files.length >= 5);
  for (const f of files) {
    const first = readFileSync(f, 'utf8').split('\n')[0]!;
    const m = /^# yaml-language-server: \$schema=(\S+)$/.exec(first);
    assert.ok(m, `${f}: first line must be "# yaml-language-server: $schema=<relative path to schema/gatehouse.schema.json>"`);
    const target = resolve(dirname(f), m[1]!);
    assert.equal(target, join(root, 'schema', 'gatehouse.schema.json'), `${f}: $schema does not resolve to schema/gatehouse.schema.json`);
  }
});
