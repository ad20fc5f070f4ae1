#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The live tests: `espd run` between network namespaces (veth pairs, a NAT router with nftables
# masquerade), ping and iperf3 through the tunnels, tshark on the underlay, keepalives, shutdown and
# the IKE punt round trip. Every test prints one PASS or FAIL line; the last line is
# "N passed, M failed" and the exit status is 1 if anything failed.
#
# Usage: sudo scripts/netns-test.sh [--espd PATH] [-k REGEX] [--keep] [--list]
#   --espd PATH  the binary (default: $ESPD, else the newer of .build/release/espd and .build/debug/espd)
#   -k REGEX     run only the tests whose name matches (bash regex), e.g. -k 'alg-|tshark'
#   --keep       keep the work dir (configs, logs, captures); it is kept anyway when a test fails
#   --list       print the test names and exit
#
# Namespaces are named espd-t<PID>-<host>; addresses are documentation ranges only (see
# scripts/netns/topology.sh). Only processes this script started are signalled, by PID; the
# namespaces and the work dir are removed on any exit. Needs root; takes about 2 minutes.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

# shellcheck source=netns/harness.sh
source "$ROOT/scripts/netns/harness.sh"
suite_args "$0" 2,16 "$@"

TP_PREFIX=espd-t$$
TP_KEEP=$KEEP
# shellcheck source=netns/topology.sh
source "$ROOT/scripts/netns/topology.sh"
if ((!LIST)); then
  tp_init
  tp_require iperf3 tshark dumpcap conntrack
fi
CONFIGS=$ROOT/scripts/netns/configs.py
RESPONDER=$ROOT/scripts/ike_responder.py

PASSED=0 FAILED=0
T_FAILS=() T_INFO=()



# ------------------------------------------------------------------ helpers

gen() {  # gen DIR pair|nat ARGS... : configs.py, then `espd check` on every config it wrote
  local dir=$1; shift
  "$TP_PY" "$CONFIGS" "$1" --out "$dir" "${@:2}" >"$dir.gen.log" 2>&1 ||
    { fail "configs.py $* failed: $(tail -1 "$dir.gen.log")"; return 1; }
  if [[ -x $ESPD ]]; then
    "$TP_PY" "$CONFIGS" check "$dir" --espd "$ESPD" >"$dir.check.log" 2>&1 ||
      { fail "espd check rejects a generated config: $(head -2 "$dir.check.log" | tr '\n' ' ')"; return 1; }
  fi
}



stop() {  # stop HOST : SIGTERM; must exit 0 within 3 s, print the final stats line, leave no TUN
  local h=$1 n
  n=$(grep -c '^{"stats"' "$TP_LOGDIR/espd-$h.out" 2>/dev/null)
  tp_espd_stop "espd-$h" 3 || { fail "$TP_ESPD_WHY"; return 1; }
  (($(grep -c '^{"stats"' "$TP_LOGDIR/espd-$h.out" 2>/dev/null) > n)) ||
    fail "espd-$h printed no {\"stats\":...} line on stdout at exit"
  if ! tp_wait_no_tun "$h" 1; then
    fail "TUN device left in $h 1 s after exit: $(tp_tun_devices "$h" | paste -sd' ')"
  elif ((TP_TUN_GONE_MS >= 50)); then
    info "$h: TUN gone ${TP_TUN_GONE_MS} ms after exit"
  fi
}

stats() {  # stats HOST : ask for counters (SIGUSR1)
  tp_espd_stats "espd-$1" || fail "$TP_ESPD_WHY"
}

COUNTER=""
counter() {  # counter HOST KEY : COUNTER = a counter of the last stats line (fails when absent)
  COUNTER=$(tp_stat "espd-$1" "$2" 2>"$TP_LOGDIR/stat.err") ||
    { fail "espd-$1 stats: $(head -1 "$TP_LOGDIR/stat.err")"; return 1; }
}

counter_ge() {  # counter_ge HOST KEY MIN
  counter "$1" "$2" || return 1
  [[ $COUNTER =~ ^[0-9]+$ ]] && ((COUNTER >= $3)) || { fail "espd-$1 counter $2 = $COUNTER, expected >= $3"; return 1; }
}

counter_zero_if_present() {  # counter_zero_if_present HOST KEY : a drop counter, when espd has it
  local v
  v=$(tp_stat "espd-$1" "$2" 2>/dev/null) || return 0
  [[ $v == 0 ]] || fail "espd-$1 counter $2 = $v, expected 0"
}

