#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The main job: install what is missing, build, and run espd as a gateway with two clients behind
# one NAT router (nftables masquerade), each in its own network namespace; ping and iperf3 through
# both tunnels, show that only ESP-in-UDP crosses the "internet", print the counters, say what
# passed, and remove everything. Documentation addresses only; nothing leaves the namespaces.
# (ESPD=/path/to/espd scripts/demo.sh skips the build and runs that binary.)
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/bootstrap.sh
if [[ -z ${ESPD:-} ]]; then
  echo "== building (release)"
  swift build -c release 2>&1 | tail -1
  ESPD=$PWD/.build/release/espd
fi
TP_PREFIX=espd-demo$$
source scripts/netns/topology.sh
tp_init
tp_require iperf3 tshark dumpcap conntrack

PASSED=() FAILED=()
check() {  # check "WHAT" CMD... : run CMD (in this shell), print PASS/FAIL with its last line of output
  local what=$1 out=$TP_WORK/check.out last
  shift
  if "$@" >"$out" 2>&1; then
    last=$(tail -1 "$out"); PASSED+=("$what"); printf '   PASS %s%s\n' "$what" "${last:+: $last}"
  else
    last=$(tail -1 "$out"); FAILED+=("$what"); printf '   FAIL %s%s\n' "$what" "${last:+: $last}"
  fi
  return 0
}
finish() {
  echo
  if ((${#FAILED[@]} == 0)); then
    echo "demo: passed (${#PASSED[@]} checks: gateway + NAT + 2 clients, ping and iperf3 through both tunnels, ESP only on the wire)"
    exit 0
  fi
  echo "demo: FAILED (${#FAILED[@]} of $((${#PASSED[@]} + ${#FAILED[@]})) checks):"
  printf '   - %s\n' "${FAILED[@]}"
  exit 1
}

echo
echo "== topology: gw 192.0.2.1 <-> nat 192.0.2.2 (masquerade) | 203.0.113.1 <-> c1 203.0.113.10, c2 203.0.113.11"
tp_topo_nat 2 || { FAILED+=("building the namespaces"); finish; }
not() { ! "$@"; }
check "c1 reaches the gateway's outer address 192.0.2.1 through the NAT" tp_ping c1 -c 1 192.0.2.1
check "the gateway has no route to the clients' 203.0.113.0/24" not tp_ping gw -c 1 -W 0.5 203.0.113.10

CFG=$TP_WORK/cfg
echo
echo "== configs: aes128gcm16, random keys and SPIs (scripts/netns/configs.py), checked by espd check"
python3 scripts/netns/configs.py nat --out "$CFG" --clients 2 --alg aes128gcm16 --inner 4,6 >/dev/null
check "espd check accepts the gateway's and both clients' configs" \
  python3 scripts/netns/configs.py check "$CFG" --espd "$ESPD"
"$ESPD" check --config "$CFG/gw.json" | sed 's/^/   | /' || true

echo
echo "== starting espd: gateway and both clients"
tp_capture_start underlay gw ul0 || FAILED+=("capture on the gateway's underlay")
started=1
for h in gw c1 c2; do
  if tp_espd_start "espd-$h" "$h" "$CFG/$h.json"; then
    check "espd on $h up (TUN espd0 $(jq -r '.tun.addresses | join(" ")' "$CFG/$h.json"), UDP $(jq -r '.listen[0]' "$CFG/$h.json"))" true
  else
    FAILED+=("espd on $h"); echo "   FAIL espd on $h: $TP_ESPD_WHY"; started=0; break
  fi
done
((started)) || finish

echo
echo "== ping through the tunnels (the clients speak first; the gateway learns their NAT'd ports)"
check "c1 198.51.100.10 -> gateway 198.51.100.1" tp_ping c1 -c 3 198.51.100.1
check "c2 198.51.100.11 -> gateway 198.51.100.1" tp_ping c2 -c 3 198.51.100.1
check "c1 -> gateway over IPv6 inside (2001:db8:100::1)" tp_ping c1 -c 2 2001:db8:100::1
check "gateway -> c1 198.51.100.10" tp_ping gw -c 2 198.51.100.10
check "gateway -> c2 198.51.100.11" tp_ping gw -c 2 198.51.100.11

echo
echo "== on the wire (captured on the gateway's side of the NAT while espd started and the pings ran)"
tp_capture_stop underlay
cap=$TP_CAPTURE
esp=$(tp_tshark -n -r "$cap" -Y 'esp && udp.port == 4500' 2>/dev/null | wc -l) || true
plain=$(tp_tshark -n -r "$cap" -Y '!arp && !(udp.port == 4500) && !icmpv6' 2>/dev/null | wc -l) || true
srcs=$(tp_tshark -n -r "$cap" -Y 'esp && ip.dst == 192.0.2.1 && udp.dstport == 4500' -T fields -e ip.src -e udp.srcport 2>/dev/null |
  sort -u | tr '\t' ':' | tr '\n' ' ') || true
check "only ESP in UDP 4500 crosses the internet ($esp ESP packets, $plain others)" \
  test "$esp" -gt 0 -a "$plain" -eq 0
check "both clients arrive from the NAT's address on distinct ports: $srcs" \
  test "$(wc -w <<<"$srcs")" -eq 2
tp_exec nat conntrack -L -p udp --dport 4500 2>/dev/null | sed 's/^/   | /' || true

echo
echo "== iperf3 through each tunnel (2 s each)"
iperf() { tp_iperf "$@" && echo "$TP_IPERF_SUMMARY" || { echo "$TP_IPERF_SUMMARY"; return 1; }; }
check "iperf3 TCP c1 -> gateway" iperf c1-tcp gw c1 198.51.100.1 2
check "iperf3 TCP c2 -> gateway" iperf c2-tcp gw c2 198.51.100.1 2
check "iperf3 TCP gateway -> c2 (reverse)" iperf c2-rev gw c2 198.51.100.1 2 -R
check "iperf3 UDP c1 -> gateway (20 Mbit/s)" iperf c1-udp gw c1 198.51.100.1 2 -u -b 20M -l 1200

echo
echo "== counters (SIGUSR1 -> one {\"stats\":...} line each)"
for h in gw c1 c2; do
  if tp_espd_stats "espd-$h"; then
    echo "   $h:"; jq -c '.stats' <<<"$TP_STATS_LINE" | sed 's/^/     /' || true
  else
    FAILED+=("counters of $h"); echo "   FAIL $h: $TP_ESPD_WHY"
  fi
done

echo
echo "== stopping (SIGTERM: exit 0, TUN and routes gone)"
for h in c1 c2 gw; do
  check "espd on $h exits cleanly" tp_espd_stop "espd-$h" 3
  [[ -z $TP_ESPD_WHY ]] || echo "     $TP_ESPD_WHY"
  check "no TUN device left on $h" tp_wait_no_tun "$h" 1
done
tp_teardown
check "namespaces removed" test -z "$(tp_leftovers)"
finish
