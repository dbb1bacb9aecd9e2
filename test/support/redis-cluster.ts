// Throwaway Redis topologies for tests: a Cluster (masters with one replica each) and a Sentinel set (a master,
// a replica, one sentinel), each redis-server on free local ports, no persistence, removed by `stop()`.
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { createServer } from 'node:net';
import { freePort } from './redis-server.ts';

const run = promisify(execFile);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Node { port: number; proc: ChildProcess }

async function ping(port: number): Promise<boolean> {
  const c = new Redis({ port, lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
  c.on('error', () => { /* not up yet: the caller polls */ });
  try { await c.connect(); await c.ping(); return true; } catch { return false; } finally { c.disconnect(); }
}

async function waitPing(port: number, proc?: ChildProcess): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (proc && (proc.exitCode !== null || proc.signalCode !== null)) throw new NodeExited(port);
    if (await ping(port)) return;
    await sleep(50);
  }
  throw new Error(`redis-server on ${port} did not start`);
}

function spawnRedis(args: string[]): ChildProcess {
  return spawn('redis-server', args, { stdio: 'ignore' });
}

class NodeExited extends Error { constructor(port: number) { super(`redis-server on ${port} exited at start`); } }

async function isFree(port: number): Promise<boolean> {
  const s = createServer();
  return new Promise((r) => { s.once('error', () => r(false)); s.listen(port, '127.0.0.1', () => s.close(() => r(true))); });
}

/** A port for a cluster node: its bus port (port + 10000) must exist and be free too. */
async function clusterPort(taken: Set<number>): Promise<number> {
  for (;;) {
    const p = await freePort();
    if (p + 10000 <= 65535 && !taken.has(p) && !taken.has(p + 10000) && (await isFree(p + 10000))) return p;
  }
}

/**
 * Spawns a redis-server until one is up. A port from `freePort()` can be taken by another test process between the
 * probe and redis-server's bind (and a cluster node also binds port + 10000); such a node exits at once, so it is
 * started again on another port rather than failing the test.
 */
async function startNode(pickPort: () => Promise<number>, args: (port: number) => string[]): Promise<Node> {
  for (let attempt = 0; ; attempt++) {
    const port = await pickPort();
    const proc = spawnRedis(args(port));
    try { await waitPing(port, proc); return { port, proc }; } catch (err) {
      if (!(err instanceof NodeExited) || attempt >= 4) { proc.kill('SIGKILL'); throw err; }
    }
  }
}

async function killNode(n: Node): Promise<void> {
  if (n.proc.exitCode !== null || n.proc.signalCode !== null) return;
  const gone = new Promise((r) => n.proc.once('exit', r));
  n.proc.kill('SIGKILL');
  await gone;
}

async function oneShot<T>(port: number, fn: (c: Redis) => Promise<T>): Promise<T> {
  const c = new Redis({ port, maxRetriesPerRequest: 1, retryStrategy: () => null });
  c.on('error', () => { /* the command's rejection carries it */ });
  try { return await fn(c); } finally { c.disconnect(); }
}

export interface TestCluster {
  /** Seed nodes as `127.0.0.1:port`. */
  seeds: string[];
  /** The port of the master serving `key`'s slot now. */
  masterFor(key: string): Promise<number>;
  /** SIGKILL the node on `port` (a failover follows for a master). */
  kill(port: number): Promise<void>;
  stop(): Promise<void>;
}

