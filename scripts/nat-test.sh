#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Many clients behind one NAT, live: a gateway, a NAT router (nftables masquerade) and three clients,
# all running espd in network namespaces. The SAref problem, solved in userspace:
#   tunnel-mode      every client its own inner address; ping + iperf3 + tagged UDP at once; every reply
#                    reaches its client; the gateway's per-tunnel counters show each client's share
#   transport-alias  identical inner flows (udp and tcp 198.51.100.50:1701 -> 198.51.100.1:1701 on every
#                    client, as Windows L2TP does); the gateway sees each client under its own alias
#   shared-alias     one alias for all; distinct inner source ports steered by the learned flow table;
#                    a reply to a port never seen reaches nobody (no_route)
#   rebinding        the NAT's mapping changes mid-flow (masquerade to :40000-40100 + conntrack -F):
#                    traffic resumes with the next authenticated packet, nothing goes to a stale port
#   forgery          bad-ICV and replayed copies of real ESP from other addresses: counted, no endpoint
#                    moves, the tunnel keeps working
#   client-restart   one client restarts with new SAs and a new port, the gateway takes them by SIGHUP;
#                    the other clients' streams lose nothing
#   reload-shared-alias  the same with one shared alias (L2TP): the gateway's own streams to the other
#                    clients, steered by learned flows, lose nothing across the reload
#   scale-10k        10,000 tunnels on the gateway, traffic from three: start-up time, memory, reload time
# Every test prints one PASS or FAIL line; the last line is "N passed, M failed"; exit 1 on failure.
#
# Usage: sudo scripts/nat-test.sh [--espd PATH] [-k REGEX] [--keep] [--list]
#   --espd PATH  the binary (default: $ESPD, else the newer of .build/release/espd and .build/debug/espd)
#   -k REGEX     run only the tests whose name matches (bash regex)
#   --skip REGEX leave out the tests whose name matches
#   --keep       keep the work dir (configs, logs, captures); it is kept anyway when a test fails
#   --list       print the test names and exit
#
# Namespaces are espd-n<PID>-<host>; documentation addresses only (scripts/netns/topology.sh). Only
# processes this script started are signalled, by PID; namespaces and the work dir go on any exit.
# Needs root, iperf3, tshark/dumpcap, conntrack, nft, jq; takes about 2 minutes (bounded by 4).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

# shellcheck source=netns/harness.sh
source "$ROOT/scripts/netns/harness.sh"
suite_args "$0" 2,31 "$@"

BUDGET=${NAT_TEST_BUDGET:-225}   # seconds: a test that would start later is failed, not run
TP_PREFIX=espd-n$$
TP_KEEP=$KEEP
# shellcheck source=netns/topology.sh
source "$ROOT/scripts/netns/topology.sh"
if ((!LIST)); then
  tp_init
  tp_require iperf3 tshark dumpcap conntrack
fi
CONFIGS=$ROOT/scripts/netns/configs.py

PASSED=0 FAILED=0
T_FAILS=() T_INFO=()



# ------------------------------------------------------------------ helpers

NAT=192.0.2.2 GW=192.0.2.1 G4=198.51.100.1 G6=2001:db8:100::1
TCLIENT=198.51.100.50   # transport mode: every client's TUN address

gen() {  # gen DIR nat|many ARGS... : configs.py, then `espd check` on every config it wrote
  local dir=$1; shift
  "$TP_PY" "$CONFIGS" "$1" --out "$dir" "${@:2}" >"$dir.gen.log" 2>&1 ||
    { fail "configs.py $* failed: $(tail -1 "$dir.gen.log")"; return 1; }
  "$TP_PY" "$CONFIGS" check "$dir" --espd "$ESPD" >"$dir.check.log" 2>&1 ||
    { fail "espd check rejects a generated config: $(head -2 "$dir.check.log" | tr '\n' ' ')"; return 1; }
}



stop() {  # stop HOST [SECONDS=3] : SIGTERM; must exit 0 in time and leave no TUN
  tp_espd_stop "espd-$1" "${2:-3}" || { fail "$TP_ESPD_WHY"; return 1; }
  tp_wait_no_tun "$1" 1 || fail "TUN device left in $1 1 s after exit"
}

GW_ARGS=()  # extra `espd run` arguments for the gateway (the *-workers runs: --workers 2)

with_workers() {  # with_workers FUNCTION [ARGS...] : a test with the gateway on two workers
  GW_ARGS=(--workers 2)
  "$@"
  GW_ARGS=()
  # the gateway's exit line: two workers, both busy, nothing lost between them
  local last
  last=$(grep '"stats"' "$TP_LOGDIR/espd-gw.out" 2>/dev/null | tail -1)
  [[ -n $last ]] || { fail "espd-gw printed no stats at exit"; return; }
  jq -e '.stats.workers | length == 2' <<<"$last" >/dev/null || fail "espd-gw: stats do not show 2 workers"
  jq -e '.stats.handoff_dropped == 0' <<<"$last" >/dev/null || fail "espd-gw: handoff_dropped = $(jq .stats.handoff_dropped <<<"$last")"
  info "gw workers: $(jq -c '.stats.workers' <<<"$last"), handed over $(jq .stats.handoff_packets <<<"$last")"
  if [[ $1 == t_tunnel_mode ]]; then
    # steering by SPI (eBPF on the SO_REUSEPORT group) delivers each client's datagrams to its
    # owner's socket, and the TUN's queue steering brings replies back to the owner: under 5% of
    # the packets change workers (without the eBPF program, about half of the inbound ones did)
    jq -e '(.stats.handoff_packets * 20) < (.stats.workers | map(.packets) | add)' <<<"$last" >/dev/null ||
      fail "espd-gw handed over $(jq .stats.handoff_packets <<<"$last") of $(jq '.stats.workers | map(.packets) | add' <<<"$last") packets"
    grep -q 'inbound steering: SPI' "$TP_LOGDIR/espd-gw.err" || fail "espd-gw did not attach the SPI steering program"
  fi
}

nat_up() {  # nat_up DIR N : topology (masquerade for the LAN only), espd on gw and c1..cN
  local i
  tp_topo_nat "$2" || { fail "building the NAT topology failed"; return 1; }
  tp_nat_rule nat wan0 || { fail "nft: cannot set the masquerade rule"; return 1; }
  start gw "$(cfg "$1" gw)" "${GW_ARGS[@]}" || return 1
  for ((i = 1; i <= $2; i++)); do start "c$i" "$(cfg "$1" "c$i")" || return 1; done
}

snap() {  # snap HOST LABEL : SIGUSR1; the stats object, tunnels keyed by name, in $TP_LOGDIR/HOST-LABEL.json
  tp_espd_stats "espd-$1" || { fail "$TP_ESPD_WHY"; return 1; }
  printf '%s\n' "$TP_STATS_LINE" |
    jq -c '.stats | .by = (.tunnels | map({key: .name, value: .}) | from_entries) | del(.tunnels)' \
      >"$TP_LOGDIR/$1-$2.json" || { fail "espd-$1: stats line is not JSON"; return 1; }
}
q() { jq -r "$2" "$TP_LOGDIR/$1.json"; }   # q HOST-LABEL JQ : a value from a snapshot

