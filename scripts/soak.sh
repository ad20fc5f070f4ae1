#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# A soak under churn: a gateway and three clients behind one NAT (scripts/netns/topology.sh), for
# MINUTES (default 10), with all of this at once:
#   load       iperf3 UDP through every tunnel for the whole run: c1 and c2 send to the gateway
#              (RATE each, 1000-byte datagrams), c3 both ways (--bidir, RATE/2 each way). c1 and c2
#              send one way because packets the gateway sends to a NAT mapping that has just gone
#              are lost to the rebinding itself, not to espd; c3 is not rebound
#   rekeys     every client's SAs rekeyed hitlessly in both directions every 2 s (control.py
#              rekey-loop: new inbound on both ends, then the outbound switches, old SAs deleted)
#   churn      50 tunnels added to the gateway and deleted again, round after round
#   rebinding  every 30 s the NAT moves c1 and c2 to new ports (new masquerade range, their
#              conntrack entries deleted); the gateway must follow from authenticated packets
# At the end it checks, and prints:
#   - zero packets lost to espd: no espd dropped a packet (no replay, authentication failure,
#     unknown SPI, packet outside the window, or any other drop reason) and none was refused by
#     its TUN or UDP socket; every packet iperf3 reports lost must be one the receiver's own
#     kernel counted as arriving to a full socket buffer (iperf3 asks for 4 MB; on two shared vCPUs
#     a receiver sometimes falls behind)
#   - resident memory flat after warm-up: each espd's RSS is sampled every 15 s into
#     rss.tsv; the end is within 8 MB of the sample after warm-up (first minute, or a fifth of
#     the run if shorter); start and end are printed
#   - no file descriptor leak: each espd holds as many descriptors at the end, once the control
#     clients have gone, as at the start before they came
#   - the rekeys, churn rounds and rebinds really happened, and every espd exits 0 on SIGTERM
#
# Usage: sudo scripts/soak.sh [MINUTES] [--espd PATH] [--rate MBIT] [--keep]
#   --espd PATH  the binary (default: $ESPD, else the newer of .build/release/espd and .build/debug/espd)
#   --rate MBIT  each one-way flow's rate (default 50)
# Exit 0 when every check passed. Namespaces espd-s<PID>-*, documentation addresses only; only
# processes this script started are signalled, by PID.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
ROOT=$PWD

MINUTES=10 RATE=50 KEEP=0 ESPD=${ESPD:-}
while (($#)); do
  case $1 in
    --espd) ESPD=${2:?--espd needs a path}; shift 2 ;;
    --rate) RATE=${2:?--rate needs Mbit/s}; shift 2 ;;
    --keep) KEEP=1; shift ;;
    -h | --help) sed -n 2,28p "$0"; exit 0 ;;
    [0-9]*) MINUTES=$1; shift ;;
    *) echo "soak.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
done
{ [[ $RATE =~ ^[0-9]+$ ]] && ((RATE >= 2)); } || { echo "soak.sh: --rate must be an integer of at least 2 (Mbit/s), got '$RATE'" >&2; exit 2; }
{ [[ $MINUTES =~ ^[0-9]+(\.[0-9]+)?$ ]] && awk -v m="$MINUTES" 'BEGIN { exit !(m > 0) }'; } ||
  { echo "soak.sh: MINUTES must be a positive number, got '$MINUTES'" >&2; exit 2; }
if [[ -z $ESPD ]]; then
  ESPD=.build/debug/espd
  [[ -x .build/release/espd && ! .build/release/espd -ot .build/debug/espd ]] && ESPD=.build/release/espd
