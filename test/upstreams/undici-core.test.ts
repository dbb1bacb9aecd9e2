import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

// src/upstreams/undici.ts requires undici's dispatcher modules by path (undici has no "exports" map, and its index
// loads fetch, WebSocket, caches, ... that the gateway does not use). An undici update that moves or renames one of
// those files must fail here.

test('the dispatchers are the very classes undici exports', async () => {
  const core = await import('../../src/upstreams/undici.ts');
  const undici = createRequire(import.meta.url)('undici') as typeof import('undici');
  assert.equal(core.Pool, undici.Pool);
  assert.equal(core.Client, undici.Client);
  assert.equal(core.Agent, undici.Agent);
});

test('a gateway process loads the dispatchers with their request API, not the undici index', () => {
  // A fresh process: this test file's own imports must not load the index first.
  const src = fileURLToPath(new URL('../../src/upstreams/undici.ts', import.meta.url));
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', `
    const { Pool, Client, Agent } = await import(${JSON.stringify(src)});
    const { createRequire } = await import('node:module');
    const require = createRequire(${JSON.stringify(src)});
    const pool = new Pool('http://127.0.0.1:9');
    const out = {
      index: Object.keys(require.cache).some((f) => /node_modules[\\\\/]undici[\\\\/]index\\.js$/.test(f)),
      request: typeof pool.request, stream: typeof new Client('http://127.0.0.1:9').stream, agent: typeof new Agent().request,
    };
    await pool.close();
    console.log(JSON.stringify(out));
  `], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout.trim().split('\n').pop()!), { index: false, request: 'function', stream: 'function', agent: 'function' });
});
