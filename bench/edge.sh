#!/usr/bin/env bash
# Edge figures in one run: HTTPS over HTTP/1.1 (wrk) and HTTP/2 (h2load) through Gatehouse, nginx and Caddy, each
# terminating TLS with the same certificate, and Gatehouse's plain-HTTP throughput with 1 and 2 workers.
#
#   bash bench/edge.sh [--rounds 3] [--duration 8] [--proxies tls-nginx,tls-caddy,tls-gatehouse] [--no-tls] [--no-workers] [--out DIR]
#
# TLS rows: the proxy pinned to CPU 0, the upstream (nginx, a ~100-byte JSON, as in the shared run.sh) and the load
# generator to CPU 1; rounds interleaved; medians. h1: `wrk -t1 -c50` (keep-alive: one handshake per connection).
# h2: `h2load -t1 -c10 -m10` (10 connections x 10 concurrent streams). CPU µs/req: the proxy's CPU time over the
# requests it served during that load. Workers rows: nothing pinned, `wrk -t1 -c100`, 1 then 2 workers; on a 2-core
# machine the load generator and the upstream share the cores with the workers, so these are reported, not judged.
# Needs wrk, h2load (Debian: nghttp2-client), nginx, caddy, openssl, taskset. Raw output: DIR/edge-<UTC stamp>.{txt,json}.
set -uo pipefail
BENCH=$(cd "$(dirname "$0")" && pwd)
REPO=$(dirname "$BENCH")
ROUNDS=3 DURATION=8 PROXIES=tls-nginx,tls-caddy,tls-gatehouse TLS=1 WORKERS=1 OUT=$BENCH/results
while [ $# -gt 0 ]; do case $1 in
  --rounds) ROUNDS=$2; shift 2;; --duration) DURATION=${2%s}; shift 2;; --proxies) PROXIES=$2; shift 2;;
  --no-tls) TLS=0; shift;; --no-workers) WORKERS=0; shift;; --out) OUT=$2; shift 2;;
  *) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2;;