/** `masters` masters with one replica each, `cluster-node-timeout` 1 s (a failover takes ~2-3 s). */
export async function startRedisCluster(masters = 3): Promise<TestCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'gh-cluster-'));
  const taken = new Set<number>();
  const pick = async () => { const p = await clusterPort(taken); taken.add(p); taken.add(p + 10000); return p; };
  const nodes: Node[] = await Promise.all(Array.from({ length: masters * 2 }, () => startNode(pick, (port) => ['--port', String(port), '--bind', '127.0.0.1',
    '--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`, '--cluster-node-timeout', '1000', '--dir', dir, '--save', '',
    '--appendonly', 'no', '--cluster-replica-validity-factor', '0'])));
  await run('redis-cli', ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '1', '--cluster-yes'], { timeout: 30_000 });
  // Every node agrees the cluster is up and every replica has synced once.
  for (let i = 0; ; i++) {
    const states = await Promise.all(nodes.map((n) => oneShot(n.port, async (c) => ({ info: String(await c.cluster('INFO')), repl: await c.info('replication') }))));
    const ok = states.every((s) => s.info.includes('cluster_state:ok')) && states.filter((s) => s.repl.includes('role:slave')).every((s) => s.repl.includes('master_link_status:up'));
    if (ok) break;
    if (i > 200) throw new Error('redis cluster did not come up');
    await sleep(50);
  }
  const live = () => nodes.find((n) => n.proc.exitCode === null && n.proc.signalCode === null)!;
  return {
    seeds: nodes.map((n) => `127.0.0.1:${n.port}`),
    async masterFor(key) {
      return oneShot(live().port, async (c) => {
        const slot = Number(await c.cluster('KEYSLOT', key));
        const slots = (await c.cluster('SLOTS')) as unknown as Array<[number, number, [string, number]]>;
        const range = slots.find(([a, b]) => slot >= a && slot <= b)!;
        return Number(range[2][1]);
      });
    },
    async kill(port) { await killNode(nodes.find((n) => n.port === port)!); },
    async stop() { await Promise.all(nodes.map(killNode)); rmSync(dir, { recursive: true, force: true }); },
  };
}

export interface TestSentinel {
  /** `127.0.0.1:port` of the sentinel. */
  sentinels: string[];
  masterName: string;
  /** The port the sentinel names as master now. */
  master(): Promise<number>;
  kill(port: number): Promise<void>;
  stop(): Promise<void>;
}

/** A master, one replica and one sentinel (quorum 1, down after 500 ms). */
export async function startRedisSentinel(): Promise<TestSentinel> {
  const dir = mkdtempSync(join(tmpdir(), 'gh-sentinel-'));
  const base = (p: number) => ['--port', String(p), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir];
  const master = await startNode(freePort, base);
  const mp = master.port;
  const replica = await startNode(freePort, (p) => [...base(p), '--replicaof', '127.0.0.1', String(mp)]);
  const rp = replica.port;
  const conf = join(dir, 'sentinel.conf');
  const sentinel = await startNode(freePort, (p) => {
    writeFileSync(conf, `port ${p}\nbind 127.0.0.1\ndir ${dir}\nsentinel monitor mymaster 127.0.0.1 ${mp} 1\nsentinel down-after-milliseconds mymaster 500\nsentinel failover-timeout mymaster 3000\nsentinel parallel-syncs mymaster 1\n`);
    return [conf, '--sentinel'];
  });
  const sp = sentinel.port;
  const nodes = [master, replica, sentinel];
  // The sentinel has found the replica and the replica has synced.
  for (let i = 0; ; i++) {
    const replicas = await oneShot(sp, async (c) => (await c.call('SENTINEL', 'REPLICAS', 'mymaster')) as unknown[]);
    const synced = (await oneShot(rp, (c) => c.info('replication'))).includes('master_link_status:up');
    if (replicas.length > 0 && synced) break;
    if (i > 400) throw new Error('sentinel did not find the replica');
    await sleep(50);
  }
  return {
    sentinels: [`127.0.0.1:${sp}`],
    masterName: 'mymaster',
    master: () => oneShot(sp, async (c) => Number(((await c.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', 'mymaster')) as string[])[1])),
    async kill(port) { await killNode(nodes.find((n) => n.port === port)!); },
    async stop() { await Promise.all(nodes.map(killNode)); rmSync(dir, { recursive: true, force: true }); },
  };
}
