// Soak: a gateway in its own process under modest mixed traffic for a long time, while Redis is killed and restarted
// twice and one upstream once. Looks for leaks (RSS, heap, open descriptors), event-loop stalls, and any request
// lost or answered twice. A robustness run, not a load test: keep the rate modest.
//
//   node --import tsx bench/soak.ts [--minutes 30] [--rate 120] [--sample 10] [--out bench/SOAK.md]
//
// Every request carries a unique `x-soak-id`; the upstreams echo it and append it to a ledger file as they see it,
// so the report can tell a lost request (no outcome at the client), a double answer (two outcomes for one id), a
// crossed answer (the body names another id) and a duplicate delivery (the upstream saw one id twice).
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { Readable } from 'node:stream';
import { parseArgs } from 'node:util';
import { Agent, request } from 'undici';
import { WebSocket, WebSocketServer } from 'ws';
import { memoryOf, runsCompiledBuild, startChildGateway, type ChildGateway } from '../test/support/child-gateway.ts';
import { startRedis } from '../test/support/redis-server.ts';

const self = fileURLToPath(import.meta.url);
type Kind = 'json' | 'sse' | 'upload' | 'ws';

// ---------------------------------------------------------------------------------------------------------------
// Upstream process: `--upstream <kind> <port> <ledger file>`. Prints `ready <port>` once listening.
// ---------------------------------------------------------------------------------------------------------------
async function upstreamMain(kind: Kind, port: number, ledger: string): Promise<void> {
  const fd = openSync(ledger, 'a');
  // Synchronous append: a SIGKILL must not lose ids the process already acted on (a few µs at this rate).
  const seen = (req: IncomingMessage) => { const id = req.headers['x-soak-id']; if (typeof id === 'string') writeSync(fd, id + '\n'); return String(id ?? ''); };
  const json = (res: ServerResponse, status: number, body: unknown) => {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }).end(text);
  };
  const server = createServer((req, res) => {
    const id = seen(req);
    if (kind === 'json') {
      if (req.method === 'POST') {
        let bytes = 0;
        req.on('data', (c: Buffer) => { bytes += c.length; }).on('end', () => json(res, 200, { id, bytes }));
        return;
      }
      return json(res, 200, { id, ok: true, pad: 'x'.repeat(160) });
    }
    if (kind === 'sse') {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      let n = 0;
      const t = setInterval(() => {
        res.write(`data: {"id":"${id}","n":${n}}\n\n`);
        if (++n === 10) { clearInterval(t); res.end(); }
      }, 20);
      res.on('close', () => clearInterval(t));
      return;
    }
    if (kind === 'upload') {
      let bytes = 0;
      req.on('data', (c: Buffer) => { bytes += c.length; }).on('end', () => json(res, 200, { id, bytes }));
      req.on('error', () => { /* client (via the gateway) went away mid-body */ });
      return;
    }
    json(res, 404, { id });
  });
  if (kind === 'ws') {
    const wss = new WebSocketServer({ noServer: true });
    server.on('upgrade', (req, socket, head) => {
      seen(req);
      wss.handleUpgrade(req, socket, head, (ws) => {
        ws.on('message', (data, binary) => ws.send(data, { binary }));
        ws.on('error', () => { /* abrupt close by the client */ });
      });
    });
  }
  server.keepAliveTimeout = 5000;
  server.listen(port, '127.0.0.1', () => process.stdout.write(`ready ${(server.address() as { port: number }).port}\n`));
  process.on('SIGTERM', () => { closeSync(fd); process.exit(0); });
}

interface Upstream { kind: Kind; port: number; ledger: string; proc: ChildProcess | null }

