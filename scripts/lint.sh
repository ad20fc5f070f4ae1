#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Checks the layering rules (ESP and UDPEncap stay pure), that the code is swift-format clean, the
# Python of the live tests ruff clean and the bash scripts shellcheck clean.
set -euo pipefail
cd "$(dirname "$0")/.."

fail=0
# ESP and UDPEncap: no I/O, no Foundation, no C I/O shims (DESIGN.md, STYLE.md §1).
if grep -rnE '^\s*(@_exported |internal |public |private |fileprivate )?import (Glibc|Foundation|FoundationEssentials|CIO|Dispatch|Musl)\b' \
    Sources/ESP Sources/UDPEncap; then
  echo "lint: ESP and UDPEncap must stay pure (no Glibc, Foundation, Dispatch or CIO imports)" >&2
  fail=1
fi
# CCrypto types stay out of ESP's public API.
if grep -rnE '^\s*(@_exported )?import CCrypto\b' Sources/ESP; then
  echo "lint: ESP must import CCrypto as 'internal import CCrypto'" >&2
  fail=1
fi
# Bad input must never trap: no try! or fatalError in the packet libraries.
if grep -rnE 'try!|fatalError\(' Sources; then
  echo "lint: try! / fatalError in a library (bad input must be a counted drop, never a trap)" >&2
  fail=1
fi
# Formatting: every Swift file as swift-format (config: .swift-format) would write it.
unformatted=()
while IFS= read -r -d '' f; do
  if ! swift format "$f" | cmp -s - "$f"; then unformatted+=("$f"); fi
done < <(find Sources Tests -name '*.swift' -print0; printf 'Package.swift\0')
if ((${#unformatted[@]})); then
  echo "lint: not swift-format clean (run: swift format -i -r Sources Tests Package.swift):" >&2
  printf '  %s\n' "${unformatted[@]}" >&2
  fail=1
fi
# Python of the live tests and the demo: ruff (config: tests/live/ruff.toml), when it is installed.
if command -v ruff >/dev/null; then
  ruff check --quiet tests/live || fail=1
  ruff format --check --quiet tests/live || { echo "lint: tests/live not ruff-format clean (run: ruff format tests/live)" >&2; fail=1; }
  ruff check --quiet --config tests/live/ruff.toml scripts/demo.py || fail=1
  ruff format --check --quiet --config tests/live/ruff.toml scripts/demo.py ||
    { echo "lint: scripts/demo.py not ruff-format clean (run: ruff format --config tests/live/ruff.toml scripts/demo.py)" >&2; fail=1; }
else
  echo "lint: ruff not found, tests/live not checked (scripts/bootstrap.sh installs it)" >&2
fi
# Bash: shellcheck on every script that is still bash (sourced files followed from where they are
# sourced, -x; `# shellcheck disable=SCxxxx` with a reason marks a deliberate pattern), when installed.
if command -v shellcheck >/dev/null; then
  shellcheck -x -P SCRIPTDIR scripts/*.sh scripts/netns/*.sh integrations/strongswan/*.sh ||
    { echo "lint: shellcheck finds the above in the bash scripts" >&2; fail=1; }
else
  echo "lint: shellcheck not found, the bash scripts not checked (scripts/bootstrap.sh installs it)" >&2
fi
((fail == 0)) && echo "lint: ok"
exit $fail
