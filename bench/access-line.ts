// CPU per access line: building the line for a typical proxied request and handing it to the logger's stream
// (a stream that only counts). `--from DIR` measures another checkout's src/ (before/after in one run).
//   node --import tsx bench/access-line.ts [--n 1000000] [--rounds 5] [--from /path/to/checkout]
import { parseArgs } from 'node:util';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createRequire } from 'node:module';

const { values } = parseArgs({ options: { n: { type: 'string', default: '1000000' }, rounds: { type: 'string', default: '5' }, from: { type: 'string' } } });
const root = values.from !== undefined ? resolve(values.from) : join(import.meta.dirname, '..');
const { createAccessLog } = (await import(pathToFileURL(join(root, 'src/observability/access-log.ts')).href)) as typeof import('../src/observability/access-log.ts');

// That checkout's own pino: the access log finds the logger's stream by pino's symbol.
const { pino } = createRequire(join(root, 'package.json'))('pino') as typeof import('pino');
let bytes = 0;
const logger = pino({ level: 'info' }, { write(s: string) { bytes += s.length; } } as never);
const line = createAccessLog(logger as never, true)!;
const ids = Array.from({ length: 1024 }, () => crypto.randomUUID());
const ctx = {
  requestId: '', req: { method: 'GET' }, route: { name: 'chat-completions' }, path: '/v1/chat/completions', bytesIn: 0, bytesOut: 84,
  clientIp: '10.1.2.3', identity: null, target: 'http://10.0.0.7:8080', upstreamMs: 0.3123, errorCode: undefined, ai: null, cacheStatus: null,
};
const N = Number(values.n);
const per: number[] = [];
for (let r = 0; r < Number(values.rounds); r++) {
  const t = process.hrtime.bigint();
  for (let i = 0; i < N; i++) { ctx.requestId = ids[i & 1023]; line(ctx as never, 200, 0.51234 + (i & 7)); }
  per.push(Number(process.hrtime.bigint() - t) / N);
}
per.sort((a, b) => a - b);
console.log(`${root}: ${per[per.length >> 1].toFixed(0)} ns per access line (median of ${per.length} rounds of ${N}; ${bytes} bytes written)`);
