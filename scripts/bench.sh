#!/usr/bin/env bash
# Benchmarks of `shorts` against its reference points, all in one run so the
# ratios compare like with like on the same machine state:
#   B1 build vs Hugo writing the RSS feeds and Hugo building the whole site
#      (pages, lists, RSS; same generated shorts), and how the build grows
#   B2 no-change rebuild, and one short edited (a build; and under schedule, until serve shows it)
#   B3 digest send to smtp-sink vs Postfix smtp-source with the same message
#   B4 scale: 100,000 subscribers (import, digest send; the same over 3 cadences)
#   B5 shorts serve vs nginx on the same public/ with wrk (scripts/bench_serve.sh)
#   B6 B4's send with the state in PostgreSQL: 1 sender, and 3 sharing the
#      digest (as on three hosts), against B4's SQLite send of the same run
# Run by hand from the repo root (not in CI): bash scripts/bench.sh
# Results: target/bench/results.md (printed at the end) and target/bench/runs.csv.
#
# Knobs (environment):
#   RUNS=3          timed runs per measurement, after WARMUP untimed ones
#   WARMUP=1        untimed warm-up rounds (0 to skip them)
#   QUICK=1         small sizes (1,000 shorts, 1,000 subscribers, no 100k) to test
#                   the script itself in about a minute
#   SKIP_100K=1     skip the 100,000-shorts build and B4
#   SKIP_SERVE=1    skip B5
#   SKIP_PG=1       skip B6 (it starts its own PostgreSQL: scripts/postgres-cluster.sh)
#   ONLY="b4 b6"    run only these steps (b1 b1growth b3 b4 b5 b6; b6 needs b4)
#   SHORTS_BIN=…    use this binary instead of `cargo build --release`
#   BENCH_DIR=…     scratch sites and logs (default target/bench)
#   TIMEOUT=3600    limit in seconds for each measured command
#   N_MAIN, N_SMALL, N_LARGE, N_SUBS, N_SUBS_LARGE, DIGEST_SHORTS: sizes
#
# The content generator and the Hugo site are vendored copies of the team's
# reference tools (benches/reference/, from /work/shared/bench, whose README
# has the reference figures), so a fresh clone needs nothing else.
set -euo pipefail
set -o errtrace   # functions inherit the ERR trap, so every failure names its step

cd "$(dirname "$0")/.."
REPO="$PWD"
[ -f Cargo.toml ] && [ -f config.toml ] || { echo "bench.sh: run from a shorts checkout" >&2; exit 2; }

RUNS="${RUNS:-3}"
WARMUP="${WARMUP:-1}"
QUICK="${QUICK:-0}"
SKIP_100K="${SKIP_100K:-0}"
SKIP_SERVE="${SKIP_SERVE:-0}"
SKIP_PG="${SKIP_PG:-0}"
TIMEOUT="${TIMEOUT:-3600}"
SEED=42
# gen_shorts.py's dates end at 2026-11-01T00:00Z (its default --end). The clock
# is pinned just after that, so every short is published whatever today's date
# is, and the digest is the one of the last slot before that end.
PERIOD="2026-11-01"
# The latest slot of the sample's `0 8 * * MON` (Europe/Berlin) at PERIOD.
WEEKLY_SLOT="2026-10-26T07:00:00Z"
export SHORTS_NOW="2026-11-01T12:00:00Z"

if [ "$QUICK" = 1 ]; then
  # Large sizes stay (at 2,000) so that QUICK runs every code path.
  N_MAIN="${N_MAIN:-1000}" N_SMALL="${N_SMALL:-100}" N_LARGE="${N_LARGE:-2000}"
  N_SUBS="${N_SUBS:-1000}" N_SUBS_LARGE="${N_SUBS_LARGE:-2000}"
else
  N_MAIN="${N_MAIN:-10000}" N_SMALL="${N_SMALL:-1000}" N_LARGE="${N_LARGE:-100000}"
  N_SUBS="${N_SUBS:-10000}" N_SUBS_LARGE="${N_SUBS_LARGE:-100000}"
fi
if [ "$SKIP_100K" = 1 ]; then N_LARGE="" N_SUBS_LARGE=""; fi
# A weekly digest of 1,000 shorts spread over two years carries about 10
# shorts, an 18 KB message: the size of the team's SMTP reference figures. The
# 10,000-shorts content would make a 96-short, 120 KB digest nobody sends.
DIGEST_SHORTS="${DIGEST_SHORTS:-1000}"