ping_ok() {  # ping_ok FROM ADDR [nettool ping options]
  local from=$1 addr=$2 log
  shift 2
  log=$TP_LOGDIR/ping-$from-${addr//:/_}.log
  tp_ping "$from" "$@" "$addr" >>"$log" 2>&1 || { fail "ping $from -> $addr: $(tail -1 "$log")"; return 1; }
}

route_ok() {  # route_ok HOST ADDR [DEV=espd0] : espd routes ADDR into its TUN
  local dev=${3:-espd0}
  tp_wait 3 tp_routes_via "$1" "$2" "$dev" ||
    fail "$1: no route to $2 via $dev ($(ip -n "$(tp_ns "$1")" -o route get "$2" 2>&1 | head -1))"
}

iperf_ok() {  # iperf_ok NAME SERVER CLIENT ADDR SECONDS [iperf3 args] : records the rate as info
  if tp_iperf "$@"; then info "$1 $TP_IPERF_SUMMARY"; else fail "$1: $TP_IPERF_SUMMARY"; fi
}

iperf_udp_ok() {  # iperf_udp_ok NAME SERVER CLIENT ADDR : UDP at 50 Mbit/s, 1200-byte datagrams, loss <= 10%
  local loss
  iperf_ok "$1" "$2" "$3" "$4" 2 -u -b 50M -l 1200 || return 1
  loss=$(tp_iperf_udp_loss "$1")
  ((loss <= 10)) || fail "$1: ${loss}% of the UDP datagrams lost"
}

# ------------------------------------------------------------------ tests without espd

t_preflight() {
  local v
  [[ -x $ESPD ]] || { fail "espd binary not found: $ESPD (swift build -c release, or --espd PATH)"; return; }
  v=$("$ESPD" --version 2>&1) || fail "espd --version failed: $v"
  v=${v%%$'\n'*}
  info "$ESPD ($v, built $(date -r "$ESPD" '+%F %T'))"
}

t_configs() {
  local d=$TP_LOGDIR alg n
  for alg in aes128gcm16 aes192gcm16 aes256gcm16 chacha20poly1305 aes128-sha256 aes256-sha256 null-sha256 aes128-sha1 aes256-sha1 aes128-sha384 aes256-sha384 aes256-sha512; do
    gen "$d/$alg" pair --alg "$alg" || continue
    # the two ends pair up: a's outbound is b's inbound, with the same key
    jq -e -n --slurpfile a "$d/$alg/a.json" --slurpfile b "$d/$alg/b.json" \
      '$a[0].tunnels[0].outbound == ($b[0].tunnels[0].inbound[0] | del(.replay_window)) and
       $b[0].tunnels[0].outbound == ($a[0].tunnels[0].inbound[0] | del(.replay_window))' >/dev/null ||
      fail "$alg: the SAs of a and b do not match"
  done
  gen "$d/outer6" pair --outer 6 --alg aes256gcm16
  gen "$d/transport" pair --mode transport --inner 4
  gen "$d/full" nat --clients 1 --full-tunnel c1
  gen "$d/nat" nat --clients 2 --keepalive 1 --ike-punt udp:127.0.0.1:4501
  gen "$d/esn" pair --esn
  [[ -x $ESPD ]] || { fail "no espd binary to check the configs with"; return; }
  n=$("$ESPD" keys --config "$(cfg "$d/nat" gw)" --format wireshark 2>&1 | grep -c '^"IPv4"')
  ((n == 4)) || fail "espd keys on the NAT gateway config: $n esp_sa lines, expected 4"
  info "every generated config passes espd check"
}

t_ike_responder() {
  "$TP_PY" "$RESPONDER" --selftest >"$TP_LOGDIR/selftest.log" 2>&1 ||
    fail "ike_responder.py --selftest: $(tr '\n' ' ' <"$TP_LOGDIR/selftest.log")"
}

t_topology_pair() {
  tp_topo_pair || { fail "building the pair topology failed"; return; }
  ping_ok a "$TP_B_OUT4" -c 2
  ping_ok a "$TP_B_OUT6" -c 2
  ping_ok b "$TP_A_OUT4" -c 1 -s 1400
}

t_topology_nat() {
  tp_topo_nat 2 || { fail "building the NAT topology failed"; return; }
  ping_ok c1 "$TP_GW_OUT4" -c 2
  ping_ok c2 "$TP_GW_OUT4" -c 2
  tp_ping gw -c 1 -W 0.5 203.0.113.10 >/dev/null 2>&1 && fail "the gateway reaches 203.0.113.10 without the NAT"
  # both clients from source port 4500 (as espd does): the gateway must see the NAT's address,
  # on two different ports (masquerade remaps the second)
  tp_bg udp gw "$TP_PY" "$TP_WORK/nettool.py" udp-server --bind "$TP_GW_OUT4" --port 4500 --count 2 --timeout 5 --echo
  tp_wait 3 tp_udp_bound gw 4500 || { fail "udp server on the gateway did not start"; return; }
  tp_py c1 udp-client --to "$TP_GW_OUT4" --port 4500 --sport 4500 --payload c1 >/dev/null || fail "c1: no UDP echo from the gateway"
  tp_py c2 udp-client --to "$TP_GW_OUT4" --port 4500 --sport 4500 --payload c2 >/dev/null || fail "c2: no UDP echo from the gateway"
  tp_wait_exit "$(tp_pid udp)" 3
  local srcs ports
  srcs=$(jq -r 'select(.event == "datagram") | .from' "$TP_LOGDIR/udp.out" | sort -u | tr '\n' ' ')
  ports=$(jq -r 'select(.event == "datagram") | .port' "$TP_LOGDIR/udp.out" | sort -u | wc -l)
  [[ $srcs == "$TP_NAT_OUT4 " ]] || fail "the gateway saw sources '$srcs', expected only $TP_NAT_OUT4"
  ((ports == 2)) || fail "the two clients were not given distinct NAT ports"
  tp_exec nat conntrack -L -p udp --dport 4500 >"$TP_LOGDIR/conntrack.txt" 2>&1
  (($(grep -c "dst=$TP_NAT_OUT4 sport=4500" "$TP_LOGDIR/conntrack.txt") == 2)) ||
    fail "conntrack in the NAT namespace does not show both clients masqueraded to $TP_NAT_OUT4"
  info "gateway sees $TP_NAT_OUT4 on ports $(jq -r 'select(.event == "datagram") | .port' "$TP_LOGDIR/udp.out" | paste -sd' ')"
}

# ------------------------------------------------------------------ espd: two namespaces

pair_up() {  # pair_up DIR [espd args...] : topology + espd on a and b + routes
  tp_topo_pair || { fail "building the pair topology failed"; return 1; }
  start a "$(cfg "$1" a)" "${@:2}" || return 1
  start b "$(cfg "$1" b)" "${@:2}" || return 1
}

# tunnel mode, both inner families, ping + iperf3 TCP and UDP; IO = uring|mmsg|"", OUTER = 4|6;
# further arguments go to `espd run` (OFFLOADS=off: every offload switched off)
t_tunnel() {
  local io=$1 outer=$2 alg=$3 d=$TP_LOGDIR/cfg args=("${@:4}")
  [[ -n $io ]] && args+=(--io "$io")
  gen "$d" pair --alg "$alg" --outer "$outer" --inner 4,6 || return
  pair_up "$d" "${args[@]}" || return
  local b4 b6 a4 a6
  a4=$(sc "$d" .hosts.a.inner4) a6=$(sc "$d" .hosts.a.inner6) b4=$(sc "$d" .hosts.b.inner4) b6=$(sc "$d" .hosts.b.inner6)
  route_ok a "$b4"; route_ok a "$b6"; route_ok b "$a4"; route_ok b "$a6"
  ping_ok a "$b4" -c 3
  ping_ok b "$a4" -c 2
  ping_ok a "$b6" -c 3
  ping_ok a "$b4" -c 2 -s 1300
  iperf_ok tcp4 b a "$b4" 2
  iperf_udp_ok udp4 b a "$b4"
  iperf_ok tcp6 b a "$b6" 2
  stats a && stats b
  counter_ge a encapsulated 10; counter_ge a decapsulated 10
  counter_ge b encapsulated 10; counter_ge b decapsulated 10
  counter_zero_if_present a auth_failed; counter_zero_if_present b auth_failed
  counter_zero_if_present a malformed; counter_zero_if_present b malformed
  # one writer per SA (also with --workers): no sequence number is ever sent twice
  counter_zero_if_present a replayed; counter_zero_if_present b replayed
  if [[ $io != mmsg && " ${args[*]} " != *" off "* ]]; then
    # a sends the TCP streams: TSO packets from its TUN cut into segments, sent with UDP GSO;
    # b receives them coalesced (UDP GRO) and writes them to its TUN coalesced (TCP GRO)
    counter_ge a tun_gso_segments 100; counter_ge a udp_gso_sends 10
    counter_ge b udp_gro_datagrams 100; counter_ge b tun_gro_segments 100
    info "offloads: a cut $(tp_stat espd-a tun_gso_segments) segments from $(tp_stat espd-a tun_gso_packets) TUN packets; b took $(tp_stat espd-b udp_gro_datagrams) datagrams in $(tp_stat espd-b udp_gro_receives) receives, wrote $(tp_stat espd-b tun_gro_segments) segments in $(tp_stat espd-b tun_gro_packets) writes"
  elif [[ " ${args[*]} " == *" off "* ]]; then
    local k
    for k in tun_gso_packets udp_gso_sends udp_gro_receives tun_gro_packets; do
      counter a "$k" && [[ $COUNTER == 0 ]] || fail "espd-a counter $k = $COUNTER with every offload off"
    done
  fi
  stop a; stop b
}

t_gso_refused() {  # TUN MTU 1500 over a 1500 underlay: ESP datagrams exceed the route MTU, so the kernel
  # refuses UDP GSO sends (EINVAL); espd must turn GSO off, send those datagrams one by one (IP
  # fragments), and lose nothing
  local d=$TP_LOGDIR/cfg h b4
  gen "$d" pair --inner 4 || return
  for h in a b; do jq '.tun.mtu = 1500' "$(cfg "$d" $h)" >"$d/$h.m" && mv "$d/$h.m" "$(cfg "$d" $h)"; done
  pair_up "$d" || return
  b4=$(sc "$d" .hosts.b.inner4)
  ping_ok a "$b4" -c 2 -s 1400
  iperf_ok tcp4 b a "$b4" 2
  stats a
  counter a udp_gso_refused && [[ $COUNTER == 1 ]] || fail "espd-a udp_gso_refused = $COUNTER, expected 1"
  counter a udp_send_dropped && [[ $COUNTER == 0 ]] || fail "espd-a dropped $COUNTER datagrams when GSO was refused"
  stop a; stop b
}

t_jumbo() {  # TUN MTU 9000 over a 1500 underlay: 8 KB inner packets in IP-fragmented ESP datagrams,
  # with the given `espd run` arguments (packet slots are sized from the MTU, in every loop)
  local d=$TP_LOGDIR/cfg h b4 a4
  gen "$d" pair --inner 4 || return
  for h in a b; do jq '.tun.mtu = 9000' "$(cfg "$d" $h)" >"$d/$h.m" && mv "$d/$h.m" "$(cfg "$d" $h)"; done
  pair_up "$d" "$@" || return
  a4=$(sc "$d" .hosts.a.inner4) b4=$(sc "$d" .hosts.b.inner4)
  ping_ok a "$b4" -c 3 -s 8000
  ping_ok b "$a4" -c 3 -s 8000
  ping_ok a "$b4" -c 2 -s 100
  stats a && stats b
  counter_ge b decapsulated 5; counter_ge a decapsulated 5
  local k
  for k in malformed offload_dropped handoff_dropped; do
    counter_zero_if_present a $k; counter_zero_if_present b $k
  done
  stop a; stop b
}

t_alg() {  # one algorithm: pings (two sizes; CBC padding), iperf3 TCP for a few
  local alg=$1 with_iperf=${2:-0} d=$TP_LOGDIR/cfg
  gen "$d" pair --alg "$alg" --inner 4,6 || return
  pair_up "$d" || return
  route_ok a "$(sc "$d" .hosts.a.remote_ts[0] | cut -d/ -f1)"
  ping_ok a "$(sc "$d" .hosts.b.inner4)" -c 3
  ping_ok a "$(sc "$d" .hosts.b.inner4)" -c 1 -s 1001
  ping_ok b "$(sc "$d" .hosts.a.inner6)" -c 2
  ((with_iperf)) && iperf_ok tcp4 b a "$(sc "$d" .hosts.b.inner4)" 2
  stats a && counter_ge a decapsulated 3
  counter_zero_if_present a auth_failed
  stop a; stop b
}

t_transport() {  # transport mode through the aliases: each side's alias stands for the other
  local d=$TP_LOGDIR/cfg alias_b alias_a b4
  gen "$d" pair --mode transport --inner 4 || return
  pair_up "$d" || return
  alias_b=$(sc "$d" .hosts.a.alias_of_peer)   # on a, stands for b
  alias_a=$(sc "$d" .hosts.b.alias_of_peer)   # on b, stands for a
  b4=$(sc "$d" .hosts.b.inner4)
  route_ok a "$alias_b"; route_ok b "$alias_a"
  # UDP: b echoes; it must see a's datagrams as coming from its alias for a
  tp_bg udp b "$TP_PY" "$TP_WORK/nettool.py" udp-server --port 7000 --count 3 --timeout 10 --echo
  tp_wait 3 tp_udp_bound b 7000 || fail "udp server on b did not start"
  tp_py a udp-client --to "$alias_b" --port 7000 --payload "transport-udp" --count 3 >"$TP_LOGDIR/udp-client.log" 2>&1 ||
    fail "UDP a -> $alias_b:7000: $(tail -1 "$TP_LOGDIR/udp-client.log")"
  tp_wait_exit "$(tp_pid udp)" 2
  local from
  from=$(jq -r 'select(.event == "datagram") | .from' "$TP_LOGDIR/udp.out" 2>/dev/null | sort -u | tr '\n' ' ')
  [[ $from == "$alias_a " ]] || fail "b saw the UDP datagrams from '$from', expected its alias for a ($alias_a)"
  ping_ok a "$alias_b" -c 2
  iperf_ok tcp b a "$alias_b" 2
  iperf_udp_ok udp b a "$alias_b"
  info "b sees a's datagrams from $alias_a (b's own address: $b4)"
  stats a && counter_ge a decapsulated 3 && counter_ge a encapsulated 3
  stop a; stop b
}

t_shutdown() {  # SIGTERM during an iperf3 run: exit 0 within 1 s, no TUN left, routes gone
  local d=$TP_LOGDIR/cfg b4 pid t0 ms
  gen "$d" pair --inner 4 || return
  pair_up "$d" || return
  b4=$(sc "$d" .hosts.b.inner4)
  ping_ok a "$b4" -c 1 || return
  tp_bg iperf-server b iperf3 -s -1 -p 5201
  tp_wait 5 tp_tcp_listening b 5201 || { fail "iperf3 server did not start"; return; }
  tp_bg iperf-client a iperf3 -c "$b4" -p 5201 -t 6 --connect-timeout 3000
  sleep 1.5
  tp_alive "$(tp_pid iperf-client)" || fail "iperf3 was not running when SIGTERM was sent: $(_tp_tail "$TP_LOGDIR/iperf-client.err" 1)"
  pid=$(tp_pid espd-a)
  t0=$(date +%s%N)
  kill -TERM "$pid"
  if tp_wait_exit "$pid" 1; then
    ms=$((($(date +%s%N) - t0) / 1000000))
    ((TP_RC == 0)) || fail "espd exited $TP_RC after SIGTERM: $(_tp_tail "$TP_LOGDIR/espd-a.err" 2)"
    info "exited $TP_RC ${ms} ms after SIGTERM under load"
  else
    fail "espd did not exit within 1 s of SIGTERM during iperf3"
    tp_wait_exit "$pid" 5 || { kill -KILL "$pid"; tp_wait_exit "$pid" 2; }
  fi
  grep -q '^{"stats"' "$TP_LOGDIR/espd-a.out" || fail "no {\"stats\":...} line on stdout at exit"
  if ! tp_wait_no_tun a 1; then
    fail "TUN device left 1 s after exit: $(tp_tun_devices a | paste -sd' ')"
  elif ((TP_TUN_GONE_MS >= 50)); then
    info "TUN gone ${TP_TUN_GONE_MS} ms after exit"
  fi
  tp_link_exists a espd0 && fail "espd0 still exists in a"
  tp_routes_via a "$b4" espd0 && fail "route to $b4 via espd0 still there"
  stop b
}

# ------------------------------------------------------------------ espd: behind the NAT

nat_up() {  # nat_up DIR NCLIENTS : topology + espd on gw and each client
  local i
  tp_topo_nat "$2" || { fail "building the NAT topology failed"; return 1; }
  start gw "$(cfg "$1" gw)" || return 1
  for ((i = 1; i <= $2; i++)); do start "c$i" "$(cfg "$1" "c$i")" || return 1; done
}

t_nat_clients() {  # two clients behind one NAT, both tunnels at once
  local d=$TP_LOGDIR/cfg g4 g6 c1 c2
  gen "$d" nat --clients 2 --inner 4,6 || return
  nat_up "$d" 2 || return
  g4=$(sc "$d" .hosts.gw.inner4) g6=$(sc "$d" .hosts.gw.inner6)
  c1=$(sc "$d" .hosts.c1.inner4) c2=$(sc "$d" .hosts.c2.inner4)
  route_ok c1 "$g4"; route_ok gw "$c1"; route_ok gw "$c2"
  ping_ok c1 "$g4" -c 3
  ping_ok c2 "$g4" -c 3
  ping_ok c1 "$g6" -c 2
  # the gateway learned both NAT'd endpoints from authenticated packets: it can start traffic now
  ping_ok gw "$c1" -c 2
  ping_ok gw "$c2" -c 2
  iperf_ok c1-tcp gw c1 "$g4" 2
  iperf_ok c2-tcp gw c2 "$g4" 2
  tp_exec nat conntrack -L -p udp --dport 4500 >"$TP_LOGDIR/conntrack.txt" 2>&1
  info "NAT ports $(grep -o "dst=$TP_NAT_OUT4 sport=4500 dport=[0-9]*" "$TP_LOGDIR/conntrack.txt" | sed 's/.*dport=//' | paste -sd' ')"
  stats gw && counter_ge gw decapsulated 10 && counter_ge gw encapsulated 10
  counter_zero_if_present gw auth_failed
  stop c1; stop c2; stop gw
}

t_full_tunnel() {  # remote_ts 0.0.0.0/0 on the client: its own ESP must not loop into its TUN
  local d=$TP_LOGDIR/cfg g4 g6 cap
  gen "$d" nat --clients 1 --inner 4,6 --full-tunnel c1 || return
  tp_topo_nat 1 || { fail "building the NAT topology failed"; return; }
  tp_capture_start ul gw ul0 || { fail "capture on the gateway's underlay did not start"; return; }
  start gw "$(cfg "$d" gw)" || return
  start c1 "$(cfg "$d" c1)" || return
  g4=$(sc "$d" .hosts.gw.inner4) g6=$(sc "$d" .hosts.gw.inner6)
  route_ok c1 "$g4"
  route_ok c1 198.51.100.200    # any address without a more specific route goes into the tunnel
  ping_ok c1 "$g4" -c 3
  ping_ok c1 "$g6" -c 2
  # the gateway's outer address is inside 0.0.0.0/0 too: this ping goes through the tunnel
  ping_ok c1 "$TP_GW_OUT4" -c 2
  stats c1 && counter_ge c1 encapsulated 7
  tp_capture_stop ul; cap=$TP_CAPTURE
  local esp_up esp_down plain
  esp_up=$(tp_tshark -n -r "$cap" -Y "esp && ip.src==$TP_NAT_OUT4 && ip.dst==$TP_GW_OUT4 && udp.dstport==4500" 2>/dev/null | wc -l)
  esp_down=$(tp_tshark -n -r "$cap" -Y "esp && ip.src==$TP_GW_OUT4 && ip.dst==$TP_NAT_OUT4 && udp.srcport==4500" 2>/dev/null | wc -l)
  plain=$(tp_tshark -n -r "$cap" -Y "icmp || icmpv6.type==128 || icmpv6.type==129" 2>/dev/null | wc -l)
  ((esp_up >= 7)) || fail "underlay: $esp_up ESP packets client -> gateway, expected >= 7"
  ((esp_down >= 7)) || fail "underlay: $esp_down ESP packets gateway -> client, expected >= 7"
  ((plain == 0)) || fail "underlay: $plain plaintext ICMP echo packets (must all be inside ESP)"
  info "underlay: $esp_up ESP up, $esp_down down, no plaintext ICMP"
  stop c1
  tp_routes_via c1 "$TP_GW_OUT4" eth0 || fail "after espd exit, c1 routes $TP_GW_OUT4 via '$(tp_route_dev c1 "$TP_GW_OUT4")', not eth0"
  stop gw
}

t_keepalive() {  # nat_keepalive_seconds 1 on the client: a 0xFF datagram about every second
  local d=$TP_LOGDIR/cfg cap times n
  gen "$d" nat --clients 1 --inner 4 --keepalive 1 || return
  tp_topo_nat 1 || { fail "building the NAT topology failed"; return; }
  tp_capture_start ul gw ul0 "udp port 4500" || { fail "capture on the gateway's underlay did not start"; return; }
  start gw "$(cfg "$d" gw)" || return
  start c1 "$(cfg "$d" c1)" || return
  sleep 3.5
  stats gw
  tp_capture_stop ul; cap=$TP_CAPTURE
  tp_tshark -n -r "$cap" -Y "udpencap.nat_keepalive && ip.src==$TP_NAT_OUT4 && ip.dst==$TP_GW_OUT4 && udp.dstport==4500" \
    -T fields -e frame.time_relative -e udp.payload >"$TP_LOGDIR/keepalives.txt" 2>/dev/null
  n=$(wc -l <"$TP_LOGDIR/keepalives.txt")
  ((n >= 3 && n <= 6)) || fail "$n keepalives reached the gateway in about 4 s, expected 3-6 (one a second)"
  # counted and dropped: nothing was written to the gateway's TUN
  local rx
  rx=$(ip -n "$(tp_ns gw)" -s -j link show dev espd0 2>/dev/null | jq '.[0].stats64.rx.packets // empty')
  [[ $rx == 0 ]] || fail "the gateway's TUN received ${rx:-?} packets while only keepalives arrived"
  grep -qv $'\tff$' "$TP_LOGDIR/keepalives.txt" && fail "a keepalive payload is not the single byte 0xff"
  times=$(cut -f1 "$TP_LOGDIR/keepalives.txt" | tr '\n' ' ')
  awk -v t="$times" 'BEGIN { n = split(t, a, " "); for (i = 2; i <= n; i++) { d = a[i] - a[i-1];
      if (d < 0.5 || d > 1.6) exit 1 } }' || fail "keepalive intervals are not about 1 s (at $times)"
  info "$n keepalives at ${times% }"
  counter_ge gw keepalive 3
  counter_zero_if_present gw malformed
  stop c1; stop gw
}

