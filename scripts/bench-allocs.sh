#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Heap allocations per packet in the live dataplane: espd (release) runs under an LD_PRELOAD malloc
# counter through bench-e2e (tests/live/test_bench_e2e.py) twice, with 2 s and 8 s of iperf3 (tcp and udp64); whatever the longer run
# allocates beyond the shorter one is per-packet allocation. Prints one line with both counts and the
# difference per packet (expected: 0.000).
#
# Usage: sudo scripts/bench-allocs.sh [--espd PATH]   (needs gcc; takes about 1.5 minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
ESPD_BIN=${ESPD:-$ROOT/.build/release/espd}
[[ ${1:-} == --espd ]] && ESPD_BIN=${2:?--espd needs a path}
[[ $ESPD_BIN == /* ]] || ESPD_BIN=$ROOT/$ESPD_BIN
[[ -x $ESPD_BIN ]] || { echo "bench-allocs.sh: no espd at $ESPD_BIN (swift build -c release)" >&2; exit 1; }
work=$(mktemp -d /tmp/espd-allocs.XXXXXX)
trap 'rm -rf "$work"' EXIT
gcc -shared -fPIC -O2 -o "$work/malloc_count.so" scripts/tools/malloc_count.c -ldl
printf '#!/bin/sh\nLD_PRELOAD=%s exec %s "$@"\n' "$work/malloc_count.so" "$ESPD_BIN" >"$work/espd"
chmod +x "$work/espd"

measure() {  # measure SECONDS : "<mallocs of espd a> <packets a handled>"
  local out d
  out=$(ESPD=$work/espd BENCH_E2E_SECONDS=$1 BENCH_E2E_SETUPS=espd BENCH_E2E_TESTS="tcp udp64" BENCH_E2E_SYSCALLS=0 \
    BENCH_E2E_OUT=$work/r$1 python3 -m pytest -q -s -p no:cacheprovider -m bench tests/live -k bench-e2e 2>&1) ||
    { echo "bench-allocs.sh: bench-e2e failed: $(tail -3 <<<"$out")" >&2; exit 1; }
  d=$work/r$1/espd/raw
  local m p
  m=$(grep -h 'MALLOC-COUNT' "$d/espd-a.log" | sed 's/.*malloc=\([0-9]*\) calloc=\([0-9]*\) realloc=\([0-9]*\).*/\1 \2 \3/' | awk '{print $1+$2+$3}')
  p=$(jq -r '.stats | .encapsulated + .decapsulated + .dropped' "$d/espd-a-exit.json")
  echo "$m $p"
}
read -r m1 p1 < <(measure 2)
read -r m2 p2 < <(measure 8)
awk -v m1="$m1" -v p1="$p1" -v m2="$m2" -v p2="$p2" 'BEGIN {
  printf "allocations: %d over %d packets (2 s), %d over %d packets (8 s): %.4f per extra packet\n",
    m1, p1, m2, p2, (p2 > p1) ? (m2 - m1) / (p2 - p1) : 0 }'
