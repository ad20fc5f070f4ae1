#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Hostile input, live: espd between two network namespaces while an attacker on the same link
# floods it (scripts/netns/flood.py), and the resource limits under pressure.
#   flood          iperf3 TCP a -> b through the tunnel, alternating three undisturbed runs and three under
#                  a flood at b of random datagrams, forged ESP with b's real SPI and replays of
#                  a's own captured packets (10,000 each per second, from another address): the
#                  tunnel keeps >= 80% of its undisturbed throughput; every datagram of the flood
#                  is counted by espd (or by the kernel's UDP buffer-full counter); b's memory stays
#                  within 16 MB of where it was; b's peer endpoint never moves to the attacker
#   ike-flood      5,000 IKE datagrams/s at a from one address (punt to a Unix socket whose daemon
#                  sleeps for 3 s, then reads): while it sleeps the queue stays within the 16 KiB
#                  send buffer (ike_punt_dropped); the flood is held to its address's budget
#                  (ike_source_limited), so the peer's own IKE, from its address, all reaches the
#                  daemon; every IKE datagram is counted once; a ping through the tunnel loses nothing
#   limits         limits.tunnels, inbound_sas_per_tunnel and control_connections: extra connections,
#                  tunnels and SAs are refused with errors that name the limit and counted
#                  (control_refused_busy, control_refused_limit); `espd check` refuses a file past
#                  limits.sas, and a limit out of range (exit 2)
# Every test prints one PASS or FAIL line; the last line is "N passed, M failed"; exit 1 on failure.
#
# Usage: sudo scripts/hostile-test.sh [--espd PATH] [-k REGEX] [--keep] [--list]
#   --espd PATH  the binary (default: $ESPD, else the newer of .build/release/espd and .build/debug/espd;
#                the throughput figures mean something with a release build)
#   -k REGEX     run only the tests whose name matches (bash regex)
#   --keep       keep the work dir (configs, logs); it is kept anyway when a test fails
#   --list       print the test names and exit
#
# Namespaces are espd-h<PID>-<host>; documentation addresses only (scripts/netns/topology.sh). Only
# processes this script started are signalled, by PID. Needs root; takes about 1.5 minutes.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
ROOT=$PWD

# shellcheck source=netns/harness.sh
source "$ROOT/scripts/netns/harness.sh"
suite_args "$0" 2,30 "$@"

TP_PREFIX=espd-h$$
TP_KEEP=$KEEP
# shellcheck source=netns/topology.sh
source "$ROOT/scripts/netns/topology.sh"
if ((!LIST)); then
  tp_init
  tp_require iperf3 jq
fi
CONFIGS=$ROOT/scripts/netns/configs.py
CTL=$ROOT/scripts/netns/control.py
FLOOD=$ROOT/scripts/netns/flood.py
ATTACKER=192.0.2.66
FLOOD_PPS=${FLOOD_PPS:-10000}   # datagrams per second of each kind in t_flood
FLOOD_PORT=${FLOOD_PORT:-4500}  # (experiments: a port espd does not listen on measures the flood's own cost)

PASSED=0 FAILED=0
T_FAILS=() T_INFO=()

gen() {  # gen DIR ARGS... : a pair of configs (configs.py pair)
  local dir=$1; shift
  "$TP_PY" "$CONFIGS" pair --out "$dir" "$@" >"$dir.gen.log" 2>&1 ||
    { fail "configs.py pair $* failed: $(tail -1 "$dir.gen.log")"; return 1; }
}

set_limits() {  # set_limits CONFIG JSON : merge a "limits" object into a config file
  jq --argjson l "$2" '.limits = $l' "$1" >"$1.tmp" && mv "$1.tmp" "$1"
}

ctl_stats() {  # ctl_stats SOCK KEY : a control-plane or loop counter from {"op":"stats"}
  "$TP_PY" "$CTL" request "$1" '{"op":"stats"}' 2>/dev/null | jq -r --arg k "$2" '.stats | .. | objects | select(has($k)) | .[$k]' | head -1
}

bad_total() {  # bad_total NAME : the drops a flood can cause, from espd NAME's last stats line
  local k v sum=0
  for k in unknown_spi malformed auth_failed replayed outside_window; do
    v=$(tp_stat "$1" "$k" 2>/dev/null || echo 0)
    sum=$((sum + v))
  done
  echo "$sum"
}