function spawnUpstream(kind: Kind, port: number, ledger: string): Promise<Upstream> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, ['--import', 'tsx', self, '--upstream', kind, String(port), ledger], { stdio: ['ignore', 'pipe', 'inherit'] });
    proc.once('error', reject);
    proc.once('exit', (code) => reject(new Error(`upstream ${kind} exited (${code}) before it was ready`)));
    proc.stdout!.once('data', (d: Buffer) => {
      const m = /ready (\d+)/.exec(String(d));
      if (!m) return reject(new Error(`upstream ${kind} did not start: ${d}`));
      resolve({ kind, port: Number(m[1]), ledger, proc });
    });
  });
}

function killProc(p: ChildProcess | null): Promise<void> {
  return new Promise((resolve) => {
    if (!p || p.exitCode !== null || p.signalCode !== null) return resolve();
    p.once('exit', () => resolve());
    p.kill('SIGKILL');
  });
}

// ---------------------------------------------------------------------------------------------------------------
// The driver
// ---------------------------------------------------------------------------------------------------------------
type Op = 'json-get' | 'json-post' | 'limited' | 'sse' | 'sse-abort' | 'upload' | 'upload-abort' | 'ws' | 'ws-terminate';
// Weights per 100 requests: mostly small JSON, a steady share of streams, uploads and WebSockets.
const MIX: Array<[Op, number]> = [
  ['json-get', 52], ['json-post', 10], ['limited', 10], ['sse', 7], ['sse-abort', 3],
  ['upload', 6], ['upload-abort', 4], ['ws', 5], ['ws-terminate', 3],
];

interface Entry { op: Op; at: number; outcomes: string[] }

interface Sample {
  t: number; rss: number; fds: number; heapUsed: number | null; heapTotal: number | null; lagP99: number | null;
  promFds: number | null; done: number; inFlight: number; event?: string;
}

