#!/usr/bin/env bash
# Gatehouse terminating TLS (HTTP/2 and HTTP/1.1 by ALPN) with one public prefix route: the shared adapter's
# config plus server.tls. GATEHOUSE_DIR: the project root (default: this repo). BENCH_TLS_CERT / BENCH_TLS_KEY:
# PEM files. GATEHOUSE_WORKERS: passed as --workers (default 1). Not a `gatehouse-*` name on purpose: the plain
# HTTP harness (bench/run.sh) must not pick it up as a variant.
set -euo pipefail
PORT=$1 UPSTREAM=$2
: "${BENCH_TLS_CERT:?}" "${BENCH_TLS_KEY:?}"
DIR=${GATEHOUSE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
T=$(mktemp -d)
cat > "$T/gatehouse.yaml" <<CONF
server:
  listen: 127.0.0.1:$PORT
  environment: production
  tls: { certificates: [ { cert: $BENCH_TLS_CERT, key: $BENCH_TLS_KEY } ] }
  http2: { maxConcurrentStreams: 256 }
admin: { listen: 127.0.0.1:0 }
observability:
  log: { level: ${GATEHOUSE_LOG_LEVEL:-info} }
upstreams:
  bench:
    targets: [ { url: $UPSTREAM } ]
    pool: { connections: 128 }
routes:
  - name: all
    match: { path: /, prefix: true }
    upstream: bench
    auth: public
CONF
cd "$DIR"
exec node bin/gatehouse.mjs start --config "$T/gatehouse.yaml" --workers "${GATEHOUSE_WORKERS:-1}" > "${GATEHOUSE_LOG:-/dev/null}" 2>&1
