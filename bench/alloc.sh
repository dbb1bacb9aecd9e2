#!/usr/bin/env bash
# Bytes of JavaScript heap each proxied request allocates (garbage included): the sum of V8's `allocated=` over the
# GCs (--trace-gc-nvp) that fall inside a paced window, divided by the requests of that window. Insensitive to CPU
# noise (a busy neighbour changes the time a request takes, not what it allocates); the error is about one GC's
# worth (~12 MB) over the window, so run long windows.
#
#   bash bench/alloc.sh [--requests 40000] [--rate 2000] NAME 'COMMAND' NAME 'COMMAND' ...
#
# COMMAND starts a proxy with `node ...` (the flag is inserted after `node`); {PORT}, {UP} and {CONFIG} as in
# bench/ab.sh. Proxy on CPU 0, upstream and load on CPU 1.
set -euo pipefail
source "$(dirname "$0")/lib/one-route.sh"
REQS=40000 RATE=2000
while [ $# -gt 0 ]; do case $1 in
  --requests) REQS=$2; shift 2;; --rate) RATE=$2; shift 2;; *) break;;
esac; done
[ $# -ge 2 ] || { sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
T=$(mktemp -d); trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$T"' EXIT
start_upstream 1
now() { date +%s%3N; }
while [ $# -ge 2 ]; do
  name=$1 cmd=$2; shift 2
  P=$(free_port)
  one_route_config "$P" "$T/c$P.yaml"
  c=$(proxy_command "${cmd}" "$P" "$T/c$P.yaml")
  c=${c/node /node --trace-gc-nvp }
  t0=$(now)
  bash -c "exec taskset -c 0 $c" > "$T/gc-$name.txt" 2>&1 & pid=$!
  for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$P") 2>/dev/null && break; sleep 0.1; done
  taskset -c 1 node "$SHARED/pace.mjs" --url "http://127.0.0.1:$P/json" --rate "$RATE" --duration 3 >/dev/null
  m1=$(( $(now) - t0 ))
  out=$(taskset -c 1 node "$SHARED/pace.mjs" --url "http://127.0.0.1:$P/json" --rate "$RATE" --duration $(( REQS / RATE )))
  m2=$(( $(now) - t0 ))
  kill "$pid"; wait "$pid" 2>/dev/null || true
  ok=$(node -p 'JSON.parse(process.argv[1]).ok' "$out")
  awk -v name="$name" -v m1="$m1" -v m2="$m2" -v ok="$ok" '/allocated=/ { t = $2 + 0; if (t >= m1 && t <= m2) { match($0, /allocated=[0-9]+/); a += substr($0, RSTART + 10, RLENGTH - 10); n++ } }
    END { printf "%s: %.0f bytes allocated per request (%d GCs over %d requests)\n", name, a / ok, n, ok }' "$T/gc-$name.txt"
done