function metricValue(text: string, name: string): number | null {
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.eE+-]+)$`, 'm').exec(text);
  return m ? Number(m[1]) : null;
}

function fdCount(pid: number): number { return readdirSync(`/proc/${pid}/fd`).length; }
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const mb = (b: number | null) => (b === null ? 'n/a' : (b / 1048576).toFixed(1));
const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); return s.length ? s[Math.floor(s.length / 2)] : NaN; };

async function main(): Promise<void> {
  const { values } = parseArgs({ options: {
    minutes: { type: 'string', default: '30' }, rate: { type: 'string', default: '120' },
    sample: { type: 'string', default: '10' }, out: { type: 'string', default: 'bench/SOAK.md' },
  } });
  const minutes = Number(values.minutes);
  const rate = Number(values.rate);
  const sampleEvery = Number(values.sample) * 1000;
  const runMs = minutes * 60_000;
  // RSS growth is judged from the end of warm-up: V8 and the pools size themselves in the first minutes.
  const warmupMs = Math.max(20_000, runMs * 0.1);
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-soak-'));
  const log = (s: string) => process.stdout.write(`[${new Date().toISOString().slice(11, 19)}] ${s}\n`);

  const redis = await startRedis();
  const ups: Record<Kind, Upstream> = {} as Record<Kind, Upstream>;
  for (const k of ['json', 'sse', 'upload', 'ws'] as Kind[]) ups[k] = await spawnUpstream(k, 0, join(dir, `${k}.ids`));
  const target = (k: Kind) => `http://127.0.0.1:${ups[k].port}`;
  const prefix = `gatehouse-soak-${process.pid}:`;
  const yaml = `
server: { listen: 127.0.0.1:0, environment: production }
admin: { listen: 127.0.0.1:0 }
observability: { log: { level: info, accessLog: false } }
state: { store: redis, redis: { url: ${redis.url}, keyPrefix: "${prefix}", timeout: 200ms, onError: open } }
upstreams:
  json: { targets: [ ${target('json')} ], pool: { keepAlive: 4s } }
  sse: { targets: [ ${target('sse')} ], pool: { keepAlive: 4s } }
  upload: { targets: [ ${target('upload')} ], pool: { keepAlive: 4s } }
  ws: { targets: [ ${target('ws')} ], pool: { keepAlive: 4s } }
routes:
  - name: json
    match: { path: /json, prefix: true, methods: [GET, POST] }
    upstream: json
    auth: public
    rateLimit: [ { limit: 100000, window: 1m, by: "header:x-soak-client" } ]
  - name: limited
    match: { path: /limited, methods: [GET] }
    upstream: json
    rewrite: { path: /json/limited }
    auth: public
    rateLimit: [ { limit: 5, window: 1s, by: route } ]
  - name: sse
    match: { path: /sse, methods: [GET] }
    upstream: sse
    auth: public
    rateLimit: [ { limit: 100000, window: 1m, by: ip } ]
  - name: upload
    match: { path: /upload, methods: [POST] }
    upstream: upload
    auth: public
    limits: { maxBodySize: 4mb }
  - name: ws
    match: { path: /ws, methods: [GET] }
    upstream: ws
    auth: public
    websocket: true
    rateLimit: [ { limit: 100000, window: 1m, by: ip } ]
`;
  // Which code the child runs is decided when it starts: sources edited during the run do not change it.
  const build = runsCompiledBuild() ? 'the dist/ build' : 'src/ through tsx';
  const gw: ChildGateway = await startChildGateway(yaml);
  log(`gateway pid ${gw.pid} at ${gw.url} (${build}), redis ${redis.port}, upstreams ${Object.values(ups).map((u) => `${u.kind}:${u.port}`).join(' ')}`);

  const agent = new Agent({ connections: 128, keepAliveTimeout: 2000, keepAliveMaxTimeout: 2000 });
  const ledger = new Map<string, Entry>();
  let seq = 0;
  let inFlight = 0;
  let skipped = 0;
  let done = 0;
  const MAX_IN_FLIGHT = 400;
  const record = (id: string, outcome: string) => { ledger.get(id)!.outcomes.push(outcome); inFlight--; done++; };

  const statusOutcome = (s: number) => `status ${s}`;
  const errOutcome = (e: unknown) => `error ${(e as { code?: string }).code ?? (e as Error).name ?? 'unknown'}`;

  async function httpJson(id: string, method: 'GET' | 'POST', path: string, body?: string) {
    try {
      const r = await request(gw.url + path, {
        method, dispatcher: agent, body, headersTimeout: 30_000, bodyTimeout: 30_000,
        headers: { 'x-soak-id': id, 'x-soak-client': `c${Number(id) % 50}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      });
      const text = await r.body.text();
      if (r.statusCode === 200) {
        const got = JSON.parse(text) as { id?: string; bytes?: number };
        if (got.id !== id) return record(id, `crossed (body names ${got.id})`);
        if (body !== undefined && got.bytes !== Buffer.byteLength(body)) return record(id, `short body (${got.bytes})`);
      }
      record(id, statusOutcome(r.statusCode));
    } catch (e) { record(id, errOutcome(e)); }
  }

  async function sse(id: string, abort: boolean) {
    const ac = new AbortController();
    try {
      const r = await request(gw.url + '/sse', { dispatcher: agent, signal: ac.signal, headers: { 'x-soak-id': id, accept: 'text/event-stream' }, headersTimeout: 30_000, bodyTimeout: 30_000 });
      if (r.statusCode !== 200) { await r.body.dump(); return record(id, statusOutcome(r.statusCode)); }
      let text = '';
      let events = 0;
      try {
        for await (const chunk of r.body) {
          text += String(chunk);
          events = text.split('\n\n').length - 1;
          if (abort && events >= 3) { ac.abort(); break; }
        }
      } catch (e) {
        if (!abort) throw e;
      }
      if (abort) return record(id, 'aborted by client (as planned)');
      const bad = text.split('\n\n').filter(Boolean).some((ev) => !ev.includes(`"id":"${id}"`));
      record(id, bad ? 'crossed events' : events === 10 ? statusOutcome(200) : `short stream (${events}/10 events)`);
    } catch (e) { record(id, errOutcome(e)); }
  }

  async function upload(id: string, abort: boolean) {
    const ac = new AbortController();
    const chunk = Buffer.alloc(16 * 1024, 0x61);
    const chunks = 16; // 256 KiB
    async function* body() {
      for (let i = 0; i < chunks; i++) {
        if (abort && i === 6) { ac.abort(); return; }
        yield chunk;
        await sleep(3);
      }
    }
    try {
      const r = await request(gw.url + '/upload', {
        method: 'POST', dispatcher: agent, signal: ac.signal, body: Readable.from(body()), headersTimeout: 30_000, bodyTimeout: 30_000,
        headers: { 'x-soak-id': id, 'content-type': 'application/octet-stream', ...(abort ? {} : { 'content-length': String(chunk.length * chunks) }) },
      });
      const text = await r.body.text();
      if (abort) return record(id, `answered though aborted (${r.statusCode})`);
      if (r.statusCode === 200) {
        const got = JSON.parse(text) as { id?: string; bytes?: number };
        if (got.id !== id) return record(id, `crossed (body names ${got.id})`);
        if (got.bytes !== chunk.length * chunks) return record(id, `short body (${got.bytes})`);
      }
      record(id, statusOutcome(r.statusCode));
    } catch (e) {
      record(id, abort && ac.signal.aborted ? 'aborted by client (as planned)' : errOutcome(e));
    }
  }

  function ws(id: string, terminate: boolean) {
    let settled = false;
    // ws reports one failure through several events (error, then close): the first one is the outcome.
    const settle = (o: string) => { if (!settled) { settled = true; clearTimeout(timer); record(id, o); } };
    const sock = new WebSocket(gw.url.replace('http', 'ws') + '/ws', { headers: { 'x-soak-id': id } });
    const timer = setTimeout(() => { sock.terminate(); settle('ws timeout'); }, 30_000);
    const want = 3;
    let echoed = 0;
    sock.on('unexpected-response', (_req, res) => { res.resume(); settle(statusOutcome(res.statusCode ?? 0)); sock.terminate(); });
    sock.on('open', () => { for (let i = 0; i < want; i++) sock.send(`${id}:${i}`); });
    sock.on('message', (m) => {
      if (String(m) !== `${id}:${echoed}`) { settle(`ws crossed message (${String(m)})`); sock.terminate(); return; }
      if (++echoed === want) {
        if (terminate) { sock.terminate(); settle('ws 101 (terminated by client)'); } else sock.close(1000);
      }
    });
    sock.on('close', (code) => { if (!terminate) settle(echoed === want && code === 1000 ? 'ws 101 (closed 1000)' : `ws closed ${code} after ${echoed}/${want}`); });
    sock.on('error', (e) => settle(errOutcome(e)));
  }

  const ops: Op[] = MIX.flatMap(([op, w]) => Array<Op>(w).fill(op));
  function launch(): void {
    if (inFlight >= MAX_IN_FLIGHT) { skipped++; return; }
    const op = ops[Math.floor(Math.random() * ops.length)];
    const id = String(++seq);
    ledger.set(id, { op, at: performance.now(), outcomes: [] });
    inFlight++;
    switch (op) {
      case 'json-get': void httpJson(id, 'GET', `/json/item/${id}?q=${Number(id) % 7}`); break;
      case 'json-post': void httpJson(id, 'POST', '/json/items', JSON.stringify({ id, text: 'y'.repeat(Number(id) % 2000) })); break;
      case 'limited': void httpJson(id, 'GET', '/limited'); break;
      case 'sse': void sse(id, false); break;
      case 'sse-abort': void sse(id, true); break;
      case 'upload': void upload(id, false); break;
      case 'upload-abort': void upload(id, true); break;
      case 'ws': ws(id, false); break;
      case 'ws-terminate': ws(id, true); break;
    }
  }

  const samples: Sample[] = [];
  const events: Array<{ t: number; what: string; shown?: boolean }> = [];
  let t0 = performance.now();
  async function takeSample(event?: string): Promise<Sample> {
    let text = '';
    try { text = await (await request(gw.adminUrl + '/metrics', { headersTimeout: 10_000 })).body.text(); } catch { /* counted as n/a */ }
    const s: Sample = {
      t: (performance.now() - t0) / 1000, rss: memoryOf(gw.pid).rss, fds: fdCount(gw.pid),
      heapUsed: metricValue(text, 'gatehouse_nodejs_heap_size_used_bytes'), heapTotal: metricValue(text, 'gatehouse_nodejs_heap_size_total_bytes'),
      lagP99: metricValue(text, 'gatehouse_nodejs_eventloop_lag_p99_seconds'), promFds: metricValue(text, 'gatehouse_process_open_fds'),
      done, inFlight, event,
    };
    return s;
  }

  // Baseline: a little traffic of every kind first (so lazily opened things exist), then idle until pooled
  // connections time out. The end is measured the same way, so the two descriptor counts compare like with like.
  for (let i = 0; i < 40; i++) { launch(); await sleep(20); }
  while (inFlight > 0) await sleep(50);
  const quietMs = 8000;
  await sleep(quietMs);
  const baseline = await takeSample('baseline (idle after a warm-up burst)');
  log(`baseline: RSS ${mb(baseline.rss)} MB, ${baseline.fds} fds, heap ${mb(baseline.heapUsed)} MB`);

  const lagDriver = monitorEventLoopDelay({ resolution: 20 });
  lagDriver.enable();
  t0 = performance.now();
  const at = (f: number) => t0 + runMs * f;
  const downMs = Math.min(5000, runMs * 0.04);
  const chaos: Array<{ t: number; what: string; run: () => Promise<void> }> = [
    { t: at(0.25), what: 'redis killed', run: () => redis.stop() },
    { t: at(0.25) + downMs, what: 'redis restarted', run: () => redis.start() },
    { t: at(0.45), what: 'json upstream killed', run: async () => { const p = ups.json.proc; ups.json.proc = null; await killProc(p); } },
    { t: at(0.45) + downMs, what: 'json upstream restarted', run: async () => { Object.assign(ups.json, await spawnUpstream('json', ups.json.port, ups.json.ledger)); } },
    { t: at(0.65), what: 'redis killed', run: () => redis.stop() },
    { t: at(0.65) + downMs, what: 'redis restarted', run: () => redis.start() },
  ];
  const chaosDone = (async () => {
    for (const c of chaos) {
      await sleep(c.t - performance.now());
      await c.run();
      events.push({ t: (performance.now() - t0) / 1000, what: c.what });
      log(c.what);
    }
  })();

  // Open-loop pacing: a tick every 10 ms launches the requests due by then, so a slow gateway does not slow the
  // offered rate (up to MAX_IN_FLIGHT; past that a launch is skipped and counted, never silently lost).
  let due = 0;
  const ticker = setInterval(() => {
    const want = Math.floor(((performance.now() - t0) / 1000) * rate);
    while (due < want) { due++; launch(); }
  }, 10);
  let nextLog = 0;
  const sampler = (async () => {
    for (let next = t0 + sampleEvery; next <= t0 + runMs + 1; next += sampleEvery) {
      await sleep(next - performance.now());
      // Each event labels the first sample after it, once.
      const pending = events.filter((e) => !e.shown);
      for (const e of pending) e.shown = true;
      const s = await takeSample(pending.length ? pending.map((e) => e.what).join(', ') : undefined);
      samples.push(s);
      if (s.t >= nextLog) { nextLog += 60; log(`t=${s.t.toFixed(0)}s RSS ${mb(s.rss)} MB heap ${mb(s.heapUsed)} MB fds ${s.fds} lag p99 ${s.lagP99 === null ? 'n/a' : (s.lagP99 * 1000).toFixed(1)} ms done ${s.done} in flight ${s.inFlight}`); }
    }
  })();
  await sampler;
  clearInterval(ticker);
  await chaosDone;
  lagDriver.disable();
  const trafficEnd = performance.now();
  const settleDeadline = trafficEnd + 60_000;
  while (inFlight > 0 && performance.now() < settleDeadline) await sleep(100);
  await agent.close();
  await sleep(quietMs);
  const final = await takeSample('end (idle after the run)');
  log(`final: RSS ${mb(final.rss)} MB, ${final.fds} fds`);

  // Upstream ledgers: how many times each id reached an upstream.
  const delivered = new Map<string, number>();
  for (const u of Object.values(ups)) {
    for (const id of readFileSync(u.ledger, 'utf8').split('\n')) if (id) delivered.set(id, (delivered.get(id) ?? 0) + 1);
  }
  const gwExit = gw.proc.exitCode;
  const gwErrLines = gw.lines().filter((l) => Number(l.level) >= 50).length;
  const gwWarnLines = gw.lines().filter((l) => Number(l.level) === 40);
  await gw.kill();
  for (const u of Object.values(ups)) await killProc(u.proc);
  await redis.stop();
  rmSync(dir, { recursive: true, force: true });

  // ------------------------------------------------------------------ accounting
  const byOp = new Map<Op, Map<string, number>>();
  let lost = 0;
  let doubled = 0;
  let dupDelivered = 0;
  let crossed = 0;
  for (const [id, e] of ledger) {
    if (e.outcomes.length === 0) lost++;
    if (e.outcomes.length > 1) doubled++;
    if ((delivered.get(id) ?? 0) > 1) dupDelivered++;
    const o = e.outcomes[0] ?? 'no answer (lost)';
    if (o.includes('crossed')) crossed++;
    const m = byOp.get(e.op) ?? new Map<string, number>();
    m.set(o, (m.get(o) ?? 0) + 1);
    byOp.set(e.op, m);
  }
  const sent = ledger.size;
  // Errors are expected only while the JSON upstream is down (and a moment after: its process takes a while to
  // listen); anything else, at any other time, is a finding.
  const killedAt = events.find((e) => e.what === 'json upstream killed')?.t ?? Infinity;
  const backAt = (events.find((e) => e.what === 'json upstream restarted')?.t ?? Infinity) + 2;
  const unexpected = new Map<string, number>();
  for (const e of ledger.values()) {
    const o = e.outcomes[0] ?? 'no answer (lost)';
    const t = (e.at - t0) / 1000;
    const fine = /^status (200|429)$|as planned|^ws 101/.test(o) || (t >= killedAt - 1 && t <= backAt && (e.op === 'json-get' || e.op === 'json-post' || e.op === 'limited') && o === 'status 502');
    if (!fine) unexpected.set(`${e.op}: ${o}`, (unexpected.get(`${e.op}: ${o}`) ?? 0) + 1);
  }
  const nUnexpected = [...unexpected.values()].reduce((a, b) => a + b, 0);
  const unknownDelivered = [...delivered.keys()].filter((id) => !ledger.has(id)).length;

  // ------------------------------------------------------------------ figures
  const afterWarm = samples.filter((s) => s.t * 1000 >= warmupMs);
  const warmRef = median(afterWarm.slice(0, 3).map((s) => s.rss));
  const endRef = median(samples.slice(-3).map((s) => s.rss));
  const growth = (endRef - warmRef) / warmRef;
  const peakAfterWarm = Math.max(...afterWarm.map((s) => s.rss));
  const lags = samples.map((s) => s.lagP99).filter((x): x is number => x !== null);
  const heapWarm = median(afterWarm.slice(0, 3).map((s) => s.heapUsed ?? NaN));
  const heapEnd = median(samples.slice(-3).map((s) => s.heapUsed ?? NaN));
  const fdTolerance = 0;
  const verdicts: Array<[string, boolean, string]> = [
    ['RSS growth after warm-up < 10%', growth < 0.1, `${mb(warmRef)} MB → ${mb(endRef)} MB (${(growth * 100).toFixed(1)}%)`],
    ['descriptors back to baseline', final.fds <= baseline.fds + fdTolerance, `${baseline.fds} at baseline, ${final.fds} at the end`],
    ['no request lost', lost === 0, `${lost} of ${sent} without an outcome`],
    ['no request answered twice', doubled === 0 && dupDelivered === 0 && crossed === 0, `${doubled} with two outcomes, ${dupDelivered} delivered twice upstream, ${crossed} crossed answers`],
    ['no error outside the upstream\'s downtime', nUnexpected === 0, nUnexpected === 0 ? 'every answer other than 200/429 came while the JSON upstream was down' : [...unexpected].map(([k, n]) => `${n} × ${k}`).join('; ')],
    ['gateway alive at the end', gwExit === null, gwExit === null ? 'running until stopped' : `exited with ${gwExit}`],
  ];
  const pass = verdicts.every(([, ok]) => ok);

  const L: string[] = [];
  const cmd = `node --import tsx bench/soak.ts --minutes ${minutes} --rate ${rate} --sample ${sampleEvery / 1000}`;
  L.push('# Soak: mixed traffic with Redis and an upstream restarted', '');
  L.push(`Generated by \`${cmd}\` on ${new Date().toISOString().slice(0, 16)}Z, Node ${process.version}, ${cpus().length} CPUs shared with other work (latencies and lag are indicative; counts and trends are the point).`, '');
  L.push('## Setup', '');
  L.push(`- Gateway: its own process (\`bin/gatehouse.mjs start --config FILE\`, ${build}), \`environment: production\`, access log off; routes for JSON (GET/POST), a rate-limited route (5/s, answers 429 past it), SSE, uploads (4 MB limit) and a WebSocket route; rate limits in Redis (\`state.store: redis\`, \`onError: open\`, 200 ms timeout) on every route but uploads.`);
  L.push(`- Redis: its own \`redis-server\` on a free port, killed (SIGKILL) at 25% and 65% of the run and restarted ${(downMs / 1000).toFixed(0)} s later each time.`);
  L.push(`- Upstreams: four processes (JSON, SSE 10 events 20 ms apart, upload sink, WebSocket echo); the JSON one is killed (SIGKILL) at 45% and restarted on the same port ${(downMs / 1000).toFixed(0)} s later.`);
  L.push(`- Traffic: open loop at ${rate} requests/s (at most ${MAX_IN_FLIGHT} in flight; ${skipped} launches skipped for that), mix per 100: ${MIX.map(([o, w]) => `${w} ${o}`).join(', ')}. Uploads are 256 KiB in 16 KiB chunks; an abort cuts the body after 96 KiB. SSE aborts after 3 events. A WebSocket sends 3 messages, checks the echoes, then closes (1000) or terminates the TCP connection.`);
  L.push(`- Accounting: each request has a unique \`x-soak-id\`; the upstreams echo it and append it to a ledger as they receive it. Lost = no outcome at the client; answered twice = two outcomes for one id, one id delivered twice upstream, or an answer naming another id.`);
  L.push(`- Samples every ${sampleEvery / 1000} s: RSS and open descriptors from \`/proc/<pid>/{status,fd}\`; heap used and event-loop lag p99 from the gateway's \`/metrics\` (\`gatehouse_nodejs_heap_size_used_bytes\`, \`gatehouse_nodejs_eventloop_lag_p99_seconds\`, prom-client's default metrics). Warm-up: the first ${(warmupMs / 1000).toFixed(0)} s. Baseline and end descriptors are both taken idle, ${quietMs / 1000} s after traffic stopped (pooled connections have a 4 s keep-alive).`, '');
  L.push('## Verdict', '');
  L.push(`**${pass ? 'PASS' : 'FAIL'}**`, '');
  L.push('| target | result | figures |', '| --- | --- | --- |');
  for (const [name, ok, fig] of verdicts) L.push(`| ${name} | ${ok ? 'PASS' : 'FAIL'} | ${fig} |`);
  L.push('');
  L.push('## Figures', '');
  L.push(`- RSS: baseline ${mb(baseline.rss)} MB, after warm-up ${mb(warmRef)} MB, end of traffic ${mb(endRef)} MB, peak after warm-up ${mb(peakAfterWarm)} MB, idle at the end ${mb(final.rss)} MB`);
  L.push(`- heap used: after warm-up ${mb(heapWarm)} MB, end of traffic ${mb(heapEnd)} MB`);
  L.push(`- open descriptors: baseline ${baseline.fds}, peak ${Math.max(...samples.map((s) => s.fds))}, end ${final.fds}`);
  L.push(`- event-loop lag p99 (per ${sampleEvery / 1000} s sample): median ${(median(lags) * 1000).toFixed(1)} ms, worst ${(Math.max(...lags) * 1000).toFixed(1)} ms; the driver's own loop: p99 ${(lagDriver.percentile(99) / 1e6).toFixed(1)} ms`);
  L.push(`- requests: ${sent} sent in ${(runMs / 60000).toFixed(0)} min (${(sent / (runMs / 1000)).toFixed(0)}/s); ${unknownDelivered} ids reached an upstream that the driver never sent`);
  L.push(`- gateway log: ${gwErrLines} error lines, ${gwWarnLines.length} warnings${gwWarnLines.length ? ` (${[...new Set(gwWarnLines.map((l) => String(l.msg)))].slice(0, 6).join('; ')})` : ''}`, '');
  L.push('### Over time', '');
  L.push('| t (min) | RSS MB | heap MB | fds | lag p99 ms | answered | in flight | event |', '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |');
  const rows = [baseline, ...samples.filter((s, i) => s.event || i % Math.max(1, Math.round(samples.length / 20)) === 0 || i === samples.length - 1), final];
  for (const s of rows) L.push(`| ${s === baseline ? '–' : s === final ? 'end' : (s.t / 60).toFixed(1)} | ${mb(s.rss)} | ${mb(s.heapUsed)} | ${s.fds} | ${s.lagP99 === null ? 'n/a' : (s.lagP99 * 1000).toFixed(1)} | ${s.done} | ${s.inFlight} | ${s.event ?? ''} |`);
  L.push('');
  L.push('### Outcomes by kind', '');
  L.push('| kind | sent | outcomes |', '| --- | ---: | --- |');
  for (const [op] of MIX) {
    const m = byOp.get(op);
    if (!m) continue;
    const n = [...m.values()].reduce((a, b) => a + b, 0);
    L.push(`| ${op} | ${n} | ${[...m].sort((a, b) => b[1] - a[1]).map(([o, c]) => `${c} × ${o}`).join('; ')} |`);
  }
  L.push('');
  L.push('Non-200 answers are expected during the faults: 502 while the JSON upstream is down, 429 from the limited route. With `onError: open`, requests pass while Redis is down.', '');
  const text = L.join('\n') + '\n';
  if (values.out) writeFileSync(values.out, text);
  process.stdout.write('\n' + text);
  process.exitCode = pass ? 0 : 1;
}

// The same file is the upstream process (`--upstream <kind> <port> <ledger>`) and the driver.
if (process.argv[2] === '--upstream') {
  const [, , , kind, port, ledger] = process.argv;
  await upstreamMain(kind as Kind, Number(port), ledger);
} else {
  await main();
}
