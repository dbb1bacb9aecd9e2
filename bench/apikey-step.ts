// Micro-benchmark of the auth step on an `auth: apikey` route: CPU µs per request for a key the file lists, a key
// created at run time (the registry's snapshot), and a key nobody knows (with and without runtime keys held).
// Measured with process.cpuUsage (CPU time of this process), medians over rounds.
//
//   node --import tsx bench/apikey-step.ts [--n 200000] [--rounds 7] [--consumers 1000]
//
// The runtime-key rows need src/consumers/ (they are skipped on a tree without it), so the same file measures a
// commit before the registry existed and after: compare the "file key" and "unknown key" rows across the two with
// NO_RUNTIME_ROWS=1 on the newer tree (the extra rows make the measuring loop polymorphic, which alone costs the
// unknown-key row ~1 µs).
import { parseArgs } from 'node:util';
import { existsSync } from 'node:fs';
import { pino } from 'pino';
import { authPolicy } from '../src/policies/auth.ts';
import { hashApiKey } from '../src/auth/api-keys.ts';
import { RequestContext, type Step } from '../src/pipeline/context.ts';
import type { CompileEnv } from '../src/pipeline/policy.ts';
import { compileEnv, configFrom } from '../test/support/compile-env.ts';

const { values } = parseArgs({ options: { n: { type: 'string', default: '200000' }, rounds: { type: 'string', default: '7' }, consumers: { type: 'string', default: '1000' } } });
const N = Number(values.n);
const ROUNDS = Number(values.rounds);
const M = Number(values.consumers);
const logger = pino({ level: 'silent' });

const fileKeys = Array.from({ length: M }, (_, i) => `file-key-${i}-bench-bench-bench`);
const config = configFrom(JSON.stringify({
  consumers: fileKeys.map((k, i) => ({ id: `c${i}`, plan: 'pro', keys: [hashApiKey(k)] })),
  plans: { pro: {} },
  upstreams: { u: { targets: ['http://127.0.0.1:1'] } },
  routes: [{ match: { path: '/' }, upstream: 'u', auth: 'apikey' }],
}));

function measure(step: Step, key: string, n: number, ok: boolean): number {
  const s = process.cpuUsage();
  for (let i = 0; i < n; i++) {
    const ctx = new RequestContext({ headers: { 'x-api-key': key } } as never, null as never, 0);
    try {
      step(ctx);
      if (!ok) throw new Error('an unknown key was accepted');
    } catch (e) {
      if (ok) throw e;
    }
  }
  const d = process.cpuUsage(s);
  return (d.user + d.system) / n;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const rows: Array<{ name: string; step: Step; key: string; ok: boolean }> = [];
const plain = authPolicy.compile({ config, route: config.routes[0], env: compileEnv({ logger }) })!;
rows.push({ name: 'file key', step: plain, key: fileKeys[M >> 1], ok: true });
rows.push({ name: 'unknown key, no runtime keys', step: plain, key: 'gh_nobody-knows-this-key', ok: false });

if (existsSync(new URL('../src/consumers/index.ts', import.meta.url)) && !process.env.NO_RUNTIME_ROWS) {
  const { ConsumerRegistry } = await import('../src/consumers/registry.ts');
  const { MemoryConsumers } = await import('../src/consumers/memory.ts');
  const reg = new ConsumerRegistry(new MemoryConsumers(), { logger });
  await reg.start(1000);
  let runtimeKey = '';
  for (let i = 0; i < M; i++) {
    await reg.create(`r${i}`, 'pro');
    const k = await reg.addKey(`r${i}`);
    if (i === M >> 1) runtimeKey = k.key;
  }
  const withRuntime = authPolicy.compile({ config, route: config.routes[0], env: compileEnv({ logger, consumers: reg } as Partial<CompileEnv>) })!;
  rows.push({ name: `runtime key (${M} runtime keys)`, step: withRuntime, key: runtimeKey, ok: true });
  rows.push({ name: `unknown key (${M} runtime keys)`, step: withRuntime, key: 'gh_nobody-knows-this-key', ok: false });
}

for (const r of rows) measure(r.step, r.key, N, r.ok); // warm-up
const results = rows.map(() => [] as number[]);
for (let round = 0; round < ROUNDS; round++) rows.forEach((r, i) => results[i].push(measure(r.step, r.key, N, r.ok)));
console.log(`node ${process.version}, ${M} file consumers, ${N} requests per measurement, median of ${ROUNDS} rounds (CPU µs per auth step)\n`);
rows.forEach((r, i) => console.log(`${r.name.padEnd(36)} ${median(results[i]).toFixed(3).padStart(8)}`));