BENCH_DIR="$(realpath -m "${BENCH_DIR:-target/bench}")"
RESULTS_DIR="$REPO/target/bench"
LOGS="$BENCH_DIR/logs"
CSV="$BENCH_DIR/runs.csv"   # copied to $RESULTS_DIR only when the run completes
FACTS="$BENCH_DIR/facts.txt"
GEN="$REPO/benches/reference/gen_shorts.py"
HUGO_SITE="$REPO/benches/reference/hugo_site.sh"
HUGO_FULL_SITE="$REPO/benches/reference/hugo_full_site.sh"
HELPER="$REPO/scripts/bench_report.py"
SINK=/usr/sbin/smtp-sink
SOURCE=/usr/sbin/smtp-source
SINK_PID=""
MEASURE_PID=""
DAEMON_PIDS=()
STEP="start"

fail() {
  echo "bench.sh: step '$STEP' failed: $*" >&2
  exit 1
}

on_error() {  # the ERR trap: any unchecked failure still names the step
  echo "bench.sh: step '$STEP' failed (exit $1, line $2)" >&2
  exit "$1"
}

# Never leave a sink listening or a measured command running, whatever way
# the script ends. `timeout` runs in its own process group, so Ctrl-C does not
# reach it; TERM to it is passed on to the command.
cleanup() {
  stop_daemons
  if [ -n "${PG_DIR:-}" ]; then
    "$REPO/scripts/postgres-cluster.sh" stop "$PG_DIR" > /dev/null 2>&1 || true
  fi
  if [ -n "$MEASURE_PID" ] && kill -0 "$MEASURE_PID" 2>/dev/null; then
    kill -TERM "$MEASURE_PID" 2>/dev/null || true
    wait "$MEASURE_PID" 2>/dev/null || true
  fi
  if [ -n "$SINK_PID" ] && kill -0 "$SINK_PID" 2>/dev/null; then
    kill "$SINK_PID" 2>/dev/null || true
    wait "$SINK_PID" 2>/dev/null || true
  fi
}
trap 'on_error $? $LINENO' ERR
trap cleanup EXIT
trap 'fail "interrupted"' INT TERM

step() {
  STEP="$*"
  echo "== $STEP"
}

fact() {  # facts are what the table needs besides the timed runs
  echo "$1=$2" >> "$FACTS"
}

# The tools are installed only when missing, so a prepared machine is not
# touched; postfix needs its debconf answer first, or a non-interactive
# install configures an "Internet Site" (smtp-sink/smtp-source are all we use).
ensure_tools() {
  local sudo=() pkgs=() postfix=0
  [ "$(id -u)" = 0 ] || sudo=(sudo)
  command -v hugo >/dev/null || pkgs+=(hugo)
  [ -x /usr/bin/time ] || pkgs+=(time)
  command -v ss >/dev/null || pkgs+=(iproute2)
  command -v python3 >/dev/null || pkgs+=(python3)
  if [ "$SKIP_SERVE" != 1 ]; then
    command -v wrk >/dev/null || pkgs+=(wrk)
    [ -x /usr/sbin/nginx ] || pkgs+=(nginx)
    command -v curl >/dev/null || pkgs+=(curl)
  fi
  { [ -x "$SINK" ] && [ -x "$SOURCE" ]; } || postfix=1
  [ "${#pkgs[@]}" -gt 0 ] || [ "$postfix" = 1 ] || return 0
  "${sudo[@]}" apt-get update
  if [ "${#pkgs[@]}" -gt 0 ]; then
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y "${pkgs[@]}"
  fi
  if [ "$postfix" = 1 ]; then
    echo "postfix postfix/main_mailer_type select No configuration" | "${sudo[@]}" debconf-set-selections
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y postfix
  fi
}

# The binary is copied into the scratch folder: a `cargo build` elsewhere
# during the run must not swap it between the A and the B of a comparison.
prepare_binary() {
  local src="${SHORTS_BIN:-}"
  if [ -z "$src" ]; then
    command -v cargo >/dev/null || fail "cargo not found; install Rust or set SHORTS_BIN"
    cargo build --release
    src="$REPO/target/release/shorts"
  fi
  [ -x "$src" ] || fail "SHORTS_BIN=$src is not an executable"
  mkdir -p "$BENCH_DIR/bin"
  cp "$src" "$BENCH_DIR/bin/shorts.tmp" && mv "$BENCH_DIR/bin/shorts.tmp" "$BENCH_DIR/bin/shorts"
  BIN="$BENCH_DIR/bin/shorts"
}

