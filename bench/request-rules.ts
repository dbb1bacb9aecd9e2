// What the request rules add to a request, beside a plain route, in one run.
//
//   node --import tsx bench/request-rules.ts [--n 20000] [--rounds 5] [--requests 20000] [--no-e2e]
//
// Three routes of one config: `plain` (no rule), `validated` (validate: PUT /v2/documents/{id} of the FastAPI fixture,
// a ~100-byte JSON body), `transformed` (transform.body on a ~150-byte urlencoded form: keep, rename, set from a
// header: the physio rewrite). Both rule routes read their body through the shared peek.
//
// 1. Steps: CPU µs per request through each route's compiled steps (the real policy list from src/policies/index.ts),
//    the body peek and, where a rule rewrote it, the serialization of the forwarded body. The request is a stream
//    carrying the body, as the peek reads it from a socket; the plain route pays the same request set-up, so the
//    difference is what the rules cost. Median of rounds, process.cpuUsage.
// 2. End to end (Linux): `gatehouse start` as a child in front of a minimal upstream; the same number of requests
//    to each route in chunks of 1,000, order rotated, 16 connections; the gateway's CPU time from
//    /proc/<pid>/task/*/schedstat (ns, all threads) per request and route, and the difference to the plain route.
// Nothing is asserted: this is a measurement, printed as tables.
import { parseArgs } from 'node:util';
import { PassThrough } from 'node:stream';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { pino } from 'pino';
import { RequestContext, type Step } from '../src/pipeline/context.ts';
import { compileSteps } from '../src/policies/index.ts';
import { compileEnv, configFrom } from '../test/support/compile-env.ts';
import { cpuPerRequest, drive, startBenchGateway } from './lib/gateway-process.ts';

const { values } = parseArgs({ options: { n: { type: 'string', default: '20000' }, rounds: { type: 'string', default: '5' }, requests: { type: 'string', default: '20000' }, 'no-e2e': { type: 'boolean', default: false } } });
const N = Number(values.n);
const ROUNDS = Number(values.rounds);
const FIXTURE = join(import.meta.dirname, '..', 'test', 'fixtures', 'fastapi-openapi.json');

const routesYaml = (upstream: string) => `
upstreams: { u: { targets: [ "${upstream}" ], pool: { connections: 32 } } }
defaults: { auth: public }
routes:
  - { name: plain, match: { path: /plain/:id, methods: [PUT, POST] }, upstream: u }
  - { name: validated, match: { path: /v2/documents/:id, methods: [PUT] }, upstream: u, validate: { openapi: "${FIXTURE}" } }
  - name: transformed
    match: { path: /physio, methods: [POST] }
    upstream: u
    transform: { body: { keep: [question, session_id, project_id], rename: { project_id: avtarType }, set: { channel: { from: header.x-channel } } } }
`;

const JSON_BODY = Buffer.from(JSON.stringify({ filename: 'Product_Manual_v2.pdf', note: 'bench body of about one hundred bytes, ok' }));
const FORM_BODY = Buffer.from(new URLSearchParams({ user_id: 'User_181473', project_id: 'User-181473_Project_15', session_id: 'session_abc123', question: 'What is your refund policy?', originating_url: 'https://example.com/shop' }).toString());

interface Case { name: string; path: string; method: string; body: Buffer; type: string }
const CASES: Case[] = [
  { name: 'plain (JSON)', path: '/plain/d1', method: 'PUT', body: JSON_BODY, type: 'application/json' },
  { name: 'validated JSON', path: '/v2/documents/d1', method: 'PUT', body: JSON_BODY, type: 'application/json' },
  { name: 'plain (form)', path: '/plain/d1', method: 'POST', body: FORM_BODY, type: 'application/x-www-form-urlencoded' },
  { name: 'transformed form', path: '/physio', method: 'POST', body: FORM_BODY, type: 'application/x-www-form-urlencoded' },
];

// ---- 1. the compiled steps ------------------------------------------------------------------------
const config = configFrom(routesYaml('http://127.0.0.1:1'));
const env = compileEnv({ logger: pino({ level: 'silent' }) });
const stepsOf = (name: string): readonly Step[] => compileSteps(config, config.routes.find((r) => r.name === name)!, env).steps;
const steps: Record<string, readonly Step[]> = { plain: stepsOf('plain'), validated: stepsOf('validated'), transformed: stepsOf('transformed') };
const routeOf = (c: Case) => (c.path.startsWith('/plain') ? 'plain' : c.path === '/physio' ? 'transformed' : 'validated');

