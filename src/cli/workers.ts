import cluster from 'node:cluster';

/**
 * `gatehouse start --workers N`: N identical processes share the listening port (node:cluster),
 * one core each. The primary only supervises: it restarts a worker that dies unexpectedly and
 * forwards SIGTERM/SIGINT so every worker drains before the primary exits.
 */
export function runPrimary(workers: number, log: (msg: string) => void): void {
  let stopping = false;
  for (let i = 0; i < workers; i++) cluster.fork();
  cluster.on('exit', (w, code, signal) => {
    if (stopping) {
      if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(0);
      return;
    }
    log(`worker ${w.process.pid} exited (${signal ?? code}); starting a new one`);
    setTimeout(() => cluster.fork(), 500);
  });
  const stop = (sig: NodeJS.Signals) => {
    if (stopping) process.exit(1);
    stopping = true;
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill(sig);
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

export const isPrimary = () => cluster.isPrimary;