softnet_drops() {  # the kernel's per-CPU backlog drops, all namespaces (an upper bound for ours)
  local s=0 d
  while read -r _ d _; do s=$((s + 0x$d)); done </proc/net/softnet_stat
  echo "$s"
}

tcp_mbps() { jq -r '.end.sum_received.bits_per_second / 1e6 | floor' "$TP_LOGDIR/$1.json" 2>/dev/null || echo 0; }

# ------------------------------------------------------------------ tests

t_flood() {
  local d=$TP_LOGDIR/cfg b4 spi pid rss0 rss1 bad0 bad1 kern0 kern1 sent errors round
  local -a quiet=() loud=()
  gen "$d" --inner 4 || return
  tp_topo_pair || { fail "building the pair topology failed"; return; }
  tp_addr a ul0 "$ATTACKER/24" || { fail "cannot add the attacker's address"; return; }
  start a "$(cfg "$d" a)" || return
  start b "$(cfg "$d" b)" || return
  b4=$(sc "$d" .hosts.b.inner4)
  spi=$(jq -r '.tunnels[0].inbound[0].spi' "$(cfg "$d" b)")
  pid=$(tp_pid espd-b)
  tp_iperf warm b a "$b4" 2 || { fail "warm-up: $TP_IPERF_SUMMARY"; return; }
  read -r rss0 _ < <(tp_proc_mem "$pid")
  tp_espd_stats espd-b || { fail "$TP_ESPD_WHY"; return; }
  bad0=$(bad_total espd-b) kern0=$(($(tp_udp_rcvbuf_errors b) + $(softnet_drops)))
  sent=0 errors=0
  # Medians of three alternated runs: one noisy run on this shared machine does not decide. If
  # they fall short, two more rounds and the median of five decides (the bar stays at 80%).
  local q l pct=0 rounds=3
  for ((round = 1; round <= rounds; round++)); do
    tp_iperf "quiet$round" b a "$b4" 8 || { fail "undisturbed run $round: $TP_IPERF_SUMMARY"; return; }
    quiet+=("$(tcp_mbps "quiet$round")")
    # The flooder sniffs a's ESP to b for up to 3 s (iperf3 starts at once), then floods for 11 s.
    tp_bg "flood$round" a "$TP_PY" "$FLOOD" --to "$TP_B_OUT4:$FLOOD_PORT" --from "$ATTACKER" --seconds 11 \
      --random "$FLOOD_PPS" --forge "$FLOOD_PPS" --spi "$spi" --replay "$FLOOD_PPS" --sniff ul0 --sniff-dst "$TP_B_OUT4:4500" --seed "$round"
    tp_iperf "capture$round" b a "$b4" 3 || { fail "run while capturing $round: $TP_IPERF_SUMMARY"; return; }
    tp_iperf "loud$round" b a "$b4" 8 || { fail "run under the flood $round: $TP_IPERF_SUMMARY"; return; }
    loud+=("$(tcp_mbps "loud$round")")
    tp_wait_exit "$(tp_pid "flood$round")" 15 || { fail "the flooder did not finish"; return; }
    ((TP_RC == 0)) || { fail "flood.py: $(_tp_tail "$TP_LOGDIR/flood$round.out" 1) $(_tp_tail "$TP_LOGDIR/flood$round.err" 2)"; return; }
    sent=$((sent + $(jq '[.sent[]] | add' "$TP_LOGDIR/flood$round.out")))
    errors=$((errors + $(jq .send_errors "$TP_LOGDIR/flood$round.out")))
    if ((round == rounds)); then
      q=$(printf '%s\n' "${quiet[@]}" | sort -n | sed -n "$((rounds / 2 + 1))p")
      l=$(printf '%s\n' "${loud[@]}" | sort -n | sed -n "$((rounds / 2 + 1))p")
      pct=$((q > 0 ? 100 * l / q : 0))
      if ((pct < 80 && rounds == 3)); then
        info "medians of 3 rounds: $pct% (${loud[*]} vs ${quiet[*]} Mbit/s); two more rounds"
        rounds=5
      fi
    fi
  done
  read -r rss1 _ < <(tp_proc_mem "$pid")
  tp_espd_stats espd-b || { fail "$TP_ESPD_WHY"; return; }
  bad1=$(bad_total espd-b) kern1=$(($(tp_udp_rcvbuf_errors b) + $(softnet_drops)))
  local counted=$((bad1 - bad0)) kernel=$((kern1 - kern0)) wire=$((sent - errors))
  info "TCP ${quiet[*]} Mbit/s undisturbed, ${loud[*]} under the flood (medians of $rounds: $pct%); $wire bad datagrams sent, espd counted $counted, kernel drops $kernel; RSS ${rss0} -> ${rss1} kB"
  ((pct >= 80)) || fail "under the flood the tunnel kept $pct% of its throughput (${loud[*]} vs ${quiet[*]} Mbit/s), not 80%"
  ((counted <= wire)) || fail "espd counted $counted drops for $wire bad datagrams (it counted good ones?)"
  ((counted + kernel >= wire)) || fail "$wire bad datagrams sent; espd counted $counted and the kernel dropped $kernel: $((wire - counted - kernel)) unaccounted for"
  ((rss1 - rss0 < 16384)) || fail "espd b grew from $rss0 to $rss1 kB under the flood"
  local k v
  # Replays of packets captured seconds earlier are far behind a 1024-packet window at these
  # rates: they count as outside_window (within it they would count as replayed).
  for k in unknown_spi auth_failed outside_window; do
    v=$(tp_stat espd-b "$k" 2>/dev/null || echo 0)
    ((v > 0)) || fail "no $k counted: the flood did not exercise that path"
  done
  v=$(tp_stat espd-b decapsulated 2>/dev/null || echo 0)
  ((v > 0)) || fail "b decapsulated nothing"
  "$TP_PY" "$CTL" request "$(sock "$d" b)" '{"op":"list"}' >"$TP_LOGDIR/list.out" 2>&1 || fail "list: $(tail -1 "$TP_LOGDIR/list.out")"
  jq -e --arg p "$TP_A_OUT4:4500" '.tunnels[0].peer == $p and .tunnels[0].counters.endpoint_changes == 0' "$TP_LOGDIR/list.out" >/dev/null ||
    fail "b's peer moved under the flood: $(jq -c '.tunnels[0] | {peer, endpoint_changes: .counters.endpoint_changes}' "$TP_LOGDIR/list.out")"
  for h in a b; do tp_espd_stop "espd-$h" 3 || fail "$TP_ESPD_WHY"; done
}