t_ike_punt() {  # a datagram with the non-ESP marker goes to the IKE responder and its reply comes back
  local d=$TP_LOGDIR/cfg
  gen "$d" nat --clients 1 --inner 4 --ike-punt udp:127.0.0.1:4501 || return
  tp_topo_nat 1 || { fail "building the NAT topology failed"; return; }
  tp_bg ike gw "$TP_PY" "$RESPONDER" --listen udp:127.0.0.1:4501 --timeout 60
  tp_wait 3 tp_has_line "$TP_LOGDIR/ike.out" '"listening"' || { fail "ike_responder.py did not start: $(_tp_tail "$TP_LOGDIR/ike.err" 2)"; return; }
  start gw "$(cfg "$d" gw)" || return
  tp_py c1 ike-client --to "$TP_GW_OUT4" --port 4500 --timeout 3 >"$TP_LOGDIR/ike-client.log" 2>&1 ||
    fail "IKE round trip: $(tail -1 "$TP_LOGDIR/ike-client.log")"
  local req
  req=$(jq -c 'select(.event == "request")' "$TP_LOGDIR/ike.out" 2>/dev/null | head -1)
  if [[ -z $req ]]; then
    fail "the responder got no punted request ($(jq -r 'select(.event == "ignored") | .reason' "$TP_LOGDIR/ike.out" 2>/dev/null | head -1))"
  else
    jq -e --arg nat "$TP_NAT_OUT4" --arg gw "$TP_GW_OUT4" \
      '.family == 4 and .src == $nat and .dst == $gw and .dport == 4500 and .ike.exchange == 34 and .len == 28' \
      <<<"$req" >/dev/null || fail "punt header/message not as sent: $req"
  fi
  stats gw && counter_ge gw ike 1
  stop gw
}

