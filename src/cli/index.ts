import { parseArgs } from 'node:util';
import { usableCpus } from './cpu-quota.ts';
import { loadConfigFile, type LoadedConfig } from '../config/load.ts';
import { ConfigError, formatIssue } from '../config/errors.ts';
import { Runtime } from '../runtime/runtime.ts';
import { watchConfig } from '../runtime/watch.ts';
import { describeRoutes, formatRouteTable } from '../routing/describe.ts';
import { COMMANDS, usage } from './help.ts';
import { isPrimary, isWorker, runPrimary, serveReloadsFromPrimary, workerOptions } from './workers.ts';

/** Exit codes: 0 ok, 1 bad config or failed start, 2 bad usage. */
export async function main(argv: string[]): Promise<void> {
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === '--help' || cmd === '-h' || cmd === 'help') { process.stdout.write(usage()); return; }
  const spec = COMMANDS[cmd];
  if (!spec) return die(`unknown command "${cmd}" (try: ${Object.keys(COMMANDS).join(', ')})`, 2);
  let args: ReturnType<typeof parseArgs>;
  try {
    args = parseArgs({ args: rest, options: { ...spec.options, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true });
  } catch (e) {
    return die(`${cmd}: ${(e as Error).message}`, 2);
  }
  if (args.values.help) { process.stdout.write(usage(cmd)); return; }
  const v = args.values as Record<string, string | boolean | undefined>;
  const file = (args.positionals[0] as string | undefined) ?? (v.config as string | undefined) ?? 'gatehouse.yaml';

  switch (cmd) {
    case 'start': return start(file, v);
    case 'demo': {
      const demo = await import('./demo.ts');
      if (v.services) return demo.runDemoServices({ port: v.port ? Number(v.port) : 8001, host: (v.host as string) ?? '127.0.0.1' });
      return demo.runDemo({ port: v.port ? Number(v.port) : 8000, host: (v.host as string) ?? '127.0.0.1' });
    }
    case 'validate': {
      const loaded = load(file, {});
      await compile(loaded).close();
      for (const w of loaded.warnings) process.stderr.write(`warning: ${w}\n`);
      if (!v.quiet) process.stdout.write(`${file}: ok (${loaded.config.routes.length} routes, ${Object.keys(loaded.config.upstreams).length} upstreams)\n`);
      return;
    }
    case 'routes': {
      const loaded = load(file, {});
      const rt = compile(loaded);
      const rows = describeRoutes(rt.table);
      await rt.close();
      if (v.openapi) {
        const { routesOpenApi } = await import('./routes-openapi.ts');
        process.stdout.write(JSON.stringify(routesOpenApi(loaded.config), null, 2) + '\n');
        return;
      }
      process.stdout.write(v.json ? JSON.stringify(rows, null, 2) + '\n' : formatRouteTable(rows) + '\n');
      return;
    }
    case 'check': {
      const loaded = load(file, {});
      await compile(loaded).close();
      if (!v.live) {
        process.stdout.write(`${file}: config ok; add --live to probe every route, upstream target, DNS name and certificate\n`);
        return;
      }
      const timeoutMs = v.timeout ? Number(v.timeout) * 1000 : undefined;
      if (timeoutMs !== undefined && !(timeoutMs > 0)) die('--timeout takes seconds, e.g. 5', 2);
      const { runLiveCheck, formatCheckTable, summarize } = await import('./check-live.ts');
      const results = await runLiveCheck(loaded.config, { gateway: v.gateway as string | undefined, timeoutMs });
      const { failed, text } = summarize(results);
      process.stdout.write(v.json ? JSON.stringify({ ok: failed.length === 0, results }, null, 2) + '\n' : `${formatCheckTable(results)}\n\n${text}\n`);
      if (failed.length) { process.stderr.write(`gatehouse: check failed: ${failed.map((f) => f.subject).filter((x, i, a) => a.indexOf(x) === i).join(', ')}\n`); process.exit(1); }
      return;
    }
    case 'token':
    case 'hash-key': {
      // Imported here, like demo and check --live: `start` should not load jose's signing side or the OpenAPI importer.
      const { runToken, runHashKey } = await import('./token.ts');
      const code = cmd === 'token' ? await runToken(v) : await runHashKey(args.positionals as string[], v);
      if (code !== 0) process.exit(code);
      return;
    }
    case 'import': {
      const { runImport } = await import('./import-openapi.ts');
      const code = await runImport(args.positionals as string[], v);
      if (code !== 0) process.exit(code);
      return;
    }
    case 'schema': {
      const doc = await import('../config/schema-doc.ts');
      process.stdout.write(v.markdown ? doc.configReferenceMarkdown() : doc.schemaFileText());
      return;
    }
  }
}

