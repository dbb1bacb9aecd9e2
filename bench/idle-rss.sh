#!/usr/bin/env bash
# Idle footprint of proxies, interleaved: start, one GET /json, VmRSS SETTLE seconds later (0.3 s: what the
# preflight of bench/run.sh reports; 12 s: after V8's memory reducer has run). Medians and ratios to the first NAME.
# Single RSS samples of a Node process vary by ±10 MB (young-generation size at that moment, malloc arenas kept
# after V8's background compiles: docs/performance.md, Memory), so take 6+ rounds.
#
#   bash bench/idle-rss.sh [--rounds 6] [--settle 0.3] NAME 'COMMAND' NAME 'COMMAND' ...
#
# COMMAND as in bench/ab.sh: {PORT}, {UP} and {CONFIG} (the one-route config of bench/ab.sh) are replaced. Example:
#   bash bench/idle-rss.sh node-dispatch 'node ../shared/bench/proxies/node-dispatch.mjs {PORT} {UP}' \
#                          before 'node /tmp/base/bin/gatehouse.mjs start --config {CONFIG}' \
#                          after  'node bin/gatehouse.mjs start --config {CONFIG}'
set -euo pipefail
SHARED=${SHARED_BENCH:-$(cd "$(dirname "$0")/../../shared/bench" 2>/dev/null && pwd)}
ROUNDS=6 SETTLE=0.3
while [ $# -gt 0 ]; do case $1 in
  --rounds) ROUNDS=$2; shift 2;; --settle) SETTLE=$2; shift 2;; *) break;;
esac; done
[ $# -ge 2 ] || { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
[ -f "$SHARED/upstream.mjs" ] || { echo "idle-rss: shared bench not found (set SHARED_BENCH)" >&2; exit 1; }
names=() cmds=(); while [ $# -ge 2 ]; do names+=("$1"); cmds+=("$2"); shift 2; done
T=$(mktemp -d); trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$T"' EXIT
free() { node -e 's=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }
UPP=$(free); node "$SHARED/upstream.mjs" "$UPP" >/dev/null 2>&1 &
for r in $(seq 1 "$ROUNDS"); do
  for i in "${!names[@]}"; do
    P=$(free)
    printf 'server: { listen: 127.0.0.1:%s, environment: production }\nadmin: { listen: 127.0.0.1:0 }\nupstreams:\n  u: { targets: [ { url: http://127.0.0.1:%s } ], pool: { connections: 128 } }\nroutes:\n  - { name: all, match: { path: /, prefix: true }, upstream: u, auth: public }\n' "$P" "$UPP" > "$T/c$P.yaml"
    c=${cmds[$i]//\{PORT\}/$P}; c=${c//\{UP\}/http://127.0.0.1:$UPP}; c=${c//\{CONFIG\}/$T/c$P.yaml}
    bash -c "exec $c" >/dev/null 2>&1 & pid=$!
    for _ in $(seq 1 150); do curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$P/json" && break; sleep 0.1; done
    sleep "$SETTLE"
    echo "${names[$i]} $(awk '/VmRSS/{printf "%.1f", $2/1024}' "/proc/$pid/status")" | tee -a "$T/rows"
    kill "$pid"; wait "$pid" 2>/dev/null || true
  done
done
echo "medians (VmRSS MB, ${SETTLE} s after the first answer):"
node -e '
const rows = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map((l) => l.split(" "));
const by = {}; for (const [n, v] of rows) (by[n] ??= []).push(+v);
const med = (a) => { a = a.slice().sort((x, y) => x - y); const h = a.length >> 1; return a.length % 2 ? a[h] : (a[h - 1] + a[h]) / 2; };
const first = med(Object.values(by)[0]);
for (const [n, a] of Object.entries(by)) console.log(`  ${n}: ${med(a).toFixed(1)} MB (${(med(a) / first).toFixed(2)}x ${Object.keys(by)[0]}) [${a.join(" ")}]`);' "$T/rows"