t_tshark() {  # the underlay carries only ESP in UDP 4500; tshark decrypts it with `espd keys`
  local d=$TP_LOGDIR/cfg cap b4 b6 marker n
  gen "$d" pair --alg aes128gcm16 --inner 4,6 || return
  tp_topo_pair || { fail "building the pair topology failed"; return; }
  tp_capture_start ul a ul0 || { fail "capture on a's underlay did not start"; return; }
  start a "$(cfg "$d" a)" || return
  start b "$(cfg "$d" b)" || return
  b4=$(sc "$d" .hosts.b.inner4) b6=$(sc "$d" .hosts.b.inner6)
  marker="ESPD-PLAINTEXT-MARKER-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
  tp_bg udp b "$TP_PY" "$TP_WORK/nettool.py" udp-server --port 7000 --count 2 --timeout 10 --echo
  tp_wait 3 tp_udp_bound b 7000 || fail "udp server on b did not start"
  tp_py a udp-client --to "$b4" --port 7000 --payload "$marker" --count 2 >"$TP_LOGDIR/udp-client.log" 2>&1 ||
    fail "UDP with the marker a -> $b4: $(tail -1 "$TP_LOGDIR/udp-client.log")"
  ping_ok a "$b4" -c 2
  ping_ok a "$b6" -c 2
  tp_capture_stop ul; cap=$TP_CAPTURE
  # 1. nothing but UDP 4500 (and ARP / IPv6 neighbour discovery and MLD of the veth itself)
  n=$(tp_tshark -n -r "$cap" -Y '!arp && !(icmpv6.type in {130 131 132 133 134 135 136 137 143}) && !(udp.port==4500)' 2>/dev/null |
    tee "$TP_LOGDIR/not-4500.txt" | wc -l)
  ((n == 0)) || fail "$n packets on the underlay are not UDP 4500, e.g. $(head -1 "$TP_LOGDIR/not-4500.txt")"
  n=$(tp_tshark -n -r "$cap" -Y 'udp.port==4500 && !esp' 2>/dev/null | wc -l)
  ((n == 0)) || fail "$n UDP 4500 packets are not ESP"
  # 2. the marker never appears in the clear
  grep -qaF -- "$marker" "$cap" && fail "the marker appears in plaintext in the capture"
  n=$(tp_tshark -n -r "$cap" -Y "frame contains \"$marker\"" 2>/dev/null | wc -l)
  ((n == 0)) || fail "tshark finds the marker in $n frames without keys"
  # 3. with `espd keys`, tshark decrypts every ESP packet, ICV good, and finds the marker inside
  "$ESPD" keys --config "$(cfg "$d" a)" --format wireshark >"$TP_LOGDIR/esp_sa" 2>"$TP_LOGDIR/keys.err" ||
    { fail "espd keys failed: $(head -1 "$TP_LOGDIR/keys.err")"; stop a; stop b; return; }
  TP_ESP_SA=$TP_LOGDIR/esp_sa tp_tshark -n -r "$cap" -o esp.enable_encryption_decode:TRUE \
    -o esp.enable_authentication_check:TRUE -Y esp -T fields -e esp.spi -e esp.icv_good -e esp.contained_data \
    >"$TP_LOGDIR/decrypted.txt" 2>"$TP_LOGDIR/tshark.err"
  local total good hexmarker withmarker
  total=$(wc -l <"$TP_LOGDIR/decrypted.txt")
  good=$(awk -F'\t' '$2 == "1" && $3 != ""' "$TP_LOGDIR/decrypted.txt" | wc -l)
  hexmarker=$(printf '%s' "$marker" | od -An -tx1 | tr -d ' \n')
  withmarker=$(tr -d ':' <"$TP_LOGDIR/decrypted.txt" | grep -ci -- "$hexmarker")
  ((total >= 12)) || fail "only $total ESP packets captured (2 UDP + 4 pings, each way)"
  ((good == total)) || fail "tshark decrypted $good of $total ESP packets with a good ICV ($(head -1 "$TP_LOGDIR/tshark.err"))"
  ((withmarker >= 4)) || fail "the marker is in $withmarker decrypted packets, expected 4 (2 datagrams, 2 echoes)"
  if [[ -f Tests/Replay/tshark_decrypt.py ]]; then
    "$TP_PY" Tests/Replay/tshark_decrypt.py "$(cfg "$d" a)" "$cap" "$TP_LOGDIR/esp_sa" >"$TP_LOGDIR/tshark_decrypt.log" 2>&1 ||
      fail "Tests/Replay/tshark_decrypt.py: $(grep -m1 -- ' - ' "$TP_LOGDIR/tshark_decrypt.log")"
  fi
  info "$total ESP packets, all decrypted (ICV good), marker in $withmarker, none in the clear"
  stop a; stop b
}

