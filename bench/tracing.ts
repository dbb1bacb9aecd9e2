// What OpenTelemetry tracing costs the public route, in one run: tracing off, on at sampleRatio 0.01, on at 1.0.
//
//   node --import tsx bench/tracing.ts [--requests 20000] [--baseline DIR] [--control]
//
// Each variant is `gatehouse start` as its own child process, in front of the same minimal upstream; the traced
// ones export to a collector stub in this process (OTLP/HTTP JSON, answered 200 and discarded). The same number
// of requests goes to each, in chunks of 1,000 with the order rotated, 16 connections; a variant's CPU is its
// process's time from /proc/<pid>/task/*/schedstat (ns, all threads, exporter included) per request.
// `--baseline DIR`: a checkout of the gateway without tracing (e.g. `git archive <commit> | tar -x -C DIR` with
// node_modules linked) runs as a fourth variant, so "off" can be compared with the code before tracing existed.
// First, in process: the tracing code alone (server span start/end and one attempt span, as the handler and the
// proxy call them), CPU µs per request at 0.01 and 1.0, export included at 1.0 (to a stub, batched): a stable
// figure where the end-to-end one moves with the machine's load.
// Also printed: each child's RSS once started and idle (the SDK is loaded only when tracing is configured), and
// the spans the collector received. Nothing is asserted: this is a measurement. Linux only (/proc).
import { parseArgs } from 'node:util';
import { createServer } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync, mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pool } from 'undici';
import { createTracing } from '../src/observability/tracing.ts';
import { RequestContext } from '../src/pipeline/context.ts';

const { values } = parseArgs({ options: { requests: { type: 'string', default: '20000' }, baseline: { type: 'string' }, control: { type: 'boolean', default: false } } });
const TOTAL = Number(values.requests);
const CHUNK = 1000;

const answer = Buffer.from('{"ok":true}');
const upstream = createServer((req, res) => { req.resume(); req.on('end', () => res.writeHead(200, { 'content-type': 'application/json', 'content-length': answer.length }).end(answer)); });
let spans = 0;
const collector = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => { spans += (Buffer.concat(chunks).toString().match(/"spanId"/g) ?? []).length; res.writeHead(200, { 'content-type': 'application/json' }).end('{}'); });
});
await Promise.all([upstream, collector].map((s) => new Promise<void>((r) => s.listen(0, '127.0.0.1', r))));
const portOf = (s: typeof upstream) => (s.address() as { port: number }).port;

interface Variant { name: string; tracing: string; bin: string; child?: ChildProcess; pool?: Pool; rssKb?: number }
const BIN = join(import.meta.dirname, '..', 'bin', 'gatehouse.mjs');
const variants: Variant[] = [
  { name: 'tracing off', tracing: '', bin: BIN },
  { name: 'sampleRatio 0.01', tracing: `tracing: { endpoint: "http://127.0.0.1:${portOf(collector)}/v1/traces", sampleRatio: 0.01 }`, bin: BIN },
  { name: 'sampleRatio 1.0', tracing: `tracing: { endpoint: "http://127.0.0.1:${portOf(collector)}/v1/traces", sampleRatio: 1 }`, bin: BIN },
];
// `--control`: a second, identical "off" process; its difference to the first is the noise floor of this run.
if (values.control) variants.push({ name: 'tracing off (again)', tracing: '', bin: BIN });
if (values.baseline !== undefined) variants.unshift({ name: 'before tracing', tracing: '', bin: join(values.baseline, 'bin', 'gatehouse.mjs') });

/** A port free right now (the child binds it a moment later). */
async function freePort(): Promise<number> {
  const s = createNetServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

{
  const req = { method: 'GET', httpVersion: '1.1', headers: { host: 'bench.example:8080' } };
  const N = 50_000;
  const rows: string[] = [];
  for (const ratio of [0.01, 1]) {
    const t = await createTracing({ endpoint: `http://127.0.0.1:${portOf(collector)}/v1/traces`, sampleRatio: ratio, headers: {}, serviceName: 'bench', maxQueueSize: 4096 }, { dropped() {}, scheduledDelayMillis: 200 });
    const one = () => {
      const ctx = new RequestContext(req as never, {} as never, 0);
      ctx.path = '/public/1';
      t.start(ctx);
      ctx.trace!.attempt('GET', 'u', '127.0.0.1:8080', 0).end(200, null);
      ctx.status = 200;
      t.end(ctx, 200);
    };
    for (let i = 0; i < 5000; i++) one();
    const best: number[] = [];
    for (let round = 0; round < 5; round++) {
      const c0 = process.cpuUsage();
      for (let i = 0; i < N; i++) { one(); if (i % 1000 === 999) await new Promise((r) => setImmediate(r)); }
      const d = process.cpuUsage(c0);
      best.push((d.user + d.system) / N);
    }
    await t.shutdown();
    rows.push(`sampleRatio ${String(ratio).padEnd(5)} ${[...best].sort((a, b) => a - b)[2].toFixed(2).padStart(6)} µs/request (median of 5 × ${N}; server span + 1 attempt span${ratio === 1 ? ', export included' : ''})`);
  }
  console.log('tracing code alone, in process:');
  for (const r of rows) console.log('  ' + r);
  console.log('');
}

const dir = mkdtempSync(join(tmpdir(), 'gh-tracing-bench-'));
const cpuNs = (pid: number) => readdirSync(`/proc/${pid}/task`).reduce((sum, t) => sum + Number(readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'utf8').split(' ')[0]), 0);
const rssKb = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);

