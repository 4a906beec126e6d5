#!/usr/bin/env bash
# Starts a throwaway PostgreSQL cluster for the tests: Debian's server,
# unprivileged, listening on 127.0.0.1 only, in a temporary folder, with no
# system-wide config touched. Prints the URL to give the tests
# (SHORTS_TEST_POSTGRES); `stop DIR` ends it.
#
#   scripts/postgres-cluster.sh start DIR PORT   -> postgres://shorts@127.0.0.1:PORT/shorts
#   scripts/postgres-cluster.sh stop DIR
#
# PostgreSQL refuses to run as root: as root, the cluster belongs to the
# `postgres` user the Debian package creates.
set -euo pipefail

command_dir() {
  for dir in /usr/lib/postgresql/*/bin; do
    [ -x "$dir/initdb" ] && { echo "$dir"; return; }
  done
  echo "no PostgreSQL server found (apt-get install postgresql)" >&2
  exit 1
}

as_owner() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

action=${1:?start or stop}
dir=${2:?a folder for the cluster}
bin=$(command_dir)

case "$action" in
  start)
    port=${3:?a port}
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres: "$dir"
    as_owner "$bin/initdb" -D "$dir/data" -U shorts --auth=trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log"
    # Durability off: a test cluster is thrown away, and fsync would only
    # slow the tests down; DURABLE=1 keeps PostgreSQL's defaults (for the
    # benchmarks, so it writes as a production server would). Sockets in
    # the folder, not /var/run.
    durability="-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    [ "${DURABLE:-0}" = 1 ] && durability=""
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -o \
      "-c listen_addresses=127.0.0.1 -p $port -k $dir $durability -c max_connections=300" \
      start >/dev/null
    as_owner "$bin/createdb" -h 127.0.0.1 -p "$port" -U shorts shorts
    echo "postgres://shorts@127.0.0.1:$port/shorts"
    ;;
  stop)
    as_owner "$bin/pg_ctl" -D "$dir/data" -m fast stop >/dev/null
    ;;
  *)
    echo "usage: $0 start DIR PORT | stop DIR" >&2
    exit 2
    ;;
esac
