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
  const port = await freePort();
  let proc: ChildProcess | null = null;
  const start = async () => {
    proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    const probe = new Redis({ port, lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
    probe.on('error', () => { /* not up yet: retried below */ });
    for (let i = 0; i < 100; i++) {
      try { await probe.connect(); await probe.ping(); probe.disconnect(); return; } catch { probe.disconnect(); await new Promise((r) => setTimeout(r, 50)); }
    }
    throw new Error('redis-server did not start');
  };
  const stop = async () => {
    const p = proc;
    proc = null;
    if (p === null || p.exitCode !== null) return;
    const gone = new Promise((r) => p.once('exit', r));
    p.kill('SIGKILL');
    await gone;
  };
  await start();
  return { port, url: `redis://127.0.0.1:${port}`, stop, start };
}
