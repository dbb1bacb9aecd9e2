// Micro-benchmark of JWT verification as the auth policy does it: CPU µs per verification, cold (every call
// runs jose's signature check: the verified-token cache is off) and cached (the same token again: the hot
// path). Measured with process.cpuUsage, so the figures are CPU time of this process, not wall time.
//
//   node --import tsx bench/jwt-verify.ts [--n 20000] [--rounds 5] [--e2e] [--requests 40000]
//
// Also times the whole auth step (credential parsing + verifier + identity headers) on a cached token, which
// is what a request pays on a JWT route beyond a public one.
//
// --e2e: starts `gatehouse start` as a child process in front of a minimal upstream, with a public route and
// a JWT route, sends the same number of requests to each (in small chunks, order rotated, 16 connections)
// and reads the gateway's CPU time from /proc/<pid>/task/*/schedstat (ns, all threads): CPU µs per request
// per route, and the difference to the public route. Linux only.
import { parseArgs } from 'node:util';
import { generateKeyPairSync } from 'node:crypto';
import { SignJWT } from 'jose';
import type { Config } from '../src/config/schema.ts';
import type { JwtVerifier } from '../src/auth/jwt-verifier.ts';
import { authPolicy } from '../src/policies/auth.ts';
import { RequestContext, type Step } from '../src/pipeline/context.ts';
import { compileEnv, configFrom, verifierFor } from '../test/support/compile-env.ts';
import { pino } from 'pino';

const { values } = parseArgs({ options: { n: { type: 'string', default: '20000' }, rounds: { type: 'string', default: '5' }, e2e: { type: 'boolean', default: false }, requests: { type: 'string', default: '40000' } } });
const N = Number(values.n);
const ROUNDS = Number(values.rounds);
const logger = pino({ level: 'silent' });
const secret = 'bench-secret-bench-secret-bench-secret!';
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const pem = (k: typeof rsa.publicKey) => k.export({ type: 'spki', format: 'pem' }) as string;

const families = [
  { alg: 'HS256', provider: { secret }, signKey: new TextEncoder().encode(secret) },
  { alg: 'RS256', provider: { publicKey: pem(rsa.publicKey) }, signKey: rsa.privateKey },
  { alg: 'ES256', provider: { publicKey: pem(ec.publicKey) }, signKey: ec.privateKey },
] as const;

function config(provider: object, cacheEntries: number): Config {
  return configFrom(JSON.stringify({
    auth: { jwt: [{ name: 'bench', issuer: 'https://issuer.bench', audiences: ['api'], claimsToHeaders: { sub: 'X-User-Id' }, ...provider }], tokenCache: { maxEntries: cacheEntries } },
    upstreams: { u: { targets: ['http://127.0.0.1:1'] } },
    routes: [{ match: { path: '/' }, upstream: 'u', auth: 'jwt' }],
  }));
}

const sign = (alg: string, key: unknown) => new SignJWT({ plan: 'pro' }).setProtectedHeader({ alg }).setSubject('user-1').setIssuer('https://issuer.bench').setAudience('api').setIssuedAt().setExpirationTime('1h').sign(key as Uint8Array);

function cpuMicros(start: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(start);
  return d.user + d.system;
}

async function measureCold(v: JwtVerifier, token: string, n: number): Promise<number> {
  const s = process.cpuUsage();
  for (let i = 0; i < n; i++) await v.verify(token);
  return cpuMicros(s) / n;
}

function measureCached(v: JwtVerifier, token: string, n: number): number {
  const s = process.cpuUsage();
  for (let i = 0; i < n; i++) if (v.verify(token) instanceof Promise) throw new Error('cache miss on the hot path');
  return cpuMicros(s) / n;
}

function measureStep(step: Step, token: string, n: number): number {
  const req = { headers: { authorization: `Bearer ${token}` } } as never;
  const s = process.cpuUsage();
  for (let i = 0; i < n; i++) {
    const ctx = new RequestContext(req, null as never, 0);
    if (step(ctx) !== undefined) throw new Error('auth step went async on a cached token');
  }
  return cpuMicros(s) / n;
}