snap_holds() {  # snap_holds HOST LABEL JQ BASE : snap, then whether JQ holds ($b: snapshot HOST-BASE)
  # Polled with tp_wait instead of a fixed sleep; the last snapshot stays for the checks to report on.
  snap "$1" "$2" && jq -e --slurpfile b "$TP_LOGDIR/$1-$4.json" "($3) // false" "$TP_LOGDIR/$1-$2.json" >/dev/null
}

ping_ok() {  # ping_ok FROM ADDR [nettool ping options]
  local from=$1 addr=$2 log
  shift 2
  log=$TP_LOGDIR/ping-$from-${addr//:/_}.log
  tp_ping "$from" "$@" "$addr" >>"$log" 2>&1 || { fail "ping $from -> $addr: $(tail -1 "$log")"; return 1; }
}

route_ok() {  # route_ok HOST ADDR : espd routes ADDR into its TUN
  tp_wait 3 tp_routes_via "$1" "$2" espd0 || fail "$1: no route to $2 via espd0"
}

echo_bg() {  # echo_bg NAME HOST ADDR PORT [udp|tcp] [SECONDS=30] [echo-tag args] : the tagging echo server, ready
  local proto=${5:-udp}
  tp_bg "$1" "$2" "$TP_PY" "$TP_WORK/nettool.py" echo-tag --bind "$3" --port "$4" --proto "$proto" --duration "${6:-30}" "${@:7}"
  tp_wait 3 tp_has_line "$TP_LOGDIR/$1.out" '"listening"' ||
    { fail "echo server $1 on $2 $3:$4/$proto did not start: $(_tp_tail "$TP_LOGDIR/$1.err" 1)"; return 1; }
}

flow_bg() {  # flow_bg NAME HOST nettool-flow-args... : a numbered request stream in the background
  local name=$1 host=$2; shift 2
  tp_bg "$name" "$host" "$TP_PY" "$TP_WORK/nettool.py" flow "$@"
}

flow_wait() {  # flow_wait SECONDS NAME... : wait for the streams to end (killed after SECONDS)
  local t=$1 n; shift
  for n in "$@"; do
    tp_wait_exit "$(tp_pid "$n")" "$t" || { tp_stop "$n" 1; fail "$n: still running after ${t}s"; }
  done
}

FLOW=""
flow_ok() {  # flow_ok NAME [MAXLOST=0] : every request sent, at most MAXLOST unanswered, no foreign reply
  local f=$TP_LOGDIR/$1.out max=${2:-0}
  FLOW=$(tail -1 "$f" 2>/dev/null)
  jq -e . <<<"$FLOW" >/dev/null 2>&1 || { fail "$1: no summary ($(_tp_tail "$TP_LOGDIR/$1.err" 1))"; return 1; }
  jq -e --argjson m "$max" '.sent == .count and .lost <= $m and .foreign == {} and .bad_from == 0 and .malformed == 0' \
    <<<"$FLOW" >/dev/null || { fail "$1: $(jq -c '{sent, count, received, lost, lost_seqs, foreign, bad_from, from, error}' <<<"$FLOW")"; return 1; }
}
fj() { jq -r "$2" "$TP_LOGDIR/$1.out" 2>/dev/null | tail -1; }   # fj NAME JQ : from a flow's summary

iperf_bg() {  # iperf_bg NAME SERVER CLIENT ADDR PORT SECONDS [iperf3 args] : server (one test) + client, in the background
  tp_bg "$1-server" "$2" iperf3 -s -1 -p "$5"
  tp_wait 5 tp_tcp_listening "$2" "$5" || { fail "$1: iperf3 server did not start"; return 1; }
  tp_bg "$1" "$3" timeout $(($6 + 15)) iperf3 -c "$4" -p "$5" -t "$6" --connect-timeout 3000 -J "${@:7}"
}

IPERF=""
iperf_done() {  # iperf_done NAME : wait for the client; IPERF = "N Mbit/s"; sets IPERF_BYTES (received)
  tp_wait_exit "$(tp_pid "$1")" 25 || { tp_stop "$1" 1; fail "$1: iperf3 still running"; return 1; }
  tp_stop "$1-server" 2
  IPERF_BYTES=$(jq -r '.end.sum_received.bytes // 0' "$TP_LOGDIR/$1.out" 2>/dev/null || echo 0)
  IPERF=$(jq -r '.end.sum_received.bits_per_second / 1e6 | floor | "\(.) Mbit/s"' "$TP_LOGDIR/$1.out" 2>/dev/null)
  [[ ${IPERF_BYTES:-0} -gt 0 ]] ||
    { fail "$1: iperf3 moved no data ($(jq -r '.error // empty' "$TP_LOGDIR/$1.out" 2>/dev/null))"; return 1; }
}

kdrops() {  # kdrops HOST : the kernel's drop counters that explain loss outside espd's own counters
  local ns; ns=$(tp_ns "$1")
  printf '%s: udp rcvbuf_errors %s sndbuf_errors %s, espd0 tx_dropped %s rx_dropped %s' "$1" \
    $(ip netns exec "$ns" awk '/^Udp:/ { if (!h) { for (i = 1; i <= NF; i++) k[$i] = i; h = 1 } else print $k["RcvbufErrors"], $k["SndbufErrors"] }' /proc/net/snmp) \
    $(ip -n "$ns" -s -j link show dev espd0 2>/dev/null | jq -r '.[0].stats64 | "\(.tx.dropped) \(.rx.dropped)"')
}

tshark_fields() {  # tshark_fields PCAP FILTER FIELDS... : tab-separated lines
  local cap=$1 filter=$2 args=() f; shift 2
  for f in "$@"; do args+=(-e "$f"); done
  tp_tshark -n -r "$cap" -Y "$filter" -T fields "${args[@]}" 2>/dev/null
}

# ------------------------------------------------------------------ tests

t_preflight() {
  local v
  [[ -x $ESPD ]] || { fail "espd binary not found: $ESPD (swift build, or --espd PATH)"; return; }
  v=$("$ESPD" --version 2>&1) || fail "espd --version failed: $v"
  v=${v%%$'\n'*}
  info "$ESPD ($v, built $(date -r "$ESPD" '+%F %T'))"
}

t_configs() {  # every layout this suite uses passes `espd check`; rekey touches one tunnel only
  local d=$TP_LOGDIR
  gen "$d/tunnel" nat --clients 3 --inner 4 || return
  gen "$d/transport" nat --mode transport --clients 3 || return
  gen "$d/shared" nat --mode transport --alias shared --clients 3 || return
  jq -e '[.tunnels[].alias] == ["198.51.100.131", "198.51.100.132", "198.51.100.133"]' "$d/transport/gw.json" >/dev/null ||
    fail "transport: gateway aliases are not .131/.132/.133"
  jq -e '[.tunnels[].alias] | unique == ["198.51.100.130"]' "$d/shared/gw.json" >/dev/null || fail "shared: not one alias"
  cp "$d/tunnel/gw.json" "$d/gw.before.json"
  "$TP_PY" "$CONFIGS" rekey "$d/tunnel" --host c2 --port 4501 >/dev/null || { fail "configs.py rekey failed"; return; }
  jq -e -n --slurpfile a "$d/gw.before.json" --slurpfile b "$d/tunnel/gw.json" \
    '($a[0].tunnels[0] == $b[0].tunnels[0]) and ($a[0].tunnels[2] == $b[0].tunnels[2]) and
     ($a[0].tunnels[1].inbound != $b[0].tunnels[1].inbound) and ($a[0].tunnels[1].outbound != $b[0].tunnels[1].outbound)' \
    >/dev/null || fail "rekey changed more (or less) than tunnel c2 of gw.json"
  jq -e -n --slurpfile g "$d/tunnel/gw.json" --slurpfile c "$d/tunnel/c2.json" \
    '$g[0].tunnels[1].outbound == ($c[0].tunnels[0].inbound[0] | del(.replay_window)) and
     $c[0].tunnels[0].outbound == ($g[0].tunnels[1].inbound[0] | del(.replay_window)) and
     $c[0].listen == ["203.0.113.11:4501"]' >/dev/null || fail "rekey: c2 and gw SAs do not pair up, or c2's port"
  "$TP_PY" "$CONFIGS" check "$d/tunnel" --espd "$ESPD" >/dev/null || fail "espd check rejects the rekeyed configs"
  info "tunnel, transport (3 aliases), shared alias and rekeyed configs pass espd check"
}

# 1. Tunnel mode: three clients with their own inner addresses, everything at once.
t_tunnel_mode() {
  local d=$TP_LOGDIR/cfg i a shares=()
  gen "$d" nat --clients 3 --inner 4 || return
  nat_up "$d" 3 || return
  for i in 1 2 3; do route_ok gw "198.51.100.$((9 + i))"; done
  echo_bg echo gw "$G4" 7000 udp 25 || return
  # TCP paced at 100 Mbit/s per client: three bulk flows at once, below what a debug build forwards
  # on two cores, so that a lost datagram means a fault, not a full queue
  for i in 1 2 3; do iperf_bg "iperf-c$i" gw "c$i" "$G4" $((5200 + i)) 3 -b 100M || return; done
  for i in 1 2 3; do
    a=198.51.100.$((9 + i))
    tp_bg "ping-c$i" "c$i" "$TP_PY" "$TP_WORK/nettool.py" ping -c 40 -i 0.05 -W 1 "$G4"
    flow_bg "flow-c$i" "c$i" --to "$G4" --port 7000 --tag "c$i" --count 150 --interval 0.02 --expect-from "$a" --linger 2
  done
  flow_wait 15 flow-c1 flow-c2 flow-c3 ping-c1 ping-c2 ping-c3
  local bytes=()
  for i in 1 2 3; do iperf_done "iperf-c$i" && bytes[i]=$IPERF_BYTES && shares+=("c$i iperf3 $IPERF"); done
  local nfail=${#T_FAILS[@]}
  for i in 1 2 3; do
    flow_ok "flow-c$i" 0
    grep -q ': 40 sent, 40 received' "$TP_LOGDIR/ping-c$i.out" ||
      fail "ping c$i -> $G4 under load: $(tail -1 "$TP_LOGDIR/ping-c$i.out")"
  done
  ((${#T_FAILS[@]} == nfail)) || fail "kernel drops: $(kdrops gw); $(kdrops c1); $(kdrops c2); $(kdrops c3)"
  # the echo server saw exactly the three inner addresses, each with its own tag only
  local pairs
  pairs=$(jq -r 'select(.event == "request") | "\(.from) \(.text | split(":")[0])"' "$TP_LOGDIR/echo.out" | sort -u | paste -sd,)
  [[ $pairs == "198.51.100.10 c1,198.51.100.11 c2,198.51.100.12 c3" ]] || fail "gateway echo saw (source, tag) pairs: $pairs"
  snap gw after || return
  for i in 1 2 3; do snap "c$i" after || return; done
  local pin pout bin cout cin
  for i in 1 2 3; do
    pin=$(q gw-after ".by.c$i.packets_in") pout=$(q gw-after ".by.c$i.packets_out") bin=$(q gw-after ".by.c$i.bytes_in")
    cout=$(q "c$i-after" '.by.gw.packets_out') cin=$(q "c$i-after" '.by.gw.packets_in')
    # each tunnel's share: what this client sent (minus what the kernel may drop under iperf3 load)
    ((pin >= 190 && pin <= cout && pin * 100 >= cout * 95)) ||
      fail "gateway tunnel c$i: packets_in $pin, but c$i sent $cout (expected >= 190, within 95%)"
    ((cin <= pout && cin >= 190)) || fail "gateway tunnel c$i: packets_out $pout, but c$i received $cin"
    ((bin >= ${bytes[i]:-0})) || fail "gateway tunnel c$i: bytes_in $bin < the ${bytes[i]:-?} bytes iperf3 received from c$i"
    [[ $(q "c$i-after" '.drops.unknown_spi + .drops.auth_failed + .drops.selector_mismatch') == 0 ]] ||
      fail "c$i drops: $(q "c$i-after" '.drops | with_entries(select(.value > 0))' | tr -d ' \n')"
    shares+=("gw tunnel c$i: $pin pkts/$((bin / 1048576)) MiB in, $pout pkts out")
  done
  [[ $(q gw-after '.drops.unknown_spi + .drops.auth_failed + .drops.selector_mismatch + .drops.no_peer') == 0 ]] ||
    fail "gateway drops: $(q gw-after '.drops | with_entries(select(.value > 0))' | tr -d ' \n')"
  [[ $(q gw-after '[.by[].peer] | unique | length') == 3 ]] || fail "gateway peers not distinct: $(q gw-after '[.by[].peer]' | tr -d ' \n')"
  local sh
  for sh in "${shares[@]}"; do info "$sh"; done
  info "ping 3 x 40/40 under load; UDP 3 x 150/150, each reply naming its own client; peers $(q gw-after '[.by[].peer] | join(" ")')"
  stop c1; stop c2; stop c3; stop gw
}

# 2. Transport mode, one alias per client on the gateway, identical inner flows on every client.
t_transport_alias() {
  local d=$TP_LOGDIR/cfg i
  gen "$d" nat --mode transport --clients 3 || return
  nat_up "$d" 3 || return
  for i in 1 2 3; do route_ok "c$i" "$G4"; route_ok gw "198.51.100.$((130 + i))"; done
  echo_bg echo-udp gw "$G4" 1701 udp 25 || return
  echo_bg echo-tcp gw "$G4" 1701 tcp 25 || return
  for i in 1 2 3; do  # all at once: udp 198.51.100.50:1701 -> 198.51.100.1:1701, and tcp on the same ports
    flow_bg "udp-c$i" "c$i" --to "$G4" --port 1701 --bind "$TCLIENT" --sport 1701 --tag "c$i" --count 150 \
      --interval 0.02 --expect-from "198.51.100.$((130 + i)):1701" --linger 2
    flow_bg "tcp-c$i" "c$i" --proto tcp --to "$G4" --port 1701 --bind "$TCLIENT" --sport 1701 --tag "c$i" \
      --count 100 --interval 0.02 --expect-from "198.51.100.$((130 + i)):1701" --linger 2
  done
  flow_wait 15 udp-c1 udp-c2 udp-c3 tcp-c1 tcp-c2 tcp-c3
  for i in 1 2 3; do flow_ok "udp-c$i" 0; flow_ok "tcp-c$i" 0; done
  local pairs want="198.51.100.131:1701 c1,198.51.100.132:1701 c2,198.51.100.133:1701 c3"
  pairs=$(jq -r 'select(.event == "request") | "\(.from):\(.port) \(.text | split(":")[0])"' "$TP_LOGDIR/echo-udp.out" | sort -u | paste -sd,)
  [[ $pairs == "$want" ]] || fail "UDP service saw (source, tag) pairs: $pairs (want $want)"
  pairs=$(jq -r 'select(.event == "request") | "\(.from):\(.port) \(.text | split(":")[0])"' "$TP_LOGDIR/echo-tcp.out" | sort -u | paste -sd,)
  [[ $pairs == "$want" ]] || fail "TCP service saw (source, tag) pairs: $pairs (want $want)"
  # bulk TCP through the three aliases at once
  local rates=()
  for i in 1 2 3; do iperf_bg "iperf-c$i" gw "c$i" "$G4" $((5200 + i)) 2 || return; done
  for i in 1 2 3; do iperf_done "iperf-c$i" && rates+=("c$i $IPERF"); done
  snap gw after || return
  for i in 1 2 3; do
    (($(q gw-after ".by.c$i.packets_in") >= 250)) || fail "gateway tunnel c$i: packets_in $(q gw-after ".by.c$i.packets_in")"
  done
  [[ $(q gw-after '.drops.unknown_spi + .drops.auth_failed + .drops.no_route + .drops.malformed') == 0 ]] ||
    fail "gateway drops: $(q gw-after '.drops | with_entries(select(.value > 0))' | tr -d ' \n')"
  info "3 x (150 udp + 100 tcp) 198.51.100.50:1701 -> $G4:1701, each seen as its alias, replies only to their own client"
  info "iperf3 tcp via aliases at once: ${rates[*]}"
  stop c1; stop c2; stop c3; stop gw
}

# 3. Transport mode, one shared alias: the learned flow table steers replies by inner source port.
t_shared_alias() {
  local d=$TP_LOGDIR/cfg i alias=198.51.100.130
  gen "$d" nat --mode transport --alias shared --clients 3 || return
  nat_up "$d" 3 || return
  route_ok gw "$alias"
  echo_bg echo gw "$G4" 1701 udp 25 || return
  for i in 1 2 3; do
    flow_bg "udp-c$i" "c$i" --to "$G4" --port 1701 --bind "$TCLIENT" --sport $((1700 + i)) --tag "c$i" --count 150 \
      --interval 0.02 --expect-from "$alias:$((1700 + i))" --linger 2
  done
  flow_wait 12 udp-c1 udp-c2 udp-c3
  for i in 1 2 3; do flow_ok "udp-c$i" 0; done
  local pairs want="$alias:1701 c1,$alias:1702 c2,$alias:1703 c3"
  pairs=$(jq -r 'select(.event == "request") | "\(.from):\(.port) \(.text | split(":")[0])"' "$TP_LOGDIR/echo.out" | sort -u | paste -sd,)
  [[ $pairs == "$want" ]] || fail "UDP service saw (source, tag) pairs: $pairs (want $want)"
  # a reply to a port no client ever used, and ICMP (no ports): no tunnel, counted no_route
  snap gw before || return
  for i in 1 2 3; do snap "c$i" before || return; done
  for i in 1 2 3; do
    tp_bg "sink-c$i" "c$i" "$TP_PY" "$TP_WORK/nettool.py" udp-server --bind "$TCLIENT" --port 1799 --count 1 --timeout 2
  done
  for i in 1 2 3; do tp_wait 3 tp_udp_bound "c$i" 1799 || fail "sink on c$i did not start"; done
  tp_py gw udp-client --to "$alias" --port 1799 --sport 1790 --payload stray --count 5 --no-echo >/dev/null 2>&1
  tp_ping gw -c 3 -i 0.05 -W 0.3 "$alias" >"$TP_LOGDIR/ping-unrouted.log" 2>&1 &&
    fail "ping $alias from the gateway got a reply (ICMP has no ports: it cannot be steered)"
  for i in 1 2 3; do
    tp_wait_exit "$(tp_pid "sink-c$i")" 4
    grep -q '"datagram"' "$TP_LOGDIR/sink-c$i.out" && fail "c$i received a reply to port 1799, which it never used"
  done
  snap gw after || return
  for i in 1 2 3; do snap "c$i" after || return; done
  local nr
  nr=$(($(q gw-after .drops.no_route) - $(q gw-before .drops.no_route)))
  ((nr >= 8)) || fail "gateway no_route went up by $nr, expected >= 8 (5 datagrams + 3 pings)"
  for i in 1 2 3; do
    [[ $(q "c$i-after" .decapsulated) == "$(q "c$i-before" .decapsulated)" ]] ||
      fail "c$i decapsulated something after the stray replies"
    [[ $(q gw-after ".by.c$i.packets_out") == "$(q gw-before ".by.c$i.packets_out")" ]] ||
      fail "gateway sent stray packets into tunnel c$i"
  done
  info "flows 130:1701/1702/1703 -> c1/c2/c3, 3 x 150 replies each to its own client; port 1799 and ICMP: no_route +$nr, delivered to nobody"
  stop c1; stop c2; stop c3; stop gw
}

# 4. NAT rebinding: the NAT remaps every client mid-flow.
t_rebinding() {
  local d=$TP_LOGDIR/cfg i cap
  gen "$d" nat --clients 3 --inner 4 || return
  tp_topo_nat 3 || { fail "building the NAT topology failed"; return; }
  tp_nat_rule nat wan0 || { fail "nft: cannot set the masquerade rule"; return; }
  tp_capture_start ul gw ul0 "udp port 4500" || { fail "capture on the gateway's underlay did not start"; return; }
  start gw "$(cfg "$d" gw)" "${GW_ARGS[@]}" || return
  for i in 1 2 3; do start "c$i" "$(cfg "$d" "c$i")" || return; done
  for i in 1 2 3; do ping_ok "c$i" "$G4" -c 1; done
  snap gw before || return
  echo_bg echo gw "$G4" 7000 udp 25 || return
  for i in 1 2 3; do
    flow_bg "flow-c$i" "c$i" --to "$G4" --port 7000 --tag "c$i" --count 200 --interval 0.02 \
      --expect-from "198.51.100.$((9 + i))" --linger 2
  done
  sleep 1.5
  local t_remap
  t_remap=$(date +%s.%N)
  tp_nat_rule nat wan0 40000-40100 || fail "nft: cannot change the masquerade rule"
  tp_exec nat conntrack -F >/dev/null 2>&1 || fail "conntrack -F failed in the NAT namespace"
  flow_wait 15 flow-c1 flow-c2 flow-c3
  snap gw after || return
  tp_capture_stop ul; cap=$TP_CAPTURE
  local lost=()
  for i in 1 2 3; do
    flow_ok "flow-c$i" 2   # at most the replies already in flight to the old mapping when it vanished
    lost+=("c$i $(fj "flow-c$i" .lost)")
  done
  tshark_fields "$cap" "esp" frame.number frame.time_epoch ip.src udp.srcport ip.dst udp.dstport esp.spi esp.sequence \
    >"$TP_LOGDIR/esp.tsv"
  local summary=()
  for i in 1 2 3; do
    local old new oldp newp ch spi_in spi_out res
    old=$(q gw-before ".by.c$i.peer") new=$(q gw-after ".by.c$i.peer") ch=$(q gw-after ".by.c$i.endpoint_changes")
    oldp=${old##*:} newp=${new##*:}
    [[ ${new%:*} == "$NAT" && ${old%:*} == "$NAT" ]] || { fail "c$i: gateway peer $old -> $new, expected $NAT on both"; continue; }
    ((newp >= 40000 && newp <= 40100)) || fail "c$i: gateway peer port after the remap is $newp, not in 40000-40100"
    ((ch >= 1)) || fail "c$i: endpoint_changes = $ch after the remap"
    spi_in=$(jq -r ".hosts.gw.tunnels[$((i - 1))].spi_in" "$d/scenario.json")
    spi_out=$(jq -r ".hosts.gw.tunnels[$((i - 1))].spi_out" "$d/scenario.json")
    # after the first packet from the new port: nothing to the old port; and how soon the new port got a reply
    res=$(awk -F'\t' -v nat="$NAT" -v gw="$GW" -v oldp="$oldp" -v newp="$newp" -v si="$spi_in" -v so="$spi_out" -v tr="$t_remap" '
      tolower($7) == si && $3 == nat && $4 == newp && !first { first = $1; tfirst = $2 }
      tolower($7) == so && $3 == gw && $5 == nat && $6 == oldp {
        if (first) { stale++; if (!stale1) stale1 = $1 } else if ($2 >= tr) between++ }
      tolower($7) == so && $3 == gw && $5 == nat && $6 == newp && first && !reply { reply = $1; treply = $2 }
      END { printf "%s %d %d %s %.2f %s\n", first ? first : "none", stale, between, stale1 ? stale1 : "-",
            (reply ? (treply - tfirst) * 1000 : -1), reply ? reply : "none" }' "$TP_LOGDIR/esp.tsv")
    read -r first stale between stale1 resume_ms reply <<<"$res"
    [[ $first != none ]] || { fail "c$i: no ESP from $NAT:$newp in the capture"; continue; }
    ((stale == 0)) || fail "c$i: $stale ESP packets to the stale $NAT:$oldp after the first packet from :$newp (frame $first), first at frame $stale1"
    [[ $reply != none ]] || fail "c$i: nothing sent to the new port $newp"
    awk -v m="$resume_ms" 'BEGIN { exit !(m >= 0 && m <= 200) }' ||
      fail "c$i: the first reply to the new port left ${resume_ms} ms after the first packet from it (want <= 200)"
    summary+=("c$i $oldp->$newp (endpoint_changes $ch; replied ${resume_ms} ms after its first packet from the new port; $between sent to the old port after the remap began, none after the new port was seen)")
  done
  local x
  for x in "${summary[@]}"; do info "$x"; done
  info "replies lost across the remap: ${lost[*]} (at most the replies in flight to the vanished mapping)"
  stop c1; stop c2; stop c3; stop gw
}

# 5. Forgery: a bad ICV and replays of real packets, from addresses that are not the peer.
t_forgery() {
  local d=$TP_LOGDIR/cfg cap evil=192.0.2.66 spi_in
  gen "$d" nat --clients 3 --inner 4 || return
  tp_topo_nat 3 || { fail "building the NAT topology failed"; return; }
  tp_nat_rule nat wan0 || { fail "nft: cannot set the masquerade rule"; return; }
  tp_addr nat wan0 "$evil/24" || { fail "cannot add $evil to the NAT's outside"; return; }
  tp_capture_start real gw ul0 "udp port 4500" || { fail "capture on the gateway's underlay did not start"; return; }
  start gw "$(cfg "$d" gw)" "${GW_ARGS[@]}" || return
  start c1 "$(cfg "$d" c1)" || return
  start c2 "$(cfg "$d" c2)" || return
  start c3 "$(cfg "$d" c3)" || return
  ping_ok c1 "$G4" -c 5 -i 0.05
  ping_ok c2 "$G4" -c 2 -i 0.05
  ping_ok c3 "$G4" -c 2 -i 0.05
  tp_capture_stop real; cap=$TP_CAPTURE
  spi_in=$(jq -r '.hosts.gw.tunnels[0].spi_in' "$d/scenario.json")
  tshark_fields "$cap" "esp && ip.dst == $GW" esp.spi esp.sequence udp.payload |
    awk -F'\t' -v s="$spi_in" 'tolower($1) == s' >"$TP_LOGDIR/c1-esp.tsv"
  local n maxseq last p1 p2 p3
  n=$(wc -l <"$TP_LOGDIR/c1-esp.tsv")
  ((n >= 5)) || { fail "only $n ESP packets of c1 captured"; return; }
  maxseq=$(cut -f2 "$TP_LOGDIR/c1-esp.tsv" | sort -n | tail -1)
  last=$(tail -1 "$TP_LOGDIR/c1-esp.tsv" | cut -f3 | tr -d ':')
  p1=$(sed -n 1p "$TP_LOGDIR/c1-esp.tsv" | cut -f3 | tr -d ':')
  p2=$(sed -n 2p "$TP_LOGDIR/c1-esp.tsv" | cut -f3 | tr -d ':')
  p3=$(sed -n 3p "$TP_LOGDIR/c1-esp.tsv" | cut -f3 | tr -d ':')
  snap gw before || return
  tp_capture_start forged gw ul0 || { fail "second capture did not start"; return; }
  # (a) a real packet of c1, its last byte (ICV) flipped, with sequence numbers never seen and far
  #     ahead of the window (a forgery that moved the window would lock c1 out): auth_failed
  tp_py nat send-esp --bind "$evil" --sport 4500 --to "$GW" --hex "$last" --seq $((maxseq + 5000)) --flip-last --count 3 \
    >"$TP_LOGDIR/forge-icv.log" 2>&1 || fail "send-esp (bad ICV) failed: $(tail -1 "$TP_LOGDIR/forge-icv.log")"
  # (b) exact copies of three delivered packets from another address, (c) two from the NAT's own address
  #     on another port: replayed
  tp_py nat send-esp --bind "$evil" --sport 4500 --to "$GW" --hex "$p1" --hex "$p2" --hex "$p3" \
    >"$TP_LOGDIR/forge-replay.log" 2>&1 || fail "send-esp (replay) failed: $(tail -1 "$TP_LOGDIR/forge-replay.log")"
  tp_py nat send-esp --bind "$NAT" --sport 5555 --to "$GW" --hex "$p1" --hex "$last" \
    >"$TP_LOGDIR/forge-replay2.log" 2>&1 || fail "send-esp (replay from $NAT:5555) failed"
  # until all eight forgeries are counted (at most 3 s); the checks below say what was not
  tp_wait 3 snap_holds gw after '.by.c1.drops.auth_failed - $b[0].by.c1.drops.auth_failed >= 3 and .by.c1.drops.replayed - $b[0].by.c1.drops.replayed >= 5' before ||
    [[ -s $TP_LOGDIR/gw-after.json ]] || return
  local pb pa cb ca da db ra rb
  pb=$(q gw-before .by.c1.peer) pa=$(q gw-after .by.c1.peer)
  cb=$(q gw-before .by.c1.endpoint_changes) ca=$(q gw-after .by.c1.endpoint_changes)
  db=$(q gw-before .by.c1.drops.auth_failed) da=$(q gw-after .by.c1.drops.auth_failed)
  rb=$(q gw-before .by.c1.drops.replayed) ra=$(q gw-after .by.c1.drops.replayed)
  [[ $pa == "$pb" ]] || fail "a forgery moved c1's endpoint: $pb -> $pa"
  [[ $ca == "$cb" ]] || fail "endpoint_changes went $cb -> $ca"
  ((da - db == 3)) || fail "tunnel c1 auth_failed went up by $((da - db)), expected 3"
  ((ra - rb == 5)) || fail "tunnel c1 replayed went up by $((ra - rb)), expected 5"
  (($(q gw-after .drops.auth_failed) - $(q gw-before .drops.auth_failed) == 3)) || fail "global auth_failed did not go up by 3"
  [[ $(q gw-after .by.c2.peer) == "$(q gw-before .by.c2.peer)" ]] || fail "c2's endpoint moved"
  [[ $(q gw-after .by.c3.peer) == "$(q gw-before .by.c3.peer)" ]] || fail "c3's endpoint moved"
  # the tunnel keeps working both ways, with the window where the real traffic left it
  ping_ok c1 "$G4" -c 5 -i 0.05
  ping_ok gw 198.51.100.10 -c 3 -i 0.05
  ping_ok c2 "$G4" -c 2 -i 0.05
  ping_ok c3 "$G4" -c 2 -i 0.05
  snap gw end || return
  [[ $(q gw-end '.drops.outside_window') == 0 ]] || fail "real packets dropped outside_window after the forgeries"
  [[ $(q gw-end .by.c1.peer) == "$pb" ]] || fail "c1's endpoint is $(q gw-end .by.c1.peer) after the forgeries, was $pb"
  tp_capture_stop forged; cap=$TP_CAPTURE
  n=$(tp_tshark -n -r "$cap" -Y "ip.src == $GW && (ip.dst == $evil || udp.dstport == 5555)" 2>/dev/null | wc -l)
  ((n == 0)) || fail "the gateway sent $n packets to a forger ($evil or $NAT:5555)"
  info "3 bad-ICV (seq $((maxseq + 5000))+) from $evil:4500 -> auth_failed +$((da - db)); 5 replays from $evil:4500 and $NAT:5555 -> replayed +$((ra - rb)); peer stays $pa; nothing sent to the forgers; c1 still works both ways"
  stop c1; stop c2; stop c3; stop gw
}

# 6. A client restarts behind the same NAT (new SAs, new port); the gateway takes them by SIGHUP.
t_client_restart() {
  local d=$TP_LOGDIR/cfg i cap
  gen "$d" nat --clients 3 --inner 4 || return
  tp_topo_nat 3 || { fail "building the NAT topology failed"; return; }
  tp_nat_rule nat wan0 || { fail "nft: cannot set the masquerade rule"; return; }
  tp_capture_start ul gw ul0 "udp port 4500 or udp port 4501" || { fail "capture did not start"; return; }
  start gw "$(cfg "$d" gw)" "${GW_ARGS[@]}" || return
  for i in 1 2 3; do start "c$i" "$(cfg "$d" "c$i")" || return; done
  for i in 1 2 3; do ping_ok "c$i" "$G4" -c 1; done
  snap gw before || return
  echo_bg echo-gw gw "$G4" 7000 udp 30 || return
  echo_bg echo-c3 c3 198.51.100.12 7000 udp 30 || return
  # c2 -> gateway and c3 -> gateway (client-initiated), gateway -> c3 (gateway-initiated: needs the
  # learned peer of c3 to survive the reload)
  flow_bg flow-c2 c2 --to "$G4" --port 7000 --tag c2 --count 500 --interval 0.02 --expect-from 198.51.100.11 --linger 2
  flow_bg flow-c3 c3 --to "$G4" --port 7000 --tag c3 --count 500 --interval 0.02 --expect-from 198.51.100.12 --linger 2
  flow_bg flow-gw-c3 gw --to 198.51.100.12 --port 7000 --tag gw --count 500 --interval 0.02 --expect-from "$G4" --linger 2
  sleep 1
  # a broken file first: the reload must fail, change nothing, and stop nothing
  cp "$(cfg "$d" gw)" "$d/gw.good"
  head -c 300 "$d/gw.good" >"$d/gw.broken" && mv "$d/gw.broken" "$(cfg "$d" gw)"
  if tp_espd_reload espd-gw 5; then fail "a truncated config reloaded: $TP_RELOAD_LINE"
  elif [[ $TP_RELOAD_LINE != *"reload failed"* ]]; then fail "$TP_ESPD_WHY"; fi
  mv "$d/gw.good" "$(cfg "$d" gw)"
  # c1 goes down, comes back with new SAs on a new port
  stop c1
  "$TP_PY" "$CONFIGS" rekey "$d" --host c1 --port 4501 >"$TP_LOGDIR/rekey.log" 2>&1 || { fail "rekey: $(tail -1 "$TP_LOGDIR/rekey.log")"; return; }
  tp_espd_reload espd-gw 5 || fail "reload: $TP_ESPD_WHY"
  local reload_ms=$TP_RELOAD_MS
  # the gateway talks to c1 before c1 is back (it cannot know c1's new port yet)
  tp_ping gw -c 1 -W 0.3 198.51.100.10 >/dev/null 2>&1
  start c1 "$(cfg "$d" c1)" || return
  ping_ok c1 "$G4" -c 3 -i 0.05
  ping_ok gw 198.51.100.10 -c 2 -i 0.05
  flow_wait 20 flow-c2 flow-c3 flow-gw-c3
  flow_ok flow-c2 0
  flow_ok flow-c3 0
  flow_ok flow-gw-c3 0
  snap gw after || return
  snap c2 after || return
  snap c3 after || return
  local np=$(q gw-after .by.c1.peer) op=$(q gw-before .by.c1.peer)
  [[ $np != "$op" && $np == "$NAT:"* ]] || fail "gateway's c1 peer $op -> $np: expected a new port on $NAT"
  for i in 2 3; do
    [[ $(q gw-after ".by.c$i.peer") == "$(q gw-before ".by.c$i.peer")" ]] ||
      fail "c$i's peer moved across the reload: $(q gw-before ".by.c$i.peer") -> $(q gw-after ".by.c$i.peer")"
    (($(q gw-after ".by.c$i.packets_in") > $(q gw-before ".by.c$i.packets_in") + 400)) ||
      fail "gateway tunnel c$i counters did not carry over the reload ($(q gw-before ".by.c$i.packets_in") -> $(q gw-after ".by.c$i.packets_in"))"
    [[ $(q gw-after ".by.c$i.endpoint_changes") == 0 ]] || fail "gateway tunnel c$i: endpoint_changes $(q gw-after ".by.c$i.endpoint_changes")"
    [[ $(q "c$i-after" '.drops.replayed + .drops.outside_window + .drops.auth_failed + .drops.unknown_spi') == 0 ]] ||
      fail "c$i drops after the gateway's reload (sequence numbers restarted?): $(q "c$i-after" '.drops | with_entries(select(.value > 0))' | tr -d ' \n')"
  done
  # (no_peer is allowed: the gateway holds c1's traffic until c1, whose SAs are all new, speaks)
  [[ $(q gw-after '.drops.replayed + .drops.outside_window + .drops.auth_failed') == 0 ]] ||
    fail "gateway drops: $(q gw-after '.drops | with_entries(select(.value > 0))' | tr -d ' \n')"
  tp_capture_stop ul; cap=$TP_CAPTURE
  # where did the gateway send c1's traffic between the reload and c1's first packet from the new port?
  local newspi stale
  newspi=$(jq -r '.hosts.gw.tunnels[0].spi_out' "$d/scenario.json")
  stale=$(tshark_fields "$cap" "esp && ip.src == $GW && udp.dstport == ${op##*:}" esp.spi | tr 'A-F' 'a-f' | grep -c "^$newspi$")
  [[ $stale == 0 ]] || fail "$stale packet(s) with c1's new SA went to its old NAT port ${op##*:} before c1 spoke"
  info "reload ${reload_ms} ms (a truncated file: 'reload failed', nothing changed); c1 $op -> $np with new SAs; nothing sent to its old port ${op##*:} before c1 spoke"
  info "c2 -> gw $(fj flow-c2 .received)/$(fj flow-c2 .sent), c3 -> gw $(fj flow-c3 .received)/$(fj flow-c3 .sent), gw -> c3 $(fj flow-gw-c3 .received)/$(fj flow-gw-c3 .sent) answered across the restart (longest round trip $(jq -rs 'map(.rtt_ms_max) | max' "$TP_LOGDIR"/flow-c2.out "$TP_LOGDIR"/flow-c3.out "$TP_LOGDIR"/flow-gw-c3.out) ms); c2, c3 peers and counters kept"
  stop c1; stop c2; stop c3; stop gw
}

# 6b. The restart of item 6 with one shared alias (L2TP/IPsec behind one NAT): the gateway (the LNS)
# sends to the other clients on flows it learned from them; the reload must not make it forget them.
# The clients speak once and then only listen, so that nothing but the reload can change the flows.
t_reload_shared_alias() {
  local d=$TP_LOGDIR/cfg i alias=198.51.100.130 n=100
  gen "$d" nat --mode transport --alias shared --clients 3 || return
  nat_up "$d" 3 || return
  # each client says hello (udp 198.51.100.50:170i -> 198.51.100.1:180i), then logs what comes back
  for i in 1 2 3; do
    echo_bg "sink-c$i" "c$i" "$TCLIENT" $((1700 + i)) udp 20 --hello "$G4:$((1800 + i))" --silent || return
  done
  # the gateway learns each client's flow from its hello: wait until all three are in
  tp_wait 3 snap_holds gw before '[.by.c1, .by.c2, .by.c3] | all(.packets_in >= 1)' before ||
    { fail "the gateway did not get all three hellos: $(jq -c '[.by[] | {name, packets_in}]' "$TP_LOGDIR/gw-before.json" 2>/dev/null)"; return; }
  # gateway-initiated streams to c2 and c3 (20/s for 5 s), each from the port its client said hello to
  for i in 2 3; do
    tp_bg "send-gw-c$i" gw "$TP_PY" "$TP_WORK/nettool.py" udp-client --to "$alias" --port $((1700 + i)) \
      --sport $((1800 + i)) --payload "gw-c$i" --count $n --no-echo
  done
  sleep 1.5
  stop c1
  "$TP_PY" "$CONFIGS" rekey "$d" --host c1 --port 4501 >"$TP_LOGDIR/rekey.log" 2>&1 || { fail "rekey: $(tail -1 "$TP_LOGDIR/rekey.log")"; return; }
  tp_espd_reload espd-gw 5 || fail "reload: $TP_ESPD_WHY"
  local reload_ms=$TP_RELOAD_MS
  start c1 "$(cfg "$d" c1)" || return
  flow_wait 15 send-gw-c2 send-gw-c3
  sleep 0.3
  snap gw after || return
  local nr=$(($(q gw-after .drops.no_route) - $(q gw-before .drops.no_route))) got=() g
  for i in 2 3; do
    g=$(jq -r 'select(.event == "request") | .text' "$TP_LOGDIR/sink-c$i.out" | grep -cx "gw-c$i")
    got[i]=$g
    ((g == n)) || fail "c$i received $g of the gateway's $n datagrams across c1's restart and the reload"
  done
  ((nr == 0)) || fail "the gateway dropped $nr of its own datagrams as no_route after the reload: the learned flows of c2 and c3 were forgotten"
  info "reload ${reload_ms} ms; gateway -> c2 ${got[2]}/$n, gateway -> c3 ${got[3]}/$n delivered across c1's restart, by flows learned once before it"
  stop c1; stop c2; stop c3; stop gw
}

# 7. The gateway with 10,000 tunnels, traffic from three of them.
t_scale() {
  local d=$TP_LOGDIR/cfg base=$TP_LOGDIR/base n=10000 i pid t0 t_run="" t_routes="" t_ready="" now routes
  "$TP_PY" "$CONFIGS" many --out "$d" --tunnels $n --clients 3 >"$d.gen.log" 2>&1 || { fail "configs.py many: $(tail -1 "$d.gen.log")"; return; }
  "$TP_PY" "$CONFIGS" many --out "$base" --tunnels 3 --clients 3 >"$base.gen.log" 2>&1 || { fail "configs.py many (3)"; return; }
  local size=$(($(stat -c %s "$(cfg "$d" gw)") / 1024))
  tp_topo_nat 3 || { fail "building the NAT topology failed"; return; }
  tp_nat_rule nat wan0 || { fail "nft: cannot set the masquerade rule"; return; }
  # baseline: the same gateway with 3 tunnels
  start gw "$(cfg "$base" gw)" "${GW_ARGS[@]}" || return
  sleep 0.3
  read -r rss3 hwm3 <<<"$(tp_proc_mem "$(tp_pid espd-gw)")"
  stop gw || return
  # 10,000 tunnels: ready = `running` logged, TUN up, port bound, all 10,000 routes in the kernel
  t0=$(date +%s%N)
  tp_bg espd-gw gw "$ESPD" run --config "$(cfg "$d" gw)"
  pid=$TP_BG_PID
  while :; do
    now=$((($(date +%s%N) - t0) / 1000000))
    tp_alive "$pid" || { fail "espd exited at start: $(_tp_tail "$TP_LOGDIR/espd-gw.err" 2)"; return; }
    [[ -z $t_run ]] && grep -q ' running' "$TP_LOGDIR/espd-gw.err" && t_run=$now
    if [[ -z $t_routes ]]; then
      routes=$(ip -n "$(tp_ns gw)" -6 route show dev espd0 2>/dev/null | grep -c '^2001:db8:1::')
      ((routes == n)) && t_routes=$now
    fi
    if [[ -n $t_run && -n $t_routes ]] && tp_link_up gw espd0 && tp_udp_bound gw 4500; then t_ready=$now; break; fi
    ((now > 60000)) && { fail "not ready after 60 s: running=${t_run:-no}, routes $routes/$n"; return; }
    sleep 0.05
  done
  read -r rss hwm <<<"$(tp_proc_mem "$pid")"
  for i in 1 2 3; do start "c$i" "$(cfg "$d" "c$i")" || return; done
  echo_bg echo gw "$G6" 7000 udp 25 || return
  local inner=()
  for i in 1 2 3; do
    inner[i]=$(jq -r ".hosts.c$i.inner6" "$d/scenario.json")
    ping_ok "c$i" "$G6" -c 3 -i 0.05
    flow_bg "flow-c$i" "c$i" --to "$G6" --port 7000 --tag "c$i" --count 100 --interval 0.02 --expect-from "${inner[i]}" --linger 2
  done
  flow_wait 12 flow-c1 flow-c2 flow-c3
  for i in 1 2 3; do flow_ok "flow-c$i" 0; ping_ok gw "${inner[i]}" -c 2 -i 0.05; done
  # a configured tunnel that never heard from its peer: dropped as no_peer, no crash
  tp_ping gw -c 1 -W 0.3 "$(sc "$d" .hosts.gw.silent_example)" >/dev/null 2>&1 && fail "a silent tunnel answered"
  snap gw after || return
  [[ $(q gw-after '.by | length') == "$n" ]] || fail "stats list $(q gw-after '.by | length') tunnels, expected $n"
  for i in 1 2 3; do
    (($(q gw-after ".by.c$i.packets_in") >= 103)) || fail "gateway tunnel c$i: packets_in $(q gw-after ".by.c$i.packets_in")"
  done
  (($(q gw-after .drops.no_peer) >= 1)) || fail "the ping into a silent tunnel was not counted no_peer"
  [[ $(q gw-after '[.by[] | select(.packets_in > 0)] | length') == 3 ]] || fail "traffic on more than the 3 real tunnels"
  read -r rss2 hwm2 <<<"$(tp_proc_mem "$pid")"
  # reload the unchanged 10,000-tunnel file under a steady stream from c2: nothing may be lost (the
  # datagrams wait in the socket while the loop swaps tables); the longest round trip is the pause
  local reload_ms="failed"
  flow_bg flow-reload c2 --to "$G6" --port 7000 --tag c2r --count 3000 --interval 0.02 --expect-from "${inner[2]}" --linger 3
  sleep 0.5
  tp_espd_reload espd-gw 30 && reload_ms=$TP_RELOAD_MS || fail "reload of $n tunnels: $TP_ESPD_WHY"
  sleep 0.5
  kill -TERM "$(tp_pid flow-reload)" 2>/dev/null
  flow_wait 5 flow-reload
  if flow_ok flow-reload 1000000; then   # misdelivery fails here; loss is judged by scale-10k-reload
    SCALE_RELOAD_LOST=$(fj flow-reload .lost)
    SCALE_RELOAD="SIGHUP reload of $n tunnels took ${reload_ms} ms; c2's 50/s stream across it: $(fj flow-reload .lost) of $(fj flow-reload .sent) lost, longest round trip $(fj flow-reload .rtt_ms_max) ms (how long forwarding paused); $(kdrops gw); $(kdrops c2)"
  fi
  for i in 1 3; do ping_ok "c$i" "$G6" -c 2 -i 0.05; done
  local t_stop=$SECONDS
  stop c1; stop c2; stop c3
  local s0; s0=$(date +%s%N)
  stop gw 20
  local stop_ms=$((($(date +%s%N) - s0) / 1000000))
  local per=$(((rss - rss3) * 1024 / (n - 3)))
  info "$n tunnels ($size KiB config): ready in ${t_ready} ms (running logged at ${t_run} ms, $n routes at ${t_routes} ms)"
  info "VmRSS $((rss / 1024)) MiB, VmHWM $((hwm / 1024)) MiB at start; after traffic VmRSS $((rss2 / 1024)) MiB, VmHWM $((hwm2 / 1024)) MiB; 3-tunnel baseline VmRSS $((rss3 / 1024)) MiB (~$per bytes per tunnel)"
  info "3 clients (tunnels 0, 5000, 9999): 3 x 100 echoed, pings both ways; SIGHUP reload ${reload_ms} ms; SIGTERM to exit ${stop_ms} ms"
  info "binary $(basename "$(dirname "$ESPD")")"
}

SCALE_RELOAD="" SCALE_RELOAD_LOST=""
t_scale_reload() {  # the verdict on the reload measured by scale-10k: other tunnels lose nothing (item 6 at scale)
  [[ -n $SCALE_RELOAD ]] || { fail "not measured (scale-10k did not run or did not get that far)"; return; }
  if ((SCALE_RELOAD_LOST == 0)); then info "$SCALE_RELOAD"; else fail "$SCALE_RELOAD"; fi
}

# ------------------------------------------------------------------ the run

run preflight t_preflight
run configs t_configs
run tunnel-mode t_tunnel_mode
run transport-alias t_transport_alias
run shared-alias t_shared_alias
run rebinding t_rebinding
run forgery t_forgery
run client-restart t_client_restart
run reload-shared-alias t_reload_shared_alias
run tunnel-mode-workers with_workers t_tunnel_mode
run shared-alias-workers with_workers t_shared_alias
run rebinding-workers with_workers t_rebinding
run reload-shared-alias-workers with_workers t_reload_shared_alias
run scale-10k t_scale
run scale-10k-reload t_scale_reload
((LIST)) && exit 0

suite_summary