try {
  for (const [i, v] of variants.entries()) {
    const port = await freePort();
    const file = join(dir, `v${i}.yaml`);
    writeFileSync(file, `
server: { listen: 127.0.0.1:${port}, environment: production }
admin: { enabled: false }
observability: { log: { level: warn, format: json, accessLog: false } ${v.tracing ? `, ${v.tracing}` : ''} }
upstreams: { u: { targets: [ "http://127.0.0.1:${portOf(upstream)}" ], pool: { connections: 32 } } }
routes:
  - { name: public, match: { path: /public/:id, methods: [GET] }, upstream: u, auth: public }
`);
    v.child = spawn(process.execPath, [v.bin, 'start', '--config', file], { stdio: ['ignore', 'ignore', 'inherit'] });
    v.pool = new Pool(`http://127.0.0.1:${port}`, { connections: 16 });
    for (let k = 0; ; k++) {
      try { const r = await v.pool.request({ path: '/healthz', method: 'GET' }); await r.body.text(); if (r.statusCode === 200) break; } catch { /* not up yet */ }
      if (k > 300) throw new Error(`${v.name}: gateway did not start`);
      await new Promise((r) => setTimeout(r, 50));
    }
    await new Promise((r) => setTimeout(r, 300));
    v.rssKb = rssKb(v.child.pid!);
  }
  const drive = async (v: Variant, n: number) => {
    let next = 0;
    const worker = async () => {
      while (next++ < n) {
        const r = await v.pool!.request({ path: `/public/${next}?q=1`, method: 'GET' });
        await r.body.dump();
        if (r.statusCode !== 200) throw new Error(`${v.name}: ${r.statusCode}`);
      }
    };
    await Promise.all(Array.from({ length: 16 }, worker));
  };
  for (const v of variants) await drive(v, 3000); // warm-up
  const cycles = Math.max(1, Math.round(TOTAL / CHUNK));
  const ns = variants.map(() => 0);
  for (let k = 0; k < cycles; k++) {
    for (let j = 0; j < variants.length; j++) {
      const i = (k + j) % variants.length;
      const pid = variants[i].child!.pid!;
      const before = cpuNs(pid);
      await drive(variants[i], CHUNK);
      ns[i] += cpuNs(pid) - before;
    }
  }
  await new Promise((r) => setTimeout(r, 5500)); // the last batch leaves (scheduledDelay 5 s) and is counted below
  const us = ns.map((x) => x / (cycles * CHUNK) / 1000);
  const off = us[variants.findIndex((v) => v.name === 'tracing off')];
  console.log(`node ${process.version}; public route (auth: public, one upstream), ${cycles * CHUNK} requests per variant in chunks of ${CHUNK}, order rotated, 16 connections`);
  console.log('gateway process CPU µs per request (all threads, exporter included)\n');
  console.log('variant              µs/req   vs off    idle RSS after start');
  variants.forEach((v, i) => console.log(`${v.name.padEnd(20)} ${us[i].toFixed(2).padStart(7)}   ${(us[i] - off >= 0 ? '+' : '') + (us[i] - off).toFixed(2).padStart(5)}    ${(v.rssKb! / 1024).toFixed(1)} MB`));
  console.log(`\nspans received by the collector stub: ${spans}`);
} finally {
  for (const v of variants) { await v.pool?.close(); v.child?.kill('SIGTERM'); }
  await Promise.all(variants.map((v) => v.child && v.child.exitCode === null ? new Promise((r) => v.child!.once('exit', r)) : null));
  upstream.close();
  collector.close();
  rmSync(dir, { recursive: true, force: true });
}
