// What a provider route with model routing adds to a request, beside a plain route, in one run.
//
//   node --import tsx bench/ai-routing.ts [--n 20000] [--rounds 5] [--requests 20000] [--no-e2e]
//
// Two routes of one config, the same ~600-byte OpenAI chat body: `plain` (an upstream, no rule) and `models`
// (`models:` with two candidates on a `provider: openai` upstream: the body is peeked, the `model` value found by
// the byte scanner and spliced, the provider key injected, the client's Authorization removed, each attempt
// recorded). The memory store (cooling read per request) — a Redis store adds one round trip (see docs/ai-traffic.md).
//
// 1. Steps: CPU µs per request through each route's compiled steps, the body peek and, on the models route, the
//    attempt plan's start (cooling read, target pick, spliced body). Median of rounds, process.cpuUsage.
// 2. End to end (Linux): `gatehouse start` as a child in front of a minimal upstream answering an OpenAI-shaped
//    JSON; the same number of requests to each route in chunks of 1,000, order rotated, 16 connections; the gateway's
//    CPU time from /proc/<pid>/task/*/schedstat per request and route, and the difference.
// Nothing is asserted: this is a measurement, printed as tables.
import { parseArgs } from 'node:util';
import { PassThrough } from 'node:stream';
import { createServer } from 'node:http';
import { pino } from 'pino';
import { RequestContext, type Step } from '../src/pipeline/context.ts';
import { compileSteps } from '../src/policies/index.ts';
import { buildUpstreams } from '../src/runtime/upstreams.ts';
import { compileEnv, configFrom } from '../test/support/compile-env.ts';
import { cpuPerRequest, drive, startBenchGateway } from './lib/gateway-process.ts';

const { values } = parseArgs({ options: { n: { type: 'string', default: '20000' }, rounds: { type: 'string', default: '5' }, requests: { type: 'string', default: '20000' }, 'no-e2e': { type: 'boolean', default: false } } });
const N = Number(values.n);
const ROUNDS = Number(values.rounds);

const routesYaml = (upstream: string) => `
upstreams:
  plain: { targets: [ "${upstream}" ], pool: { connections: 32 } }
  openai: { provider: openai, apiKey: "\${BENCH_OPENAI_KEY:-sk-bench-provider-key-0001}", targets: [ "${upstream}" ], pool: { connections: 32 } }
  local: { provider: openai-compatible, targets: [ "${upstream}" ] }
defaults: { auth: public }
routes:
  - { name: plain, match: { path: /plain/v1/chat/completions, methods: [POST] }, upstream: plain }
  - name: models
    match: { path: /v1/chat/completions, methods: [POST] }
    models:
      gpt-4o: [ { upstream: openai, model: gpt-4o-2024-08-06 }, { upstream: local, model: llama-3.3-70b } ]
`;

const BODY = Buffer.from(JSON.stringify({ model: 'gpt-4o', temperature: 0.2, max_tokens: 256, messages: [
  { role: 'system', content: 'You are the support assistant of an online shop. Answer briefly and politely, in the language of the question.' },
  { role: 'user', content: 'Hello! I ordered a pair of running shoes last week (order 18-2231) and they have not arrived yet. The tracking page says the parcel is at the local depot since Monday. What can I do, and how long should I wait before asking for a refund?' },
] }));
const ANSWER = Buffer.from(JSON.stringify({ id: 'chatcmpl-1', object: 'chat.completion', created: 1, model: 'gpt-4o-2024-08-06', choices: [{ index: 0, message: { role: 'assistant', content: 'Please wait two more days.' }, finish_reason: 'stop' }], usage: { prompt_tokens: 120, completion_tokens: 8, total_tokens: 128 } }));

interface Case { name: string; route: 'plain' | 'models'; path: string }
const CASES: Case[] = [
  { name: 'plain', route: 'plain', path: '/plain/v1/chat/completions' },
  { name: 'models (provider)', route: 'models', path: '/v1/chat/completions' },
];

// ---- 1. the compiled steps ------------------------------------------------------------------------
const config = configFrom(routesYaml('http://127.0.0.1:1'));
const { upstreams } = buildUpstreams(config.upstreams, undefined as never, null);
const env = compileEnv({ logger: pino({ level: 'silent' }), upstreams });
const stepsOf = (name: string): readonly Step[] => compileSteps(config, config.routes.find((r) => r.name === name)!, env).steps;
const steps = { plain: stepsOf('plain'), models: stepsOf('models') };

