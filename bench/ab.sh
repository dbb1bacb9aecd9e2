#!/usr/bin/env bash
# Interleaved A/B of proxies at a fixed rate: CPU µs per request and p50, alternating rounds so a busy neighbour hits
# every variant alike. Steadier than one full `npm run bench` on a shared machine; it measures the fixed-rate figures
# only.
#
#   bash bench/ab.sh [--rounds 5] [--rate 3000] [--seconds 4] [--saturate] NAME 'COMMAND' NAME 'COMMAND' ...
#
# --saturate: wrk with 50 connections instead of the fixed rate; prints req/s instead of p50.
#
# Each COMMAND starts a proxy in the foreground; {PORT} is replaced by the port it must listen on, {UP} by the
# upstream's URL, {CONFIG} by a one-route Gatehouse config for that port and upstream. Example (before/after):
#   bash bench/ab.sh before 'node /tmp/base/bin/gatehouse.mjs start --config {CONFIG}' \
#                    after  'node bin/gatehouse.mjs start --config {CONFIG}' \
#                    node-dispatch 'node ../shared/bench/proxies/node-dispatch.mjs {PORT} {UP}'
# Proxy on CPU 0, upstream (the shared harness's upstream.mjs) and load on CPU 1. Prints one line per round and the
# medians.
set -euo pipefail
source "$(dirname "$0")/lib/one-route.sh"
ROUNDS=5 RATE=3000 SECS=4 SAT=0
while [ $# -gt 0 ]; do case $1 in
  --rounds) ROUNDS=$2; shift 2;; --rate) RATE=$2; shift 2;; --seconds) SECS=$2; shift 2;; --saturate) SAT=1; shift;; *) break;;
esac; done
[ $# -ge 2 ] || { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
names=() cmds=(); while [ $# -ge 2 ]; do names+=("$1"); cmds+=("$2"); shift 2; done
export SAT
T=$(mktemp -d); trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$T"' EXIT
start_upstream 1
TCK=$(getconf CLK_TCK)
for r in $(seq 1 "$ROUNDS"); do
  for i in "${!names[@]}"; do
    P=$(free_port)
    one_route_config "$P" "$T/c$P.yaml"
    c=$(proxy_command "${cmds[$i]}" "$P" "$T/c$P.yaml")
    bash -c "exec taskset -c 0 $c" >/dev/null 2>&1 & pid=$!
    for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$P") 2>/dev/null && break; sleep 0.1; done
    if [ "$SAT" = 1 ]; then
      taskset -c 1 wrk -t1 -c50 -d2s "http://127.0.0.1:$P/json" >/dev/null
      c0=$(awk '{print $14+$15}' "/proc/$pid/stat")
      out=$(taskset -c 1 wrk -t1 -c50 -d"${SECS}s" "http://127.0.0.1:$P/json" | awk '/requests in/{n=$1} /Requests\/sec/{r=$2} END{printf "{\"ok\":%d,\"p50\":%s}", n, r}')
    else
      taskset -c 1 node "$SHARED/pace.mjs" --url "http://127.0.0.1:$P/json" --rate "$RATE" --duration 2 >/dev/null
      c0=$(awk '{print $14+$15}' "/proc/$pid/stat")
      out=$(taskset -c 1 node "$SHARED/pace.mjs" --url "http://127.0.0.1:$P/json" --rate "$RATE" --duration "$SECS")
    fi
    c1=$(awk '{print $14+$15}' "/proc/$pid/stat")
    kill "$pid"; wait "$pid" 2>/dev/null || true
    node -e 'const [n,r,c0,c1,t,o]=process.argv.slice(1);const p=JSON.parse(o);console.log(`${n} round ${r} cpu_us_per_req ${((c1-c0)*1e6/t/p.ok).toFixed(1)} ${process.env.SAT==="1"?"req_s":"p50_ms"} ${p.p50}`)' "${names[$i]}" "$r" "$c0" "$c1" "$TCK" "$out" | tee -a "$T/rows"
  done
done
echo "medians:"
awk '{cpu[$1]=cpu[$1]" "$5; p[$1]=p[$1]" "$7} END {for (k in cpu) print k, cpu[k] "|" p[k]}' "$T/rows" | node -e '
const med=(a)=>{a=a.slice().sort((x,y)=>x-y);return a[Math.floor((a.length-1)/2)]};
for (const l of require("fs").readFileSync(0,"utf8").trim().split("\n")) { const [k,rest]=[l.slice(0,l.indexOf(" ")),l.slice(l.indexOf(" ")+1)]; const [c,p]=rest.split("|"); console.log(`  ${k}: CPU ${med(c.trim().split(/ +/).map(Number)).toFixed(1)} µs/req, ${process.env.SAT==="1"?"req/s":"p50"} ${med(p.trim().split(/ +/).map(Number))}${process.env.SAT==="1"?"":" ms"}`); }'
