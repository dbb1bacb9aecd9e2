// Properties of the config loader (src/config/load.ts) with fast-check: whatever the file holds, loading (and
// compiling what loads) either succeeds or throws a ConfigError whose every issue is positioned file:line:col.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { stringify } from 'yaml';
import { pino } from 'pino';
import { loadConfigText, type LoadedConfig } from '../../src/config/load.ts';
import { ConfigError, type ConfigIssue } from '../../src/config/errors.ts';
import { Runtime } from '../../src/runtime/runtime.ts';
import { hashApiKey } from '../../src/auth/api-keys.ts';

const FILE = 'prop.yaml';
const ENV = { HOST: '127.0.0.1', EMPTY: '', LIST: 'https://a.example,https://b.example' };

const VALID = `server:
  listen: \${HOST:-127.0.0.1}:0
  limits: { maxBodySize: 1mb }
  cors: { origins: [https://app.example.com] }
admin:
  listen: 127.0.0.1:0
upstreams:
  api:
    targets: [ http://127.0.0.1:9 ]
    timeout: { connect: 1s, response: 5s }
    headers: { response: { remove: [x-powered-by] } }
  other:
    targets:
      - { url: http://127.0.0.1:10/base, weight: 50 }
routes:
  - name: items
    match: { path: /v1/items/:id, methods: [GET, POST] }
    upstream: api
    auth: public
    rewrite: { stripPrefix: /v1 }
    rateLimit: [ { limit: 10, window: 1s, by: ip } ]
    headers:
      request:
        set: { x-tenant: acme, x-item: { from: path.id } }
  - name: other
    match:
      path: /other
      prefix: true
      headers: { x-mode: { in: [a, b] } }
    upstream: other
    auth: public
    enabled: \${FLAG:-true}
    contentTypes: [application/json]
    timeout: 30s
`;

/** Loads, then compiles what loaded (as `gatehouse validate` does); returns the issues, or [] when it all passed. */
async function loadAndCompile(text: string, file = FILE, env: Record<string, string> = ENV): Promise<ConfigIssue[]> {
  let loaded: LoadedConfig;
  try {
    loaded = loadConfigText(text, file, { env });
  } catch (e) {
    if (!(e instanceof ConfigError)) throw new Error(`the loader threw ${(e as Error)?.name}: ${(e as Error)?.message}\n--- file ---\n${text}`);
    return e.issues;
  }
  let rt: Runtime;
  try {
    rt = new Runtime(loaded, { logger: pino({ level: 'silent' }), defaultMetrics: false });
  } catch (e) {
    if (!(e instanceof ConfigError)) throw new Error(`compiling threw ${(e as Error)?.name}: ${(e as Error)?.message}\n--- file ---\n${text}`);
    return e.issues.map((i) => ({ file, ...loaded.locate(i) }));
  }
  await rt.close();
  return [];
}

function assertPositioned(issues: ConfigIssue[], text: string, file = FILE): void {
  const lines = text.split('\n').length;
  for (const i of issues) {
    assert.equal(i.file, file, `issue without its file: ${JSON.stringify(i)}\n--- file ---\n${text}`);
    assert.ok(Number.isInteger(i.line) && i.line! >= 1 && i.line! <= lines + 1, `issue without a line in the file: ${JSON.stringify(i)}\n--- file ---\n${text}`);
    assert.ok(Number.isInteger(i.col) && i.col! >= 1, `issue without a column: ${JSON.stringify(i)}\n--- file ---\n${text}`);
    assert.ok(i.message.length > 0);
  }
}

test('the base config of these properties loads and compiles', async () => {
  assert.deepEqual(await loadAndCompile(VALID), []);
});