t_ike_flood() {
  local d=$TP_LOGDIR/cfg s=$TP_LOGDIR/ike.sock
  gen "$d" --inner 4 --ike-punt "unix:$s" || return
  set_limits "$(cfg "$d" a)" '{"ike_per_second": 2000, "ike_per_source_per_second": 100, "ike_queue_bytes": 16384}'
  tp_topo_pair || { fail "building the pair topology failed"; return; }
  tp_addr b ul0 "192.0.2.67/24" || { fail "cannot add the attacker's address"; return; }
  # The daemon's own queue limit, high: what bounds the queue must be espd's send buffer.
  tp_exec a sysctl -qw net.unix.max_dgram_qlen=100000 || { fail "cannot raise net.unix.max_dgram_qlen"; return; }
  # The IKE daemon stand-in reads nothing for 3 s after the flood starts (the queue fills), then
  # reads everything until the senders have finished, telling the peer's datagrams (tagged) from
  # the flood's. Its clock starts at the GO file, not at its bind: espd's start-up time varies.
  cat >"$TP_LOGDIR/daemon.py" <<'PY'
import json, os, socket, sys, time
path, go, done = sys.argv[1:4]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
deadline = time.monotonic() + 60
while not os.path.exists(go):
    if time.monotonic() > deadline:
        sys.exit("never told to start")
    time.sleep(0.01)
time.sleep(3)
s.setblocking(False)
first = 0
while True:
    try:
        s.recv(70000)
        first += 1
    except BlockingIOError:
        break
peer = other = 0
s.settimeout(0.2)
while True:
    if time.monotonic() > deadline:
        sys.exit("never told the senders had finished")
    try:
        m = s.recv(70000)
    except socket.timeout:
        if os.path.exists(done):
            break  # the senders have finished and the queue is empty
        continue
    if m.endswith(b"PEER-IKE"):
        peer += 1
    else:
        other += 1
print(json.dumps({"queued": first, "peer": peer, "other": other}))
PY
  local go=$TP_LOGDIR/daemon.go done=$TP_LOGDIR/daemon.done
  tp_bg daemon a "$TP_PY" "$TP_LOGDIR/daemon.py" "$s" "$go" "$done"
  tp_wait 5 test -S "$s" || { fail "the daemon stand-in did not bind $s"; return; }
  start a "$(cfg "$d" a)" || return
  start b "$(cfg "$d" b)" || return
  local pid rss0 rss1 ping_rc=1 n
  pid=$(tp_pid espd-a)
  read -r rss0 _ < <(tp_proc_mem "$pid")
  tp_bg pinger b "$TP_PY" "$TP_WORK/nettool.py" ping -c 140 -i 0.05 "$(sc "$d" .hosts.a.inner4)"
  touch "$go"
  tp_bg ikeflood b "$TP_PY" "$FLOOD" --to "$TP_A_OUT4:4500" --from 192.0.2.67 --seconds 8 --ike 5000
  sleep 3.5
  tp_bg ikepeer b "$TP_PY" "$FLOOD" --to "$TP_A_OUT4:4500" --from "$TP_B_OUT4" --seconds 4 --ike 20 --tag PEER-IKE
  for n in ikeflood ikepeer pinger daemon; do
    [[ $n == pinger ]] && touch "$done"
    tp_wait_exit "$(tp_pid "$n")" 15 || { fail "$n did not finish"; return; }
    if [[ $n == pinger ]]; then
      ping_rc=$TP_RC
    elif ((TP_RC != 0)); then
      fail "$n: $(_tp_tail "$TP_LOGDIR/$n.err" 2)"
      return
    fi
  done
  read -r rss1 _ < <(tp_proc_mem "$pid")
  tp_espd_stats espd-a || { fail "$TP_ESPD_WHY"; return; }
  local flood peer wire punted dropped limited srclimited queued got_peer
  flood=$(jq '.sent.ike - .send_errors' "$TP_LOGDIR/ikeflood.out") peer=$(jq '.sent.ike - .send_errors' "$TP_LOGDIR/ikepeer.out")
  wire=$((flood + peer))
  punted=$(tp_stat espd-a ike_punted) dropped=$(tp_stat espd-a ike_punt_dropped)
  limited=$(tp_stat espd-a ike_rate_limited) srclimited=$(tp_stat espd-a ike_source_limited)
  queued=$(jq .queued "$TP_LOGDIR/daemon.out") got_peer=$(jq .peer "$TP_LOGDIR/daemon.out")
  info "flood $flood + peer $peer IKE datagrams: $punted punted ($queued waited while the daemon slept), $dropped dropped at the full queue, $srclimited over the source's budget, $limited over the global; the daemon got $got_peer of the peer's $peer; RSS $rss0 -> $rss1 kB; $(_tp_tail "$TP_LOGDIR/pinger.out" 1)"
  ((ping_rc == 0)) || fail "the ping through the tunnel lost packets during the IKE flood: $(_tp_tail "$TP_LOGDIR/pinger.out" 2)"
  ((got_peer == peer)) || fail "the peer's IKE was shut out by the flood: the daemon got $got_peer of $peer"
  ((dropped > 0)) || fail "nothing dropped at the queue while the daemon slept (is it bounded?)"
  ((queued < 200)) || fail "$queued datagrams queued behind a 16 KiB send buffer"
  ((srclimited > 0)) || fail "nothing over the source's budget at 5,000/s against 100/s"
  # The flood's own budget: 100 of burst and 100 a second for 8 s.
  ((punted + dropped <= peer + 100 + 8 * 100 + 50)) || fail "$((punted + dropped)) IKE datagrams passed the limits"
  ((punted + dropped + limited + srclimited == wire)) ||
    fail "$wire IKE datagrams sent, espd accounts for $((punted + dropped + limited + srclimited))"
  ((rss1 - rss0 < 16384)) || fail "espd a grew from $rss0 to $rss1 kB during the IKE flood"
  for h in a b; do tp_espd_stop "espd-$h" 3 || fail "$TP_ESPD_WHY"; done
}