function fakeRequest(c: Case): RequestContext {
  const req = Object.assign(new PassThrough(), { headers: { 'content-type': 'application/json', 'content-length': String(BODY.length), authorization: 'Bearer client-key', host: 'bench' }, method: 'POST', complete: false, socket: { remoteAddress: '127.0.0.1' } });
  req.end(BODY);
  const res = { setHeader() {}, getHeader() { return undefined; } };
  const ctx = new RequestContext(req as never, res as never, 0);
  ctx.path = c.path;
  return ctx;
}

async function runOnce(c: Case): Promise<unknown> {
  const ctx = fakeRequest(c);
  for (const s of steps[c.route]) { const r = s(ctx); if (r !== undefined) await r; }
  if (ctx.attempts !== null) {
    let sent: unknown = null;
    ctx.attempts.start((t) => { sent = t; const h: Record<string, string> = { authorization: 'Bearer client-key' }; t.upstream.credentials?.(h); ctx.forwardBody!.open(); }, (e) => { throw e; });
    return sent;
  }
  return null;
}

async function measure(c: Case, n: number): Promise<number> {
  const s = process.cpuUsage();
  for (let i = 0; i < n; i++) await runOnce(c);
  const d = process.cpuUsage(s);
  return (d.user + d.system) / n;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmt = (x: number) => x.toFixed(2).padStart(8);

// Correctness first: the models route rewrites the model and nothing else.
{
  const ctx = fakeRequest(CASES[1]);
  for (const s of steps.models) { const r = s(ctx); if (r !== undefined) await r; }
  ctx.attempts!.start(() => {}, (e) => { throw e; });
  const sent = ctx.forwardBody!.open().body as Buffer;
  if (sent.toString() !== BODY.toString().replace('"model":"gpt-4o"', '"model":"gpt-4o-2024-08-06"')) throw new Error(`rewrite: ${sent}`);
}

for (const c of CASES) await measure(c, Math.min(N, 5000)); // warm-up
const results = CASES.map(() => [] as number[]);
for (let r = 0; r < ROUNDS; r++) for (let i = 0; i < CASES.length; i++) results[i].push(await measure(CASES[i], N));
const us = results.map(median);
console.log(`node ${process.version}; compiled steps + body peek + attempt plan (cooling read, pick, spliced body, key injection); ${BODY.length}-byte body; ${N} requests per measurement, median of ${ROUNDS} rounds (CPU µs per request)\n`);
console.log('route               steps µs/req   added vs plain');
CASES.forEach((c, i) => console.log(`${c.name.padEnd(19)} ${fmt(us[i])}       ${i === 0 ? '' : fmt(us[i] - us[0])}`));
for (const u of upstreams.values()) await u.close();

if (!values['no-e2e']) await endToEnd(Number(values.requests));

// ---- 2. whole gateway ----------------------------------------------------------------------------
async function endToEnd(total: number): Promise<void> {
  const upstream = createServer((req, res) => { req.resume(); req.on('end', () => res.writeHead(200, { 'content-type': 'application/json', 'content-length': ANSWER.length }).end(ANSWER)); });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  const gw = await startBenchGateway((port) => `
server: { listen: 127.0.0.1:${port}, environment: development }
admin: { enabled: false }
observability: { log: { level: warn, format: json } }
${routesYaml(`http://127.0.0.1:${(upstream.address() as { port: number }).port}`)}`);
  try {
    const run = (i: number, n: number) => drive(n, async () => {
      const c = CASES[i];
      const r = await gw.pool.request({ path: c.path, method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer client-key' }, body: BODY });
      await r.body.dump();
      if (r.statusCode !== 200) throw new Error(`${c.name}: ${r.statusCode}`);
    });
    for (let i = 0; i < CASES.length; i++) await run(i, 2000); // warm-up
    const { us: e, perCase } = await cpuPerRequest(gw, CASES.length, total, run);
    console.log(`\ngateway process CPU µs per request (all threads; ${perCase} requests per route in chunks of 1000, order rotated; 16 connections)\n`);
    console.log('route               µs/req   added vs plain   ratio');
    CASES.forEach((c, i) => console.log(`${c.name.padEnd(19)} ${fmt(e[i])}   ${i === 0 ? '        ' : fmt(e[i] - e[0])}         ${i === 0 ? '' : (e[i] / e[0]).toFixed(2)}`));
  } finally {
    await gw.close();
    upstream.close();
  }
}
