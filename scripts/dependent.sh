#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Proves that another package can depend on espd's libraries: copies Tests/Dependent (a package
# that seals and opens one packet with ESP and classifies it with UDPEncap) to a temporary folder
# outside this tree and builds and runs it twice: depending on this checkout by path, and on a
# clone of this checkout's HEAD by version (SwiftPM refuses a version-based dependency whose
# targets use unsafeFlags, so this fails if one comes back).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
work=$(mktemp -d /tmp/espd-dependent.XXXXXX)
trap 'rm -rf "$work"' EXIT

build_and_run() {  # build_and_run DEPENDENCY-LINE
  rm -rf "$work/pkg" && mkdir "$work/pkg" && cp -r Tests/Dependent/Sources "$work/pkg/"
  sed "s|ESPD_DEPENDENCY|$1|" Tests/Dependent/Package.swift.in >"$work/pkg/Package.swift"
  (cd "$work/pkg" && swift build --product SealOne 2>&1 | tail -3 && .build/debug/SealOne) | tee "$work/out"
  grep -q '^SealOne: sealed 28 bytes into .* and opened them again$' "$work/out" ||
    { echo "dependent: SealOne did not build or run ($1)" >&2; exit 1; }
}

echo "-- by path: $root"
build_and_run ".package(name: \"espd\", path: \"$root\")"
echo "-- by version: a clone of HEAD ($(git rev-parse --short HEAD)) tagged 1.0.0"
git clone -q "$root" "$work/espd"
git -C "$work/espd" tag 1.0.0
build_and_run ".package(url: \"file://$work/espd\", from: \"1.0.0\")"