test('property (300 runs): random YAML-ish text never crashes the loader; every error is positioned', async () => {
  const token = fc.constantFrom(
    'routes', 'upstreams', 'server', 'match', 'path', 'targets', 'a', '1', '-1', '1e999', 'null', '~', 'true', '"x"', "'y'",
    ':', ': ', '- ', ' ', '  ', '\n', '\t', '[', ']', '{', '}', ',', '#', '&a ', '*a', '*b', '<<: ', '? ', '|', '>', '!!str ',
    '!!map ', '!!binary ', '!tag ', '---\n', '...\n', '%YAML 1.2\n', '${HOST}', '${NOPE}', '${A:-${B}}', '$${x}', '${x',
    '"\\u0000"', '"\\x', '\u00e9', '\ufeff', '/v1', 'http://127.0.0.1:9',
  );
  await fc.assert(fc.asyncProperty(fc.array(token, { maxLength: 40 }), async (parts) => {
    const text = parts.join('');
    assertPositioned(await loadAndCompile(text), text);
  }), { numRuns: 300 });
});

test('property (150 runs): any JSON-like document written as YAML never crashes; every error is positioned', async () => {
  const doc = fc.record({
    server: fc.option(fc.anything({ maxDepth: 2 }), { nil: undefined }),
    upstreams: fc.option(fc.dictionary(fc.string({ maxLength: 5 }), fc.anything({ maxDepth: 2 })), { nil: undefined }),
    routes: fc.option(fc.array(fc.anything({ maxDepth: 3 }), { maxLength: 3 }), { nil: undefined }),
  }, { requiredKeys: [] });
  await fc.assert(fc.asyncProperty(doc, async (d) => {
    let text: string;
    try { text = stringify(d); } catch { return; } // a value YAML cannot write (a symbol, a function) is not a file
    assertPositioned(await loadAndCompile(text), text);
  }), { numRuns: 150 });
});

const editValue = fc.oneof(
  fc.constantFrom('', '0', '-1', '99999999999999999999', '1.5', 'null', '[]', '{}', '[ 1, [2] ]', '{ a: 1 }', 'true', '"\\t"',
    '${NOPE}', '${HOST}', '${EMPTY}', '"${LIST}"', '${A:-${B}}', '${bad', '*a', '&a x', '!!int x', 'http://', '/', '/:', '/*',
    '//x', '1ms', '0s', '-5s', '1tb', '999999h', 'GET', '[ GET, BREW ]', '"\\r\\n"', '\u00e9', ': :', '- x'),
  fc.string({ maxLength: 8 }).map((s) => JSON.stringify(s)),
);
const edit = fc.oneof(
  fc.record({ op: fc.constant('delete' as const), at: fc.nat() }),
  fc.record({ op: fc.constant('duplicate' as const), at: fc.nat() }),
  fc.record({ op: fc.constant('value' as const), at: fc.nat(), value: editValue }),
  fc.record({ op: fc.constant('indent' as const), at: fc.nat(), by: fc.integer({ min: -4, max: 4 }) }),
  fc.record({ op: fc.constant('insert' as const), at: fc.nat(), value: editValue.map((v) => `  extra: ${v}`) }),
);
type Edit = typeof edit extends fc.Arbitrary<infer T> ? T : never;

function applyEdits(text: string, edits: Edit[]): string {
  const lines = text.split('\n');
  for (const e of edits) {
    const i = e.at % lines.length;
    if (e.op === 'delete') lines.splice(i, 1);
    else if (e.op === 'duplicate') lines.splice(i, 0, lines[i]);
    else if (e.op === 'insert') lines.splice(i, 0, e.value);
    else if (e.op === 'indent') lines[i] = e.by >= 0 ? ' '.repeat(e.by) + lines[i] : lines[i].replace(new RegExp(`^ {0,${-e.by}}`), '');
    else {
      // Replace the value after the line's first "key: " (or the whole item after "- ").
      const m = /^(.*?(?:[\w-]+: |- ))(.*)$/.exec(lines[i]);
      lines[i] = m ? m[1] + e.value : lines[i] + e.value;
    }
    if (lines.length === 0) lines.push('');
  }
  return lines.join('\n');
}