esac; done
for c in wrk h2load nginx caddy openssl taskset curl; do command -v "$c" >/dev/null || { echo "edge.sh: $c missing (h2load: apt-get install nghttp2-client)" >&2; exit 1; }; done
T=$(mktemp -d "${TMPDIR:-/tmp}/gatehouse-edge.XXXXXX"); PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null; done; sleep 0.3; for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill -9 "$p" 2>/dev/null; done; rm -rf "$T"; }
trap cleanup EXIT
export TMPDIR=$T GATEHOUSE_DIR=$REPO
freeport() { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }
waitup() { for _ in $(seq 1 150); do curl -sk -o /dev/null --max-time 1 "$1" && return 0; sleep 0.1; done; return 1; }
cpu_ticks() { local t=0; for p in "$@"; do t=$((t + $(awk '{print $14+$15}' "/proc/$p/stat" 2>/dev/null || echo 0))); done; echo $t; }
hwm_kb() { awk '/VmHWM/{print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
TCK=$(getconf CLK_TCK)

# One certificate for every proxy (EC P-256, as a modern deployment would use), valid for bench.test and 127.0.0.1.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/key.pem" -out "$T/cert.pem" -days 2 \
  -subj /CN=bench.test -addext "subjectAltName=DNS:bench.test,IP:127.0.0.1" 2>/dev/null
export BENCH_TLS_CERT=$T/cert.pem BENCH_TLS_KEY=$T/key.pem

UP=$(freeport); mkdir -p "$T/up"
cat > "$T/up/nginx.conf" <<CONF
worker_processes 1; master_process off; daemon off; pid $T/up/pid; error_log $T/up/err.log warn;
events { worker_connections 8192; }
http { access_log off; keepalive_requests 1000000;
  client_body_temp_path $T/up/cb; proxy_temp_path $T/up/pt; fastcgi_temp_path $T/up/ft; uwsgi_temp_path $T/up/ut; scgi_temp_path $T/up/st;
  server { listen 127.0.0.1:$UP; location / { default_type application/json;
    return 200 '{"id":"chatcmpl-bench","object":"chat.completion","model":"demo","ok":true,"usage":{"total_tokens":42}}'; } } }
CONF
taskset -c 1 nginx -p "$T/up" -c "$T/up/nginx.conf" & PIDS+=($!)
waitup "http://127.0.0.1:$UP/json" || { echo "edge.sh: upstream did not start" >&2; exit 1; }

ROWS=$T/rows.csv; echo "kind,proxy,round,proto,rps,cpu_us_per_req,errors,peak_rss_mb" > "$ROWS"
row() { echo "$*" | tr ' ' ',' >> "$ROWS"; echo "  $*" >&2; }

if [ "$TLS" = 1 ]; then
  for ROUND in $(seq 1 "$ROUNDS"); do
    for name in ${PROXIES//,/ }; do
      P=$(freeport)
      taskset -c 0 "$BENCH/proxies/$name.sh" "$P" "http://127.0.0.1:$UP" > "$T/$name.log" 2>&1 & pid=$!; PIDS+=($pid)
      if ! waitup "https://127.0.0.1:$P/json"; then echo "edge.sh: $name did not start: $(tail -2 "$T/$name.log")" >&2; kill "$pid"; continue; fi
      URL=https://127.0.0.1:$P/json
      taskset -c 1 wrk -t1 -c50 -d2s "$URL" >/dev/null 2>&1   # warm-up
      c0=$(cpu_ticks $pid); out=$(taskset -c 1 wrk -t1 -c50 -d"${DURATION}s" "$URL" 2>&1); c1=$(cpu_ticks $pid)
      rps=$(awk '/Requests\/sec/{print $2}' <<<"$out"); n=$(awk '/requests in/{print $1}' <<<"$out")
      errs=$(awk '/Non-2xx|Socket errors/{for(i=1;i<=NF;i++) if ($i ~ /^[0-9]+,?$/) s+=$i} END{print s+0}' <<<"$out")
      row tls "$name" "$ROUND" h1 "${rps:-0}" "$(node -p "(($c1-$c0)/$TCK*1e6/(${n:-0}||1)).toFixed(1)")" "$errs" "$(node -p "($(hwm_kb $pid)/1024).toFixed(1)")"
      c0=$(cpu_ticks $pid); out=$(taskset -c 1 h2load -t1 -c10 -m10 -D "$DURATION" --warm-up-time=1 "$URL" 2>&1); c1=$(cpu_ticks $pid)
      rps=$(awk '/^finished in/{print $4}' <<<"$out"); ok=$(awk '/^requests:/{print $8}' <<<"$out")
      bad=$(awk '/^requests:/{print $10+$12+$14}' <<<"$out"); non2xx=$(awk '/^status codes:/{print $5+$7+$9}' <<<"$out")
      proto=$(grep -c 'Application protocol: h2' <<<"$out")
      [ "$proto" = 1 ] || echo "edge.sh: $name did not negotiate h2: $(grep -i protocol <<<"$out")" >&2
      row tls "$name" "$ROUND" h2 "${rps:-0}" "$(node -p "(($c1-$c0)/$TCK*1e6/(${ok:-0}||1)).toFixed(1)")" "$((bad + non2xx))" "$(node -p "($(hwm_kb $pid)/1024).toFixed(1)")"
      kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
    done
  done
fi

if [ "$WORKERS" = 1 ]; then
  cat > "$T/plain.yaml" <<CONF
server: { listen: 127.0.0.1:__PORT__, environment: production }
admin: { listen: 127.0.0.1:0 }
upstreams: { bench: { targets: [ { url: http://127.0.0.1:$UP } ], pool: { connections: 128 } } }
routes: [ { name: all, match: { path: /, prefix: true }, upstream: bench, auth: public } ]
CONF
  for ROUND in $(seq 1 "$ROUNDS"); do
    for w in 1 2; do
      P=$(freeport); sed "s/__PORT__/$P/" "$T/plain.yaml" > "$T/plain-$P.yaml"
      (cd "$REPO" && exec node bin/gatehouse.mjs start --config "$T/plain-$P.yaml" --workers "$w" > /dev/null 2>&1) & pid=$!; PIDS+=($pid)
      waitup "http://127.0.0.1:$P/json" || { echo "edge.sh: gatehouse --workers $w did not start" >&2; continue; }
      sleep 1   # every worker listening
      wrk -t1 -c100 -d2s "http://127.0.0.1:$P/json" >/dev/null 2>&1
      out=$(wrk -t1 -c100 -d"${DURATION}s" "http://127.0.0.1:$P/json" 2>&1)
      row workers "gatehouse-w$w" "$ROUND" h1 "$(awk '/Requests\/sec/{print $2}' <<<"$out")" "" "$(awk '/Non-2xx|Socket errors/{for(i=1;i<=NF;i++) if ($i ~ /^[0-9]+,?$/) s+=$i} END{print s+0}' <<<"$out")" ""
      kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
    done
  done
fi

mkdir -p "$OUT"; STAMP=$(date -u +%Y-%m-%dT%H%MZ)
node - "$ROWS" "$OUT/edge-$STAMP.json" <<'JS' | tee "$OUT/edge-$STAMP.txt"
const fs = require('fs');
const [file, out] = process.argv.slice(2);
const rows = fs.readFileSync(file, 'utf8').trim().split('\n').slice(1).map((l) => { const [kind, proxy, round, proto, rps, cpu, errors, rss] = l.split(','); return { kind, proxy, round: +round, proto, rps: +rps, cpu: cpu === '' ? NaN : +cpu, errors: +errors, rss: rss === '' ? NaN : +rss }; });
const med = (a) => { const s = a.filter((x) => !Number.isNaN(x)).sort((x, y) => x - y); return s.length ? s[Math.floor((s.length - 1) / 2)] : NaN; };
const groups = {};
for (const r of rows) (groups[`${r.proxy} ${r.proto}`] ||= []).push(r);
const summary = Object.fromEntries(Object.entries(groups).map(([k, v]) => [k, { rps: med(v.map((r) => r.rps)), cpuUsPerReq: med(v.map((r) => r.cpu)), errors: v.reduce((a, r) => a + r.errors, 0), peakRssMb: ((a) => (a.length ? Math.max(...a) : NaN))(v.map((r) => r.rss).filter((x) => !Number.isNaN(x))), rounds: v.length }]));
const f = (x, d = 0) => (Number.isNaN(x) || x === undefined ? '-' : x.toFixed(d));
console.log(`${'proxy / protocol'.padEnd(24)} ${'req/s'.padStart(8)} ${'CPU µs/req'.padStart(11)} ${'errors'.padStart(7)} ${'RSS MB'.padStart(7)} ${'×tls-caddy'.padStart(11)} ${'×tls-nginx'.padStart(11)}`);
for (const [k, s] of Object.entries(summary)) {
  const proto = k.split(' ')[1];
  const rel = (p) => summary[`${p} ${proto}`]?.rps ? (s.rps / summary[`${p} ${proto}`].rps).toFixed(2) : '-';
  console.log(`${k.padEnd(24)} ${f(s.rps).padStart(8)} ${f(s.cpuUsPerReq, 1).padStart(11)} ${String(s.errors).padStart(7)} ${f(s.peakRssMb).padStart(7)} ${(k.startsWith('gatehouse-w') ? '-' : rel('tls-caddy')).padStart(11)} ${(k.startsWith('gatehouse-w') ? '-' : rel('tls-nginx')).padStart(11)}`);
}
const w1 = summary['gatehouse-w1 h1']?.rps, w2 = summary['gatehouse-w2 h1']?.rps;
if (w1 && w2) console.log(`\nworkers: 2 workers / 1 worker = ${(w2 / w1).toFixed(2)} (unpinned; the load generator and the upstream share the same ${require('os').availableParallelism()} cores)`);
fs.writeFileSync(out, JSON.stringify({ date: new Date().toISOString(), summary, rows }, null, 2));
JS
