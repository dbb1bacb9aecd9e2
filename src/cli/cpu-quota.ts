import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';

type Read = (path: string) => string | null;
const readOrNull: Read = (p) => { try { return readFileSync(p, 'utf8'); } catch { return null; } };

/**
 * Cores `--workers auto` should use: the CPUs this process may run on (affinity: `os.availableParallelism()`),
 * capped by a cgroup CPU quota rounded up. A container with `limits.cpu: 2` on a 16-core node sees 16 CPUs but
 * gets 2 CPUs' worth of time: 16 workers would contend for it (and be throttled together).
 */
export function usableCpus(read: Read = readOrNull, parallelism = availableParallelism()): { cpus: number; quota: number | null } {
  const quota = cgroupCpuQuota(read);
  return { cpus: Math.max(1, quota === null ? parallelism : Math.min(parallelism, Math.ceil(quota))), quota };
}

/**
 * The CPU quota in CPUs (e.g. 1.5), or null when there is none. cgroup v2: `cpu.max` ("max 100000" or
 * "150000 100000") of this process's cgroup and its ancestors (the smallest wins); cgroup v1: `cpu.cfs_quota_us`
 * / `cpu.cfs_period_us` (-1: none), read where a container sees its own group.
 */
export function cgroupCpuQuota(read: Read = readOrNull): number | null {
  const self = read('/proc/self/cgroup') ?? '';
  const v2 = /^0::(\/.*)$/m.exec(self);
  let best: number | null = null;
  const keep = (q: number | null) => { if (q !== null && (best === null || q < best)) best = q; };
  if (v2 !== null) {
    // From the process's own group up to the root: a limit may sit on the pod's group above the container's.
    const parts = v2[1].split('/').filter(Boolean);
    for (let i = parts.length; i >= 0; i--) keep(parseCpuMax(read(['/sys/fs/cgroup', ...parts.slice(0, i), 'cpu.max'].join('/'))));
  }
  for (const dir of ['/sys/fs/cgroup/cpu', '/sys/fs/cgroup/cpu,cpuacct']) {
    keep(parseCfs(read(`${dir}/cpu.cfs_quota_us`), read(`${dir}/cpu.cfs_period_us`)));
  }
  return best;
}

/** cgroup v2 `cpu.max`: "$MAX $PERIOD", MAX may be "max". */
export function parseCpuMax(text: string | null): number | null {
  if (text === null) return null;
  const [max, period] = text.trim().split(/\s+/);
  if (max === undefined || max === 'max') return null;
  const q = Number(max);
  const p = Number(period ?? 100000);
  return Number.isFinite(q) && q > 0 && Number.isFinite(p) && p > 0 ? q / p : null;
}

/** cgroup v1: quota -1 means none. */
export function parseCfs(quota: string | null, period: string | null): number | null {
  if (quota === null || period === null) return null;
  const q = Number(quota.trim());
  const p = Number(period.trim());
  return Number.isFinite(q) && q > 0 && Number.isFinite(p) && p > 0 ? q / p : null;
}
