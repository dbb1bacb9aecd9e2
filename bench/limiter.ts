// What a rate limit adds to a request, measured beside the same gateway's public route in one run.
//
//   node --import tsx bench/limiter.ts [--requests N] [--redis redis://127.0.0.1:6379]
//
// 1. CPU µs/request of the memory limiter step itself (the policy step called in a loop; target ≤ 5 µs).
// 2. Two gateway processes (memory store, Redis store), each with /public (no policy) and /limited
//    (one 2-tier rate limit keyed by IP, limits high enough never to refuse). For each: median and p99 of
//    sequential requests alternating /public and /limited, and the gateway's CPU per request on each
//    route; reported as differences (target: Redis limiter ≤ 0.3 ms added median latency).
// Nothing is asserted: this is a measurement, printed as a table.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';
import { loadConfigText } from '../src/config/load.ts';
import { RequestContext } from '../src/pipeline/context.ts';
import { rateLimitPolicy } from '../src/policies/rate-limit.ts';
import { MemoryStore } from '../src/state/memory.ts';
import { startDemoServer } from '../src/demo/services.ts';
import { compileEnv } from '../test/support/compile-env.ts';

const { values: args } = parseArgs({ options: { requests: { type: 'string', default: '3000' }, redis: { type: 'string', default: 'redis://127.0.0.1:6379' } } });
const N = Number(args.requests);
const BIN = join(import.meta.dirname, '..', 'bin', 'gatehouse.mjs');

// ---- 1. the step alone ---------------------------------------------------------------------------
function stepCpu(): { us: number; keys: number } {
  const { config } = loadConfigText(`
upstreams: { u: { targets: [ "http://127.0.0.1:1" ] } }
routes:
  - { name: limited, match: { path: /x }, upstream: u, auth: public, rateLimit: [ { limit: 1000000000, window: 1m, by: ip }, { limit: 1000000000, window: 1h, by: ip } ] }
`, 'bench.yaml', { env: {} });
  const store = new MemoryStore();
  const step = rateLimitPolicy.compile({ config, route: config.routes[0], env: compileEnv({ store }) })!;
  const req = { headers: {}, socket: {} } as never;
  const res = {} as never;
  const ips = Array.from({ length: 1000 }, (_, i) => `10.0.${i >> 8}.${i & 255}`);
  const run = (n: number) => {
    for (let i = 0; i < n; i++) {
      const ctx = new RequestContext(req, res, 0);
      ctx.clientIp = ips[i % 1000];
      step(ctx);
    }
  };
  run(50_000); // warm up (JIT)
  const iterations = 300_000;
  const c0 = process.cpuUsage();
  run(iterations);
  const c = process.cpuUsage(c0);
  // the same loop without the step: what creating a context costs, subtracted
  const b0 = process.cpuUsage();
  for (let i = 0; i < iterations; i++) { const ctx = new RequestContext(req, res, 0); ctx.clientIp = ips[i % 1000]; }
  const b = process.cpuUsage(b0);
  void store.close();
  return { us: (c.user + c.system - b.user - b.system) / iterations, keys: store.size };
}

// ---- 2. whole gateways ----------------------------------------------------------------------------
interface Child { url: string; pid: number; stop(): void }

async function startChild(yaml: string): Promise<Child> {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-bench-'));
  const file = join(dir, 'g.yaml');
  writeFileSync(file, yaml);
  const proc = spawn(process.execPath, [BIN, 'start', '--config', file], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  proc.stdout!.setEncoding('utf8').on('data', (s: string) => { out += s; });
  for (let i = 0; i < 400; i++) {
    const m = /"port":(\d+)/.exec(out);
    if (m) return { url: `http://127.0.0.1:${m[1]}`, pid: proc.pid!, stop: () => { proc.kill('SIGKILL'); rmSync(dir, { recursive: true, force: true }); } };
    if (proc.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 25));
  }
  proc.kill('SIGKILL');
  throw new Error(`gateway did not start: ${out}`);
}

function cpuTicks(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return Number(rest[11]) + Number(rest[12]); // utime + stime, in clock ticks (1/100 s)
}

