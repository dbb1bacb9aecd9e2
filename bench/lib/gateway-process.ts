// A gateway in its own process for the in-process benches' end-to-end part (bench/ai-routing.ts,
// bench/request-rules.ts, bench/jwt-verify.ts): started from a config, waited for on /healthz, its CPU read from
// /proc/<pid>/task/*/schedstat (ns, every thread), and routes driven in rotated chunks so drift on a shared machine
// hits every case alike.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pool } from 'undici';

export interface BenchGateway {
  readonly pool: Pool;
  /** CPU the gateway process has used so far, in ns (all threads). */
  cpuNs(): number;
  close(): Promise<void>;
}

/** `config(port)` is the whole YAML file for a gateway listening on 127.0.0.1:`port`. */
export async function startBenchGateway(config: (port: number) => string, connections = 16): Promise<BenchGateway> {
  const dir = mkdtempSync(join(tmpdir(), 'gh-bench-'));
  const port = 20000 + Math.floor(Math.random() * 20000);
  writeFileSync(join(dir, 'gatehouse.yaml'), config(port));
  const child: ChildProcess = spawn(process.execPath, [join(import.meta.dirname, '..', '..', 'bin', 'gatehouse.mjs'), 'start', '--config', join(dir, 'gatehouse.yaml')], { stdio: ['ignore', 'ignore', 'inherit'] });
  const pool = new Pool(`http://127.0.0.1:${port}`, { connections });
  const close = async () => {
    await pool.close();
    if (child.exitCode === null) { child.kill('SIGTERM'); await new Promise((r) => child.once('exit', r)); }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (let i = 0; ; i++) {
      try { const r = await pool.request({ path: '/healthz', method: 'GET' }); await r.body.text(); if (r.statusCode === 200) break; } catch { /* not up yet */ }
      if (i > 200) throw new Error('gateway did not start');
      await new Promise((r) => setTimeout(r, 50));
    }
  } catch (e) { await close(); throw e; }
  const pid = child.pid!;
  const cpuNs = () => readdirSync(`/proc/${pid}/task`).reduce((sum, t) => sum + Number(readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'utf8').split(' ')[0]), 0);
  return { pool, cpuNs, close };
}

/** Sends `n` requests made by `send` over `workers` concurrent loops; `send` throws on an unexpected answer. */
export async function drive(n: number, send: () => Promise<void>, workers = 16): Promise<void> {
  let next = 0;
  const worker = async () => { while (next++ < n) await send(); };
  await Promise.all(Array.from({ length: workers }, worker));
}

/**
 * The gateway's CPU µs per request for each case: `total` requests per case in chunks of `chunk`, the order of the
 * cases rotated every cycle. `run(i, n)` sends `n` requests of case `i`.
 */
export async function cpuPerRequest(gw: BenchGateway, cases: number, total: number, run: (i: number, n: number) => Promise<void>, chunk = 1000): Promise<{ us: number[]; perCase: number }> {
  const cycles = Math.max(1, Math.round(total / chunk));
  const ns = Array.from({ length: cases }, () => 0);
  for (let k = 0; k < cycles; k++) {
    for (let j = 0; j < cases; j++) {
      const i = (k + j) % cases;
      const before = gw.cpuNs();
      await run(i, chunk);
      ns[i] += gw.cpuNs() - before;
    }
  }
  return { us: ns.map((x) => x / (cycles * chunk) / 1000), perCase: cycles * chunk };
}
