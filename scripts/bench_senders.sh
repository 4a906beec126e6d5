#!/usr/bin/env bash
# B6 of scripts/bench.sh: N `digest send` processes at once against the one
# PostgreSQL database in SHORTS_DATABASE_URL, each from its own folder
# (BENCH_DIR/pg-hostI: its own data/ and run lock, as on N hosts). Prints
# what each said; exits 1 if any failed.
#
#   bench_senders.sh N BIN BENCH_DIR PERIOD
set -uo pipefail

senders=${1:?how many senders} bin=${2:?the shorts binary} dir=${3:?BENCH_DIR} period=${4:?PERIOD}
pids=()
for host in $(seq "$senders"); do
  "$bin" --config "$dir/pg-host$host/config-conn4.toml" digest send --period "$period" &
  pids+=("$!")
done
status=0
for pid in "${pids[@]}"; do
  wait "$pid" || status=1
done
exit "$status"
