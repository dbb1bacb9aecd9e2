// Writes bench/RESULTS.md from one bench run: the shared harness's raw tables plus the ratios
// Gatehouse is held to, each against its target with PASS / MISS.
//
//   node bench/report.mjs --peers peers.json --peers-txt peers.txt --stream stream.json --stream-txt stream.txt \
//     --meta meta.json --out bench/RESULTS.md [--subjects gatehouse,gatehouse-jwt]
//
// peers.json is shared run.sh's --out (medians per proxy), stream.json is stream.sh's --out.
// meta.json: { date, mode, machine: {...}, commands: [...], files: [...], notes: [...] }.
// Prints the ratios table to stdout as well. Exit code 0 whatever the verdicts (benchmarks are noisy;
// read the numbers), 2 on missing or unreadable input.
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

const { values: o } = parseArgs({ options: {
  peers: { type: 'string' }, 'peers-txt': { type: 'string' }, stream: { type: 'string' }, 'stream-txt': { type: 'string' },
  meta: { type: 'string' }, out: { type: 'string' }, subjects: { type: 'string' },
} });
const readJson = (f) => { if (!f) return null; try { return JSON.parse(fs.readFileSync(f, 'utf8')); } catch (e) { console.error(`report: cannot read ${f}: ${e.message}`); return null; } };
const readText = (f) => { if (!f) return ''; try { return fs.readFileSync(f, 'utf8'); } catch { return ''; } };
const peers = readJson(o.peers);
const stream = readJson(o.stream);
const meta = readJson(o.meta) ?? {};
if (!peers && !stream) { console.error('report: neither --peers nor --stream could be read'); process.exit(2); }

const S = peers?.summary ?? {};
const R = stream?.results ?? {};
const rate = meta.rate ?? 3000;
// Subjects: gatehouse and every gatehouse-* variant that appears in either result set.
const subjects = o.subjects ? o.subjects.split(',').filter(Boolean)
  : [...new Set([...Object.keys(S), ...Object.keys(R)])].filter((n) => n === 'gatehouse' || n.startsWith('gatehouse-'));

const num = (x) => (typeof x === 'number' && Number.isFinite(x) ? x : null);
const div = (a, b) => (num(a) !== null && num(b) !== null && b !== 0 ? a / b : null);
const sub = (a, b) => (num(a) !== null && num(b) !== null ? a - b : null);
const f = (x, d = 2) => (x === null ? 'n/a' : x.toFixed(d));

// One check per target. value(name) computes the figure for a proxy so the same figure can be shown
// for node-dispatch as a reference (what the Node ceiling itself scores against the same bar).
// Targets of the hot-path issue (docs/performance.md): the public route (`gatehouse`, and any variant not listed
// below) against the Node ceiling and Caddy; the full chain (`gatehouse-full`: JWT + rate limit + metrics +
// access log) with its own bars. `only`: the subjects a check applies to; `skip`: those it does not.
const FULL = ['gatehouse-full', 'gatehouse-jwt'];
const checks = [
  { figure: 'req/s ÷ node-dispatch', target: '≥ 0.85', ok: (v) => v >= 0.85, d: 2, skip: FULL,
    value: (n) => div(S[n]?.rps, S['node-dispatch']?.rps) },
  { figure: 'req/s ÷ caddy', target: '≥ 1.40', ok: (v) => v >= 1.4, d: 2, skip: FULL,
    value: (n) => div(S[n]?.rps, S.caddy?.rps) },
  { figure: 'CPU µs/req ÷ node-dispatch', target: '≤ 1.15', ok: (v) => v <= 1.15, d: 2, skip: FULL,
    value: (n) => div(S[n]?.cpuUsPerReq, S['node-dispatch']?.cpuUsPerReq) },
  { figure: 'req/s ÷ caddy', target: '≥ 1.20', ok: (v) => v >= 1.2, d: 2, only: FULL,
    value: (n) => div(S[n]?.rps, S.caddy?.rps) },
  { figure: 'req/s ÷ fast-gateway', target: '≥ 1.50', ok: (v) => v >= 1.5, d: 2, only: FULL,
    value: (n) => div(S[n]?.rps, S['fast-gateway']?.rps) },
  { figure: 'CPU µs/req ÷ node-dispatch', target: '≤ 1.30', ok: (v) => v <= 1.3, d: 2, only: FULL,
    value: (n) => div(S[n]?.cpuUsPerReq, S['node-dispatch']?.cpuUsPerReq) },
  { figure: `p50 − node-dispatch p50 at ${rate} req/s (ms)`, target: '≤ 0.05', ok: (v) => v <= 0.05, d: 3,
    value: (n) => sub(S[n]?.p50ms, S['node-dispatch']?.p50ms) },
  { figure: `p99 − direct p99 at ${rate} req/s (ms)`, target: '≤ 1.5', ok: (v) => v <= 1.5, d: 2,
    value: (n) => sub(S[n]?.p99ms, S.direct?.p99ms) },
  { figure: `upload peak RSS (MB, ${meta.uploadMiB ?? '?'} MiB)`, target: '< 100', ok: (v) => v < 100, d: 0,
    value: (n) => (R[n] && R[n].uploadOk === false ? null : num(R[n]?.peakRssMb)),
    note: (n) => (R[n] && R[n].uploadOk === false ? 'upload FAILED' : R[n]?.error ?? '') },
  { figure: 'upload time ÷ node-dispatch', target: '≤ 1.20', ok: (v) => v <= 1.2, d: 2,
    value: (n) => (R[n] && R[n].uploadOk === false ? null : div(R[n]?.uploadSeconds, R['node-dispatch']?.uploadSeconds)) },
  { figure: 'first SSE event − direct (ms)', target: '< 5', ok: (v) => v < 5, d: 2,
    value: (n) => num(R[n]?.sseAddedMs),
    note: (n) => (R[n]?.sseEvents !== undefined && R[n].sseEvents !== 20 ? `${R[n].sseEvents}/20 events` : '') },
];

