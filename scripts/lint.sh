#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Checks the layering rules (ESP, UDPEncap and Forwarding stay pure; syscalls only in Dataplane's
# Sys layer), that the code is swift-format clean, the Python of the live tests ruff clean and the
# bash scripts shellcheck clean.
set -euo pipefail
cd "$(dirname "$0")/.."

fail=0
# ESP and UDPEncap: no I/O, no Foundation, no C I/O shims (DESIGN.md, STYLE.md §1).
if grep -rnE '^\s*(@_exported |internal |public |private |fileprivate )?import (Glibc|Foundation|FoundationEssentials|CURing|CLinux|CPcap|Dispatch|Musl)\b' \
    Sources/ESP Sources/UDPEncap; then
  echo "lint: ESP and UDPEncap must stay pure (no Glibc, Foundation, Dispatch or C I/O shim imports)" >&2
  fail=1
fi
# Forwarding (configuration, tables, packet paths, offloads) is pure too: it may import only the
# other pure modules (ESP, UDPEncap) and CAtomics; every syscall belongs to Dataplane (docs/DESIGN.md).
if grep -rnE '^\s*(@_exported |@testable |internal |public |package |private |fileprivate )?import ' Sources/Forwarding |
    grep -vE 'import (ESP|UDPEncap|CAtomics)$'; then
  echo "lint: Forwarding must stay pure (it may import only ESP, UDPEncap and CAtomics)" >&2
  fail=1
fi
# One syscall layer: Dataplane makes its system calls through `Sys` (System/Syscalls.swift and
# System/Sys+*.swift), which owns errno handling and hands out descriptors as OwnedFD (closed once).
# Anywhere else a raw call is an error: a libc call below, or any function of the CLinux shim (its
# lower-case ones; upper-case ones are ioctl numbers). `x.read(`, `func read(`, `case open(` are not
# libc; comments are skipped.
clinux_calls=$(grep -oE '^(static inline )?(int|ssize_t|unsigned long) CLinux_[a-z][A-Za-z0-9_]*' \
  Sources/CLinux/include/CLinux.h | awk '{print $NF}' | paste -sd'|')
syscalls="close|read|write|poll|ppoll|epoll_create1|epoll_wait|epoll_ctl|sendto|recvfrom|sendmsg|recvmsg|sendmmsg"
syscalls+="|recvmmsg|setsockopt|getsockopt|socket|bind|connect|listen|accept|accept4|shutdown|ioctl|eventfd|signalfd"
syscalls+="|fcntl|open|unlink|chmod|mkdir|lstat|fstat|dup|dup2|pipe|pipe2|setpriority|pthread_sigmask|sigprocmask"
syscalls+="|${clinux_calls}"
# shellcheck disable=SC2016 # $re and $ARGV below are perl's, not the shell's
raw=$(find Sources/Dataplane -name '*.swift' -not -path 'Sources/Dataplane/System/Sys*.swift' \
  -not -path 'Sources/Dataplane/System/OwnedFD.swift' -print0 |
  xargs -0 perl -ne 'BEGIN { $re = shift @ARGV } s{//.*}{};
    print "$ARGV:$.: $_" if /(?<![\w.])(?<!func )(?<!case )(?:$re)\(/; close ARGV if eof' "$syscalls")
if [[ -n $raw ]]; then
  printf '%s\n' "$raw" >&2
  echo "lint: raw system call outside the Sys layer (use or add a wrapper in Sources/Dataplane/System/Sys+*.swift)" >&2
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
  shellcheck -x -P SCRIPTDIR scripts/*.sh integrations/strongswan/*.sh ||
    { echo "lint: shellcheck finds the above in the bash scripts" >&2; fail=1; }
else
  echo "lint: shellcheck not found, the bash scripts not checked (scripts/bootstrap.sh installs it)" >&2
fi
((fail == 0)) && echo "lint: ok"
exit $fail
