import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { startChildGateway } from '../support/child-gateway.ts';

const SINK = join(import.meta.dirname, '..', '..', 'src', 'observability', 'log-sink.ts');

/** Runs `body` in a child process with a LogSink on its stdout (a real pipe); returns what the pipe received. */
function childOutput(body: string): Promise<{ out: string; code: number | null }> {
  const script = `import { LogSink } from ${JSON.stringify(SINK)}; const sink = new LogSink(1); process.once('exit', () => sink.flushSync());\n${body}`;
  const proc = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  proc.stdout.setEncoding('utf8').on('data', (s: string) => { out += s; });
  return new Promise((resolve) => proc.once('close', (code) => resolve({ out, code })));
}

test('every line reaches the pipe once and in order: eager and lazy lines mixed, bursts over a chunk, UTF-8, exit with lines pending', async () => {
  const { out, code } = await childOutput(`
    let n = 0;
    const line = (i) => JSON.stringify({ i, pad: 'x'.repeat(i % 300), name: 'zoë ✓' }) + '\\n';
    for (let turn = 0; turn < 40; turn++) {
      for (let k = 0; k < 97; k++) { if (k % 13 === 0) sink.write(line(n++)); else sink.writeLazy(line(n++)); }
      await new Promise((r) => setImmediate(r));
    }
    sink.writeLazy(line(n++)); // pending (lazy, under a chunk) when the process exits
    process.exit(0);
  `);
  assert.equal(code, 0);
  const lines = out.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { i: number; name: string });
  assert.equal(lines.length, 40 * 97 + 1, 'no line lost or written twice');
  lines.forEach((l, i) => { assert.equal(l.i, i, 'in order'); assert.equal(l.name, 'zoë ✓'); });
});

test('a lazy line goes out within ~100 ms while the process keeps running', async () => {
  const { out } = await childOutput(`
    const t0 = Date.now();
    sink.writeLazy('first\\n');
    process.stdin; // nothing else to do: the line must come out on its own timer, not at exit
    setTimeout(() => { sink.write('at ' + (Date.now() - t0) + '\\n'); setTimeout(() => process.exit(0), 50); }, 400);
  `);
  assert.match(out, /^first\nat \d+\n$/);
});

test('a gateway process logs one access line per request, none lost at SIGTERM', async () => {
  const up = http.createServer((_req, res) => res.end('ok'));
  await new Promise<void>((r) => up.listen(0, '127.0.0.1', r));
  const gw = await startChildGateway(`
server: { listen: 127.0.0.1:0 }
admin: { listen: 127.0.0.1:0 }
observability: { log: { format: json } }
upstreams:
  u: { targets: [ { url: http://127.0.0.1:${(up.address() as { port: number }).port} } ] }
routes:
  - { name: all, match: { path: /, prefix: true }, upstream: u, auth: public }
`);
  try {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 20 });
    await Promise.all(Array.from({ length: 600 }, (_, i) => new Promise<void>((resolve, reject) => {
      http.get(`${gw.url}/r/${i}`, { agent }, (res) => { res.resume(); res.on('end', resolve); }).on('error', reject);
    })));
    agent.destroy();
    gw.proc.kill('SIGTERM');
    assert.equal((await gw.exited).code, 0);
    const access = gw.lines().filter((l) => l.type === 'access');
    assert.equal(access.length, 600);
    assert.equal(new Set(access.map((l) => l.path)).size, 600, 'each request once');
  } finally {
    await gw.kill();
    up.close();
  }
});

test('a reader that stops reading costs at most 16 MiB: later lines are dropped, counted, and shown as gatehouse_log_lines_dropped_total', async () => {
  const { LogSink } = await import('../../src/observability/log-sink.ts');
  const { Metrics } = await import('../../src/observability/metrics.ts');
  // The write end of a pipe nobody reads: libuv makes the parent's end non-blocking, so a full pipe is EAGAIN.
  const reader = spawn('sleep', ['30'], { stdio: ['pipe', 'ignore', 'ignore'] });
  try {
    const fd = (reader.stdin as unknown as { _handle: { fd: number } })._handle.fd;
    const sink = new LogSink(fd);
    const metrics = new Metrics({ defaultMetrics: false });
    metrics.logSink = sink;
    const line = JSON.stringify({ msg: 'x'.repeat(1000) }) + '\n';
    const lines = 30 * 1024; // ~30 MiB against 16 MiB of queue and what the pipe's buffer takes (a few MiB)
    for (let i = 0; i < lines; i++) sink.writeLazy(line);
    sink.flush(); // the last, partly filled chunk too
    // What was kept is what fits in 16 MiB plus the pipe's buffer: the rest was counted, not held.
    const kept = lines - sink.dropped;
    assert.ok(kept * line.length <= 24 * 1024 * 1024, `kept ${kept} lines of ${lines}`);
    assert.ok(sink.dropped > 0, 'lines were dropped');
    const text = await metrics.registry.metrics();
    assert.match(text, new RegExp(`^gatehouse_log_lines_dropped_total ${sink.dropped}$`, 'm'));
    // More lines into the stuck pipe: all dropped and counted, none held.
    const before = sink.dropped;
    for (let i = 0; i < 1000; i++) sink.writeLazy(line);
    sink.flush();
    assert.equal(sink.dropped, before + 1000, 'every line counted, not every chunk');
  } finally {
    reader.kill('SIGKILL');
  }
});