fi
[[ $ESPD == /* ]] || ESPD=$ROOT/$ESPD
[[ -x $ESPD ]] || { echo "soak.sh: no espd binary at $ESPD (build it first)" >&2; exit 2; }

TP_PREFIX=espd-s$$
TP_KEEP=$KEEP
# shellcheck source=netns/topology.sh
source "$ROOT/scripts/netns/topology.sh"
tp_init
tp_require iperf3 jq conntrack
CONFIGS=$ROOT/scripts/netns/configs.py
CTL=$ROOT/scripts/netns/control.py
TP_LOGDIR=$TP_WORK
SECS=$(awk -v m="$MINUTES" 'BEGIN { printf "%d", m * 60 }')
WARM=$((SECS / 5 < 60 ? SECS / 5 : 60))
G4=198.51.100.1
FAILS=()
fail() { FAILS+=("$*"); echo "FAIL: $*" >&2; }
say() { printf '%s %s\n' "$(date +%T)" "$*"; }

d=$TP_WORK/cfg
"$TP_PY" "$CONFIGS" nat --out "$d" --clients 3 --inner 4,6 >"$d.gen.log" 2>&1 || tp_die "configs.py: $(tail -1 "$d.gen.log")"
cfg() { printf '%s/%s.json' "$d" "$1"; }
sock() { jq -r .control "$(cfg "$1")"; }
tp_topo_nat 3 || tp_die "building the NAT topology failed"
tp_nat_rule nat wan0 || tp_die "nft: cannot set the masquerade rule"
hosts=(gw c1 c2 c3)
for h in "${hosts[@]}"; do tp_espd_start "espd-$h" "$h" "$(cfg "$h")" || tp_die "$TP_ESPD_WHY"; done
say "soak: $MINUTES min ($SECS s, warm-up ${WARM}s), espd $ESPD, ${RATE} Mbit/s per one-way flow; work dir $TP_WORK"
# shellcheck disable=SC2012  # counting the entries of /proc/PID/fd, whose names are numbers
fds() { ls "/proc/$(tp_pid "espd-$1")/fd" 2>/dev/null | wc -l; }
# Descriptors before any control client connects: the end, after they all left, must match.
declare -A FD0=() FD1=() RSS0=() RSS1=()
for h in "${hosts[@]}"; do FD0[$h]=$(fds "$h"); done

# The receivers' kernels count what their sockets had no room for (iperf3's own buffers, 4 MB):
# a packet iperf3 reports lost must be there, not in espd.
RB0_GW=$(tp_udp_rcvbuf_errors gw) RB0_C3=$(tp_udp_rcvbuf_errors c3)

# Load: one iperf3 server per client on the gateway's inner address.
for i in 1 2 3; do
  tp_bg "iperf-s$i" gw iperf3 -s -1 -p $((5200 + i)) -B "$G4"
done
for i in 1 2 3; do tp_wait 5 tp_tcp_listening gw $((5200 + i)) || tp_die "iperf3 server $i did not start"; done
for i in 1 2; do
  tp_bg "iperf-c$i" "c$i" iperf3 -c "$G4" -p $((5200 + i)) -u -b "${RATE}M" -l 1000 -w 4M -t "$SECS" -J --connect-timeout 3000
done
tp_bg iperf-c3 c3 iperf3 -c "$G4" -p 5203 -u -b "$((RATE / 2))M" -l 1000 -w 4M -t "$SECS" --bidir -J --connect-timeout 3000

# Rekeys, churn.
for i in 1 2 3; do
  tp_bg "rekey-c$i" gw "$TP_PY" "$CTL" rekey-loop --a "$(sock gw)" --b "$(sock "c$i")" --tunnel-a "c$i" --tunnel-b gw \
    --seconds "$((SECS - 5))" --interval 2
done
tp_bg churn gw "$TP_PY" "$CTL" churn-loop --sock "$(sock gw)" --count 50 --seconds "$((SECS - 5))"

# Memory and descriptors, sampled every 15 s; NAT rebinding every 30 s.
rss_file=$TP_WORK/rss.tsv
printf 'seconds\t%s\n' "$(printf '%s\t' "${hosts[@]}" | sed 's/\t$//')" >"$rss_file"
sample() {  # one line of RSS (kB) per host
  local h line="$1"
  for h in "${hosts[@]}"; do line+=$'\t'$(awk '/^VmRSS:/{print $2}' "/proc/$(tp_pid "espd-$h")/status" 2>/dev/null); done
  echo "$line" >>"$rss_file"
}
t0=$SECONDS rebinds=0 next_sample=0 next_rebind=30 warmed=0
while ((SECONDS - t0 < SECS)); do
  now=$((SECONDS - t0))
  if ((now >= next_sample)); then sample "$now"; next_sample=$((next_sample + 15)); fi
  if ((!warmed && now >= WARM)); then
    warmed=1
    sample "$now"
    line=""
    for h in "${hosts[@]}"; do
      RSS0[$h]=$(awk '/^VmRSS:/{print $2}' "/proc/$(tp_pid "espd-$h")/status")
      line+=" $h ${RSS0[$h]} kB ($(fds "$h") descriptors with the control clients)"
    done
    say "warmed up:$line"
  fi
  if ((now >= next_rebind && now < SECS - 10)); then
    range=$((rebinds % 2 == 0 ? 40000 : 41000))
    tp_nat_rule nat wan0 "$range-$((range + 100))" || fail "nft: cannot change the masquerade rule"
    tp_exec nat conntrack -D -s 203.0.113.10 >/dev/null 2>&1
    tp_exec nat conntrack -D -s 203.0.113.11 >/dev/null 2>&1
    rebinds=$((rebinds + 1)) next_rebind=$((next_rebind + 30))
  fi
  for h in "${hosts[@]}"; do tp_alive "$(tp_pid "espd-$h")" || tp_die "espd-$h died: $(_tp_tail "$TP_WORK/espd-$h.err" 3)"; done
  sleep 1
done
say "load done; waiting for the flows, rekeys and churn to finish"
for n in iperf-c1 iperf-c2 iperf-c3 rekey-c1 rekey-c2 rekey-c3 churn; do
  tp_wait_exit "$(tp_pid "$n")" 60 || { fail "$n did not finish"; continue; }
  ((TP_RC == 0)) || fail "$n exited $TP_RC: $(_tp_tail "$TP_WORK/$n.err" 2) $(_tp_tail "$TP_WORK/$n.out" 1)"
done
sleep 2  # control connections of the loops above close
sample "$((SECONDS - t0))"
for h in "${hosts[@]}"; do
  FD1[$h]=$(fds "$h")
  RSS1[$h]=$(awk '/^VmRSS:/{print $2}' "/proc/$(tp_pid "espd-$h")/status")
done

# --- checks
lost=0
for i in 1 2 3; do
  j=$TP_WORK/iperf-c$i.out
  l=$(jq -r '[.end.sum.lost_packets // -1, .end.sum_bidir_reverse.lost_packets // 0] | add' "$j" 2>/dev/null)
  n=$(jq -r '[.end.sum.packets // 0, .end.sum_bidir_reverse.packets // 0] | add' "$j" 2>/dev/null)
  l=${l:--1} n=${n:-0}
  say "flow c$i: $n packets, $l lost"
  ((l >= 0 && n > 0)) || fail "flow c$i: no iperf3 result ($(_tp_tail "$TP_WORK/iperf-c$i.err" 1))"
  ((l > 0)) && lost=$((lost + l))
done
rb=$(($(tp_udp_rcvbuf_errors gw) - RB0_GW + $(tp_udp_rcvbuf_errors c3) - RB0_C3))
# espd's own losses: every drop reason, and what the TUN or the UDP socket would not take.
espd_lost=0
for h in "${hosts[@]}"; do
  tp_espd_stats "espd-$h" || { fail "$TP_ESPD_WHY"; continue; }
  for k in dropped tun_write_dropped udp_send_dropped offload_dropped; do
    v=$(tp_stat "espd-$h" "$k" 2>/dev/null || echo -1)
    [[ $v == 0 ]] || { fail "espd-$h counted $k = $v"; espd_lost=$((espd_lost + ${v#-})); }
  done
done
say "packets lost: $lost in all; the receivers' kernels counted $rb datagrams their sockets had no room for; espd lost $espd_lost"
((lost <= rb)) || fail "$lost packets lost, $((lost - rb)) of them not in a receiver's socket buffer"
rekeys=0
for i in 1 2 3; do
  r=$(jq -r '.rekeys // 0' "$TP_WORK/rekey-c$i.out" 2>/dev/null)
  rekeys=$((rekeys + ${r:-0}))
done
churn=$(jq -c . "$TP_WORK/churn.out" 2>/dev/null)
churn=${churn:-'{}'}
((rekeys >= 3 * (SECS / 2) * 3 / 4)) || fail "only $rekeys rekeys in ${SECS}s (3 tunnels, every 2 s)"
(($(jq -r '.rounds // 0' <<<"$churn") >= 1)) || fail "no churn round finished: $churn"
for h in "${hosts[@]}"; do
  tp_espd_stats "espd-$h" || { fail "$TP_ESPD_WHY"; continue; }
  for k in replayed auth_failed unknown_spi outside_window; do
    v=$(tp_stat "espd-$h" "$k" 2>/dev/null || echo missing)
    [[ $v == 0 ]] || fail "espd-$h counted $k = $v"
  done
done
moves="" moves3=""
if "$TP_PY" "$CTL" request "$(sock gw)" '{"op":"list"}' >"$TP_WORK/list.out" 2>&1 &&
  jq -e '.ok' "$TP_WORK/list.out" >/dev/null 2>&1; then
  moves=$(jq -r '[.tunnels[] | select(.name == "c1" or .name == "c2") | .counters.endpoint_changes] | join(" ")' "$TP_WORK/list.out")
  moves3=$(jq -r '.tunnels[] | select(.name == "c3") | .counters.endpoint_changes' "$TP_WORK/list.out")
else
  fail "list on the gateway failed: $(tail -c 200 "$TP_WORK/list.out")"
fi
# Each rebind gives c1 and c2 a port from the other range: the gateway must follow every one.
[[ $(wc -w <<<"$moves") == 2 ]] || fail "no endpoint_changes for c1 and c2 in the gateway's list"
for m in $moves; do ((m == rebinds)) || fail "the gateway followed c1/c2 $moves times over $rebinds rebinds"; done
[[ $moves3 == 0 ]] || fail "c3 was not rebound, yet its endpoint moved $moves3 times"
say "rekeys: $rekeys; churn: $churn; NAT rebinds: $rebinds (gateway followed c1 c2: $moves times; c3: $moves3)"
for h in "${hosts[@]}"; do
  say "espd-$h: RSS ${RSS0[$h]} kB after warm-up -> ${RSS1[$h]} kB at the end ($((RSS1[$h] - RSS0[$h])) kB); descriptors ${FD0[$h]} at the start -> ${FD1[$h]} at the end"
  ((RSS1[$h] - RSS0[$h] < 8192)) || fail "espd-$h grew by $((RSS1[$h] - RSS0[$h])) kB after warm-up"
  ((FD1[$h] == FD0[$h])) || fail "espd-$h holds ${FD1[$h]} descriptors at the end, ${FD0[$h]} at the start"
done
say "RSS samples (kB): $rss_file"
column -t "$rss_file" | sed -n '1p;2p;$p'
for h in "${hosts[@]}"; do tp_espd_stop "espd-$h" 5 || fail "$TP_ESPD_WHY"; done
if ((${#FAILS[@]})); then
  TP_KEEP=2
  echo "soak: FAILED (${#FAILS[@]}): ${FAILS[0]}; logs in $TP_WORK"
  exit 1
fi
echo "soak: PASSED: $MINUTES min, 0 packets lost by espd ($lost lost in the receivers' socket buffers), $rekeys rekeys, $(jq -r .rounds <<<"$churn") churn rounds of 50 tunnels, $rebinds NAT rebinds; RSS flat, no descriptor leak"