t_limits() {
  local d=$TP_LOGDIR/cfg sa
  gen "$d" --inner 4 || return
  set_limits "$(cfg "$d" a)" '{"tunnels": 3, "control_connections": 4, "inbound_sas_per_tunnel": 2}'
  # `espd check` refuses a file past a limit, with the line naming it.
  jq '.limits = {"tunnels": 0}' "$(cfg "$d" a)" >"$TP_LOGDIR/zero.json"
  jq '.limits = {"sas": 2} | .tunnels[0].inbound += [.tunnels[0].inbound[0] | .spi = "0x5d000001"]' "$(cfg "$d" a)" >"$TP_LOGDIR/sas.json"
  "$ESPD" check --config "$TP_LOGDIR/zero.json" >"$TP_LOGDIR/zero.out" 2>&1
  { (($? == 2)) && grep -q 'limits.tunnels: expected an integer' "$TP_LOGDIR/zero.out"; } ||
    fail "espd check with limits.tunnels 0: $(tail -1 "$TP_LOGDIR/zero.out")"
  "$ESPD" check --config "$TP_LOGDIR/sas.json" >"$TP_LOGDIR/sas.out" 2>&1
  { (($? == 2)) && grep -q '3 SAs in all, more than limits.sas allows (2)' "$TP_LOGDIR/sas.out"; } ||
    fail "espd check with limits.sas 2: $(tail -1 "$TP_LOGDIR/sas.out")"
  tp_topo_pair || { fail "building the pair topology failed"; return; }
  start a "$(cfg "$d" a)" || return
  sa=$(sock "$d" a)
  # Ten connections at once against limits.control_connections 4: six refused, the four served.
  "$TP_PY" - "$sa" >"$TP_LOGDIR/conns.out" 2>&1 <<'EOF' || fail "connections: $(tail -2 "$TP_LOGDIR/conns.out")"
import json, socket, sys, time
conns = []
for _ in range(10):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sys.argv[1])
    conns.append(s)
    time.sleep(0.05)
