// Chaos run: steady idempotent load through a gateway in front of three target processes, while one target
// process is killed (SIGKILL: every connection cut, requests in flight included) and restarted on the same port.
// Reports what clients saw and how long recovery took, with the resilience settings on and, for contrast, off.
//
//   node --import tsx bench/chaos.ts [--seconds 12] [--clients 16] [--out bench/CHAOS.md]
//
// Output: a Markdown report on stdout and in --out.
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { cpus } from 'node:os';
import { Writable } from 'node:stream';
import { request, Agent } from 'undici';
import { loadConfigText } from '../src/config/load.ts';
import { Gateway } from '../src/gateway.ts';
import { createLogger } from '../src/observability/logger.ts';
import { startDemoServer } from '../src/demo/services.ts';

const self = fileURLToPath(import.meta.url);

interface Target { name: string; port: number; proc: ChildProcess | null }

function spawnTarget(name: string, port: number): Promise<Target> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, ['--import', 'tsx', self, '--target', name, String(port)], { stdio: ['ignore', 'pipe', 'inherit'] });
    proc.once('error', reject);
    proc.stdout!.once('data', (d: Buffer) => {
      const m = /ready (\d+)/.exec(String(d));
      if (!m) return reject(new Error(`target ${name} did not start: ${d}`));
      resolve({ name, port: Number(m[1]), proc });
    });
  });
}

function kill(t: Target): Promise<void> {
  return new Promise((resolve) => {
    if (!t.proc || t.proc.exitCode !== null) return resolve();
    t.proc.once('exit', () => resolve());
    t.proc.kill('SIGKILL');
    t.proc = null;
  });
}

const RESILIENT = `
    balance: least-request
    retry: { attempts: 2, budget: 20%, backoff: 10ms }
    passiveHealth: { failures: 3, ejectFor: 500ms, maxEjectFor: 5s }
    health: { path: /health, interval: 500ms, timeout: 300ms, unhealthyThreshold: 2, healthyThreshold: 2 }
    circuitBreaker: { failures: 5, resetAfter: 2s }`;
const BARE = `
    balance: round-robin`;

interface Sample { at: number; ms: number; ok: boolean; service: string; error?: string }

interface Scenario {
  name: string;
  samples: Sample[];
  killAt: number;
  /** Date.now() at the kill, to place log lines (which carry wall-clock times). */
  killWall: number;
  /** When the restarted process listened again (recovery is measured from here, not from the spawn). */
  restartAt: number;
  end: number;
  metrics: string;
  logs: Array<Record<string, unknown>>;
}

async function run(name: string, upstreamExtra: string, seconds: number, clients: number): Promise<Scenario> {
  const targets = await Promise.all(['a', 'b', 'c'].map((n) => spawnTarget(n, 0)));
  const logs: Array<Record<string, unknown>> = [];
  const sink = new Writable({ write(chunk, _e, cb) { for (const l of String(chunk).split('\n')) if (l) { try { logs.push(JSON.parse(l)); } catch { /* not JSON */ } } cb(); } });
  const yaml = `
server: { listen: 127.0.0.1:0, environment: production }
admin: { listen: 127.0.0.1:0 }
observability: { log: { level: info, accessLog: false } }
upstreams:
  chat:
    targets: [ ${targets.map((t) => `http://127.0.0.1:${t.port}`).join(', ')} ]${upstreamExtra}
routes:
  - { name: chat, match: { path: /v1, prefix: true, methods: [GET] }, upstream: chat, auth: public }
`;
  const { config } = loadConfigText(yaml, 'chaos.yaml', { env: {} });
  const gw = new Gateway(config, { logger: createLogger({ level: 'info', format: 'json', destination: sink }), defaultMetrics: false });
  const { port, adminPort } = await gw.listen();
  const base = `http://127.0.0.1:${port}`;
  const agent = new Agent({ connections: clients * 2 });

  const samples: Sample[] = [];
  // one second of unrecorded load first, so JIT warm-up does not land in the "before" figures
  const warm = performance.now() + 1000;
  await Promise.all(Array.from({ length: clients }, async () => {
    while (performance.now() < warm) await (await request(base + '/v1/echo', { dispatcher: agent })).body.dump();
  }));
  const t0 = performance.now();
  let killWall = 0;
  const end = t0 + seconds * 1000;
  const killAt = t0 + seconds * 200;
  const spawnAt = t0 + seconds * 400;
  let restartAt = Infinity;
  let i = 0;
  const client = async () => {
    while (performance.now() < end) {
      const at = performance.now();
      // mostly quick echoes (they name the target that answered), one in four holds 30 ms so requests are in flight at the kill
      const path = i++ % 4 === 0 ? '/v1/slow?ms=30' : '/v1/echo';
      try {
        const r = await request(base + path, { dispatcher: agent });
        const body = (await r.body.json()) as { service?: string };
        samples.push({ at, ms: performance.now() - at, ok: r.statusCode === 200, service: body.service ?? '', error: r.statusCode === 200 ? undefined : `status ${r.statusCode}` });
      } catch (e) {
        samples.push({ at, ms: performance.now() - at, ok: false, service: '', error: (e as Error).message });
      }
    }
  };
  const chaos = (async () => {
    await sleepUntil(killAt);
    killWall = Date.now();
    await kill(targets[2]);
    await sleepUntil(spawnAt);
    Object.assign(targets[2], await spawnTarget('c', targets[2].port));
    restartAt = performance.now();
  })();
  await Promise.all([...Array.from({ length: clients }, client), chaos]);
  const metrics = await (await request(`http://127.0.0.1:${adminPort}/metrics`)).body.text();
  await gw.close();
  await agent.close();
  for (const t of targets) await kill(t);
  return { name, samples, killAt, killWall, restartAt, end, metrics, logs };
}