# Generation is deterministic (N, seed, generator), so content from an earlier
# run is reused; 100,000 shorts take about 35 s to write.
generate() {  # $1 N, $2 site dir
  local stamp
  stamp="$1 seed=$SEED gen=$(sha256sum "$GEN" | cut -c1-16)"
  if [ -f "$2/.gen-stamp" ] && [ "$(cat "$2/.gen-stamp")" = "$stamp" ]; then
    echo "  reusing $1 generated shorts in $2"
    return
  fi
  mkdir -p "$2"
  rm -f "$2/.gen-stamp"
  timeout "$TIMEOUT" python3 "$GEN" "$1" "$2" --seed "$SEED" --clean \
    || fail "gen_shorts.py $1 $2"
  echo "$stamp" > "$2/.gen-stamp"
}

# measure BENCH TOOL N VARIANT RUN [--cd DIR] [--sink] [--expect K=V]... -- CMD...
# Runs CMD under timeout and /usr/bin/time -v, keeps its output in $LOGS and
# appends a row to runs.csv. --sink stops the running smtp-sink first, so its
# final count is in the row; --expect checks a parsed value (sent=N, …).
measure() {
  local bench="$1" tool="$2" n="$3" variant="$4" run="$5" dir="." rc=0 sink=0 opts=()
  shift 5
  while [ "$#" -gt 0 ] && [ "$1" != "--" ]; do
    case "$1" in
      --cd) dir="$2"; shift 2 ;;
      --sink) sink=1; opts+=(--sink "$SINK_LOG"); shift ;;
      --expect) opts+=(--expect "$2"); shift 2 ;;
      *) fail "measure: unknown option $1" ;;
    esac
  done
  [ "$#" -gt 1 ] || fail "measure: no command after --"
  shift
  local log="$LOGS/$bench.$tool.$n.$variant.$run" pid sink_died=0
  (cd "$dir" && exec timeout -k 30 "$TIMEOUT" /usr/bin/time -v -o "$log.time" "$@") \
    > "$log.out" 2> "$log.err" &
  pid=$!
  MEASURE_PID=$pid
  # Without its server, digest send defers each subscriber after its retries
  # (about 7 s each): hours for 10,000. So a sink that dies ends the run.
  while [ "$sink" = 1 ] && kill -0 "$pid" 2>/dev/null; do
    if ! kill -0 "$SINK_PID" 2>/dev/null; then
      sink_died=1
      kill -TERM "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.2
  done
  wait "$pid" || rc=$?
  MEASURE_PID=""
  if [ "$sink" = 1 ]; then stop_sink; fi
  if [ "$sink_died" = 1 ]; then
    tail -n 3 "$log.err" >&2
    fail "smtp-sink (log: $SINK_LOG) ended during the run (wait status $SINK_STATUS): $*"
  elif [ "$rc" = 124 ]; then
    fail "timed out after ${TIMEOUT}s: $* (log: $log.err)"
  elif [ "$rc" != 0 ]; then
    tail -n 5 "$log.err" >&2
    fail "exit $rc from: $* (log: $log.err)"
  fi
  python3 "$HELPER" record "$CSV" --bench "$bench" --tool "$tool" --n "$n" \
    --variant "$variant" --run "$run" --time "$log.time" --stdout "$log.out" "${opts[@]}"
}