refused = served = 0
for s in conns:
    s.settimeout(3)
    try:
        s.sendall(b'{"op":"list"}\n')
        line = s.makefile().readline()
    except OSError:
        line = ""
    a = json.loads(line) if line else {}
    if a.get("ok"):
        served += 1
    elif "too many control connections" in a.get("error", "") and "limits.control_connections" in a["error"]:
        refused += 1
print(json.dumps({"served": served, "refused": refused}))
sys.exit(0 if (served, refused) == (4, 6) else 1)
EOF
  # Tunnels: a has one; two more fit limits.tunnels 3, the third is refused.
  local i key r
  for i in 1 2 3; do
    key=$(head -c 20 /dev/urandom | od -An -tx1 | tr -d ' \n')
    r=$("$TP_PY" "$CTL" request "$sa" "{\"op\":\"add_tunnel\",\"tunnel\":{\"name\":\"x$i\",\"mode\":\"tunnel\",\"remote_ts\":[\"198.51.100.$((200 + i))/32\"],\"inbound\":[{\"spi\":\"0x5e00000$i\",\"alg\":\"aes128gcm16\",\"key\":\"$key\"}],\"outbound\":{\"spi\":\"0x5f00000$i\",\"alg\":\"aes128gcm16\",\"key\":\"$key\"}}}" 2>&1)
    if ((i < 3)); then
      jq -e .ok <<<"$r" >/dev/null || fail "add_tunnel x$i under the limit was refused: $r"
    else
      jq -e '(.ok | not) and (.error | test("limits.tunnels"))' <<<"$r" >/dev/null || fail "add_tunnel past limits.tunnels: $r"
    fi
  done
  # Inbound SAs: the tunnel has one; a rekey adds a second, a third is refused.
  local tname
  tname=$(jq -r '.tunnels[0].name' "$(cfg "$d" a)")
  for i in 1 2; do
    key=$(head -c 20 /dev/urandom | od -An -tx1 | tr -d ' \n')
    r=$("$TP_PY" "$CTL" request "$sa" "{\"op\":\"rekey\",\"name\":\"$tname\",\"inbound\":{\"spi\":\"0x5c00000$i\",\"alg\":\"aes128gcm16\",\"key\":\"$key\"}}" 2>&1)
    if ((i == 1)); then
      jq -e .ok <<<"$r" >/dev/null || fail "a second inbound SA under the limit was refused: $r"
    else
      jq -e '(.ok | not) and (.error | test("limits.inbound_sas_per_tunnel"))' <<<"$r" >/dev/null || fail "a rekey past limits.inbound_sas_per_tunnel: $r"
    fi
  done
  local busy limit
  busy=$(ctl_stats "$sa" control_refused_busy) limit=$(ctl_stats "$sa" control_refused_limit)
  info "$(cat "$TP_LOGDIR/conns.out"); control_refused_busy $busy, control_refused_limit $limit"
  [[ $busy == 6 ]] || fail "control_refused_busy = $busy, expected 6"
  [[ $limit == 2 ]] || fail "control_refused_limit = $limit, expected 2 (a tunnel and an inbound SA)"
  tp_espd_stop espd-a 3 || fail "$TP_ESPD_WHY"
}

run flood t_flood
run ike-flood t_ike_flood
run limits t_limits
((LIST)) && exit 0

suite_summary
