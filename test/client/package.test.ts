// `import { Gatehouse } from 'gatehouse/client'` works for an application that installed the packed package:
// src/client/ built as scripts/build.mjs builds it, packed with the project's package.json ("exports", "files")
// by `npm pack`, unpacked into a consumer's node_modules as npm installs it — and nothing else installed, so
// the SDK runs with no dependency. The consumer calls a running gateway from plain ESM, and TypeScript
// resolves the declarations (browser-like and Node-only consumers, strict, lib checking on).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { promisify } from 'node:util';
import { startDemoServer, type DemoServer } from '../../src/demo/services.ts';
import { startGateway, type TestGateway } from '../helpers.ts';
// @ts-expect-error -- a plain .mjs build script without declarations
import { buildClient } from '../../scripts/build-client.mjs';

const ROOT = join(import.meta.dirname, '..', '..');
const run = promisify(execFile);
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');

let dir: string;
let consumer: string;
let up: DemoServer;
let g: TestGateway;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gh-client-pkg-'));
  const pkg = join(dir, 'pkg');
  mkdirSync(pkg);
  copyFileSync(join(ROOT, 'package.json'), join(pkg, 'package.json'));
  assert.equal(buildClient(ROOT, join(pkg, 'dist', 'client')), 0, 'src/client builds');
  const { stdout } = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], { cwd: pkg });
  const [{ filename }] = JSON.parse(stdout) as Array<{ filename: string }>;
  consumer = join(dir, 'app');
  const installed = join(consumer, 'node_modules', 'gatehouse');
  mkdirSync(installed, { recursive: true });
  await run('tar', ['-xzf', join(dir, filename), '-C', installed, '--strip-components=1']);
  writeFileSync(join(consumer, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));

  up = await startDemoServer({ name: 'chat' });
  g = await startGateway(`
upstreams: { chat: { targets: [ ${up.url} ] } }
defaults: { auth: public }
routes:
  - { name: chat, match: { path: /v1/chat/completions, methods: [POST] }, upstream: chat }
`);
});
after(async () => { await g?.close(); await up?.close(); rmSync(dir, { recursive: true, force: true }); });

test('the packed package holds the client and its types; the consumer has no other package installed', () => {
  const files = readdirSync(join(consumer, 'node_modules', 'gatehouse', 'dist', 'client')).sort();
  for (const m of ['index', 'problem', 'retry', 'sse', 'websocket']) {
    assert.ok(files.includes(`${m}.js`) && files.includes(`${m}.d.ts`), `${m}.js and ${m}.d.ts in ${files.join(' ')}`);
  }
  assert.deepEqual(readdirSync(join(consumer, 'node_modules')), ['gatehouse']);
});

test('plain ESM: `gatehouse/client` resolves and calls the gateway (a stream with its usage, a problem with its code)', async () => {
  writeFileSync(join(consumer, 'main.mjs'), `
import { Gatehouse, GatewayProblem } from 'gatehouse/client';
const gh = new Gatehouse({ baseUrl: process.argv[2] });
const stream = await gh.stream('/v1/chat/completions', { json: { stream: true, messages: [{ role: 'user', content: 'hi' }] } });
let n = 0;
for await (const e of stream) n++;
let code;
try { await gh.get('/missing'); } catch (e) { code = e instanceof GatewayProblem ? e.code + ' ' + (e.requestId === e.headers.get('x-request-id')) : String(e); }
console.log(JSON.stringify({ n, usage: stream.usage.outputTokens, code }));
`);
  const { stdout } = await run(process.execPath, ['main.mjs', g.url], { cwd: consumer });
  assert.deepEqual(JSON.parse(stdout), { n: 6, usage: 5, code: 'not_found true' });
  // Only the subpath is exported: the gateway's own modules are not part of the package's API.
  await assert.rejects(run(process.execPath, ['--input-type=module', '-e', "await import('gatehouse/dist/cli/index.js')"], { cwd: consumer }), /ERR_PACKAGE_PATH_NOT_EXPORTED/);
});

test('TypeScript resolves the declarations through "exports" (strict, lib checking on), in a browser-like and a Node-only consumer', async () => {
  writeFileSync(join(consumer, 'main.ts'), `
import { Gatehouse, GatewayProblem, type SseEvent, type GatewayErrorCode, type WebSocketConstructor } from 'gatehouse/client';
const gh = new Gatehouse({ baseUrl: 'http://127.0.0.1:8000', token: async () => 'jwt', refreshToken: async () => 'jwt2', retry: { attempts: 2 } });
export async function demo(signal: AbortSignal, WS: WebSocketConstructor): Promise<number> {
  const stream = await gh.stream('/v1/chat/completions', { json: { stream: true }, signal });
  for await (const e of stream) { const d: string = e.data; const ev: SseEvent = e; void d; void ev; }
  try { await gh.post<{ id: string }>('/v1/x', { a: 1 }, { idempotent: true, timeout: 5000 }); } catch (e) {
    if (e instanceof GatewayProblem) { const c: GatewayErrorCode | string = e.code; const s: number = e.status; const r: number | undefined = e.retryAfter; void c; void s; void r; }
  }
  const ws = await gh.websocket('/ws/chat', { WebSocket: WS });
  ws.send('hi');
  // @ts-expect-error -- the options are typed, not any
  new Gatehouse({ baseUrl: 'x', retry: { attemps: 2 } });
  return stream.usage?.totalTokens ?? 0;
}
`);
  const base = { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, skipLibCheck: false };
  const configs = {
    browser: { ...base, lib: ['ES2022', 'DOM', 'DOM.Iterable'], types: [] },
    node: { ...base, lib: ['ES2022'], types: ['node'], typeRoots: [join(ROOT, 'node_modules', '@types')] },
  };
  for (const [name, compilerOptions] of Object.entries(configs)) {
    writeFileSync(join(consumer, `tsconfig.${name}.json`), JSON.stringify({ compilerOptions, files: ['main.ts'] }));
    const r = await run(process.execPath, [tsc, '-p', `tsconfig.${name}.json`], { cwd: consumer }).catch((e: { stdout: string }) => e);
    assert.equal(r.stdout, '', `${name} consumer: tsc says\n${r.stdout}`);
  }
});