run_labels() {  # the warm-up rounds are recorded too, as "warmup", and left out of medians
  local i
  for ((i = 0; i < WARMUP; i++)); do echo warmup; done
  seq 1 "$RUNS"
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# A fresh sink per run, so its counter is that run's messages alone.
# smtp-sink refuses to run as root without -u; 4096 is its listen backlog.
start_sink() {  # $1 log file
  local user_opt=() i
  [ "$(id -u)" = 0 ] && user_opt=(-u nobody)
  SINK_LOG="$1"
  "$SINK" "${user_opt[@]}" -c "127.0.0.1:$PORT" 4096 > "$SINK_LOG" 2>&1 &
  SINK_PID=$!
  for i in $(seq 50); do
    ss -Hltn "sport = :$PORT" | grep -q . && return 0
    kill -0 "$SINK_PID" 2>/dev/null || { cat "$SINK_LOG" >&2; fail "smtp-sink did not start on port $PORT"; }
    sleep 0.1
  done
  fail "smtp-sink is not listening on port $PORT after 5 s"
}

stop_sink() {  # on SIGTERM smtp-sink leaves its last counters in its log
  local rc=0
  kill "$SINK_PID" 2>/dev/null || true
  wait "$SINK_PID" 2>/dev/null || rc=$?
  SINK_PID=""
  SINK_STATUS="$rc"   # 143 = our SIGTERM; anything else: it ended by itself
}

output_facts() {  # $1 key prefix, $2 output folder (a symlink for shorts)
  local out
  out="$(readlink -f "$2")"
  [ -d "$out" ] || fail "no output folder at $2"
  fact "$1_bytes" "$(du -sb "$out" | cut -f1)"
  fact "$1_files" "$(find "$out" -type f | wc -l)"
}

shorts_full_build() {  # $1 site, $2 bench, $3 n, $4 run
  rm -rf "$1/public" "$1/.public.generations" "$1/.public.next"
  measure "$2" shorts "$3" full "$4" --expect "published=$3" -- \
    "$BIN" --config "$1/config.toml" build
}

hugo_build() {  # $1 site, $2 n, $3 run, $4 tool name (hugo: RSS only; hugo-site: every page too)
  rm -rf "$1/public"
  measure b1-build "${4:-hugo}" "$2" full "$3" --cd "$1" -- hugo --quiet
}

# A full build that parses every short again: without output, earlier
# generations or the cache of parsed shorts (where highlighting is done).
cold_build() {  # $1 site, $2 variant, $3 run
  rm -rf "$1/public" "$1/.public.generations" "$1/.public.next" "$1/data/content-cache"
  measure b1-highlight shorts "$N_MAIN" "$2" "$3" --expect "published=$N_MAIN" -- \
    "$BIN" --config "$1/config.toml" build
}

# What highlighting code costs: the same site, parsed from nothing, with
# `[build] highlight_code` on (the default) and off, alternating.
b1_highlight_cost() {
  local on="$BENCH_DIR/shorts-$N_MAIN" off="$BENCH_DIR/shorts-plain-$N_MAIN" run
  step "B1: highlighting's cost, $N_MAIN shorts parsed from nothing (warm-up $WARMUP, runs $RUNS)"
  rm -rf "$off" && mkdir -p "$off" && cp -r "$on/content" "$off/content"
  sed 's/^\[build\]$/[build]\nhighlight_code = false/' "$on/config.toml" > "$off/config.toml"
  grep -q '^highlight_code = false' "$off/config.toml" || fail "no [build] table in $on/config.toml"
  for run in $(run_labels); do
    if [ "$run" = warmup ] || [ $((run % 2)) = 1 ]; then
      cold_build "$on" highlighted "$run"; cold_build "$off" plain "$run"
    else
      cold_build "$off" plain "$run"; cold_build "$on" highlighted "$run"
    fi
  done
}

# ---------------------------------------------------------------------------

b1_build_vs_hugo() {
  local shorts_site="$BENCH_DIR/shorts-$N_MAIN" hugo_site="$BENCH_DIR/hugo-$N_MAIN" run
  local hugo_full="$BENCH_DIR/hugo-site-$N_MAIN"
  step "B1: generate $N_MAIN shorts, write the shorts and the Hugo site"
  generate "$N_MAIN" "$shorts_site"
  python3 "$HELPER" site-config config.toml "$shorts_site/config.toml"
  rm -rf "$hugo_site" && mkdir -p "$hugo_site"
  cp -r "$shorts_site/content" "$hugo_site/content"
  bash "$HUGO_SITE" "$hugo_site"
  rm -rf "$hugo_full" && mkdir -p "$hugo_full"
  cp -r "$shorts_site/content" "$hugo_full/content"
  bash "$HUGO_FULL_SITE" "$hugo_full"

  step "B1: shorts build vs hugo, $N_MAIN shorts, alternating (warm-up $WARMUP, runs $RUNS)"
  # Odd runs start with shorts, even ones with Hugo: neither always runs
  # on the other's leftovers (page cache, CPU frequency).
  for run in $(run_labels); do
    if [ "$run" = warmup ] || [ $((run % 2)) = 1 ]; then
      shorts_full_build "$shorts_site" b1-build "$N_MAIN" "$run"
      hugo_build "$hugo_site" "$N_MAIN" "$run"
      hugo_build "$hugo_full" "$N_MAIN" "$run" hugo-site
    else
      hugo_build "$hugo_full" "$N_MAIN" "$run" hugo-site
      hugo_build "$hugo_site" "$N_MAIN" "$run"
      shorts_full_build "$shorts_site" b1-build "$N_MAIN" "$run"
    fi
  done
  output_facts b1_shorts "$shorts_site/public"
  output_facts b1_hugo "$hugo_site/public"
  output_facts b1_hugo_site "$hugo_full/public"

  # B2 right here: the last full build above is the "before" state.
  step "B2: no-change rebuild of $N_MAIN shorts ($RUNS runs)"
  for run in $(seq 1 "$RUNS"); do
    measure b2-rebuild shorts "$N_MAIN" nochange "$run" --expect "published=$N_MAIN" -- \
      "$BIN" --config "$shorts_site/config.toml" build
  done

  # What a writer feels: one short's title edited, then a build. A run
  # before the timed ones settles the content cache (files written by the
  # generator are too fresh to be trusted by their times).
  step "B2: one short edited, rebuild of $N_MAIN shorts (warm-up $WARMUP, runs $RUNS)"
  local shorts_files=("$shorts_site"/content/shorts/*.md) edited
  edited="${shorts_files[0]}"
  [ -f "$edited" ] || fail "no short to edit in $shorts_site/content/shorts"
  sleep 2
  for run in $(run_labels); do
    sed -i "s/^title = .*/title = \"Edited for run $run $RANDOM\"/" "$edited"
    measure b2-rebuild shorts "$N_MAIN" edit "$run" --expect "published=$N_MAIN" -- \
      "$BIN" --config "$shorts_site/config.toml" build
  done
  b2_edit_served "$shorts_site" "$edited"
  b1_highlight_cost
}

# The same edit as the writer sees it: `shorts schedule` rebuilding and
# `shorts serve` serving the site, from the file's write to its page served
# with the new title.
b2_edit_served() {  # $1 site, $2 the short to edit
  local port run slug
  port="$(free_port)"
  slug="$(basename "$2" .md)"
  step "B2: one short edited under schedule, until serve shows it (warm-up $WARMUP, runs $RUNS)"
  "$BIN" --config "$1/config.toml" serve --bind "127.0.0.1:$port" > "$LOGS/b2-serve.log" 2>&1 &
  DAEMON_PIDS+=("$!")
  "$BIN" --config "$1/config.toml" schedule > "$LOGS/b2-schedule.log" 2>&1 &
  DAEMON_PIDS+=("$!")
  for run in $(seq 50); do
    curl -fso /dev/null "http://127.0.0.1:$port/shorts/$slug/" && break
    sleep 0.2
  done
  for run in $(run_labels); do
    sleep 2  # quiet before each save, as between a writer's saves
    python3 "$HELPER" edit-served "$CSV" "$2" "http://127.0.0.1:$port/shorts/$slug/" \
      --n "$N_MAIN" --run "$run"
  done
  stop_daemons
}

stop_daemons() {
  local pid
  for pid in "${DAEMON_PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  DAEMON_PIDS=()
}

b1_growth() {
  local site="$BENCH_DIR/shorts-$N_SMALL" run
  step "B1: growth, $N_SMALL shorts (warm-up $WARMUP, runs $RUNS)"
  generate "$N_SMALL" "$site"
  python3 "$HELPER" site-config config.toml "$site/config.toml"
  for run in $(run_labels); do shorts_full_build "$site" b1-growth "$N_SMALL" "$run"; done

  [ -n "$N_LARGE" ] || return 0
  site="$BENCH_DIR/shorts-$N_LARGE"
  step "B1: growth, $N_LARGE shorts (one run)"
  generate "$N_LARGE" "$site"
  python3 "$HELPER" site-config config.toml "$site/config.toml"
  shorts_full_build "$site" b1-growth "$N_LARGE" 1
  # Every feed carries every item at this size: several GB, not kept.
  rm -rf "$site/public" "$site/.public.generations"
}

# One real digest message, as shorts writes it for one subscriber, is what
# smtp-source sends: same size, same line structure.
b3_capture_message() {
  local site="$BENCH_DIR/digest-outbox" eml
  step "B3: capture one digest message through the outbox transport"
  rm -rf "$site" && mkdir -p "$site"
  ln -s ../digest-content/content "$site/content"
  python3 "$HELPER" site-config config.toml "$site/config.toml" --outbox outbox
  python3 "$HELPER" subscribers 1 "$site/one.csv"
  "$BIN" --config "$site/config.toml" subscribers import "$site/one.csv" > "$LOGS/outbox.import.out" \
    || fail "subscribers import (outbox site)"
  "$BIN" --config "$site/config.toml" digest send --period "$PERIOD" > "$LOGS/outbox.send.out" \
    || fail "digest send (outbox site)"
  grep -q ": 1 sent, " "$LOGS/outbox.send.out" || fail "outbox digest: $(cat "$LOGS/outbox.send.out")"
  eml="$(find "$site/outbox" -name '*.eml' | head -n 1)"
  [ -n "$eml" ] || fail "no .eml in $site/outbox"
  cp "$eml" "$BENCH_DIR/digest.eml"
  # smtp-source -F appends CRLF to every line it reads, so it gets LF lines:
  # what goes over the wire is then the .eml's CRLF bytes.
  tr -d '\r' < "$eml" > "$BENCH_DIR/digest.lf"
  fact msg_bytes "$(wc -c < "$eml")"
}

# The subscribers are imported once; every run starts from a copy of that
# database (the whole data/ folder, WAL included, copied after the import
# exited), so each run sends the same digest to the same people.
prepare_digest_site() {  # $1 site, $2 subscribers, $3 bench label for the import
  local site="$1" n="$2"
  rm -rf "$site" && mkdir -p "$site"
  ln -s ../digest-content/content "$site/content"
  python3 "$HELPER" subscribers "$n" "$site/subscribers.csv"
  python3 "$HELPER" site-config config.toml "$site/config-conn1.toml" --smtp-port "$PORT" --pool 1
  python3 "$HELPER" site-config config.toml "$site/config-conn4.toml" --smtp-port "$PORT" --pool 4
  measure "$3" shorts "$n" import 1 --expect "added=$n" --expect bad=0 -- \
    "$BIN" --config "$site/config-conn1.toml" subscribers import "$site/subscribers.csv"
  mv "$site/data" "$site/data.prepared"
  # No public/ here: digest send would rebuild the pages after sending.
  [ ! -e "$site/public" ] || fail "$site/public exists"
}

digest_run() {  # $1 site, $2 bench, $3 subscribers, $4 connections, $5 run[, $6 period]
  rm -rf "$1/data" && cp -a "$1/data.prepared" "$1/data"
  start_sink "$LOGS/sink.$2.shorts.conn$4.$5"
  measure "$2" shorts "$3" "conn$4" "$5" --sink --expect "sent=$3" --expect skipped=0 \
    --expect failed=0 --expect "sink_msgs=$3" -- \
    "$BIN" --config "$1/config-conn$4.toml" digest send --period "${6:-$PERIOD}"
}

# -d: every session reuses its connection, as shorts' pool does.
source_run() {  # $1 subscribers, $2 connections, $3 run
  start_sink "$LOGS/sink.b3-digest.smtp-source.conn$2.$3"
  measure b3-digest smtp-source "$1" "conn$2" "$3" --sink --expect "sink_msgs=$1" -- \
    "$SOURCE" -s "$2" -m "$1" -d -F "$BENCH_DIR/digest.lf" \
    -f sender@bench.invalid -t rcpt@bench.invalid "127.0.0.1:$PORT"
}

b3_digest_vs_smtp_source() {
  local site="$BENCH_DIR/digest-$N_SUBS" run conn carried
  step "B3: generate $DIGEST_SHORTS shorts for the digest"
  generate "$DIGEST_SHORTS" "$BENCH_DIR/digest-content"
  fact digest_content "$DIGEST_SHORTS"
  b3_capture_message

  step "B3: import $N_SUBS subscribers once"
  prepare_digest_site "$site" "$N_SUBS" b3-import
  # Proof that the digest is due and carries shorts for every subscriber.
  cp -a "$site/data.prepared" "$site/data"
  "$BIN" --config "$site/config-conn1.toml" digest send --period "$PERIOD" --dry-run \
    > "$LOGS/b3.dry-run.out" || fail "digest send --dry-run"
  carried="$(python3 "$HELPER" dry-run "$LOGS/b3.dry-run.out" "$N_SUBS")" \
    || fail "the dry run does not send shorts to every subscriber"
  fact digest_shorts "$carried"

  step "B3: digest send vs smtp-source, $N_SUBS messages, 1 and 4 connections (warm-up $WARMUP, runs $RUNS)"
  for run in $(run_labels); do
    for conn in 1 4; do
      if [ "$run" = warmup ] || [ $((run % 2)) = 1 ]; then
        digest_run "$site" b3-digest "$N_SUBS" "$conn" "$run"
        source_run "$N_SUBS" "$conn" "$run"
      else
        source_run "$N_SUBS" "$conn" "$run"
        digest_run "$site" b3-digest "$N_SUBS" "$conn" "$run"
      fi
    done
  done
}

b4_scale() {
  [ -n "$N_SUBS_LARGE" ] || return 0
  local site="$BENCH_DIR/digest-$N_SUBS_LARGE"
  # B3 generates the content; with ONLY="b4 …" it is made (or reused) here.
  generate "$DIGEST_SHORTS" "$BENCH_DIR/digest-content"
  step "B4: import $N_SUBS_LARGE subscribers (one run)"
  prepare_digest_site "$site" "$N_SUBS_LARGE" b4-import
  step "B4: digest send to $N_SUBS_LARGE subscribers, 4 connections (one run)"
  digest_run "$site" b4-digest "$N_SUBS_LARGE" 4 1
  b4_cadences "$site"
}

# The same subscribers split over three cadences (weekly, daily, instant):
# three digests, one message a subscriber, as many as B4. Sent at the very
# slot B4's weekly digest is for (Monday 08:00 site time, the latest at
# PERIOD), where the daily and instant ones fall too, so every copy carries
# the same shorts as B4's and only the cadences differ.
b4_cadences() {  # $1 the B4 site
  local site="$BENCH_DIR/digest-$N_SUBS_LARGE-cadences" n="$N_SUBS_LARGE"
  step "B4: the same $n subscribers over 3 cadences, 4 connections (one run)"
  rm -rf "$site" && mkdir -p "$site"
  ln -s ../digest-content/content "$site/content"
  awk -F, 'NR == 1 { print $0 ",cadence"; next }
           { split("weekly daily instant", c, " "); print $0 "," c[(NR % 3) + 1] }' \
    "$1/subscribers.csv" > "$site/subscribers.csv"
  { cat "$1/config-conn4.toml"
    printf '\n[[digest.cadences]]\nname = "daily"\nschedule = "0 8 * * *"\n'
    printf '\n[[digest.cadences]]\nname = "instant"\nschedule = "instant"\n'
  } > "$site/config-conn4.toml"
  "$BIN" --config "$site/config-conn4.toml" subscribers import "$site/subscribers.csv" \
    > "$LOGS/b4-cadences.import.out" || fail "import for B4 cadences"
  mv "$site/data" "$site/data.prepared"
  digest_run "$site" b4-cadences "$n" 4 1 "$WEEKLY_SLOT"
}

# Its own table, appended to the report: requests per second are not the
# timed runs the other rows are made of. QUICK runs each cell for 1 s.
# B4's send again, with subscribers and the ledger in PostgreSQL (a cluster
# of its own on loopback, with PostgreSQL's durable defaults, as SQLite
# keeps its own): one sender, then three sending the one digest together,
# each in a folder of its own (its own data/ and run lock, as on three
# hosts), each with B4's 4 connections. Every run starts from the same
# imported database (a copy made from a template).
b6_postgres() {
  [ -n "$N_SUBS_LARGE" ] && [ "$SKIP_PG" != 1 ] || return 0
  local n="$N_SUBS_LARGE" pg="$BENCH_DIR/postgres" port host
  step "B6: PostgreSQL: a cluster, and $n subscribers imported (one run)"
  "$REPO/scripts/postgres-cluster.sh" stop "$pg" > /dev/null 2>&1 || true
  rm -rf "$pg"
  port="$(free_port)"
  PG_SERVER="$(DURABLE=1 "$REPO/scripts/postgres-cluster.sh" start "$pg" "$port")" \
    || fail "PostgreSQL did not start (apt-get install postgresql, or SKIP_PG=1)"
  PG_DIR="$pg"
  for host in 1 2 3; do
    rm -rf "$BENCH_DIR/pg-host$host" && mkdir -p "$BENCH_DIR/pg-host$host"
    ln -s ../digest-content/content "$BENCH_DIR/pg-host$host/content"
    cp "$BENCH_DIR/digest-$n/config-conn4.toml" "$BENCH_DIR/pg-host$host/"
  done
  psql -q "$PG_SERVER" -c "CREATE DATABASE b6_prepared" || fail "create the database"
  export SHORTS_SECRET="bench: one signing key for every sender"
  SHORTS_DATABASE_URL="$(pg_database b6_prepared)" \
    measure b6-import shorts "$n" import 1 --expect "added=$n" --expect bad=0 -- \
    "$BIN" --config "$BENCH_DIR/pg-host1/config-conn4.toml" subscribers import \
    "$BENCH_DIR/digest-$n/subscribers.csv"
  step "B6: digest send to $n subscribers on PostgreSQL, 1 and 3 senders × 4 connections (one run each)"
  for senders in 1 3; do
    psql -q "$PG_SERVER" -c "DROP DATABASE IF EXISTS b6_run" \
      -c "CREATE DATABASE b6_run TEMPLATE b6_prepared" || fail "copy the database"
    start_sink "$LOGS/sink.b6-digest.senders$senders"
    SHORTS_DATABASE_URL="$(pg_database b6_run)" \
      measure b6-digest shorts "$n" "senders$senders" 1 --sink --expect "sent=$n" \
      --expect failed=0 --expect "sink_msgs=$n" -- \
      bash "$REPO/scripts/bench_senders.sh" "$senders" "$BIN" "$BENCH_DIR" "$PERIOD"
  done
  unset SHORTS_SECRET
}

pg_database() {  # $1 a database on the bench cluster: its URL
  echo "${PG_SERVER%/*}/$1"
}

b5_serve_vs_nginx() {
  [ "$SKIP_SERVE" != 1 ] || return 0
  local seconds=5
  [ "$QUICK" = 1 ] && seconds=1
  step "B5: shorts serve vs nginx, the sample site, wrk ${seconds}s a cell, alternating"
  SHORTS_BIN="$BIN" BENCH_DIR="$BENCH_DIR/serve" SECONDS_EACH="$seconds" \
    bash "$REPO/scripts/bench_serve.sh" > "$LOGS/b5-serve.out" 2>&1 \
    || fail "bench_serve.sh: $(tail -n 5 "$LOGS/b5-serve.out")"
}

write_header_facts() {
  fact date "$(date -u '+%Y-%m-%d %H:%M UTC')"
  fact nproc "$(nproc)"
  fact cpu "$(lscpu | sed -n 's/^Model name: *//p' | head -n 1)"
  fact mem "$(($(sed -n 's/^MemTotal: *\([0-9]*\) kB/\1/p' /proc/meminfo) / 1048576)) GiB"
  fact kernel "$(uname -r)"
  fact hugo "$(hugo version | cut -d' ' -f1-2)"
  fact shorts "$("$BIN" --version)"
  fact git "$(git -C "$REPO" describe --always --dirty 2>/dev/null || echo unknown)"
  fact bin_sha "$(sha256sum "$BIN" | cut -c1-12)"
  fact runs "$RUNS"
  fact warmup "$WARMUP"
  fact quick "$QUICK"
  fact n_main "$N_MAIN"
  fact n_small "$N_SMALL"
  fact n_large "$N_LARGE"
  fact n_subs "$N_SUBS"
  fact n_subs_large "$N_SUBS_LARGE"
  fact bench_dir "$BENCH_DIR"
  fact only "${ONLY:-}"
}

wanted() {  # $1 a step: whether ONLY (if set) names it
  [ -z "${ONLY:-}" ] || [[ " ${ONLY//,/ } " == *" $1 "* ]]
}

main() {
  step "tools"
  ensure_tools
  step "binary"
  prepare_binary
  mkdir -p "$BENCH_DIR" "$LOGS" "$RESULTS_DIR"
  rm -f "$CSV" "$FACTS" "$LOGS"/*
  PORT="$(free_port)"
  write_header_facts
  echo "  $("$BIN" --version), scratch in $BENCH_DIR, sink port $PORT, RUNS=$RUNS QUICK=$QUICK"

  wanted b1 && b1_build_vs_hugo
  wanted b1growth && b1_growth
  wanted b3 && b3_digest_vs_smtp_source
  wanted b4 && b4_scale
  wanted b5 && b5_serve_vs_nginx
  wanted b6 && b6_postgres

  # A failed or interrupted run leaves the previous results in place.
  step "report"
  python3 "$HELPER" report "$CSV" "$FACTS" "$BENCH_DIR/results.md"
  if [ -f "$BENCH_DIR/serve/results.md" ] && [ "$SKIP_SERVE" != 1 ]; then
    { echo; echo "### B5: shorts serve vs nginx (requests per second, wrk, same public/)"; echo
      cat "$BENCH_DIR/serve/results.md"; } >> "$BENCH_DIR/results.md"
  fi
  if [ "$BENCH_DIR" != "$RESULTS_DIR" ]; then
    cp "$BENCH_DIR/results.md" "$BENCH_DIR/runs.csv" "$RESULTS_DIR/"
  fi
  echo "results: $RESULTS_DIR/results.md, raw runs: $RESULTS_DIR/runs.csv"
}

main "$@"
