# Sourced by bench/ab.sh, bench/alloc.sh and bench/idle-rss.sh: the shared harness's location, a free port, its
# upstream, the one-route Gatehouse config they all measure, and a proxy command with its placeholders filled in.
SHARED=${SHARED_BENCH:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../../../shared/bench" 2>/dev/null && pwd)}
[ -f "$SHARED/upstream.mjs" ] || { echo "$(basename "$0"): shared bench not found (set SHARED_BENCH)" >&2; exit 1; }

free_port() { node -e 's=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }

# start_upstream [taskset CPU list]: the shared upstream (GET /json, /sse, POST /echo-size) in the background; sets UPP.
start_upstream() {
  UPP=$(free_port)
  if [ -n "${1:-}" ]; then taskset -c "$1" node "$SHARED/upstream.mjs" "$UPP" >/dev/null 2>&1 &
  else node "$SHARED/upstream.mjs" "$UPP" >/dev/null 2>&1 &
  fi
}

# one_route_config PORT FILE: a public prefix route to the upstream, production mode (access log and metrics on).
one_route_config() {
  printf 'server: { listen: 127.0.0.1:%s, environment: production }\nadmin: { listen: 127.0.0.1:0 }\nupstreams:\n  u: { targets: [ { url: http://127.0.0.1:%s } ], pool: { connections: 128 } }\nroutes:\n  - { name: all, match: { path: /, prefix: true }, upstream: u, auth: public }\n' "$1" "$UPP" > "$2"
}

# proxy_command COMMAND PORT CONFIG: {PORT}, {UP} and {CONFIG} replaced.
proxy_command() {
  local c=${1//\{PORT\}/$2}
  c=${c//\{UP\}/http://127.0.0.1:$UPP}
  echo "${c//\{CONFIG\}/$3}"
}
