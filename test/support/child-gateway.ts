// A gateway in its own process, started the way an operator starts it (`gatehouse start --config FILE`),
// for what must be observed from outside: memory (RSS), signals, exit codes.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '..', '..');
const BIN = join(ROOT, 'bin', 'gatehouse.mjs');

export interface ChildGateway {
  proc: ChildProcess;
  /** The config file it was started with (rewrite it, then SIGHUP, to reload). */
  file: string;
  pid: number;
  url: string;
  adminUrl: string;
  /** Every stdout line so far, parsed when it is JSON. */
  lines(): Array<Record<string, unknown>>;
  stderr(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGKILL if still running, and remove the temp config. */
  kill(): Promise<void>;
}

/** `yaml` must listen on 127.0.0.1:0 for both listeners; the ports are read from the startup log line (log level info or lower). */
export async function startChildGateway(yaml: string, timeoutMs = 60_000, args: string[] = []): Promise<ChildGateway> {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-child-'));
  const file = join(dir, 'gatehouse.yaml');
  writeFileSync(file, yaml);
  const proc = spawn(process.execPath, [BIN, 'start', '--config', file, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stdout!.setEncoding('utf8').on('data', (s: string) => { out += s; });
  proc.stderr!.setEncoding('utf8').on('data', (s: string) => { err += s; });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
  const lines = () => out.split('\n').filter(Boolean).map((l) => { try { return JSON.parse(l) as Record<string, unknown>; } catch { return { raw: l }; } });
  const kill = async () => {
    if (proc.exitCode === null && proc.signalCode === null) { proc.kill('SIGKILL'); await exited; }
    rmSync(dir, { recursive: true, force: true });
  };

  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ready = lines().find((l) => typeof l.port === 'number' && typeof l.adminPort === 'number');
    if (ready) {
      return { proc, file, pid: proc.pid!, url: `http://127.0.0.1:${ready.port}`, adminUrl: `http://127.0.0.1:${ready.adminPort}`, lines, stderr: () => err, exited, kill };
    }
    if (proc.exitCode !== null || Date.now() > deadline) {
      await kill();
      throw new Error(`gateway did not start (exit ${proc.exitCode}): ${err || out}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** VmRSS and VmHWM (peak RSS) of a process, in bytes. */
export function memoryOf(pid: number): { rss: number; hwm: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

/** Whether bin/gatehouse.mjs runs the compiled build (dist/ at least as new as every source) rather than src/ through tsx. */
export function runsCompiledBuild(): boolean {
  const stamp = join(ROOT, 'dist', '.build-stamp');
  if (!existsSync(stamp)) return false;
  const newest = (dir: string): number => readdirSync(dir, { withFileTypes: true })
    .reduce((m, e) => Math.max(m, e.isDirectory() ? newest(join(dir, e.name)) : statSync(join(dir, e.name)).mtimeMs), 0);
  return Number(readFileSync(stamp, 'utf8')) >= newest(join(ROOT, 'src'));
}
