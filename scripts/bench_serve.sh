#!/usr/bin/env bash
# `shorts serve` against nginx serving the same public/ (issue 17): requests
# per second and median latency with wrk, for /rss.xml and /shorts/, at 1, 16
# and 128 connections: plain GETs, conditional ones (If-None-Match with each
# server's own ETag) and ones taking gzip (nginx with `gzip on` for both
# types, at its default level, compresses each answer; serve sends a copy
# made once per build). The two servers are measured alternately in one run
# so the ratios compare like with like.
#
# Run by hand from the repo root (not in CI): bash scripts/bench_serve.sh
# Needs wrk and nginx (Debian: apt install wrk nginx). Knobs: SECONDS_EACH=5,
# SHORTS_BIN=… (default: cargo build --release), BENCH_DIR=… (default
# target/bench-serve). Prints a Markdown table, also written to
# $BENCH_DIR/results.md.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$PWD"
SECONDS_EACH="${SECONDS_EACH:-5}"
BENCH_DIR="$(realpath -m "${BENCH_DIR:-target/bench-serve}")"
NGINX="${NGINX:-/usr/sbin/nginx}"
command -v wrk >/dev/null || { echo "bench_serve.sh: wrk is missing (apt install wrk)" >&2; exit 2; }
[ -x "$NGINX" ] || { echo "bench_serve.sh: $NGINX is missing (apt install nginx)" >&2; exit 2; }

if [ -z "${SHORTS_BIN:-}" ]; then
  cargo build --release --quiet
  SHORTS_BIN="$REPO/target/release/shorts"
fi

rm -rf "$BENCH_DIR" && mkdir -p "$BENCH_DIR/site" "$BENCH_DIR/nginx/logs"
cp -r config.toml content "$BENCH_DIR/site/"
SHORTS_NOW=2026-07-01T00:00:00Z "$SHORTS_BIN" --config "$BENCH_DIR/site/config.toml" build >/dev/null
PUBLIC="$(realpath "$BENCH_DIR/site/public")"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
SERVE_PORT=$(free_port)
NGINX_PORT=$(free_port)

SHORTS_NOW=2026-07-01T00:00:00Z "$SHORTS_BIN" --config "$BENCH_DIR/site/config.toml" \
  serve --bind "127.0.0.1:$SERVE_PORT" >"$BENCH_DIR/serve.out" 2>"$BENCH_DIR/serve.err" &
SERVE_PID=$!
cat >"$BENCH_DIR/nginx/nginx.conf" <<CONF
worker_processes auto;
daemon off;
error_log $BENCH_DIR/nginx/logs/error.log;
pid $BENCH_DIR/nginx/nginx.pid;
events { worker_connections 1024; }
http {
    access_log off;
    types { application/rss+xml xml; text/html html; }
    gzip on;
    gzip_types application/rss+xml;
    client_body_temp_path $BENCH_DIR/nginx/body;
    proxy_temp_path $BENCH_DIR/nginx/proxy;
    fastcgi_temp_path $BENCH_DIR/nginx/fastcgi;
    uwsgi_temp_path $BENCH_DIR/nginx/uwsgi;
    scgi_temp_path $BENCH_DIR/nginx/scgi;
    server {
        listen 127.0.0.1:$NGINX_PORT;
        root $PUBLIC;
        index index.html;
    }
}
CONF
"$NGINX" -p "$BENCH_DIR/nginx" -c "$BENCH_DIR/nginx/nginx.conf" &
NGINX_PID=$!
trap 'kill $SERVE_PID $NGINX_PID 2>/dev/null || true' EXIT
for port in "$SERVE_PORT" "$NGINX_PORT"; do
  for _ in $(seq 100); do curl -fsS -o /dev/null "http://127.0.0.1:$port/rss.xml" && break; sleep 0.1; done
done

etag() { curl -fsS -o /dev/null -D - "http://127.0.0.1:$1$2" | tr -d '\r' | awk 'tolower($1)=="etag:" {print $2}'; }

# "requests/s median-latency" of one wrk run.
measure() {
  local port=$1 path=$2 conns=$3 header=$4 out
  local threads=$(( conns < 2 ? 1 : 2 ))
  if [ -n "$header" ]; then
    out=$(wrk -t"$threads" -c"$conns" -d"${SECONDS_EACH}s" --latency -H "$header" "http://127.0.0.1:$port$path")
  else
    out=$(wrk -t"$threads" -c"$conns" -d"${SECONDS_EACH}s" --latency "http://127.0.0.1:$port$path")
  fi
  local rps p50
  rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  echo "$rps $p50"
}

cell=0
{
  echo "| path | conns | request | serve req/s | nginx req/s | ratio | serve p50 | nginx p50 |"
  echo "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |"
  for path in /rss.xml /shorts/; do
    for conns in 1 16 128; do
      for request in plain if-none-match gzip; do
        serve_header="" nginx_header=""
        case "$request" in
          if-none-match)
            serve_header="If-None-Match: $(etag "$SERVE_PORT" "$path")"
            nginx_header="If-None-Match: $(etag "$NGINX_PORT" "$path")" ;;
          gzip) serve_header="Accept-Encoding: gzip" nginx_header="$serve_header" ;;
        esac
        # Which server goes first alternates, so neither always runs on the
        # other's leftovers (CPU frequency, page cache, TIME_WAIT sockets).
        cell=$((cell + 1))
        if [ $((cell % 2)) = 1 ]; then
          read -r s_rps s_p50 <<<"$(measure "$SERVE_PORT" "$path" "$conns" "$serve_header")"
          read -r n_rps n_p50 <<<"$(measure "$NGINX_PORT" "$path" "$conns" "$nginx_header")"
        else
          read -r n_rps n_p50 <<<"$(measure "$NGINX_PORT" "$path" "$conns" "$nginx_header")"
          read -r s_rps s_p50 <<<"$(measure "$SERVE_PORT" "$path" "$conns" "$serve_header")"
        fi
        ratio=$(python3 -c "print(f'{$s_rps / $n_rps:.2f}')")
        echo "| $path | $conns | $request | $s_rps | $n_rps | $ratio | $s_p50 | $n_p50 |"
      done
    done
  done
} | tee "$BENCH_DIR/results.md"
