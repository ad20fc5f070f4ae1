#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Runs the release benchmarks and checks them against scripts/bench-thresholds.json.
# Usage: scripts/bench.sh [--all]   (--all: every algorithm, for BENCHMARKS.md; slower)
set -euo pipefail
cd "$(dirname "$0")/.."
[[ -x .build/release/bench ]] || swift build -c release --product bench
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
algs=aes128gcm16
[[ ${1:-} == --all ]] && algs=all

run() {  # run OUT
  {
    .build/release/bench seal --alg "$algs" --seconds 1
    .build/release/bench open --alg "$algs" --seconds 1 --json
    .build/release/bench pipeline --alg "$algs" --seconds 1 --json
    .build/release/bench tunnels --count 1000000 --json
  } >"$1"
}
# A shared 2-core machine is noisy: up to three runs, each check judged on its best run
# (scripts/check_bench.py). A real regression misses in all three.
runs=()
for n in 1 2 3; do
  run "$work/run$n"
  cat "$work/run$n"
  runs+=("$work/run$n")
  python3 scripts/check_bench.py scripts/bench-thresholds.json "${runs[@]}" && exit 0
  ((n < 3)) && echo "bench: a check missed; run $((n + 1)) of at most 3 (noise?)" >&2
done
exit 1