const pct = (xs: number[], p: number) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(p * s.length))]; };

async function measure(c: Child): Promise<Record<'public' | 'limited', { p50: number; p99: number; cpuUs: number }>> {
  const pool = new Pool(c.url, { connections: 8 });
  const hit = async (path: string) => { const r = await pool.request({ path, method: 'GET' }); await r.body.dump(); if (r.statusCode !== 200) throw new Error(`${path}: ${r.statusCode}`); };
  for (let i = 0; i < 500; i++) { await hit('/public'); await hit('/limited'); } // warm up
  const lat: Record<string, number[]> = { public: [], limited: [] };
  for (let i = 0; i < N; i++) {
    for (const p of i % 2 ? ['public', 'limited'] : ['limited', 'public']) {
      const t0 = performance.now();
      await hit('/' + p);
      lat[p].push(performance.now() - t0);
    }
  }
  // CPU per request: the gateway's own CPU over a burst at concurrency 8 on one route at a time
  const cpu: Record<string, number> = {};
  for (const p of ['public', 'limited', 'public', 'limited']) {
    const t0 = cpuTicks(c.pid);
    const n = N * 2;
    let next = 0;
    await Promise.all(Array.from({ length: 8 }, async () => { while (next++ < n) await hit('/' + p); }));
    const us = ((cpuTicks(c.pid) - t0) * 10_000) / n;
    cpu[p] = cpu[p] === undefined ? us : Math.min(cpu[p], us);
  }
  await pool.close();
  return {
    public: { p50: pct(lat.public, 0.5), p99: pct(lat.public, 0.99), cpuUs: cpu.public },
    limited: { p50: pct(lat.limited, 0.5), p99: pct(lat.limited, 0.99), cpuUs: cpu.limited },
  };
}

const gatewayYaml = (upstream: string, state: string) => `
server: { listen: 127.0.0.1:0, environment: development }
admin: { enabled: false }
observability: { log: { level: info, format: json, accessLog: false } }
${state}
upstreams: { u: { targets: [ ${upstream} ] } }
routes:
  - { name: public, match: { path: /public }, upstream: u, auth: public }
  - { name: limited, match: { path: /limited }, upstream: u, auth: public, rateLimit: [ { limit: 1000000000, window: 1m, by: ip }, { limit: 1000000000, window: 1h, by: ip } ] }
`;

const step = stepCpu();
console.log(`memory limiter step: ${step.us.toFixed(2)} µs CPU/request (2 tiers, 1,000 client IPs; target ≤ 5 µs)`);

const up = await startDemoServer({ name: 'bench' });
const rows: string[] = [];
try {
  for (const [name, state] of [['memory', 'state: { store: memory }'], ['redis', `state: { store: redis, redis: { url: "${args.redis}", keyPrefix: "ghbench-${process.pid}:", timeout: 1s } }`]] as const) {
    const c = await startChild(gatewayYaml(up.url, state));
    try {
      const m = await measure(c);
      rows.push(`| ${name} | ${m.public.p50.toFixed(3)} | ${m.limited.p50.toFixed(3)} | ${(m.limited.p50 - m.public.p50).toFixed(3)} | ${m.public.p99.toFixed(3)} | ${m.limited.p99.toFixed(3)} | ${m.public.cpuUs.toFixed(0)} | ${m.limited.cpuUs.toFixed(0)} | ${(m.limited.cpuUs - m.public.cpuUs).toFixed(0)} | ${(m.limited.cpuUs / m.public.cpuUs).toFixed(2)} |`);
    } finally {
      c.stop();
    }
  }
} finally {
  await up.close();
}
console.log(`\n${N} sequential requests per route, alternating; CPU from /proc at concurrency 8 (10 ms ticks: ±${(10_000 / (N * 2)).toFixed(0)} µs)\n`);
console.log('| store | p50 public ms | p50 limited ms | added p50 ms | p99 public ms | p99 limited ms | CPU public µs | CPU limited µs | added CPU µs | CPU ratio |');
console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
for (const r of rows) console.log(r);
console.log('\ntargets: memory step ≤ 5 µs CPU; Redis added median ≤ 0.3 ms');