test('property (300 runs): 1–3 random edits of a valid config never crash loading or compiling; every error is positioned', async () => {
  await fc.assert(fc.asyncProperty(fc.array(edit, { minLength: 1, maxLength: 3 }), async (edits) => {
    const text = applyEdits(VALID, edits);
    assertPositioned(await loadAndCompile(text), text);
  }), { numRuns: 300 });
});

test('property (5 × 60 runs): the same for every shipped example (JWT, API keys, captcha, providers, models, quotas…)', async () => {
  const secret = () => randomBytes(32).toString('base64url');
  const examples: Record<string, Record<string, string>> = {
    machineagents: { JWT_SECRET: secret(), RECAPTCHA_SECRET_KEY: `6L${randomBytes(19).toString('hex')}` },
    'ai-workflow': { JWT_SECRET_KEY: secret() },
    automation: { JWT_SECRET_KEY: secret() },
    aivillage: { API_KEY_SHA256: hashApiKey(secret()) },
    'llm-providers': { OPENAI_API_KEY: `sk-proj-${secret()}`, ANTHROPIC_API_KEY: `sk-ant-${secret()}`, ANTHROPIC_BACKUP_API_KEY: `sk-ant-${secret()}`, CHAT_SERVICE_KEY_SHA256: hashApiKey(secret()), RAG_SERVICE_KEY_SHA256: hashApiKey(secret()) },
  };
  for (const [name, env] of Object.entries(examples)) {
    const file = join(import.meta.dirname, '..', '..', 'examples', name, 'gatehouse.yaml');
    const original = readFileSync(file, 'utf8');
    assert.deepEqual(await loadAndCompile(original, file, env), [], `${name} loads as shipped`);
    await fc.assert(fc.asyncProperty(fc.array(edit, { minLength: 1, maxLength: 3 }), async (edits) => {
      const text = applyEdits(original, edits);
      assertPositioned(await loadAndCompile(text, file, env), text, file);
    }), { numRuns: 60 });
  }
});

// Regressions the properties found (each threw a bare ReferenceError, or gave an issue with no line, before the fix).
test('an alias to no anchor, and alias expansion past the bound (billion laughs), are positioned ConfigErrors', async () => {
  const unresolved = await loadAndCompile('server:\n  listen: *nowhere\n');
  assert.deepEqual(unresolved.map((i) => `${i.line}:${i.col} ${i.message}`), ['2:11 alias *nowhere refers to no anchor defined before it']);
  const laughs = 'a: &a [x,x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\n';
  const excessive = await loadAndCompile(laughs);
  assert.equal(excessive.length, 1);
  assert.match(excessive[0].message, /too many alias expansions/);
  assert.equal(excessive[0].line, 2);
});

test('a file that is not a mapping, and an empty file, get positions too', async () => {
  assert.deepEqual((await loadAndCompile('\n\n- a\n')).map((i) => [i.line, i.col]), [[3, 1]]);
  for (const i of await loadAndCompile('')) assert.deepEqual([i.line, i.col], [1, 1]);
});

test('a malformed ${…} in the file is a positioned load error, and a nested default is expanded', async () => {
  const bad = await loadAndCompile(VALID.replace('${HOST:-127.0.0.1}', '${HOST-127.0.0.1}'));
  assert.deepEqual(bad.map((i) => `${i.line}:${i.col} ${i.path}`), ['2:11 server.listen']);
  assert.match(bad[0].message, /malformed reference "\$\{HOST-127\.0\.0\.1\}"/);
  const nested = loadConfigText(VALID.replace('${HOST:-127.0.0.1}', '${NOPE:-${HOST}}'), FILE, { env: ENV });
  assert.equal(nested.config.server.listen.host, '127.0.0.1');
  // A list item that is one reference with a nested default still takes a comma-separated value as several items.
  const list = loadConfigText(VALID.replace('origins: [https://app.example.com]', 'origins: ["${NOPE:-${LIST}}"]'), FILE, { env: ENV });
  assert.deepEqual(list.config.server.cors?.origins, ['https://a.example', 'https://b.example']);
});
