// `gatehouse token` and `gatehouse hash-key`, run as the real CLI (bin/gatehouse.mjs) in a child process.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { jwtVerify } from 'jose';
import { request } from 'undici';
import { startDemoServer, type DemoServer } from '../../src/demo/services.ts';
import { startGateway } from '../helpers.ts';

const BIN = join(import.meta.dirname, '../../bin/gatehouse.mjs');
const SECRET = 'cli-secret-cli-secret-cli-secret-0123';
let dir: string;
let up: DemoServer;

function run(args: string[], stdin?: string, env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [BIN, ...args], { cwd: dir, env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (c) => { stdout += c; });
    p.stderr.on('data', (c) => { stderr += c; });
    p.on('error', reject);
    p.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    p.stdin.end(stdin);
  });
}

const yaml = (environment: string) => `
server: { environment: ${environment} }
auth:
  jwt:
    - { name: dev, issuer: https://dev.local, audiences: [ai-api], secret: "\${JWT_SECRET}", algorithms: [HS384] }
    - { name: idp, issuer: https://idp.example, jwksUri: https://idp.example/jwks }
plans: { free: {}, pro: {} }
upstreams: { echo: { targets: [ UPSTREAM ] } }
routes:
  - { name: pro, match: { path: /pro }, upstream: echo, auth: jwt, authorize: { plans: [pro] } }
`;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gh-cli-'));
  up = await startDemoServer({ name: 'echo' });
  writeFileSync(join(dir, 'gatehouse.yaml'), yaml('development').replace('UPSTREAM', up.url));
  writeFileSync(join(dir, 'prod.yaml'), yaml('production').replace('UPSTREAM', up.url));
});
after(async () => { await up.close(); rmSync(dir, { recursive: true, force: true }); });

test('token signs with the configured HS secret, issuer, audience and algorithm; the gateway accepts it', async () => {
  const r = await run(['token', '--sub', 'dev-user', '--plan', 'pro', '--ttl', '10m', '--claim', 'org=acme', '--claim', 'level=3'], undefined, { JWT_SECRET: SECRET });
  assert.equal(r.code, 0, r.stderr);
  const token = r.stdout.trim();
  const { payload, protectedHeader } = await jwtVerify(token, new TextEncoder().encode(SECRET), { issuer: 'https://dev.local', audience: 'ai-api' });
  assert.equal(protectedHeader.alg, 'HS384');
  assert.equal(payload.sub, 'dev-user');
  assert.equal(payload.plan, 'pro');
  assert.equal(payload.org, 'acme');
  assert.equal(payload.level, 3);
  assert.ok(Math.abs(payload.exp! - payload.iat! - 600) <= 1);

  const g = await startGateway(yaml('development').replace('UPSTREAM', up.url), { env: { JWT_SECRET: SECRET } });
  try {
    const res = await request(`${g.url}/pro`, { headers: { authorization: `Bearer ${token}` } });
    await res.body.text();
    assert.equal(res.statusCode, 200);
  } finally {
    await g.close();
  }
});

test('token refuses in production, without --sub, and for a provider it cannot sign for', async () => {
  const env = { JWT_SECRET: SECRET };
  const [prod, nosub, jwks, missing] = await Promise.all([
    run(['token', '--sub', 'x', '--config', 'prod.yaml'], undefined, env),
    run(['token'], undefined, env),
    run(['token', '--sub', 'x', '--provider', 'idp'], undefined, env),
    run(['token', '--sub', 'x', '--provider', 'nope'], undefined, env),
  ]);
  assert.equal(prod.code, 1);
  assert.match(prod.stderr, /production/);
  assert.equal(prod.stdout, '');
  assert.equal(nosub.code, 2);
  assert.equal(jwks.code, 1);
  assert.match(jwks.stderr, /cannot sign for it/);
  assert.match(missing.stderr, /no provider named "nope" \(known: dev, idp\)/);
});

test('hash-key prints sha256:<hex> of an argument or of stdin; --generate prints a fresh key and its hash', async () => {
  const want = 'sha256:' + createHash('sha256').update('my-key').digest('hex');
  const [arg, stdin, empty, gen, gen2] = await Promise.all([run(['hash-key', 'my-key']), run(['hash-key'], 'my-key\n'), run(['hash-key'], ''), run(['hash-key', '--generate']), run(['hash-key', '--generate'])]);
  assert.equal(arg.code, 0, arg.stderr);
  assert.equal(arg.stdout, `${want}\n`);
  assert.equal(stdin.stdout, `${want}\n`, 'stdin, trailing newline dropped');
  assert.equal(empty.code, 2);
  const m = /^key: {2}(gh_[A-Za-z0-9_-]{43})\nhash: (sha256:[0-9a-f]{64})\n$/.exec(gen.stdout);
  assert.ok(m, gen.stdout);
  assert.equal(m[2], 'sha256:' + createHash('sha256').update(m[1]).digest('hex'));
  assert.notEqual(gen2.stdout, gen.stdout);
});
