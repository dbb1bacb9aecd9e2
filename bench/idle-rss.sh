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
source "$(dirname "$0")/lib/one-route.sh"
ROUNDS=6 SETTLE=0.3
while [ $# -gt 0 ]; do case $1 in
  --rounds) ROUNDS=$2; shift 2;; --settle) SETTLE=$2; shift 2;; *) break;;
esac; done
[ $# -ge 2 ] || { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
names=() cmds=(); while [ $# -ge 2 ]; do names+=("$1"); cmds+=("$2"); shift 2; done
T=$(mktemp -d); trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$T"' EXIT
start_upstream
for r in $(seq 1 "$ROUNDS"); do
  for i in "${!names[@]}"; do
    P=$(free_port)
    one_route_config "$P" "$T/c$P.yaml"
    c=$(proxy_command "${cmds[$i]}" "$P" "$T/c$P.yaml")
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
