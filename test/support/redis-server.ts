import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { Redis } from 'ioredis';

/** A throwaway redis-server on a free port (no persistence), for tests that stop Redis on purpose. */
export interface OwnRedis { port: number; url: string; stop(): Promise<void>; start(): Promise<void> }

export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

export async function startRedis(): Promise<OwnRedis> {
  let port = await freePort();
  let proc: ChildProcess | null = null;
  /** false when redis-server exited before answering (its port was taken meanwhile by another test process). */
  const boot = async (): Promise<boolean> => {
    const p = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    proc = p;
    const probe = new Redis({ port, lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
    probe.on('error', () => { /* not up yet: retried below */ });
    for (let i = 0; i < 200; i++) {
      if (p.exitCode !== null || p.signalCode !== null) return false;
      try { await probe.connect(); await probe.ping(); probe.disconnect(); return true; } catch { probe.disconnect(); await new Promise((r) => setTimeout(r, 50)); }
    }
    throw new Error(`redis-server on ${port} did not start`);
  };
  const start = async () => {
    if (!(await boot())) throw new Error(`redis-server on ${port} exited at start`);
  };
  const stop = async () => {
    const p = proc;
    proc = null;
    if (p === null || p.exitCode !== null) return;
    const gone = new Promise((r) => p.once('exit', r));
    p.kill('SIGKILL');
    await gone;
  };
  // The first start may move to another port; a restart (`start()` after `stop()`) keeps the one clients know.
  for (let attempt = 0; !(await boot()); attempt++) {
    if (attempt >= 4) throw new Error(`redis-server exited at start on ${attempt + 1} ports`);
    port = await freePort();
  }
  return { port, url: `redis://127.0.0.1:${port}`, stop, start };
}
