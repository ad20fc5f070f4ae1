#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The main job (issue 15): install what is missing, build espd and the strongSwan plugins, then
# scripts/demo.py: a VPN gateway of strongSwan's charon + espd configured by the README's examples
# (examples/strongswan/*), three strongSwan clients behind one NAT (nftables masquerade) that
# connect with `swanctl --initiate` and get virtual IPs; SAs and espd's tunnels compared, ping and
# iperf3 through the tunnels, only IKE and ESP-in-UDP on the wire, espd's drop counters, a
# terminate; PASS/FAIL lines, a summary, everything removed. Network namespaces and documentation
# addresses only; nothing leaves the machine. Needs root.
# (ESPD=/path/to/espd scripts/demo.sh skips the Swift build and runs that binary;
# KEEP=1 keeps the logs, configs and the capture.)
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/bootstrap.sh
if [[ -z ${ESPD:-} ]]; then
  echo "== building (release)"
  swift build -c release 2>&1 | tail -1
  ESPD=$PWD/.build/release/espd
fi
echo "== strongSwan and the kernel-espd, socket-espd plugins (integrations/strongswan/build.sh)"
log=$(mktemp)
if ! bash integrations/strongswan/build.sh >"$log" 2>&1; then
  tail -n 20 "$log"
  rm -f "$log"
  echo "demo: FAILED (integrations/strongswan/build.sh)"
  exit 1
fi
tail -n 1 "$log" | sed 's/^/   /'
rm -f "$log"
ESPD=$ESPD exec python3 scripts/demo.py
