#!/usr/bin/env bash
# npm run bench: Gatehouse beside its peers, in one run, with the shared harness (../shared/bench).
#
#   bash bench/run.sh [--quick] [--proxies a,b,...] [--rounds N] [--duration S] [--rate R] [--upload MiB] [--no-stream] [--no-micro]
#
# 1. Finds the shared bench dir (${SHARED_BENCH:-<repo>/../shared/bench}) and installs its peers (its setup.sh)
#    if any are missing.
# 2. Copies it to a temp dir and adds our adapters (bench/proxies/*.sh): the shared run.sh and stream.mjs only
#    look for adapters in their own proxies/ dir, and the shared dir may be read-only.
# 3. Preflights every gatehouse* adapter (starts, answers 200, streams SSE) so a broken gateway is reported
#    plainly instead of as a missing row.
# 4. Runs the shared run.sh (throughput, CPU/req, latency at a fixed rate, RSS) and stream.sh (SSE first event,
#    streamed upload) over the same proxy list, GATEHOUSE_DIR=<repo>, keeping the raw output under bench/results/.
# 5. bench/report.mjs writes bench/RESULTS.md (RESULTS.quick.md for --quick) with the ratios against targets.
#
# Proxy names: any adapter of the shared dir or of bench/proxies/. The word `gatehouse-variants` expands to every
# bench/proxies/gatehouse-*.sh. Default: nginx,haproxy,caddy,node-dispatch,fast-gateway,fastify-reply-from,gatehouse,gatehouse-variants.
set -uo pipefail

BENCH=$(cd "$(dirname "$0")" && pwd)
REPO=$(dirname "$BENCH")
SHARED=${SHARED_BENCH:-$REPO/../shared/bench}
PROXIES=nginx,haproxy,caddy,node-dispatch,fast-gateway,fastify-reply-from,gatehouse,gatehouse-variants
QUICK=0 ROUNDS= DURATION= RATE=3000 UPLOAD= STREAM=1 MICRO_BENCH=1
usage() { sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
while [ $# -gt 0 ]; do case $1 in
  --quick) QUICK=1; shift;;
  --proxies) PROXIES=$2; shift 2;;
  --rounds) ROUNDS=$2; shift 2;;
  --duration) DURATION=${2%s}; shift 2;;
  --rate) RATE=$2; shift 2;;
  --upload) UPLOAD=$2; shift 2;;
  --no-stream) STREAM=0; shift;;
  --no-micro) MICRO_BENCH=0; shift;;
  -h|--help) usage;;
  *) echo "bench: unknown argument $1" >&2; usage;;
esac; done
if [ "$QUICK" = 1 ]; then : "${ROUNDS:=1}" "${DURATION:=3}" "${UPLOAD:=256}"; MODE=quick; else MODE=full; fi
: "${ROUNDS:=3}" "${DURATION:=8}" "${UPLOAD:=1024}"
log() { echo "bench: $*" >&2; }

[ -x "$SHARED/run.sh" ] && [ -f "$SHARED/stream.mjs" ] || { log "shared bench not found at $SHARED (set SHARED_BENCH)"; exit 1; }
SHARED=$(cd "$SHARED" && pwd)

