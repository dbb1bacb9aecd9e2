// `--workers auto` counts the cores a process may use: affinity capped by a cgroup CPU quota (v2 and v1), read from
// files given here as fixtures (the real ones depend on the machine the tests run on).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cgroupCpuQuota, parseCpuMax, usableCpus } from '../../src/cli/cpu-quota.ts';

const files = (m: Record<string, string>) => (p: string) => m[p] ?? null;

test('cgroup v2 cpu.max: "max" is no quota, "150000 100000" is 1.5 CPUs; the smallest limit on the way to the root wins', () => {
  assert.equal(parseCpuMax('max 100000\n'), null);
  assert.equal(parseCpuMax('150000 100000\n'), 1.5);
  assert.equal(parseCpuMax('garbage'), null);
  const read = files({
    '/proc/self/cgroup': '0::/kubepods/pod1/ctr\n',
    '/sys/fs/cgroup/kubepods/pod1/ctr/cpu.max': 'max 100000',
    '/sys/fs/cgroup/kubepods/pod1/cpu.max': '200000 100000',
    '/sys/fs/cgroup/kubepods/cpu.max': '800000 100000',
  });
  assert.equal(cgroupCpuQuota(read), 2);
  // A container with its own cgroup namespace sees itself at the root.
  assert.equal(cgroupCpuQuota(files({ '/proc/self/cgroup': '0::/\n', '/sys/fs/cgroup/cpu.max': '50000 100000' })), 0.5);
});

test('cgroup v1: cfs_quota_us / cfs_period_us, -1 is no quota', () => {
  const v1 = (q: string) => files({ '/proc/self/cgroup': '1:cpu:/\n', '/sys/fs/cgroup/cpu/cpu.cfs_quota_us': q, '/sys/fs/cgroup/cpu/cpu.cfs_period_us': '100000' });
  assert.equal(cgroupCpuQuota(v1('-1')), null);
  assert.equal(cgroupCpuQuota(v1('250000')), 2.5);
});

test('auto workers: affinity when there is no quota, the quota rounded up when it is smaller, never below 1', () => {
  assert.deepEqual(usableCpus(files({}), 16), { cpus: 16, quota: null });
  assert.deepEqual(usableCpus(files({ '/proc/self/cgroup': '0::/', '/sys/fs/cgroup/cpu.max': '150000 100000' }), 16), { cpus: 2, quota: 1.5 });
  assert.deepEqual(usableCpus(files({ '/proc/self/cgroup': '0::/', '/sys/fs/cgroup/cpu.max': '800000 100000' }), 4), { cpus: 4, quota: 8 });
  assert.equal(usableCpus(files({ '/proc/self/cgroup': '0::/', '/sys/fs/cgroup/cpu.max': '10000 100000' }), 4).cpus, 1);
});
