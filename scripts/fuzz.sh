#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds the libFuzzer targets (Tests/Fuzz/*, with --sanitize=fuzzer and --sanitize=address) and
# runs each for SECONDS (default 60), starting from a seed corpus made from the project's own
# captures and configurations (Tests/Fuzz/make_seeds.py). Prints executions, executions per second,
# coverage and corpus size per target. Exit 1 if any target broke an invariant, trapped or tripped
# ASan: the input that did it is kept under the work folder and the line to reproduce it is printed.
#
# Usage: scripts/fuzz.sh [SECONDS] [TARGET ...]     (targets: FuzzClassify FuzzESPOpen FuzzInbound
#        FuzzPcap FuzzConfig FuzzControl; default all)
# Env:   ESPD_FUZZ_WORK (default .build-fuzz/work): corpora grow there across runs; crashes land in
#        its crashes/ folder.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
[[ "$seconds" =~ ^[0-9]+$ && "$seconds" -gt 0 ]] || { echo "fuzz.sh: SECONDS must be a positive integer, got '$seconds'" >&2; exit 2; }
shift || true
all=(FuzzClassify FuzzESPOpen FuzzInbound FuzzPcap FuzzConfig FuzzControl)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all[@]}")
for t in "${targets[@]}"; do
  [[ " ${all[*]} " == *" $t "* ]] || { echo "fuzz.sh: unknown target '$t' (one of: ${all[*]})" >&2; exit 2; }
done

scratch=.build-fuzz
work=${ESPD_FUZZ_WORK:-$scratch/work}
mkdir -p "$work/crashes"

echo "-- building ${#targets[@]} fuzz targets (--sanitize=fuzzer --sanitize=address, scratch $scratch)"
# --sanitize=fuzzer together with --sanitize=address leaves the Swift code without libFuzzer's
# coverage counters (swiftc 6.3; the fuzzer then runs blind and finds nothing new): ask for them.
# shellcheck disable=SC2054  # one swiftc option whose value is a comma-separated list
coverage=(-Xswiftc -sanitize-coverage=edge,inline-8bit-counters,pc-table,trace-cmp)
for t in "${targets[@]}"; do
  if ! ESPD_FUZZ=1 swift build --sanitize=fuzzer --sanitize=address "${coverage[@]}" --scratch-path "$scratch" \
    --product "$t" >"$work/build-$t.log" 2>&1; then
    grep -E 'error:' "$work/build-$t.log" | head -20 >&2 || tail -20 "$work/build-$t.log" >&2
    echo "fuzz.sh: $t did not build (log: $work/build-$t.log)" >&2
    exit 1
  fi
  # Read the section table whole, not through `| grep -q`: under pipefail, grep quitting at the
  # first match kills readelf with SIGPIPE whenever its output spans two writes (1 run in 10 here).
  sections=$(readelf -SW "$scratch/debug/$t") || { echo "fuzz.sh: readelf could not read $scratch/debug/$t" >&2; exit 1; }
  [[ $sections == *__sancov_cntrs* ]] ||
    { echo "fuzz.sh: $t was built without coverage counters: libFuzzer would fuzz blind" >&2; exit 1; }
done

echo "-- seed corpus from the replay fixtures (Tests/Replay/make_fixtures.py)"
rm -rf "$work/fixtures" "$work/seeds"
python3 Tests/Replay/make_fixtures.py "$work/fixtures" >/dev/null
python3 Tests/Fuzz/make_seeds.py "$work/fixtures" "$work/seeds" 2>"$work/seeds.err" | sed 's/^/   /' ||
  { cat "$work/seeds.err" >&2; echo "fuzz.sh: the seed corpus could not be made" >&2; exit 1; }

declare -A maxlen=([FuzzPcap]=65536 [FuzzConfig]=16384 [FuzzControl]=16384 [FuzzInbound]=4096 [FuzzESPOpen]=4096 [FuzzClassify]=256)
failed=()
rows=()
for t in "${targets[@]}"; do
  corpus="$work/corpus/$t"
  mkdir -p "$corpus"
  log="$work/$t.log"
  dict=()
  [[ $t == FuzzConfig || $t == FuzzControl ]] && dict=(-dict=Tests/Fuzz/json.dict)
  echo "-- $t: ${seconds}s"
  status=0
  # -rss_limit_mb: the targets' own memory (ASan's shadow is not counted) must stay small.
  "$scratch/debug/$t" "$corpus" "$work/seeds/$t" -max_total_time="$seconds" -print_final_stats=1 \
    -max_len="${maxlen[$t]}" -timeout=10 -rss_limit_mb=2048 -artifact_prefix="$work/crashes/$t-" \
    "${dict[@]}" >"$log" 2>&1 || status=$?
  runs=$(awk '/stat::number_of_executed_units/ {print $2}' "$log")
  rate=$(awk '/stat::average_exec_per_sec/ {print $2}' "$log")
  rss=$(awk '/stat::peak_rss_mb/ {print $2}' "$log")
  cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 | awk '{print $2}' || true)
  units=$(find "$corpus" -type f | wc -l)
  grep -E '^verdicts:' "$log" | tail -1 | sed "s/^/   $t /" || true
  rows+=("$(printf '%-13s %10s %9s %7s %8s %7s' "$t" "${runs:-0}" "${rate:-0}" "${cov:-?}" "$units" "${rss:-?}")")
  if [ "$status" -ne 0 ]; then
    failed+=("$t")
    grep -E 'fuzz invariant|ERROR: AddressSanitizer|Fatal error|deadly signal|Test unit written' "$log" | head -8 >&2 || true
    crash=$(grep -oE "Test unit written to \S+" "$log" | awk '{print $5}' | tail -1 || true)
    echo "   reproduce: ESPD_FUZZ=1 swift build --sanitize=fuzzer --sanitize=address ${coverage[*]} --scratch-path $scratch --product $t && $scratch/debug/$t ${crash:-<input>}" >&2
    echo "   full log: $log" >&2
  fi
done

echo
printf '%-13s %10s %9s %7s %8s %7s\n' target executions "exec/s" cov corpus "rss MB"
printf '%s\n' "${rows[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz.sh: FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz.sh: ${#targets[@]} targets, ${seconds}s each: no invariant broken, no trap, no ASan report"
