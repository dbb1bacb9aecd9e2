#!/usr/bin/env bash
# nginx terminating TLS (h2 and http/1.1 by ALPN) in front of the upstream, one worker, keep-alive pool, no
# buffering: the TLS peer for bench/edge.sh. BENCH_TLS_CERT / BENCH_TLS_KEY: PEM files.
set -euo pipefail
PORT=$1 UPSTREAM=${2#http://}
: "${BENCH_TLS_CERT:?}" "${BENCH_TLS_KEY:?}"
T=$(mktemp -d)
cat > "$T/nginx.conf" <<CONF
worker_processes 1; master_process off; daemon off;
pid $T/nginx.pid; error_log $T/error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  client_body_temp_path $T/cb; proxy_temp_path $T/pt; fastcgi_temp_path $T/ft; uwsgi_temp_path $T/ut; scgi_temp_path $T/st;
  keepalive_requests 1000000;
  http2_max_requests 1000000;
  upstream up { server $UPSTREAM; keepalive 128; keepalive_requests 1000000; }
  server {
    listen 127.0.0.1:$PORT ssl http2;
    ssl_certificate $BENCH_TLS_CERT;
    ssl_certificate_key $BENCH_TLS_KEY;
    ssl_protocols TLSv1.2 TLSv1.3;
    client_max_body_size 0;
    location / {
      proxy_pass http://up;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
      proxy_request_buffering off;
      proxy_read_timeout 300s;
    }
  }
}
CONF
exec nginx -p "$T" -c "$T/nginx.conf"
