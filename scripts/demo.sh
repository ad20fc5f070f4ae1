#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The main job, as far as it exists today: install what is missing, build, prove the ESP core
# against its known answers, and show its speed next to raw OpenSSL in the same run.
# (The live tunnel between network namespaces arrives with the dataplane issue.)
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/bootstrap.sh
echo "== building (release)"
swift build -c release 2>&1 | tail -1

echo
echo "== espd run --selftest: known-answer tests (RFC 7634, draft-mcgrew-gcm-test-01, RFC 3602, scapy) and replay tables"
.build/release/espd run --selftest

echo
echo "== bench seal/open, aes128gcm16 and chacha20poly1305 (ratio_to_raw: espd vs bare OpenSSL EVP, same run)"
.build/release/bench seal --alg aes128gcm16,chacha20poly1305 --seconds 0.5
.build/release/bench open --alg aes128gcm16,chacha20poly1305 --seconds 0.5 --json
echo
echo "demo: passed (selftest ok; figures above)"