function die(msg: string, code = 1): never {
  process.stderr.write(`gatehouse: ${msg}\n`);
  process.exit(code);
}

function load(file: string, overrides: Record<string, unknown>): LoadedConfig {
  try {
    return loadConfigFile(file, { overrides });
  } catch (e) {
    if (e instanceof ConfigError) die(`invalid config (${e.issues.length} problem${e.issues.length > 1 ? 's' : ''}):\n${e.issues.map((i) => '  ' + formatIssue(i)).join('\n')}`);
    throw e;
  }
}

/**
 * Builds the runtime and compiles the config without opening anything (no listener, no store connection, no
 * probe): every route compiles, or nothing starts.
 */
function compile(loaded: LoadedConfig, opts: ConstructorParameters<typeof Runtime>[1] = { logger: silentLogger(), defaultMetrics: false }): Runtime {
  try {
    return new Runtime(loaded, opts);
  } catch (e) {
    if (e instanceof ConfigError) die(`invalid config:\n${e.issues.map((i) => '  ' + formatIssue({ file: loaded.file, ...loaded.locate(i) })).join('\n')}`);
    throw e;
  }
}

async function start(file: string, v: Record<string, string | boolean | undefined>): Promise<void> {
  const overrides: Record<string, unknown> = {};
  if (v.listen) overrides['server.listen'] = v.listen;
  if (v.port) {
    const loaded = load(file, {});
    overrides['server.listen'] = `${loaded.config.server.listen.host}:${v.port}`;
  }
  if (v['log-level']) overrides['observability.log.level'] = v['log-level'];
  const loaded = load(file, overrides);
  const reread = () => loadConfigFile(file, { overrides });
  // `auto`: one worker per core this process may use: CPU affinity, capped by a cgroup CPU quota (src/cli/cpu-quota.ts).
  const workers = v.workers === 'auto' ? usableCpus().cpus : v.workers ? Number(v.workers) : 1;
  if (!Number.isInteger(workers) || workers < 1) die('--workers must be a positive integer or "auto"', 2);
  if (workers > 1 && isPrimary()) {
    await compile(loaded).close(); // a bad config fails here, once, not in every worker
    if (loaded.config.state.store === 'memory') process.stderr.write(`gatehouse: warning: state.store is memory: rate limits and quotas are per worker (${workers} workers); use state.store: redis for exact shared limits\n`);
    runPrimary(workers, { log: (m) => process.stderr.write(`gatehouse: ${m}\n`), validate: reread, file, watch: v.watch === true });
    return;
  }
  const rt = compile(loaded, workerOptions(reread));
  for (const w of loaded.warnings) rt.logger.warn(w);
  try {
    const { port, adminPort } = await rt.listen();
    rt.logger.info({ pid: process.pid, port, adminPort, tls: rt.tls, http2: rt.listener.http2, routes: loaded.config.routes.length, environment: loaded.config.server.environment, generation: rt.current.id, hash: rt.current.hash }, `gatehouse listening on ${loaded.config.server.listen.host}:${port}`);
    rt.logger.flush?.(); // supervisors and scripts wait for this line
  } catch (e) {
    await rt.close().catch(() => {});
    die(`cannot listen: ${(e as Error).message}`);
  }
  handleSignals(rt);
  if (isWorker()) serveReloadsFromPrimary(rt);
  else {
    // SIGHUP: reload, the Unix way. A refused config is logged with every problem; the running one keeps serving.
    process.on('SIGHUP', () => { rt.reload(); });
    if (v.watch === true) watchConfig(file, () => rt.reload());
  }
}

export function handleSignals(rt: Runtime, extra?: () => Promise<void>): void {
  let stopping = false;
  const stop = (sig: string) => {
    if (stopping) { rt.logger.warn(`${sig} again: exiting now`); process.exit(1); }
    stopping = true;
    rt.logger.info({ signal: sig, graceMs: rt.config.server.shutdownGrace }, 'draining');
    rt.drain().then(() => extra?.()).then(() => { rt.logger.info('stopped'); rt.logger.flush?.(); setTimeout(() => process.exit(0), 20); }, () => process.exit(1));
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

function silentLogger() {
  return pinoSilent;
}
import { pino } from 'pino';
const pinoSilent = pino({ level: 'silent' });
