import cluster, { type Worker } from 'node:cluster';
import { pino } from 'pino';
import { ConfigError, formatIssue } from '../config/errors.ts';
import type { LoadedConfig } from '../config/load.ts';
import { Runtime, type ReloadResult, type RuntimeOptions } from '../runtime/runtime.ts';
import { watchConfig } from '../runtime/watch.ts';

/** What the primary and its workers say to each other over the cluster IPC channel. */
type Message =
  | { type: 'gatehouse:reload'; id: number }
  | { type: 'gatehouse:reloaded'; id: number; result: ReloadResult }
  | { type: 'gatehouse:reload-request'; id: number }
  | { type: 'gatehouse:reload-answer'; id: number; result: ReloadResult };

export interface PrimaryOptions {
  log: (msg: string) => void;
  /** Reads and checks the config file again (throws ConfigError). */
  validate: () => LoadedConfig;
  file: string;
  watch: boolean;
}

/** Restart delays for a worker that keeps dying: 0.5 s doubling to 30 s, back to 0.5 s after a minute of good health. */
const BACKOFF_MIN = 500;
const BACKOFF_MAX = 30_000;
const HEALTHY_AFTER = 60_000;

/**
 * `gatehouse start --workers N`: N identical processes share the listening port (node:cluster), one core each.
 * The primary only supervises: it restarts a worker that dies unexpectedly (with backoff), forwards SIGTERM/SIGINT
 * so every worker drains before the primary exits, and coordinates reloads: on SIGHUP, on a file change with
 * `--watch`, or when a worker's admin API asks, it validates the file once and only then tells every worker to
 * reload, so a bad file never reaches any of them.
 */
export function runPrimary(workers: number, o: PrimaryOptions): void {
  let stopping = false;
  let backoff = BACKOFF_MIN;
  const started = new Map<number, number>();
  const fork = () => { const w = cluster.fork(); started.set(w.id, Date.now()); return w; };
  for (let i = 0; i < workers; i++) fork();
  cluster.on('exit', (w, code, signal) => {
    if (stopping) {
      if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(0);
      return;
    }
    const lived = Date.now() - (started.get(w.id) ?? 0);
    started.delete(w.id);
    backoff = lived > HEALTHY_AFTER ? BACKOFF_MIN : Math.min(backoff * 2, BACKOFF_MAX);
    const wait = lived > HEALTHY_AFTER ? BACKOFF_MIN : backoff;
    o.log(`worker ${w.process.pid} exited (${signal ?? code}); starting a new one in ${wait} ms`);
    setTimeout(() => { if (!stopping) fork(); }, wait).unref();
  });
  const stop = (sig: NodeJS.Signals) => {
    if (stopping) process.exit(1);
    stopping = true;
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill(sig);
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));

  let nextId = 1;
  const reloadAll = async (): Promise<ReloadResult> => {
    const t0 = performance.now();
    try {
      await checkFile(o.validate);
    } catch (e) {
      const problems = e instanceof ConfigError ? e.issues.map(formatIssue) : [(e as Error).message];
      o.log(`reload refused; every worker keeps its config:\n${problems.map((p) => '  ' + p).join('\n')}`);
      return { ok: false, generation: 0, hash: '', problems, durationMs: Math.round(performance.now() - t0) };
    }
    const id = nextId++;
    const answers = await Promise.all(Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined && w.isConnected()).map((w) => askWorker(w, id)));
    const failed = answers.find((r) => !r.ok);
    const first = failed ?? answers[0];
    const result = { ...first, workers: answers.map((r) => ({ ok: r.ok, generation: r.generation, hash: r.hash })), durationMs: Math.round(performance.now() - t0) };
    o.log(result.ok ? `reloaded ${answers.length} workers (config ${result.hash})` : 'reload failed in a worker; see its log');
    return result;
  };
  process.on('SIGHUP', () => { void reloadAll(); });
  if (o.watch) watchConfig(o.file, () => { void reloadAll(); });
  cluster.on('message', (w: Worker, m: Message) => {
    if (m?.type !== 'gatehouse:reload-request') return;
    void reloadAll().then((result) => { if (w.isConnected()) w.send({ type: 'gatehouse:reload-answer', id: m.id, result } satisfies Message); });
  });
}

function askWorker(w: Worker, id: number): Promise<ReloadResult> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => { w.off('message', on); resolve({ ok: false, generation: 0, hash: '', problems: [`worker ${w.process.pid} did not answer`], durationMs: 10_000 }); }, 10_000);
    const on = (m: Message) => {
      if (m?.type !== 'gatehouse:reloaded' || m.id !== id) return;
      clearTimeout(timer);
      w.off('message', on);
      resolve(m.result);
    };
    w.on('message', on);
    w.send({ type: 'gatehouse:reload', id } satisfies Message);
  });
}

/** The file loads and every route compiles (nothing is opened). */
async function checkFile(validate: () => LoadedConfig): Promise<void> {
  const loaded = validate();
  const rt = new Runtime(loaded, { logger: pino({ level: 'silent' }), defaultMetrics: false });
  await rt.close();
}

/** A worker's runtime options: reloads re-read the file; its admin API's reload asks the primary to reload everyone. */
export function workerOptions(reread: () => LoadedConfig): RuntimeOptions {
  if (!cluster.isWorker) return { load: reread };
  let nextId = 1;
  const reloadAll = () => new Promise<ReloadResult>((resolve) => {
    const id = nextId++;
    const on = (m: Message) => {
      if (m?.type !== 'gatehouse:reload-answer' || m.id !== id) return;
      process.off('message', on);
      resolve(m.result);
    };
    process.on('message', on);
    process.send!({ type: 'gatehouse:reload-request', id } satisfies Message);
  });
  return { load: reread, reloadAll };
}

/** A worker reloads when the primary says so, and reports how it went. */
export function serveReloadsFromPrimary(rt: Runtime): void {
  process.on('message', (m: Message) => {
    if (m?.type !== 'gatehouse:reload') return;
    const result = rt.reload();
    process.send?.({ type: 'gatehouse:reloaded', id: m.id, result } satisfies Message);
  });
}

export const isPrimary = () => cluster.isPrimary;
export const isWorker = () => cluster.isWorker;
