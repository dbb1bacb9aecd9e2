// Throwaway Redis topologies for tests: a Cluster (masters with one replica each) and a Sentinel set (a master,
// a replica, one sentinel), each redis-server on free local ports, no persistence, removed by `stop()`.
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { freePort } from './redis-server.ts';

const run = promisify(execFile);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Node { port: number; proc: ChildProcess }

async function waitPing(port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const c = new Redis({ port, lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
    try { await c.connect(); await c.ping(); c.disconnect(); return; } catch { c.disconnect(); await sleep(50); }
  }
  throw new Error(`redis-server on ${port} did not start`);
}

function spawnRedis(args: string[]): ChildProcess {
  return spawn('redis-server', args, { stdio: 'ignore' });
}

async function killNode(n: Node): Promise<void> {
  if (n.proc.exitCode !== null || n.proc.signalCode !== null) return;
  const gone = new Promise((r) => n.proc.once('exit', r));
  n.proc.kill('SIGKILL');
  await gone;
}

async function oneShot<T>(port: number, fn: (c: Redis) => Promise<T>): Promise<T> {
  const c = new Redis({ port, maxRetriesPerRequest: 1, retryStrategy: () => null });
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
  const nodes: Node[] = [];
  for (let i = 0; i < masters * 2; i++) {
    const port = await freePort();
    nodes.push({ port, proc: spawnRedis(['--port', String(port), '--bind', '127.0.0.1', '--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`,
      '--cluster-node-timeout', '1000', '--dir', dir, '--save', '', '--appendonly', 'no', '--cluster-replica-validity-factor', '0']) });
  }
  await Promise.all(nodes.map((n) => waitPing(n.port)));
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
  const [mp, rp, sp] = [await freePort(), await freePort(), await freePort()];
  const base = (p: number) => ['--port', String(p), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir];
  const master: Node = { port: mp, proc: spawnRedis(base(mp)) };
  await waitPing(mp);
  const replica: Node = { port: rp, proc: spawnRedis([...base(rp), '--replicaof', '127.0.0.1', String(mp)]) };
  await waitPing(rp);
  const conf = join(dir, 'sentinel.conf');
  writeFileSync(conf, `port ${sp}\nbind 127.0.0.1\ndir ${dir}\nsentinel monitor mymaster 127.0.0.1 ${mp} 1\nsentinel down-after-milliseconds mymaster 500\nsentinel failover-timeout mymaster 3000\nsentinel parallel-syncs mymaster 1\n`);
  const sentinel: Node = { port: sp, proc: spawn('redis-server', [conf, '--sentinel'], { stdio: 'ignore' }) };
  await waitPing(sp);
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
