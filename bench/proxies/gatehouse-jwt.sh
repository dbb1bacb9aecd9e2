#!/usr/bin/env bash
# Gatehouse with a JWT route (HS256, cached verification) beside the public route: the cost of auth alone.
# Validated against this build; it runs with every `npm run bench` (see bench/README.md for variants).
#
# The token below is HS256 over the bench secret (iss/aud as configured, sub bench-user, exp 2100-01-01);
# bench/run.sh makes wrk, pace.mjs and stream.mjs send it to this proxy only.
# bench-header: Authorization: Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJwbGFuIjoicHJvIiwiaXNzIjoiaHR0cHM6Ly9iZW5jaC5nYXRlaG91c2UuaW52YWxpZC8iLCJhdWQiOiJiZW5jaCIsInN1YiI6ImJlbmNoLXVzZXIiLCJpYXQiOjE3NjQwMDAwMDAsImV4cCI6NDEwMjQ0NDgwMH0.6Eu2PkFFsmglsY_9QJiNlja9EnWt0muGrSQBbKw-6Xc
#
# The appended YAML follows the generated route `all` (public, prefix /): `  - ` adds a second route, whose
# static paths win over the prefix route in the router; column-0 keys add top-level sections.
export GATEHOUSE_CONFIG_EXTRA='  - name: jwt
    match: { paths: [/json, /sse, /echo-size] }
    upstream: bench
    auth: jwt
auth:
  jwt:
    - name: bench
      issuer: https://bench.gatehouse.invalid/
      audiences: [bench]
      secret: gh-bench-hs256-7f3c9a1e5b2d4f8a0c6e9b1d3f5a7c9e
      algorithms: [HS256]'
exec "$(dirname "$0")/gatehouse.sh" "$@"