const sleepUntil = (t: number) => new Promise((r) => setTimeout(r, Math.max(0, t - performance.now())));

function metric(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name + '{') && !line.startsWith(name + ' ')) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

function pct(xs: number[], p: number): number {
  if (!xs.length) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * p))];
}

function summarize(s: Scenario) {
  const phase = (from: number, to: number) => s.samples.filter((x) => x.at >= from && x.at < to);
  const phases = [
    ['before the kill', phase(0, s.killAt)],
    ['target c down', phase(s.killAt, s.restartAt)],
    ['after c is up again', phase(s.restartAt, Infinity)],
  ] as const;
  const errors = s.samples.filter((x) => !x.ok);
  const lastError = errors.length ? Math.max(...errors.map((e) => e.at)) : null;
  const firstBack = s.samples.filter((x) => x.at >= s.restartAt && x.service === 'c').sort((a, b) => a.at - b.at)[0];
  const wall = (l: Record<string, unknown>) => (typeof l.time === 'number' ? l.time : Date.parse(String(l.time)));
  const outOfRotation = s.logs.filter((l) => ['target ejected after failures in traffic', 'circuit opened', 'target unhealthy'].includes(String(l.msg)) && wall(l) >= s.killWall);
  const firstOut = outOfRotation.length ? Math.min(...outOfRotation.map(wall)) - s.killWall : null;
  const errorKinds = new Map<string, number>();
  for (const e of errors) errorKinds.set(e.error ?? '?', (errorKinds.get(e.error ?? '?') ?? 0) + 1);
  return {
    total: s.samples.length,
    errors: errors.length,
    errorKinds,
    phases: phases.map(([label, xs]) => ({ label, n: xs.length, errors: xs.filter((x) => !x.ok).length, p50: pct(xs.map((x) => x.ms), 0.5), p99: pct(xs.map((x) => x.ms), 0.99), c: xs.filter((x) => x.service === 'c').length })),
    errorsAfterKillMs: lastError !== null ? lastError - s.killAt : null,
    outMs: firstOut,
    outBy: [...new Set(outOfRotation.map((l) => String(l.msg)))],
    recoverMs: firstBack ? firstBack.at - s.restartAt : null,
    retries: metric(s.metrics, 'gatehouse_upstream_retries_total'),
    exhausted: metric(s.metrics, 'gatehouse_upstream_retry_budget_exhausted_total'),
    ejections: metric(s.metrics, 'gatehouse_upstream_ejections_total'),
    opens: metric(s.metrics, 'gatehouse_circuit_transitions_total', { to: 'open' }),
    unhealthy: s.logs.filter((l) => l.msg === 'target unhealthy').length,
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { seconds: { type: 'string', default: '15' }, clients: { type: 'string', default: '16' }, out: { type: 'string', default: 'bench/CHAOS.md' } } });
  const seconds = Number(values.seconds);
  const clients = Number(values.clients);
  const scenarios = [
    await run('resilient (least-request, retry 2 / 20% budget, passive health, health checks, circuit breaker)', RESILIENT, seconds, clients),
    await run('bare (round-robin, no retry, no health)', BARE, seconds, clients),
  ];
  const lines: string[] = [];
  lines.push('# Chaos: one of three targets killed and restarted under load', '');
  lines.push(`Generated by \`node --import tsx bench/chaos.ts --seconds ${seconds} --clients ${clients}\` on ${new Date().toISOString().slice(0, 16)}Z, Node ${process.version}, ${cpus().length} CPUs (shared with other work: latencies are indicative, error counts are the point).`, '');
  lines.push(`Three demo targets run as separate processes behind one gateway (in the bench process). ${clients} clients send GETs back to back for ${seconds} s (3 of 4 are \`/v1/echo\`, 1 of 4 is \`/v1/slow?ms=30\` so requests are always in flight). At ${(seconds * 0.2).toFixed(1)} s target \`c\` gets SIGKILL (connections cut, in-flight requests lost); at ${(seconds * 0.4).toFixed(1)} s it is started again on the same port (a Node process takes a second or two to listen; recovery is timed from the moment it does). The same load then runs against the same gateway config without the resilience settings, for contrast.`, '');
  for (const s of scenarios) {
    const r = summarize(s);
    lines.push(`## ${s.name}`, '');
    lines.push(`- requests: **${r.total}**, errors seen by clients: **${r.errors}**${r.errors ? ` (${[...r.errorKinds].map(([k, n]) => `${n} × ${k}`).join(', ')})` : ''}`);
    lines.push(`- last client error: ${r.errorsAfterKillMs === null ? 'none' : `${r.errorsAfterKillMs.toFixed(0)} ms after the kill`}`);
    lines.push(`- target \`c\` out of rotation: ${r.outMs === null ? 'never (nothing watches for it)' : `${r.outMs} ms after the kill (${r.outBy.join('; ')})`}`);
    lines.push(`- target \`c\` served again **${r.recoverMs === null ? 'never' : `${r.recoverMs.toFixed(0)} ms`}** after its process listened again (time to recover); it was down ${((s.restartAt - s.killAt) / 1000).toFixed(1)} s`);
    lines.push(`- gateway: ${r.retries} retries, ${r.exhausted} retries refused by the budget, ${r.ejections} ejections, ${r.opens} circuit openings, ${r.unhealthy} health-check verdicts of unhealthy`, '');
    lines.push('| phase | requests | errors | p50 ms | p99 ms | served by c |', '| --- | ---: | ---: | ---: | ---: | ---: |');
    for (const p of r.phases) lines.push(`| ${p.label} | ${p.n} | ${p.errors} | ${p.p50.toFixed(1)} | ${p.p99.toFixed(1)} | ${p.c} |`);
    lines.push('');
  }
  lines.push('## Reading it', '');
  lines.push('- With retries, a GET whose target dies before answering (refused, reset, cut in flight) goes to another target: clients see no error. The budget (20% of requests, at least 10 per 10 s) bounds how many extra upstream calls an outage can cause.');
  lines.push('- Passive health ejects the dead target after 3 failures seen in real traffic; the active check (every 500 ms) keeps it out while it is down and brings it back after 2 passing checks once it is up again: that is the time to recover above.');
  lines.push('- Without them, every request sent to the dead target while it is down fails (one in three with round-robin), and so does every request in flight at the kill.');
  const text = lines.join('\n') + '\n';
  writeFileSync(values.out!, text);
  process.stdout.write(text);
}

// The same file is the target process (`--target <name> <port>`) and the bench.
if (process.argv[2] === '--target') {
  const [, , , name, port] = process.argv;
  const s = await startDemoServer({ name, port: Number(port) });
  process.stdout.write(`ready ${s.port}\n`);
} else {
  await main();
}
