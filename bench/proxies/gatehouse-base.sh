#!/usr/bin/env bash
# Gatehouse as it was at another commit, for before/after figures in ONE run (interleaved rounds, same load):
#   git worktree add /tmp/gatehouse-base <ref> && (cd /tmp/gatehouse-base && npm ci)
#   GATEHOUSE_BASE_DIR=/tmp/gatehouse-base bash bench/run.sh --proxies node-dispatch,gatehouse,gatehouse-base
# Left out of `gatehouse-variants` unless GATEHOUSE_BASE_DIR is set. Same one-route config as `gatehouse`.
set -euo pipefail
: "${GATEHOUSE_BASE_DIR:?set GATEHOUSE_BASE_DIR to a checkout of the base commit (see the header of this file)}"
GATEHOUSE_DIR=$GATEHOUSE_BASE_DIR exec "$(dirname "$0")/gatehouse.sh" "$@"