const verdicts = [];
const lines = [];
lines.push('| subject | figure | value | target | result | node-dispatch, same figure |', '| --- | --- | ---: | --- | --- | ---: |');
for (const name of subjects) {
  for (const c of checks) {
    if ((c.only && !c.only.includes(name)) || (c.skip && c.skip.includes(name))) continue;
    const v = c.value(name);
    const ref = c.value('node-dispatch');
    const note = c.note ? c.note(name) : '';
    const result = v === null ? 'n/a' : c.ok(v) ? 'PASS' : 'MISS';
    verdicts.push({ subject: name, figure: c.figure, value: v, target: c.target, result, note });
    lines.push(`| ${name} | ${c.figure} | ${f(v, c.d)}${note ? ` (${note})` : ''} | ${c.target} | **${result}** | ${f(ref, c.d)} |`);
  }
}
if (subjects.length === 0) lines.push('| (no gatehouse result in this run) | | | | | |');

// Context beside the verdicts: absolute figures, p50 (steadier than p99), error counts.
const ctx = [];
ctx.push('| proxy | req/s | CPU µs/req | p50 ms | p50 − direct | p99 ms | errors at fixed rate | bench RSS MB | upload s | upload RSS MB | SSE added ms |',
  '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
for (const name of [...new Set([...Object.keys(S), ...Object.keys(R)])]) {
  const s = S[name] ?? {}, r = R[name] ?? {};
  const up = r.uploadOk === false ? 'FAILED' : f(num(r.uploadSeconds), 1);
  ctx.push(`| ${name} | ${f(num(s.rps), 0)} | ${f(num(s.cpuUsPerReq), 1)} | ${f(num(s.p50ms))} | ${f(sub(s.p50ms, S.direct?.p50ms))} | ${f(num(s.p99ms))} | ${s.errors ?? 'n/a'} | ${f(num(s.peakRssMb), 0)} | ${r.error ?? up} | ${f(num(r.peakRssMb), 0)} | ${f(num(r.sseAddedMs))} |`);
}

const warnings = [...(meta.notes ?? [])];
for (const name of subjects) {
  if (S[name]?.errors > 0) warnings.push(`${name}: ${S[name].errors} error responses (status ≥ 400 or socket errors) at the fixed rate; wrk's req/s counts error responses too, so its req/s may be inflated.`);
  if (peers && !S[name]) warnings.push(`${name}: no row in the throughput run (did not start? see the raw output).`);
  if (R[name]?.error) warnings.push(`${name}: stream run: ${R[name].error}.`);
}
const rounds = Object.values(S)[0]?.rounds;
if (meta.mode === 'quick') warnings.push('Quick smoke run (1 round, short duration, smaller upload): figures are indicative only; do not quote them.');

const m = meta.machine ?? {};
const md = [];
md.push(`# Gatehouse benchmark results${meta.mode === 'quick' ? ' (quick smoke run)' : ''}`, '');
md.push(`Generated by \`bench/run.sh\` (\`npm run bench\`) with the shared harness (\`../shared/bench\`); see \`bench/README.md\` for how to read it.`, '');
md.push(`- **Date:** ${meta.date ?? peers?.date ?? stream?.date ?? 'unknown'}`);
md.push(`- **Mode:** ${meta.mode ?? 'full'}${rounds ? `, ${rounds} round(s)` : ''}, ${meta.duration ?? '?'} s per measurement, fixed rate ${rate} req/s, upload ${meta.uploadMiB ?? '?'} MiB`);
md.push(`- **Machine:** ${m.nproc ?? '?'} CPUs (${m.cpu ?? 'unknown CPU'}), ${m.kernel ?? ''}; proxy pinned to CPU 0, upstream and load on CPU 1`);
md.push(`- **Node:** ${m.node ?? '?'}`);
if (m.peers) md.push(`- **Peers:** ${m.peers}`);
if (m.gatehouse) md.push(`- **Gatehouse:** ${m.gatehouse}`);
md.push('');
md.push('## Commands', '', '```', ...(meta.commands ?? []), '```', '');
md.push('## Ratios against targets', '');
md.push(...lines, '');
if (warnings.length) md.push('**Notes:**', '', ...warnings.map((w) => `- ${w}`), '');
md.push('## Figures per proxy (medians)', '', ...ctx, '');
md.push('## Raw output: `run.sh` (per-round rows, then medians)', '', '```', readText(o['peers-txt']).trimEnd() || '(not run)', '```', '');
md.push('## Raw output: `stream.sh`', '', '```', readText(o['stream-txt']).trimEnd() || '(not run)', '```', '');
if (meta.files?.length) md.push('## Raw files', '', ...meta.files.map((x) => `- \`${x}\``), '');

if (o.out) { fs.mkdirSync(path.dirname(o.out), { recursive: true }); fs.writeFileSync(o.out, md.join('\n')); }
console.log(['', 'Ratios against targets', ...lines, ...(warnings.length ? ['', ...warnings.map((w) => `note: ${w}`)] : [])].join('\n'));
if (o.out) console.log(`\nreport: wrote ${o.out}`);