function stepFor(cfg: Config): Step {
  return authPolicy.compile({ config: cfg, route: cfg.routes[0], env: compileEnv({ logger }) })!;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmt = (x: number) => x.toFixed(2).padStart(8);

console.log(`node ${process.version}, ${N} verifications per measurement, median of ${ROUNDS} rounds (CPU µs per verification)\n`);
console.log('alg      cold (jose)   cached (verifier)   auth step, cached token');
for (const f of families) {
  const token = await sign(f.alg, f.signKey);
  const cold = verifierFor(config(f.provider, 0));
  const warm = verifierFor(config(f.provider, 10_000));
  const cfgStep = config(f.provider, 10_000);
  const step = stepFor(cfgStep);
  await cold.verify(token);
  await warm.verify(token);
  const first = step({ req: { headers: { authorization: `Bearer ${token}` } }, query: null, addUpstreamHeader() {} } as never);
  if (first instanceof Promise) await first;
  const coldN = Math.max(500, Math.floor(N / 10));
  await measureCold(cold, token, coldN); // warm-up: JIT, key import
  measureCached(warm, token, N);
  measureStep(step, token, N);
  const c: number[] = [], h: number[] = [], st: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    c.push(await measureCold(cold, token, coldN));
    h.push(measureCached(warm, token, N));
    st.push(measureStep(step, token, N));
  }
  console.log(`${f.alg.padEnd(6)} ${fmt(median(c))}      ${fmt(median(h))}            ${fmt(median(st))}`);
}

if (values.e2e) await endToEnd(Number(values.requests));

async function endToEnd(total: number): Promise<void> {
  const { createServer } = await import('node:http');
  const { cpuPerRequest, drive, startBenchGateway } = await import('./lib/gateway-process.ts');

  const body = JSON.stringify({ id: 'bench', object: 'chat.completion', choices: [{ message: { content: 'ok' } }] });
  const upstream = createServer((req, res) => { req.resume(); res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body); });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  const upPort = (upstream.address() as { port: number }).port;
  const q = (x: string) => JSON.stringify(x);
  const gw = await startBenchGateway((port) => `
server: { listen: 127.0.0.1:${port}, environment: development }
admin: { enabled: false }
observability: { log: { level: warn, format: json } }
auth:
  jwt:
    - { name: hs, issuer: https://hs.bench, secret: ${q(secret)}, claimsToHeaders: { sub: X-User-Id } }
    - { name: rs, issuer: https://rs.bench, publicKey: ${q(pem(rsa.publicKey))}, claimsToHeaders: { sub: X-User-Id } }
    - { name: es, issuer: https://es.bench, publicKey: ${q(pem(ec.publicKey))}, claimsToHeaders: { sub: X-User-Id } }
upstreams: { u: { targets: [ http://127.0.0.1:${upPort} ], pool: { connections: 32 } } }
routes:
  - { name: public, match: { path: /public }, upstream: u, auth: public }
  - { name: jwt, match: { path: /jwt }, upstream: u, auth: jwt }
`);
  try {
    const tok = (alg: string, key: unknown, iss: string) => new SignJWT({}).setProtectedHeader({ alg }).setSubject('bench-user').setIssuer(iss).setExpirationTime('2h').sign(key as Uint8Array);
    const hsToken = await tok('HS256', new TextEncoder().encode(secret), 'https://hs.bench');
    // "public+hdr" sends the same Authorization header to the public route: it separates the cost of carrying
    // a token (parsing it, forwarding it upstream) from the cost of the auth step itself.
    const cases: Array<[string, string, Record<string, string>]> = [
      ['public', '/public', {}],
      ['public+hdr', '/public', { authorization: `Bearer ${hsToken}` }],
      ['jwt HS256', '/jwt', { authorization: `Bearer ${hsToken}` }],
      ['jwt RS256', '/jwt', { authorization: `Bearer ${await tok('RS256', rsa.privateKey, 'https://rs.bench')}` }],
      ['jwt ES256', '/jwt', { authorization: `Bearer ${await tok('ES256', ec.privateKey, 'https://es.bench')}` }],
    ];
    const run = (i: number, n: number) => drive(n, async () => {
      const [, path, headers] = cases[i];
      const r = await gw.pool.request({ path, method: 'GET', headers });
      await r.body.dump();
      if (r.statusCode !== 200) throw new Error(`${path}: ${r.statusCode}`);
    });
    for (let i = 0; i < cases.length; i++) await run(i, 2000); // warm-up (JIT, pools, token cache)
    // Small chunks, order rotated every cycle: drift (other load on the machine, GC, JIT) spreads evenly over the routes.
    const { us, perCase } = await cpuPerRequest(gw, cases.length, total, run);
    console.log(`\ngateway process CPU µs per request (all threads; ${perCase} requests per route in chunks of 1000, order rotated; 16 connections)\n`);
    console.log('route         µs/req   added vs public   added vs public+hdr');
    cases.forEach(([name], i) => console.log(`${name.padEnd(11)} ${fmt(us[i])}   ${i === 0 ? '        ' : fmt(us[i] - us[0])}          ${i < 2 ? '' : fmt(us[i] - us[1])}`));
  } finally {
    await gw.close();
    upstream.close();
  }
}
