#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs every system package that espd's build, tests, demo and benchmarks need (Debian 12).
# Idempotent: packages already present are skipped, and apt-get runs only when something is missing.
set -euo pipefail

# Build: liburing, libcrypto (OpenSSL 3), libpcap, pkg-config.
# Tests: python3 + pip (scapy), tshark, iproute2, nftables, iperf3, conntrack, jq, curl, strace.
# Lint: shellcheck (scripts/lint.sh checks every bash script with it).
# strongSwan (the IKE daemon of the demo and of tests/live) and what its plugins build with
# (integrations/strongswan/build.sh adds the -dev packages its configure step checks for).
PKGS=(
  pkg-config liburing-dev libssl-dev libpcap-dev
  python3 python3-pip python3-venv
  tshark iproute2 nftables iperf3 conntrack jq curl strace procps iputils-ping
  strongswan-charon strongswan-swanctl strongswan-pki libstrongswan-standard-plugins libcharon-extra-plugins
  libcharon-extauth-plugins
  build-essential dpkg-dev
  shellcheck
)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "bootstrap: installing ${missing[*]}" >&2
  if [[ $EUID -ne 0 ]]; then
    echo "bootstrap: need root to install packages (run as root or with sudo)" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  # tshark asks whether non-root users may capture; answer no without a prompt.
  echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Python test tools: scapy builds the independent ESP/NAT-T/IKE packets the tests compare against;
# prometheus-client's parser checks the metrics endpoint's text format.
if ! python3 -c 'import scapy, cryptography, prometheus_client' 2>/dev/null; then
  echo "bootstrap: installing scapy, cryptography, prometheus-client (pip)" >&2
  python3 -m pip install -q --disable-pip-version-check scapy cryptography prometheus-client 2>/dev/null ||
    python3 -m pip install -q --disable-pip-version-check --break-system-packages scapy cryptography prometheus-client
fi

# tests/live (pytest: charon + espd in network namespaces) and its linter (ruff).
if ! python3 -c 'import pytest' 2>/dev/null || ! command -v ruff >/dev/null; then
  echo "bootstrap: installing pytest, ruff (pip)" >&2
  python3 -m pip install -q --disable-pip-version-check pytest ruff 2>/dev/null ||
    python3 -m pip install -q --disable-pip-version-check --break-system-packages pytest ruff
fi

command -v swift >/dev/null || { echo "bootstrap: swift not found on PATH (need Swift 6.x)" >&2; exit 1; }
