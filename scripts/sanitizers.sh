#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The unit tests again under AddressSanitizer (with LeakSanitizer) and ThreadSanitizer, each in its
# own scratch folder (.build-asan, .build-tsan). Any sanitizer report fails the run: ASan and TSan
# abort or print "WARNING: ThreadSanitizer", and the test runner must report every test passed.
# Usage: scripts/sanitizers.sh [address|thread ...]   (default: both)
set -euo pipefail
cd "$(dirname "$0")/.."
kinds=("$@")
[ ${#kinds[@]} -gt 0 ] || kinds=(address thread)
for kind in "${kinds[@]}"; do
  case "$kind" in address | thread) ;; *) echo "sanitizers.sh: unknown sanitizer '$kind' (address or thread)" >&2; exit 2 ;; esac
  scratch=.build-${kind:0:1}san
  log=$scratch/sanitize-$kind.log   # in the checkout's own scratch folder: two checkouts never share it
  mkdir -p "$scratch"
  echo "-- swift test --sanitize=$kind (scratch $scratch)"
  if ! swift build --build-tests --sanitize="$kind" --scratch-path "$scratch" >"$log.build" 2>&1; then
    grep -E 'error:' "$log.build" | head -20 >&2 || tail -20 "$log.build" >&2
    echo "sanitizers.sh: the --sanitize=$kind build failed (log: $log.build)" >&2
    exit 1
  fi
  # halt_on_error: the first report ends the run with a non-zero status, so it cannot scroll by.
  ASAN_OPTIONS=detect_leaks=1:halt_on_error=1 TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
    swift test --sanitize="$kind" --scratch-path "$scratch" --skip-build --parallel >"$log" 2>&1 || true
  if grep -qE 'ERROR: (Address|Leak)Sanitizer|WARNING: ThreadSanitizer' "$log"; then
    grep -B2 -A30 -E 'ERROR: (Address|Leak)Sanitizer|WARNING: ThreadSanitizer' "$log" | head -80 >&2 || true
    echo "sanitizers.sh: $kind sanitizer reported a problem (full log: $log)" >&2
    exit 1
  fi
  if ! grep -qE 'Test run with [0-9]+ tests? .* passed' "$log"; then
    grep -E '✘|error' "$log" | head -40 >&2 || true
    echo "sanitizers.sh: the unit tests did not all pass under --sanitize=$kind (full log: $log)" >&2
    exit 1
  fi
  grep -E 'Test run with' "$log"
done
