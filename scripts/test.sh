#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs what is missing, builds, and runs every test: lint, vector check, unit tests, selftest,
# and the benchmark gate. Run as root on Debian 12 (it installs packages with apt-get).
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
step() { printf '\n== %s (%ss)\n' "$*" $(($(date +%s) - start)); }

step "bootstrap"
bash scripts/bootstrap.sh

step "lint"
bash scripts/lint.sh

step "test vectors against pyca/cryptography"
python3 scripts/vectors/verify_vectors.py

step "build (debug) and unit tests"
swift build --build-tests
unit_log=.build/swift-test.log   # in this checkout: two checkouts testing at once never share it
swift test --parallel 2>&1 | tee "$unit_log" | grep -vE '^(◇|↳|✔ Test (case|.*started))' || true
grep -qE 'Test run with [0-9]+ tests? .* passed' "$unit_log" || { echo "unit tests failed (log: $unit_log)" >&2; exit 1; }

step "unit tests under AddressSanitizer and ThreadSanitizer"
bash scripts/sanitizers.sh

step "fuzz: six libFuzzer targets (ASan), 15 s each from the seed corpus"
bash scripts/fuzz.sh 15

step "selftest (debug binary)"
.build/debug/espd run --selftest

step "replay: scapy-built captures through espd replay, outputs checked with scapy and tshark"
work=$(mktemp -d /tmp/espd-replay.XXXXXX)
python3 Tests/Replay/run_espd.py .build/debug/espd --work "$work"
rm -rf "$work"

step "replay checker selftest: fixtures reproducible, a reference model agrees, the checker rejects corrupted outputs, tshark agrees"
python3 Tests/Replay/selftest.py

step "live: espd between network namespaces (tunnel/transport, every algorithm, IPv4/IPv6, NAT, io_uring and mmsg; pytest -m netns)"
ESPD=.build/debug/espd python3 -m pytest -q -rxXs -m netns tests/live

step "live: many clients behind one NAT (aliases, flow table, rebinding, forgery, restart and reload, 10,000 tunnels; pytest -m nat)"
ESPD=.build/debug/espd python3 -m pytest -q -rxXs -m nat tests/live

step "release build (the 200 Mbit/s control-plane tests, the benchmarks and the hostile tests use it)"
swift build -c release

step "another package depends on ESP and UDPEncap (by path, and by version from a tagged clone)"
bash scripts/dependent.sh

step "live: the control plane (CLI, hitless rekeys at 200 Mbit/s each way, a storm of 20,000 rekey steps on 100,000 tunnels under load, 1,000-tunnel churn, bad requests, lifetimes, metrics, owner check)"
ESPD=.build/debug/espd ESPD_RELEASE=.build/release/espd python3 -m pytest -q -rxXs -m control tests/live

step "control path at scale: rekeys, churn and stats at 1,000 and 10,000 tunnels (tests/live/test_bench_control.py; the full run goes to 1,000,000)"
ESPD=.build/release/espd BENCH=.build/release/bench BENCH_CONTROL_TUNNELS="1000 10000" BENCH_CONTROL_STEPS=2000 \
  BENCH_CONTROL_STATS_REQUEST='{"op":"stats","tunnels":false}' python3 -m pytest -q -s -rxXs -m bench tests/live -k bench-control

step "strongSwan: the charon plugins built against Debian's charon 5.9.8, their unit tests, and charon driving espd in network namespaces"
bash integrations/strongswan/build.sh --test
bash integrations/strongswan/smoke-test.sh

step "strongSwan, live: pytest tests/live (PSK behind a NAT on 500/4500, three VIP clients, certificates and EAP-MSCHAPv2, rekeys under load, DPD, NAT rebinding, teardown and restarts, bad input)"
ESPD=.build/release/espd python3 -m pytest -q -rxXs -m strongswan tests/live

step "benchmark gate"
bash scripts/bench.sh

step "live, hostile: floods of junk, forged and replayed ESP under iperf3; an IKE flood; the resource limits (release binary)"
ESPD=.build/release/espd python3 -m pytest -q -rxXs -m hostile tests/live

step "live: a one-minute soak (rekeys, tunnel churn, NAT rebinding under load; SOAK_MINUTES=10 is the full one)"
ESPD=.build/release/espd SOAK_MINUTES=1 python3 -m pytest -q -s -rxXs -m soak tests/live

step "done"