# ------------------------------------------------------------------ the run

run preflight t_preflight
run configs t_configs
run ike-responder t_ike_responder
run topology-pair t_topology_pair
run topology-nat t_topology_nat
run tunnel-uring t_tunnel uring 4 aes128gcm16
run tunnel-mmsg t_tunnel mmsg 4 aes128gcm16
run tunnel-no-offload t_tunnel uring 4 aes128gcm16 --tun-offload off --udp-gso off --udp-gro off
run tunnel-workers t_tunnel uring 4 aes128gcm16 --workers 2
run gso-refused t_gso_refused
run jumbo t_jumbo
run jumbo-no-offload t_jumbo --tun-offload off --udp-gro off
run jumbo-mmsg t_jumbo --io mmsg
run jumbo-workers t_jumbo --workers 2 --tun-offload off --udp-gro off
run tunnel-outer6 t_tunnel "" 6 aes256gcm16
for alg in aes128gcm16 aes192gcm16 aes256gcm16 chacha20poly1305 aes128-sha256 aes256-sha256 null-sha256 aes128-sha1 aes256-sha1 aes128-sha384 aes256-sha384 aes256-sha512; do
  case $alg in chacha20poly1305 | aes256-sha256 | aes256-sha1 | aes256-sha512) run "alg-$alg" t_alg "$alg" 1 ;; *) run "alg-$alg" t_alg "$alg" ;; esac
done
run transport t_transport
run full-tunnel t_full_tunnel
run nat-two-clients t_nat_clients
run keepalive t_keepalive
run tshark t_tshark
run shutdown t_shutdown
run ike-punt t_ike_punt
((LIST)) && exit 0

# nothing of ours may be left: namespaces, processes, a TUN in the root namespace
suite_summary
