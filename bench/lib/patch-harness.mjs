// Patches OUR TEMP COPY of the shared harness (never the shared dir) so an adapter can ask the load generators
// for one extra request header, e.g. an Authorization token for a JWT variant. An adapter declares it with a line
//   # bench-header: Authorization: Bearer eyJ...
// Proxies whose adapter has no such line get exactly the requests the shared harness sends.
// Exact-string edits; exits 1 (and names the edit) if the harness no longer has the text an edit expects,
// in which case bench/run.sh drops the adapters that need a header and says so.
//   node bench/lib/patch-harness.mjs <harness-copy-dir>
import fs from 'node:fs';
import path from 'node:path';

const dir = process.argv[2];
const edits = {
  'run.sh': [
    // The header for this proxy (read from its adapter), used by wrk and pace.mjs.
    ['  local name=$1 port=$2 pid=$3 rps c0 c1 pace\n',
     '  local name=$1 port=$2 pid=$3 rps c0 c1 pace hdr=() bh=\n' +
     '  bh=$(sed -n \'s/^# bench-header: //p\' "$HERE/proxies/$name.sh" 2>/dev/null | head -1); [ -n "$bh" ] && hdr=(-H "$bh")\n'],
    ['taskset -c 1 wrk -t1 -c50 -d2s', 'taskset -c 1 wrk "${hdr[@]}" -t1 -c50 -d2s'],
    ['taskset -c 1 wrk -t1 -c50 -d"${DURATION}s"', 'taskset -c 1 wrk "${hdr[@]}" -t1 -c50 -d"${DURATION}s"'],
    ['pace=$(taskset -c 1 node "$HERE/pace.mjs"', 'pace=$(BENCH_HEADER="$bh" taskset -c 1 node "$HERE/pace.mjs"'],
  ],
  'pace.mjs': [
    ["const url = new URL(o.url);\n",
     "const url = new URL(o.url);\nconst HDR = {}; { const h = process.env.BENCH_HEADER; if (h) { const i = h.indexOf(':'); HDR[h.slice(0, i).trim()] = h.slice(i + 1).trim(); } }\n"],
    ['path: url.pathname + url.search, agent }', 'path: url.pathname + url.search, agent, headers: HDR }'],
  ],
  'stream.mjs': [
    ["const median = (a) =>",
     "let HDR = {};\nconst hdrFor = (name) => { const m = /^# bench-header: (.+)$/m.exec(fs.readFileSync(`${here}proxies/${name}.sh`, 'utf8')); if (!m) return {}; const i = m[1].indexOf(':'); return { [m[1].slice(0, i).trim()]: m[1].slice(i + 1).trim() }; };\nconst median = (a) =>"],
    ["for (const name of o.proxies.split(',')) {\n", "for (const name of o.proxies.split(',')) {\n  HDR = hdrFor(name);\n"],
    ["path: '/sse', agent: false }", "path: '/sse', agent: false, headers: HDR }"],
    ["headers: { 'content-length': total,", "headers: { ...HDR, 'content-length': total,"],
  ],
};
let failed = false;
const out = {};
for (const [file, list] of Object.entries(edits)) {
  const p = path.join(dir, file);
  let s = fs.readFileSync(p, 'utf8');
  for (const [from, to] of list) {
    const n = s.split(from).length - 1;
    if (n !== 1) { console.error(`patch-harness: ${file}: expected text found ${n} times: ${JSON.stringify(from.slice(0, 60))}`); failed = true; continue; }
    s = s.replace(from, () => to);
  }
  out[p] = s;
}
if (failed) process.exit(1);   // all or nothing: the copy stays exactly the shared harness
for (const [p, s] of Object.entries(out)) fs.writeFileSync(p, s);