# --- Work dir: a writable copy of the shared bench, plus our adapters. Everything the adapters mktemp goes in it too.
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gatehouse-bench.XXXXXX")
CHILD=
cleanup() {
  if [ -n "$CHILD" ]; then kill -- "-$CHILD" 2>/dev/null || kill "$CHILD" 2>/dev/null; wait "$CHILD" 2>/dev/null; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$WORK/h" "$WORK/tmp"
H=$WORK/h   # the harness copy
( cd "$SHARED" && for e in * .[!.]*; do case $e in .peers|results|'.[!.]*') ;; *) cp -r "$e" "$H/";; esac; done )
chmod -R u+w "$H"
for f in "$BENCH"/proxies/*; do [ -f "$f" ] && cp "$f" "$H/proxies/"; done
chmod +x "$H"/proxies/*.sh "$H"/*.sh 2>/dev/null

# --- Peers. Node peers: the shared .peers if complete, else bench/.peers (installed here by the shared setup.sh).
node_peers_ok() { [ -d "$1/node_modules/undici" ] && [ -d "$1/node_modules/fast-gateway" ] && [ -d "$1/node_modules/@fastify/reply-from" ] && [ -d "$1/node_modules/fastify" ]; }
if node_peers_ok "$SHARED/.peers"; then PEERS=$SHARED/.peers; else PEERS=$BENCH/.peers; mkdir -p "$PEERS"; fi
ln -s "$PEERS" "$H/.peers"
missing=()
for c in wrk nginx haproxy caddy taskset curl; do command -v "$c" >/dev/null 2>&1 || missing+=("$c"); done
node_peers_ok "$PEERS" || missing+=("node peers")
if [ ${#missing[@]} -gt 0 ]; then
  log "missing: ${missing[*]}; running the shared setup.sh (apt + npm; node peers into $PEERS)"
  bash "$H/setup.sh" >&2 || log "setup.sh failed (apt needs root; npm needs the registry); continuing with what is there"
fi
command -v wrk >/dev/null 2>&1 || { log "wrk is still missing; cannot measure"; exit 1; }

# --- Proxy list: expand gatehouse-variants, drop names without an adapter (stream.mjs would crash on them).
VARIANTS=$(cd "$BENCH/proxies" 2>/dev/null && ls gatehouse-*.sh 2>/dev/null | sed 's/\.sh$//' | { if [ -n "${GATEHOUSE_BASE_DIR:-}" ]; then cat; else grep -vx gatehouse-base; fi; } | paste -sd, -)
list=() SKIPPED=()
for n in ${PROXIES//,/ }; do
  case $n in
    gatehouse-variants|variants) for v in ${VARIANTS//,/ }; do list+=("$v"); done;;
    *) if [ -x "$H/proxies/$n.sh" ]; then list+=("$n"); else log "no adapter for '$n' (looked in $SHARED/proxies and $BENCH/proxies); skipped"; SKIPPED+=("$n"); fi;;
  esac
done
# Adapters that declare "# bench-header: Name: value" need the load generators to send that header:
# patch our copy of the harness for them (bench/lib/patch-harness.mjs), or drop them if it no longer applies.
hdr_of() { sed -n 's/^# bench-header: //p' "$H/proxies/$1.sh" | head -1; }
need_hdr=0; for n in "${list[@]}"; do [ -n "$(hdr_of "$n")" ] && need_hdr=1; done
if [ $need_hdr = 1 ] && ! node "$BENCH/lib/patch-harness.mjs" "$H"; then
  kept=(); for n in "${list[@]}"; do if [ -n "$(hdr_of "$n")" ]; then log "dropping $n: it needs a request header and the harness patch failed"; SKIPPED+=("$n"); else kept+=("$n"); fi; done
  list=("${kept[@]+"${kept[@]}"}")
fi
[ ${#list[@]} -gt 0 ] || { log "no proxies to run"; exit 1; }
PLIST=$(printf '%s\n' "${list[@]}" | awk '!seen[$0]++' | paste -sd, -)

export GATEHOUSE_DIR=$REPO TMPDIR=$WORK/tmp
# Parity with the peers, none of which caps request bodies (nginx: client_max_body_size 0): without this the
# 1 GiB upload meets Gatehouse's 10 MB default and fails with 413. Admin listener on an ephemeral port, so a
# gateway already running on this machine (admin default 127.0.0.1:9901) cannot make the bench one fail to start.
export GATEHOUSE_MAX_BODY_SIZE=${GATEHOUSE_MAX_BODY_SIZE:-4gb} GATEHOUSE_ADMIN_LISTEN=${GATEHOUSE_ADMIN_LISTEN:-127.0.0.1:0}
NOTES=() IDLE=()
[ ${#SKIPPED[@]} -gt 0 ] && NOTES+=("skipped (no adapter): ${SKIPPED[*]}")
# --- Preflight each gatehouse* adapter against the streaming upstream: starts, GET /json is 200, SSE arrives.
freeport() { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }
preflight() { # name
  local name=$1 up port upid ppid code events ok=1 glog="$WORK/preflight-$1.log"
  up=$(freeport); port=$(freeport)
  node "$H/upstream.mjs" "$up" & upid=$!
  GATEHOUSE_LOG=$glog "$H/proxies/$name.sh" "$port" "http://127.0.0.1:$up" > "$WORK/preflight-$name.adapter.log" 2>&1 & ppid=$!
  local t0=$SECONDS code=000 bh; bh=$(hdr_of "$name"); local hdr=(); [ -n "$bh" ] && hdr=(-H "$bh")
  while [ $((SECONDS - t0)) -lt 20 ]; do
    code=$(curl -s "${hdr[@]}" -o "$WORK/pf.body" -w '%{http_code}' --max-time 2 "http://127.0.0.1:$port/json")
    [ "$code" != 000 ] && break
    kill -0 "$ppid" 2>/dev/null || break
    sleep 0.2
  done
  local started=$((SECONDS - t0))
  # Idle footprint: the process after start and one request (the adapter execs node, so $ppid is the gateway).
  [ "$code" = 200 ] && IDLE+=("$name $(awk '/VmRSS/{printf "%.0f", $2/1024}' "/proc/$ppid/status" 2>/dev/null) MB")
  if [ "$code" = 000 ]; then
    log "preflight $name: did not answer within 20 s"; ok=0
  elif [ "$code" != 200 ]; then
    log "preflight $name: GET /json answered $code: $(head -c 300 "$WORK/pf.body")"; ok=0
  else
    events=$(curl -sN "${hdr[@]}" --max-time 5 "http://127.0.0.1:$port/sse" | grep -c '^data:')
    [ "$events" = 20 ] || { log "preflight $name: SSE delivered $events/20 events"; ok=0; }
    # A body past the 10 MB default, streamed (no Expect: the shared stream.mjs does not send one either).
    local upc; upc=$(head -c $((16 << 20)) /dev/zero | curl -s "${hdr[@]}" -H 'Expect:' -H 'content-type: application/octet-stream' \
      --data-binary @- -o "$WORK/pf.body" -w '%{http_code}' --max-time 20 "http://127.0.0.1:$port/echo-size")
    if [ "$upc" != 200 ] || ! grep -q "\"bytes\":$((16 << 20))" "$WORK/pf.body"; then
      log "preflight $name: 16 MiB upload answered $upc: $(head -c 200 "$WORK/pf.body")"; ok=0; code=upload-$upc
    fi
  fi
  kill "$ppid" 2>/dev/null; sleep 0.5; kill -9 "$ppid" 2>/dev/null; wait "$ppid" 2>/dev/null
  kill "$upid" 2>/dev/null; wait "$upid" 2>/dev/null
  if [ $ok = 1 ]; then log "preflight $name: ok (answered after ~${started}s)"; return 0; fi
  log "preflight $name: adapter output: $(tail -3 "$WORK/preflight-$name.adapter.log" 2>/dev/null | tr '\n' ' ')"
  log "preflight $name: gateway log tail:"; tail -15 "$glog" 2>/dev/null | sed 's/^/    /' >&2
  NOTES+=("preflight: $name failed (code $code); its figures below are missing or not to be trusted. Log tail: $(tail -3 "$glog" 2>/dev/null | tr '\n' ' ' | cut -c1-400)")
  return 1
}
for n in ${PLIST//,/ }; do
  case $n in gatehouse|gatehouse-*)
    [ -f "$REPO/bin/gatehouse.mjs" ] || log "warning: $REPO/bin/gatehouse.mjs does not exist"
    preflight "$n";;
  esac
done
# The Node ceiling's idle footprint, for the same comparison.
if [[ ",$PLIST," == *,node-dispatch,* ]]; then
  ndp=$(freeport); ndu=$(freeport)
  node "$H/upstream.mjs" "$ndu" & ndu_pid=$!
  "$H/proxies/node-dispatch.sh" "$ndp" "http://127.0.0.1:$ndu" > /dev/null 2>&1 & nd_pid=$!
  for _ in $(seq 1 50); do curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$ndp/json" && break; sleep 0.1; done
  nd_node=$(pgrep -P "$nd_pid" node || echo "$nd_pid")
  IDLE+=("node-dispatch $(awk '/VmRSS/{printf "%.0f", $2/1024}' "/proc/$nd_node/status" 2>/dev/null) MB")
  kill "$nd_node" "$nd_pid" "$ndu_pid" 2>/dev/null; wait "$nd_pid" "$ndu_pid" 2>/dev/null
fi
[ ${#IDLE[@]} -gt 0 ] && NOTES+=("idle RSS after start and one request: $(IFS=';'; echo "${IDLE[*]}" | sed 's/;/, /g')")

# --- Run. Raw outputs under bench/results/, named by date (and time, so several runs a day coexist).
STAMP=$(date -u +%Y-%m-%dT%H%MZ)
SUF=; [ "$MODE" = quick ] && SUF=-quick
RES=$BENCH/results; mkdir -p "$RES"
PJ=$RES/peers-$STAMP$SUF.json PT=$RES/peers-$STAMP$SUF.txt SJ=$RES/stream-$STAMP$SUF.json ST=$RES/stream-$STAMP$SUF.txt
GH_ENV="GATEHOUSE_DIR=$REPO GATEHOUSE_MAX_BODY_SIZE=$GATEHOUSE_MAX_BODY_SIZE GATEHOUSE_ADMIN_LISTEN=$GATEHOUSE_ADMIN_LISTEN"
CMD1="$GH_ENV <shared>/run.sh --proxies $PLIST --rounds $ROUNDS --duration ${DURATION}s --rate $RATE --baseline caddy --out ${PJ#$REPO/}"
CMD2="$GH_ENV <shared>/stream.sh --proxies $PLIST --upload $UPLOAD --out ${SJ#$REPO/}"
log "proxies: $PLIST; $MODE: $ROUNDS round(s) x ${DURATION}s, rate $RATE, upload $UPLOAD MiB"
log "$CMD1"
set -m   # own process group per job, so an interrupt can take down the harness and its children
bash "$H/run.sh" --proxies "$PLIST" --rounds "$ROUNDS" --duration "${DURATION}s" --rate "$RATE" --baseline caddy --out "$PJ" > "$PT" 2>&1 &
CHILD=$!; tail -f --pid="$CHILD" "$PT" >&2 & wait "$CHILD"; RC1=$?; CHILD=; sleep 0.2
[ $RC1 = 0 ] || NOTES+=("run.sh exited with status $RC1")
if [ "$STREAM" = 1 ]; then
  log "$CMD2"
  bash "$H/stream.sh" --proxies "$PLIST" --upload "$UPLOAD" --out "$SJ" > "$ST" 2>&1 &
  CHILD=$!; wait "$CHILD"; RC2=$?; CHILD=; cat "$ST" >&2
  [ $RC2 = 0 ] || NOTES+=("stream.sh exited with status $RC2")
else SJ= ST=; fi
set +m

# --- Policy costs in the same run (single-process measurements, not peers): the JWT verifier, the
# memory/Redis rate limiters and the request rules (a validated JSON route, a transformed form route) beside a
# plain route. Printed tables are appended to the report as-is.
MICRO=$WORK/micro.txt; : > "$MICRO"
if [ "$MICRO_BENCH" = 1 ]; then
  JN=20000 LN=3000 RN=20000; [ "$QUICK" = 1 ] && JN=5000 LN=1000 RN=5000
  for c in "bench/jwt-verify.ts --n $JN --rounds 3" "bench/limiter.ts --requests $LN" "bench/request-rules.ts --n $RN --rounds 3 --requests $RN" "bench/ai-routing.ts --n $RN --rounds 3 --requests $RN"; do
    log "micro: node --import tsx $c"
    { echo "\$ node --import tsx $c"; (cd "$REPO" && node --import tsx $c) 2>&1; echo; } >> "$MICRO"
  done
fi

# --- Report.
npmv() { node -p "require('$PEERS/node_modules/$1/package.json').version" 2>/dev/null || echo '?'; }
GH_COMMIT=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')
GH_DIRTY=$(git -C "$REPO" status --porcelain 2>/dev/null | grep -vcE '^.. bench/' || true)
NOTES_JSON=$(printf '%s\n' "${NOTES[@]+"${NOTES[@]}"}" | node -e 'console.log(JSON.stringify(require("fs").readFileSync(0,"utf8").split("\n").filter(Boolean)))')
META=$WORK/meta.json
SHARED_SRC=$SHARED node -e '
  const [out, date, mode, rate, duration, upload, nproc, cpu, kernel, nodev, peers, gh, cmd0, cmd1, cmd2, notes, ...files] = process.argv.slice(1);
  require("fs").writeFileSync(out, JSON.stringify({ date, mode, rate: +rate, duration: +duration, uploadMiB: +upload,
    machine: { nproc, cpu, kernel, node: nodev, peers, gatehouse: gh },
    commands: [cmd0, "# which runs, in <shared> = a temp copy of " + process.env.SHARED_SRC + " with bench/proxies/* added:", cmd1, ...(cmd2 ? [cmd2] : [])],
    notes: JSON.parse(notes), files }, null, 2));
' "$META" "$(date -u '+%Y-%m-%d %H:%M UTC')" "$MODE" "$RATE" "$DURATION" "$UPLOAD" "$(nproc)" \
  "$(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo)" "$(uname -sr)" "$(node --version)" \
  "nginx $(nginx -v 2>&1 | sed 's|.*/||'), HAProxy $(haproxy -v 2>/dev/null | head -1 | awk '{print $3}'), Caddy $(caddy version 2>/dev/null | awk '{print $1}'), wrk $(wrk -v 2>&1 | head -1 | awk '{print $2}'), undici $(npmv undici), fast-gateway $(npmv fast-gateway), fastify $(npmv fastify), @fastify/reply-from $(npmv @fastify/reply-from)" \
  "commit $GH_COMMIT$([ "${GH_DIRTY:-0}" -gt 0 ] && echo " + $GH_DIRTY uncommitted change(s) outside bench/")" \
  "bash bench/run.sh $([ $QUICK = 1 ] && echo '--quick ')--proxies $PROXIES" \
  "$CMD1" "$([ "$STREAM" = 1 ] && echo "$CMD2")" "$NOTES_JSON" \
  "${PJ#$REPO/}" "${PT#$REPO/}" ${SJ:+"${SJ#$REPO/}"} ${ST:+"${ST#$REPO/}"}

OUTMD=$BENCH/RESULTS.md; [ "$MODE" = quick ] && OUTMD=$BENCH/RESULTS.quick.md
node "$BENCH/report.mjs" --peers "$PJ" --peers-txt "$PT" ${SJ:+--stream "$SJ" --stream-txt "$ST"} --meta "$META" --out "$OUTMD"
if [ -s "$MICRO" ]; then
  { echo; echo '## Policy costs (same run): JWT verification, rate limiters and request rules beside the public route'; echo
    echo 'Targets: JWT route ≤ 15 µs CPU added per request (cached RS256/ES256 key); memory limiter ≤ 5 µs CPU; Redis limiter ≤ 0.3 ms median added. Request rules: reported, no target yet.'; echo
    echo '```'; cat "$MICRO"; echo '```'; } >> "$OUTMD"
  cp "$MICRO" "$BENCH/results/micro-$STAMP$([ "$QUICK" = 1 ] && echo -quick).txt"
fi