/** A request as the peek sees one: a readable stream with the body, and its head. */
function fakeRequest(c: Case): RequestContext {
  const req = Object.assign(new PassThrough(), { headers: { 'content-type': c.type, 'content-length': String(c.body.length), 'x-channel': 'widget', host: 'bench' }, method: c.method, complete: false, socket: { remoteAddress: '127.0.0.1' } });
  req.end(c.body);
  const res = { setHeader() {}, getHeader() { return undefined; } };
  const ctx = new RequestContext(req as never, res as never, 0);
  ctx.path = c.path;
  ctx.params = { id: 'd1' };
  return ctx;
}

async function runOnce(c: Case, list: readonly Step[]): Promise<void> {
  const ctx = fakeRequest(c);
  for (const s of list) { const r = s(ctx); if (r !== undefined) await r; }
  if (ctx.forwardBody !== null) ctx.forwardBody.open();
}

async function measure(c: Case, n: number): Promise<number> {
  const list = steps[routeOf(c)];
  const s = process.cpuUsage();
  for (let i = 0; i < n; i++) await runOnce(c, list);
  const d = process.cpuUsage(s);
  return (d.user + d.system) / n;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmt = (x: number) => x.toFixed(2).padStart(8);

// Correctness first: the rule routes do what they say on these bodies.
{
  const v = fakeRequest(CASES[1]);
  for (const s of steps.validated) { const r = s(v); if (r !== undefined) await r; }
  const t = fakeRequest(CASES[3]);
  for (const s of steps.transformed) { const r = s(t); if (r !== undefined) await r; }
  const sent = (t.forwardBody!.open().body as Buffer).toString();
  if (sent !== 'avtarType=User-181473_Project_15&session_id=session_abc123&question=What+is+your+refund+policy%3F&channel=widget') throw new Error(`transform: ${sent}`);
}

for (const c of CASES) await measure(c, Math.min(N, 5000)); // warm-up (JIT, ajv)
const results = CASES.map(() => [] as number[]);
for (let r = 0; r < ROUNDS; r++) for (let i = 0; i < CASES.length; i++) results[i].push(await measure(CASES[i], N));
const us = results.map(median);
console.log(`node ${process.version}; compiled steps + body peek + forwarded-body serialization; ${N} requests per measurement, median of ${ROUNDS} rounds (CPU µs per request)\n`);
console.log('route              steps µs/req   added vs plain');
CASES.forEach((c, i) => {
  const base = c.type === 'application/json' ? us[0] : us[2];
  console.log(`${c.name.padEnd(18)} ${fmt(us[i])}       ${c.name.startsWith('plain') ? '' : fmt(us[i] - base)}`);
});

if (!values['no-e2e']) await endToEnd(Number(values.requests));

// ---- 2. whole gateway ----------------------------------------------------------------------------
async function endToEnd(total: number): Promise<void> {
  const answer = Buffer.from('{"ok":true}');
  const upstream = createServer((req, res) => { req.resume(); req.on('end', () => res.writeHead(200, { 'content-type': 'application/json', 'content-length': answer.length }).end(answer)); });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  const gw = await startBenchGateway((port) => `
server: { listen: 127.0.0.1:${port}, environment: development }
admin: { enabled: false }
observability: { log: { level: warn, format: json } }
${routesYaml(`http://127.0.0.1:${(upstream.address() as { port: number }).port}`)}`);
  try {
    const run = (i: number, n: number) => drive(n, async () => {
      const c = CASES[i];
      const r = await gw.pool.request({ path: c.path, method: c.method as 'PUT', headers: { 'content-type': c.type, 'x-channel': 'widget' }, body: c.body });
      await r.body.dump();
      if (r.statusCode !== 200) throw new Error(`${c.name}: ${r.statusCode}`);
    });
    for (let i = 0; i < CASES.length; i++) await run(i, 2000); // warm-up
    const { us: e, perCase } = await cpuPerRequest(gw, CASES.length, total, run);
    console.log(`\ngateway process CPU µs per request (all threads; ${perCase} requests per route in chunks of 1000, order rotated; 16 connections)\n`);
    console.log('route              µs/req   added vs plain   ratio');
    CASES.forEach((c, i) => {
      const base = c.type === 'application/json' ? e[0] : e[2];
      console.log(`${c.name.padEnd(18)} ${fmt(e[i])}   ${c.name.startsWith('plain') ? '        ' : fmt(e[i] - base)}         ${c.name.startsWith('plain') ? '' : (e[i] / base).toFixed(2)}`);
    });
  } finally {
    await gw.close();
    upstream.close();
  }
}
