#!/usr/bin/env bash
# Fuzzes the front-matter/content loader and the subscriber CSV import with
# cargo fuzz (libFuzzer) for a bounded time each, then copies any crashing
# input into tests/fixtures/fuzz/ to be kept as a regression fixture.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET]      (default 120)
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`). libFuzzer needs nightly
# compiler flags; RUSTC_BOOTSTRAP=1 lets the stable toolchain accept them.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-120}"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1
seeds=target/fuzz-seeds
mkdir -p "$seeds/short_file" "$seeds/subscriber_csv"
cp content/shorts/*.md tests/fixtures/site/content/shorts/*.md tests/fixtures/check/*.md "$seeds/short_file/"
printf 'email,name,tracks,status\na@example.com,Ada,llm,active\nb@example.com,"B, b",,pending\n' > "$seeds/subscriber_csv/basic.csv"
status=0
for target in short_file subscriber_csv; do
  echo "== $target for ${seconds}s"
  if ! (cd fuzz && cargo fuzz run "$target" "../$seeds/$target" -- \
        -max_total_time="$seconds" -max_len=65536 -timeout=10); then
    status=1
  fi
  mkdir -p "tests/fixtures/fuzz/$target"
  for crash in fuzz/artifacts/"$target"/*; do
    [ -e "$crash" ] && cp "$crash" "tests/fixtures/fuzz/$target/"
  done
done
exit $status
