#!/usr/bin/env bash
# Caddy terminating TLS (h2 and http/1.1 by ALPN) with a given certificate, reverse_proxy defaults,
# GOMAXPROCS=1: the TLS peer for bench/edge.sh. BENCH_TLS_CERT / BENCH_TLS_KEY: PEM files.
set -euo pipefail
PORT=$1 UPSTREAM=${2#http://}
: "${BENCH_TLS_CERT:?}" "${BENCH_TLS_KEY:?}"
T=$(mktemp -d)
cat > "$T/Caddyfile" <<CONF
{
  admin off
  auto_https disable_redirects
  # load generators connect to 127.0.0.1 and send no SNI
  default_sni bench.test
  servers {
    protocols h1 h2
  }
}
https://bench.test:$PORT, https://127.0.0.1:$PORT {
  bind 127.0.0.1
  tls $BENCH_TLS_CERT $BENCH_TLS_KEY
  reverse_proxy $UPSTREAM
}
CONF
export GOMAXPROCS=1 XDG_DATA_HOME=$T XDG_CONFIG_HOME=$T
exec caddy run --config "$T/Caddyfile" --adapter caddyfile
