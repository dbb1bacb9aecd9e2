#!/usr/bin/env bash
# Starts Gatehouse from DIR with bench/ab.sh's one-route config changed by MODE, to price a default feature:
#   bash bench/lib/config-variant.sh DIR CONFIG MODE
# MODE: defaults (as is), no-access-log, no-security-headers, bare (both off). Example, the ladder in
# docs/performance.md:
#   bash bench/ab.sh --saturate node-dispatch 'node ../shared/bench/proxies/node-dispatch.mjs {PORT} {UP}' \
#     defaults 'bash bench/lib/config-variant.sh . {CONFIG} defaults' bare 'bash bench/lib/config-variant.sh . {CONFIG} bare'
set -euo pipefail
DIR=$1 C=$2 MODE=$3
V=$C.$MODE.yaml
OFF_LOG='observability: { log: { accessLog: false } }'
case $MODE in
  defaults) cp "$C" "$V";;
  no-access-log) sed "s/^admin:.*/&\n$OFF_LOG/" "$C" > "$V";;
  no-security-headers) sed 's/environment: production }/environment: production, securityHeaders: off }/' "$C" > "$V";;
  bare) sed -e 's/environment: production }/environment: production, securityHeaders: off }/' -e "s/^admin:.*/&\n$OFF_LOG/" "$C" > "$V";;
  *) echo "config-variant.sh: unknown mode $MODE" >&2; exit 2;;
esac
exec node "$DIR/bin/gatehouse.mjs" start --config "$V"
