#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The control plane, live: two espd in network namespaces driven over their control sockets
# (scripts/netns/control.py speaks the protocol as an IKE daemon would; the espd CLI is tested too).
#   cli              tunnel add/list/delete, rekey, sa delete, stats via the espd commands; routes
#                    follow; socket mode 0600; no key in any answer or log
#   rekey            iperf3 UDP --bidir, 200 Mbit/s each way in 1200-byte datagrams, 15 s: a baseline
#                    run, then the same run with a hitless rekey of both directions every second
#                    (new inbound SAs on both ends, then both outbound switches, the previous inbound
#                    SAs deleted 0.3 s later); every datagram lost counts: at most the baseline's loss
#                    + 0.01% of the datagrams sent (+1), and no espd drop counter moves
#   churn            1,000 tunnels added and deleted at runtime while iperf3 UDP runs in another:
#                    no loss, routes back to what they were
#   malformed        bad JSON, unknown op, wrong key length, duplicate SPI, a missing tunnel, ...: an
#                    error answer each, nothing changed, a ping flow uninterrupted
#   expiry           soft and hard lifetime events (packets, seconds, sequence exhaustion) reach a
#                    subscriber; a hard-expired SA drops traffic and counts it
#   metrics          GET /metrics parses as the Prometheus text format; counters match `espd stats`
#   owner            another user cannot connect (mode 0600), nor through a socket made world-writable
#                    (SO_PEERCRED)
#   storm            b holds 100,000 extra tunnels (configs.py extra) besides the one carrying the
#                    rekey test's iperf3 load; baseline run, then the same run during a storm of
#                    20,000 rekey steps (rekey inbound, rekey outbound, delete_sa: 60,000 requests,
#                    one connection, each sent once the last is answered): loss within the
#                    baseline's + 0.01%, no espd drop counter moves, and the storm done in 18 s (a 20 s load); b's
#                    longest loop stall (stats loop_stall_max_ns, CPU time) printed with its target
#                    of 1 ms, a figure, not a criterion ("n/a": not reported, not
#                    checked; a's is printed, as is the worst wakeup delay of a thread sleeping 1 ms:
#                    the machine's own share of any gap)
# rekey-workers, churn-workers and storm-workers: the same with `--workers 2` on both ends.
# The 200 Mbit/s tests (rekey, storm) run the release binary: a debug build does not carry that load.
# Every test prints one PASS or FAIL line; the last line is "N passed, M failed"; exit 1 on failure.
#
# Usage: sudo scripts/control-test.sh [--espd PATH] [--espd-release PATH] [--storm-tunnels N] [-k REGEX]
#                                     [--skip REGEX] [--keep] [--list]
#   --espd PATH          the binary (default: $ESPD, else the newer of .build/release/espd and
#                        .build/debug/espd)
#   --espd-release PATH  the binary of the rekey and storm tests (default: .build/release/espd if it
#                        exists, else the --espd binary)
#   --storm-tunnels N    extra tunnels on b in the storm tests (default 100000; $ESPD_STORM_TUNNELS)
#   -k REGEX             run only the tests whose name matches (bash regex); --skip REGEX: all but
#   --keep               keep the work dir (configs, logs); it is kept anyway when a test fails
#   --list               print the test names and exit
#
# Namespaces are espd-c<PID>-<host>; documentation addresses only (scripts/netns/topology.sh). Only
# processes this script started are signalled, by PID. Needs root; takes about 5 minutes.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
ROOT=$PWD

# shellcheck source=netns/harness.sh
source "$ROOT/scripts/netns/harness.sh"
ESPD_RELEASE="" STORM_TUNNELS=${ESPD_STORM_TUNNELS:-100000}
args=()
while (($#)); do   # this suite's own options; suite_args takes the rest
  case $1 in
    --espd-release) ESPD_RELEASE=${2:?--espd-release needs a path}; shift 2 ;;
    --storm-tunnels) STORM_TUNNELS=${2:?--storm-tunnels needs a number}; shift 2 ;;
    *) args+=("$1"); shift ;;
  esac
done
suite_args "$0" 2,45 "${args[@]}"
[[ $STORM_TUNNELS =~ ^[1-9][0-9]*$ ]] || { echo "control-test.sh: --storm-tunnels: expected a positive number" >&2; exit 2; }
if [[ -z $ESPD_RELEASE ]]; then
  ESPD_RELEASE=$ESPD
  [[ -x $ROOT/.build/release/espd ]] && ESPD_RELEASE=$ROOT/.build/release/espd
fi
[[ $ESPD_RELEASE == /* ]] || ESPD_RELEASE=$ROOT/$ESPD_RELEASE

TP_PREFIX=espd-c$$
TP_KEEP=$KEEP
# shellcheck source=netns/topology.sh
source "$ROOT/scripts/netns/topology.sh"
if ((!LIST)); then
  tp_init
  tp_require iperf3 jq curl setpriv
fi
CONFIGS=$ROOT/scripts/netns/configs.py
CTL=$ROOT/scripts/netns/control.py
if ((!LIST)); then
  echo "espd: $ESPD; rekey and storm tests: $ESPD_RELEASE$([[ $ESPD_RELEASE -ot $ESPD ]] && echo " (older than $ESPD: rebuild it?)")"
fi

# The rekey and storm tests' load: iperf3 UDP both ways, 200 Mbit/s each way in 1200-byte datagrams
# (about 20,800 datagrams/s each way), LOAD_SECS long. iperf3's own sockets get 4 MiB buffers (-w;
# the kernel allows up to net.core.rmem_max): with the default 208 KiB the receiving iperf3 itself
# lost 0.02-0.9% of the datagrams on a 2-vCPU VM (UdpRcvbufErrors on its sockets, none on espd's);
# with 4 MiB it lost none, so the baseline measures espd. espd keeps its default socket buffers.
LOAD_SECS=15
LOAD=(-u -b 200M -l 1200 -w 4M --bidir)
STORM_STEPS=20000

PASSED=0 FAILED=0
T_FAILS=() T_INFO=()

# ------------------------------------------------------------------ helpers

gen() {  # gen DIR ARGS... : a pair of configs (configs.py pair)
  local dir=$1; shift
  "$TP_PY" "$CONFIGS" pair --out "$dir" "$@" >"$dir.gen.log" 2>&1 ||
    { fail "configs.py pair $* failed: $(tail -1 "$dir.gen.log")"; return 1; }
}

ESPD_ARGS=()  # extra `espd run` arguments (the *-workers runs: --workers 2)

pair_up() {  # pair_up DIR : topology + espd on a and b
  tp_topo_pair || { fail "building the pair topology failed"; return 1; }
  start a "$(cfg "$1" a)" "${ESPD_ARGS[@]}" || return 1
  start b "$(cfg "$1" b)" "${ESPD_ARGS[@]}" || return 1
}

with_workers() {  # with_workers FUNCTION : a test with both ends on two workers
  ESPD_ARGS=(--workers 2)
  "$@"
  ESPD_ARGS=()
}


ctl() {  # ctl NAME CMD... : control.py, output in $TP_LOGDIR/NAME.out; 1 on failure
  "$TP_PY" "$CTL" "${@:2}" >"$TP_LOGDIR/$1.out" 2>"$TP_LOGDIR/$1.err" ||
    { fail "control.py $1: $(tail -c 300 "$TP_LOGDIR/$1.err")$(tail -c 300 "$TP_LOGDIR/$1.out")"; return 1; }
}

espd_cli() {  # espd_cli NAME ARGS... : the espd CLI, output in $TP_LOGDIR/NAME.out; 1 on failure
  "$ESPD" "${@:2}" >"$TP_LOGDIR/$1.out" 2>"$TP_LOGDIR/$1.err" ||
    { fail "espd ${*:2}: $(head -c 300 "$TP_LOGDIR/$1.err")"; return 1; }
}

stop_both() {  # SIGTERM both; each must exit 0
  local h
  for h in a b; do tp_espd_stop "espd-$h" 3 || fail "$TP_ESPD_WHY"; done
}

no_keys_leaked() {  # no_keys_leaked DIR FILE... : no key of the configs appears in FILES
  local k f
  for k in $(jq -r '.tunnels[] | (.inbound[], .outbound) | .key // empty, .auth_key // empty' "$(cfg "$1" a)" "$(cfg "$1" b)"); do
    for f in "${@:2}"; do
      grep -qi -- "${k#0x}" "$f" 2>/dev/null && { fail "key material in $(basename "$f")"; return 1; }
    done
  done
  return 0
}

udp_loss() {  # udp_loss JSON : lost packets in both directions of an iperf3 --bidir UDP run
  jq -r '[.end.sum.lost_packets // 0, .end.sum_bidir_reverse.lost_packets // 0] | add' "$1"
}
udp_packets() { jq -r '[.end.sum.packets // 0, .end.sum_bidir_reverse.packets // 0] | add' "$1"; }

# ------------------------------------------------------------------ tests

t_cli() {
  local d=$TP_LOGDIR/cfg sa sb
  gen "$d" --inner 4,6 || return
  pair_up "$d" || return
  sa=$(sock "$d" a) sb=$(sock "$d" b)
  [[ $(stat -c %a "$sa") == 600 ]] || fail "control socket mode is $(stat -c %a "$sa"), expected 600"
  espd_cli list tunnel list --json --control "$sa" || return
  jq -e '.ok and (.tunnels | length == 1) and .tunnels[0].name == "b" and (.tunnels[0].inbound | length == 1)' \
    "$TP_LOGDIR/list.out" >/dev/null || fail "tunnel list --json: $(head -c 300 "$TP_LOGDIR/list.out")"
  espd_cli list-text tunnel list --control "$sa" || return
  grep -q '^b: tunnel' "$TP_LOGDIR/list-text.out" || fail "tunnel list (text): $(head -2 "$TP_LOGDIR/list-text.out")"

  # a tunnel added and deleted with the CLI: its route comes and goes
  cat >"$TP_LOGDIR/extra.json" <<EOF
{"name":"extra","mode":"tunnel","remote_ts":["2001:db8:77::/64"],
 "inbound":[{"spi":"0x7700aa01","alg":"aes256gcm16","key":"$(head -c 36 /dev/urandom | od -An -tx1 | tr -d ' \n')"}],
 "outbound":{"spi":"0x7700bb01","alg":"aes256gcm16","key":"$(head -c 36 /dev/urandom | od -An -tx1 | tr -d ' \n')"}}
EOF
  espd_cli add tunnel add --json "$TP_LOGDIR/extra.json" --control "$sa" || return
  tp_wait 2 tp_routes_via a 2001:db8:77::5 espd0 || fail "no route into the TUN for an added tunnel's remote_ts"
  "$ESPD" tunnel add --json - --control "$sa" <"$TP_LOGDIR/extra.json" >/dev/null 2>"$TP_LOGDIR/dup.err"
  { (($? == 2)) && grep -q 'exists' "$TP_LOGDIR/dup.err"; } || fail "adding a tunnel twice: expected exit 2 and 'exists', got: $(cat "$TP_LOGDIR/dup.err")"
  grep -qi "$(jq -r .inbound[0].key "$TP_LOGDIR/extra.json")" "$TP_LOGDIR/dup.err" && fail "an error quotes key material"
  espd_cli delete tunnel delete extra --control "$sa" || return
  tp_routes_via a 2001:db8:77::5 espd0 && fail "the deleted tunnel's route is still there"

  # rekey through the CLI (inbound on b first, then outbound on a), old SA deleted with `sa delete`
  local old key newspi
  old=$(jq -r '.tunnels[0].inbound[0].spi' "$(cfg "$d" b)")
  key=$(head -c 20 /dev/urandom | od -An -tx1 | tr -d ' \n') newspi=0x5a5a0001
  echo "{\"inbound\":{\"spi\":\"$newspi\",\"alg\":\"aes128gcm16\",\"key\":\"$key\"}}" |
    "$ESPD" rekey a --json - --control "$sb" >"$TP_LOGDIR/rk1.out" 2>&1 || fail "rekey inbound: $(cat "$TP_LOGDIR/rk1.out")"
  echo "{\"outbound\":{\"spi\":\"$newspi\",\"alg\":\"aes128gcm16\",\"key\":\"$key\"}}" |
    "$ESPD" rekey b --json - --control "$sa" >"$TP_LOGDIR/rk2.out" 2>&1 || fail "rekey outbound: $(cat "$TP_LOGDIR/rk2.out")"
  tp_ping a -c 3 198.51.100.2 >/dev/null 2>&1 || tp_ping a -c 3 "$(sc "$d" .hosts.b.inner4)" >>"$TP_LOGDIR/ping.log" 2>&1 ||
    fail "ping after the CLI rekey failed"
  espd_cli sa-delete sa delete "$old" --control "$sb" || return
  espd_cli list-b tunnel list --json --control "$sb" || return
  jq -e --arg n "$newspi" '.tunnels[0].inbound | length == 1 and .[0].spi == $n and .[0].packets >= 3' \
    "$TP_LOGDIR/list-b.out" >/dev/null || fail "after rekey + sa delete, b's inbound SAs: $(jq -c .tunnels[0].inbound "$TP_LOGDIR/list-b.out")"
  espd_cli stats stats --json --control "$sb" || return
  jq -e '.ok and .stats.decapsulated >= 3 and (.stats.tunnels[0].packets_in >= 3)' "$TP_LOGDIR/stats.out" >/dev/null ||
    fail "stats --json: $(head -c 300 "$TP_LOGDIR/stats.out")"
  espd_cli stats-text stats --control "$sb" || return
  grep -q '^tunnel a:' "$TP_LOGDIR/stats-text.out" || fail "stats (text) has no tunnel line"
  timeout 3 "$ESPD" stats --watch 1 --json --control "$sb" >"$TP_LOGDIR/watch.out" 2>&1
  (($(grep -c '"ok":true' "$TP_LOGDIR/watch.out") >= 2)) || fail "stats --watch 1 printed $(grep -c '"ok":true' "$TP_LOGDIR/watch.out") samples in 3 s"
  "$ESPD" stats --control "$TP_LOGDIR/nosuch.sock" >/dev/null 2>"$TP_LOGDIR/nosock.err"
  { (($? == 1)) && grep -q 'is espd running' "$TP_LOGDIR/nosock.err"; } || fail "stats on a missing socket: $(cat "$TP_LOGDIR/nosock.err")"
  stop_both
  [[ -e $sa ]] && fail "the control socket file is left after exit"
  no_keys_leaked "$d" "$TP_LOGDIR"/*.out "$TP_LOGDIR"/*.err
}

# UDP datagrams both namespaces' kernels dropped for a full socket buffer: iperf3's loss, not espd's.
rcvbuf_ab() { echo $(($(tp_udp_rcvbuf_errors a) + $(tp_udp_rcvbuf_errors b))); }

tun_drops() {  # tun_drops SHORT : packets the kernel dropped on their way into espd's TUN (its queue full)
  ip -n "$(tp_ns "$1")" -s -j link show espd0 2>/dev/null | jq -r '.[0].stats64.tx.dropped // 0' 2>/dev/null || echo 0
}

# The drop reasons a live tunnel never has, whatever the load.
DROP_KEYS="unknown_spi auth_failed replayed outside_window expired malformed bad_padding selector_mismatch crypto_failure"

espd_counters() {  # espd_counters NAME [SECONDS=5] : SIGUSR1, wait for the whole new {"stats":...} line (tens
  # of MB with 100,000 tunnels), then $TP_LOGDIR/NAME.counters.json = {"drops":{DROP_KEYS},"tun_write_dropped":N,
  # "udp_send_dropped":N,"handoff_dropped":N,"stall_ms":X|null,"worker_stall_ms":[X,...]|null}
  local name=$1 t=${2:-5} pid out n i
  pid=$(tp_pid "$name") out=$TP_LOGDIR/$1.out
  tp_alive "$pid" || { fail "espd $name is not running: $(_tp_tail "$TP_LOGDIR/$name.err" 2)"; return 1; }
  n=$(grep -c '^{"stats"' "$out")
  kill -USR1 "$pid"
  for ((i = 0; i < t * 10; i++)); do
    (($(grep -c '^{"stats"' "$out") > n)) && [[ -z $(tail -c 1 "$out") ]] && break   # a newline ends the line
    sleep 0.1
  done
  "$TP_PY" - "$out" "$n" "$DROP_KEYS" >"$TP_LOGDIR/$name.counters.json" 2>"$TP_LOGDIR/$name.counters.err" <<'EOF' ||
import json, sys
lines = [l for l in open(sys.argv[1], errors="replace") if l.startswith('{"stats"')]
assert len(lines) > int(sys.argv[2]) and lines[-1].endswith("\n"), "no new stats line"
s = json.loads(lines[-1])["stats"]
ms = lambda ns: None if ns is None else ns / 1e6
w = s.get("workers")
print(json.dumps({
    "drops": {k: s.get("drops", {}).get(k) for k in sys.argv[3].split()},
    **{k: s.get(k) for k in ("tun_write_dropped", "udp_send_dropped", "handoff_dropped")},
    "stall_ms": ms(s.get("loop_stall_max_ns")),
    "gap_ms": ms(s.get("loop_gap_max_ns")),
    "worker_stall_ms": [ms(x.get("stall_max_ns")) for x in w] if w and "stall_max_ns" in w[0] else None}))
EOF
    { fail "espd $name: no stats line within ${t}s of SIGUSR1: $(tail -1 "$TP_LOGDIR/$name.counters.err")"; return 1; }
}

no_espd_drops() {  # no_espd_drops WHEN [SECONDS] : neither espd dropped a packet for a reason a live tunnel never should
  local h k v
  for h in a b; do
    espd_counters "espd-$h" "${2:-5}" || continue
    for k in $DROP_KEYS; do
      v=$(jq -r --arg k "$k" '.drops[$k] // "missing"' "$TP_LOGDIR/espd-$h.counters.json")
      [[ $v == 0 ]] || fail "espd-$h counted $k = $v $1"
    done
  done
}

espd_losses() {  # what both espds dropped for want of room (after no_espd_drops), for the PASS line
  jq -rs 'map([.tun_write_dropped, .udp_send_dropped, .handoff_dropped] | map(. // "-") | join("/")) |
    "espd tun/udp/handoff drops a \(.[0]), b \(.[1])"' "$TP_LOGDIR/espd-a.counters.json" "$TP_LOGDIR/espd-b.counters.json" 2>/dev/null
}

stall_text() {  # stall_text HOST : espd's longest loop stall (stats loop_stall_max_ns, CPU time) in ms, per worker too, and the wall-clock gap; "n/a" if not reported
  jq -r 'def r: . * 1000 | round / 1000; if .stall_ms == null then "n/a" else "\(.stall_ms | r) ms" + (if .gap_ms then " (wall clock, with time preempted: \(.gap_ms | r) ms)" else "" end) +
    (if .worker_stall_ms then " (workers \(.worker_stall_ms | map(if . == null then "n/a" else r end) | join(", ")))" else "" end) end' \
    "$TP_LOGDIR/espd-$1.counters.json" 2>/dev/null || echo "n/a"
}

thread_ticks() {  # thread_ticks NAME : "THREAD TICKS" per thread of process NAME (utime + stime; same names summed)
  local pid; pid=$(tp_pid "$1")
  [[ -n $pid ]] && cat /proc/"$pid"/task/*/stat 2>/dev/null | awk '{gsub(/[()]/, "", $2); sub(/-[0-9]+$/, "", $2); print $2, $14 + $15}'
}

cpu_text() {  # cpu_text BEFORE AFTER : "THREAD SECONDS, ..." each thread used in between (thread_ticks outputs)
  awk -v hz="$(getconf CLK_TCK)" 'NR == FNR {b[$1] += $2; next} {a[$1] += $2}
    END {for (t in a) if (a[t] - b[t] >= hz / 20) printf "%s %.1f\n", t, (a[t] - b[t]) / hz}' <(echo "$1") <(echo "$2") |
    sort | paste -sd, - | sed 's/,/, /g'
}

RUN_LOST=0 RUN_SENT=0 RUN_KERNEL=""
load_run() {  # load_run NAME ADDR : LOAD for LOAD_SECS, iperf3 server on b, client on a; RUN_LOST and RUN_SENT
  # (datagrams, both directions); RUN_KERNEL, for information: what the kernels dropped meanwhile, the
  # worst delay the scheduler gave a thread that slept 1 ms, and the CPU seconds each espd thread used
  local ra rb ta tb ca cb
  ra=$(tp_udp_rcvbuf_errors a) rb=$(tp_udp_rcvbuf_errors b) ta=$(tun_drops a) tb=$(tun_drops b)
  ca=$(thread_ticks espd-a) cb=$(thread_ticks espd-b)
  tp_bg "$1-wakeups" a "$TP_PY" "$CTL" wakeups --seconds "$LOAD_SECS"
  tp_iperf "$1" b a "$2" "$LOAD_SECS" "${LOAD[@]}" || { fail "$1: $TP_IPERF_SUMMARY"; return 1; }
  RUN_LOST=$(udp_loss "$TP_LOGDIR/$1.json") RUN_SENT=$(udp_packets "$TP_LOGDIR/$1.json")
  RUN_KERNEL="UdpRcvbufErrors a $(($(tp_udp_rcvbuf_errors a) - ra)) b $(($(tp_udp_rcvbuf_errors b) - rb)), TUN queue drops a $(($(tun_drops a) - ta)) b $(($(tun_drops b) - tb))"
  tp_wait_exit "$(tp_pid "$1-wakeups")" 3 &&
    RUN_KERNEL+=", worst wakeup $(jq -r .worst_ms "$TP_LOGDIR/$1-wakeups.out" 2>/dev/null) ms"
  RUN_KERNEL+=", CPU s a: $(cpu_text "$ca" "$(thread_ticks espd-a)"), b: $(cpu_text "$cb" "$(thread_ticks espd-b)")"
}

seconds_since() { awk -v n=$(($(date +%s%N) - $1)) 'BEGIN{printf "%.1f", n / 1e9}'; }   # seconds_since T0_NS

within_baseline() {  # within_baseline LOST_BASELINE LOST SENT : LOST <= LOST_BASELINE + 0.01% of SENT + 1
  (($2 <= $1 + $3 / 10000 + 1))
}

t_rekey() {
  local ESPD=$ESPD_RELEASE   # 200 Mbit/s each way: the release binary
  local d=$TP_LOGDIR/cfg b4 lost_base sent_base kern_base rekeys
  gen "$d" --inner 4 || return
  pair_up "$d" || return
  b4=$(sc "$d" .hosts.b.inner4)
  load_run base "$b4" || return
  lost_base=$RUN_LOST sent_base=$RUN_SENT kern_base=$RUN_KERNEL
  # a rekey every second from 0.7 s on (iperf3's stream starts within about 0.5 s), the last one's
  # old SAs deleted at 15.0 s, before iperf3's 15 s are over
  tp_bg rekeyer a "$TP_PY" "$CTL" rekey-loop --a "$(sock "$d" a)" --b "$(sock "$d" b)" --tunnel-a b --tunnel-b a \
    --alg aes128gcm16 --seconds "$LOAD_SECS" --interval 1 --delete-delay 0.3 --delay 0.7
  load_run rekey "$b4" || return
  tp_wait_exit "$(tp_pid rekeyer)" 10 || { fail "the rekey loop did not finish"; return; }
  ((TP_RC == 0)) || { fail "rekey loop failed: $(_tp_tail "$TP_LOGDIR/rekeyer.err" 2)"; return; }
  rekeys=$(jq -r .rekeys "$TP_LOGDIR/rekeyer.out")
  ((rekeys >= LOAD_SECS - 1)) || fail "only $rekeys rekeys in $LOAD_SECS s"
  no_espd_drops "during the rekeys"
  local figures
  figures="baseline lost $lost_base of $sent_base ($kern_base); with $rekeys rekeys lost $RUN_LOST of $RUN_SENT ($RUN_KERNEL); worst rekey round $(jq -r .worst_round_ms "$TP_LOGDIR/rekeyer.out") ms; $(espd_losses); loop stall a $(stall_text a), b $(stall_text b)"
  if within_baseline "$lost_base" "$RUN_LOST" "$RUN_SENT"; then info "$figures"
  else fail "the rekeys lost datagrams: $RUN_LOST lost, at most $((lost_base + RUN_SENT / 10000 + 1)) allowed: $figures"; fi
  espd_cli list-a tunnel list --json --control "$(sock "$d" a)"
  jq -e '.tunnels[0].inbound | length == 1' "$TP_LOGDIR/list-a.out" >/dev/null || fail "old inbound SAs left on a"
  stop_both
}

t_churn() {
  local d=$TP_LOGDIR/cfg b4 routes0 routes1 loss r0 kern
  gen "$d" --inner 4,6 || return
  pair_up "$d" || return
  b4=$(sc "$d" .hosts.b.inner4)
  routes0=$(ip -n "$(tp_ns a)" -6 route show dev espd0 2>/dev/null | wc -l)
  r0=$(rcvbuf_ab)
  tp_bg churner a "$TP_PY" "$CTL" churn --sock "$(sock "$d" a)" --count 1000
  tp_iperf live b a "$b4" 25 -u -b 20M -l 1000 || { fail "live tunnel: $TP_IPERF_SUMMARY"; return; }
  kern=$(($(rcvbuf_ab) - r0))
  tp_wait_exit "$(tp_pid churner)" 60 || { fail "the churn did not finish within 80 s"; return; }
  ((TP_RC == 0)) || { fail "churn failed: $(_tp_tail "$TP_LOGDIR/churner.err" 2) $(_tp_tail "$TP_LOGDIR/churner.out" 1)"; return; }
  loss=$(jq -r '.end.sum.lost_packets' "$TP_LOGDIR/live.json")
  info "$(jq -c . "$TP_LOGDIR/churner.out"); live tunnel lost $loss of $(jq -r .end.sum.packets "$TP_LOGDIR/live.json") ($kern in full receiver sockets)"
  ((loss <= kern)) || fail "the live tunnel lost $loss packets while 1,000 tunnels came and went ($kern of them in full receiver sockets)"
  no_espd_drops "while the tunnels churned"
  routes1=$(ip -n "$(tp_ns a)" -6 route show dev espd0 2>/dev/null | wc -l)
  ((routes1 == routes0)) || fail "routes through espd0: $routes0 before, $routes1 after"
  stop_both
}

t_malformed() {
  local d=$TP_LOGDIR/cfg b4
  gen "$d" --inner 4 || return
  pair_up "$d" || return
  b4=$(sc "$d" .hosts.b.inner4)
  tp_bg pinger a "$TP_PY" "$TP_WORK/nettool.py" ping -c 40 -i 0.05 "$b4"
  ctl malformed malformed --sock "$(sock "$d" a)" --tunnel b
  info "$(jq -r '"\(.cases) bad requests refused"' "$TP_LOGDIR/malformed.out" 2>/dev/null)"
  # an oversized line: an error answer, the rest of the line dropped, the next request answered
  head -c 1100000 /dev/zero | tr '\0' 'x' >"$TP_LOGDIR/big.txt"; echo >>"$TP_LOGDIR/big.txt"
  "$TP_PY" - "$(sock "$d" a)" "$TP_LOGDIR/big.txt" >"$TP_LOGDIR/big.out" 2>&1 <<'EOF' || fail "oversized request: $(cat "$TP_LOGDIR/big.out")"
import socket, sys, json
s = socket.socket(socket.AF_UNIX); s.settimeout(5); s.connect(sys.argv[1])
s.sendall(open(sys.argv[2], "rb").read() + b'{"op":"list"}\n')
data = b""
while data.count(b"\n") < 2:
    c = s.recv(65536)
    if not c: break
    data += c
lines = data.split(b"\n")
a, b = json.loads(lines[0]), json.loads(lines[1])
assert a["ok"] is False and "longer" in a["error"], a
assert b["ok"] is True and "tunnels" in b, b   # the connection goes on with the next line
EOF
  tp_wait_exit "$(tp_pid pinger)" 10
  ((TP_RC == 0)) || fail "the ping flow was interrupted: $(_tp_tail "$TP_LOGDIR/pinger.out" 1)"
  stop_both
}

t_expiry() {
  local d=$TP_LOGDIR/cfg b4 sa sb
  gen "$d" --inner 4 || return
  pair_up "$d" || return
  b4=$(sc "$d" .hosts.b.inner4) sa=$(sock "$d" a) sb=$(sock "$d" b)
  tp_bg events-a a "$ESPD" events --control "$sa"
  tp_bg events-b b "$TP_PY" "$CTL" events --sock "$sb" --seconds 12
  tp_wait 3 grep -q subscribed "$TP_LOGDIR/events-b.out" || { fail "no subscription on b"; return; }
  tp_wait 3 grep -q subscribed "$TP_LOGDIR/events-a.err" || { fail "no subscription on a: $(_tp_tail "$TP_LOGDIR/events-a.err" 1)"; return; }
  # a's new outbound SA: soft at 20 packets, hard at 40; b's new inbound SA: soft after 2 s, hard after 4 s
  local k1 k2
  k1=$(head -c 20 /dev/urandom | od -An -tx1 | tr -d ' \n')
  ctl rk1 request "$sb" "{\"op\":\"rekey\",\"name\":\"a\",\"inbound\":{\"spi\":\"0x11110001\",\"alg\":\"aes128gcm16\",\"key\":\"$k1\",\"lifetime\":{\"seconds_soft\":2,\"seconds_hard\":4}}}" || return
  ctl rk2 request "$sa" "{\"op\":\"rekey\",\"name\":\"b\",\"outbound\":{\"spi\":\"0x11110001\",\"alg\":\"aes128gcm16\",\"key\":\"$k1\",\"lifetime\":{\"packets_soft\":20,\"packets_hard\":40}}}" || return
  tp_ping a -c 60 -i 0.01 -W 0.2 --min 1 "$b4" >"$TP_LOGDIR/ping1.log" 2>&1
  tp_wait 3 grep -q '"spi":"0x11110001","hard":true' "$TP_LOGDIR/events-a.out" || fail "no hard event on a: $(cat "$TP_LOGDIR/events-a.out")"
  grep -q '"spi":"0x11110001","hard":false,"reason":"packets","direction":"outbound"' "$TP_LOGDIR/events-a.out" ||
    fail "no soft packets event on a: $(cat "$TP_LOGDIR/events-a.out")"
  tp_espd_stats espd-a
  local expired; expired=$(tp_stat espd-a expired)
  ((expired >= 15)) || fail "a counted $expired packets dropped as expired, expected about 20"
  espd_cli list-a tunnel list --json --control "$sa"
  jq -e '.tunnels[0].outbound | .state == "expired" and .packets == 40' "$TP_LOGDIR/list-a.out" >/dev/null ||
    fail "a's outbound SA: $(jq -c .tunnels[0].outbound "$TP_LOGDIR/list-a.out")"
  # b's seconds lifetime: soft then hard, about 2 and 4 s after the rekey
  tp_wait 6 grep -q '"spi":"0x11110001","hard":true,"reason":"seconds","direction":"inbound"' "$TP_LOGDIR/events-b.out" ||
    fail "no hard seconds event on b: $(cat "$TP_LOGDIR/events-b.out")"
  grep -q '"spi":"0x11110001","hard":false,"reason":"seconds"' "$TP_LOGDIR/events-b.out" || fail "no soft seconds event on b"
  # sequence exhaustion: an outbound SA that starts 16 numbers before the end of the 32-bit space
  local k2; k2=$(head -c 20 /dev/urandom | od -An -tx1 | tr -d ' \n')
  ctl rk3 request "$sb" "{\"op\":\"rekey\",\"name\":\"a\",\"inbound\":{\"spi\":\"0x22220001\",\"alg\":\"aes128gcm16\",\"key\":\"$k2\",\"replay_seq\":\"0xffffffe0\"}}" || return
  ctl rk4 request "$sa" "{\"op\":\"rekey\",\"name\":\"b\",\"outbound\":{\"spi\":\"0x22220001\",\"alg\":\"aes128gcm16\",\"key\":\"$k2\",\"seq\":\"0xfffffff0\"}}" || return
  tp_ping a -c 25 -i 0.01 -W 0.2 --min 1 "$b4" >"$TP_LOGDIR/ping2.log" 2>&1
  tp_wait 3 grep -q '"spi":"0x22220001","hard":true,"reason":"sequence"' "$TP_LOGDIR/events-a.out" ||
    fail "no sequence exhaustion event: $(grep 0x22220001 "$TP_LOGDIR/events-a.out")"
  grep -q '"spi":"0x22220001","hard":false,"reason":"sequence"' "$TP_LOGDIR/events-a.out" || fail "no soft sequence event"
  tp_espd_stats espd-a
  local ex; ex=$(tp_stat espd-a sequence_exhausted)
  ((ex >= 5)) || fail "a counted sequence_exhausted = $ex, expected about 10"
  info "a: $(grep -c . "$TP_LOGDIR/events-a.out") events, expired $expired, sequence_exhausted $ex; b: $(grep -c '"event"' "$TP_LOGDIR/events-b.out") events"
  stop_both
}

t_metrics() {
  local d=$TP_LOGDIR/cfg b4 h
  gen "$d" --inner 4 || return
  for h in a b; do
    jq '.metrics = "127.0.0.1:9469"' "$(cfg "$d" $h)" >"$d/$h.m.json" && mv "$d/$h.m.json" "$(cfg "$d" $h)"
  done
  pair_up "$d" || return
  b4=$(sc "$d" .hosts.b.inner4)
  tp_ping a -c 20 -i 0.01 "$b4" >/dev/null 2>&1 || fail "ping through the tunnel failed"
  tp_iperf udp b a "$b4" 2 -u -b 10M -l 1000 || fail "iperf3: $TP_IPERF_SUMMARY"
  sleep 0.5   # let the last packets land
  tp_exec a curl -sS -D "$TP_LOGDIR/headers.txt" http://127.0.0.1:9469/metrics -o "$TP_LOGDIR/metrics.txt" ||
    { fail "curl of the metrics endpoint failed"; return; }
  espd_cli stats stats --json --control "$(sock "$d" a)" || return
  grep -qi '^content-type: text/plain; version=0.0.4' "$TP_LOGDIR/headers.txt" || fail "content type: $(grep -i content-type "$TP_LOGDIR/headers.txt")"
  "$TP_PY" - "$TP_LOGDIR/metrics.txt" "$TP_LOGDIR/stats.out" >"$TP_LOGDIR/compare.out" 2>&1 <<'EOF' || fail "metrics vs stats: $(tail -3 "$TP_LOGDIR/compare.out" | tr '\n' ' ')"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
text = open(sys.argv[1]).read()
stats = json.load(open(sys.argv[2]))["stats"]
m = {}
families = 0
for fam in text_string_to_metric_families(text):
    families += 1
    for s in fam.samples:
        m[(s.name, tuple(sorted(s.labels.items())))] = s.value
def get(name, **labels):
    return m[(name, tuple(sorted(labels.items())))]
checks = [
    (get("espd_packets_total", verdict="decapsulated"), stats["decapsulated"]),
    (get("espd_packets_total", verdict="encapsulated"), stats["encapsulated"]),
    (get("espd_drops_total", reason="auth_failed"), stats["drops"]["auth_failed"]),
    (get("espd_batches_total"), None),
]
t = stats["tunnels"][0]
checks += [
    (get("espd_tunnel_packets_total", tunnel=t["name"], direction="in"), t["packets_in"]),
    (get("espd_tunnel_packets_total", tunnel=t["name"], direction="out"), t["packets_out"]),
    (get("espd_tunnel_bytes_total", tunnel=t["name"], direction="in"), t["bytes_in"]),
    (get("espd_tunnel_bytes_total", tunnel=t["name"], direction="out"), t["bytes_out"]),
    (get("espd_tunnel_endpoint_changes_total", tunnel=t["name"]), t["endpoint_changes"]),
]
bad = [(a, b) for a, b in checks if b is not None and a != b]
assert not bad, f"mismatches (metrics, stats): {bad}"
assert stats["encapsulated"] > 1000, stats["encapsulated"]
for r, n in stats["drops"].items():
    assert get("espd_drops_total", reason=r) == n, r
print(f"{families} metric families, {len(m)} samples; counters match")
EOF
  tp_exec a curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:9469/nothing >"$TP_LOGDIR/404.txt"
  [[ $(cat "$TP_LOGDIR/404.txt") == 404 ]] || fail "GET /nothing answered $(cat "$TP_LOGDIR/404.txt"), expected 404"
  info "$(tail -1 "$TP_LOGDIR/compare.out")"
  stop_both
}

t_owner() {
  local d=$TP_LOGDIR/cfg dir=/run/espd-c$$ s
  gen "$d" --inner 4 || return
  mkdir -p "$dir" && chmod 755 "$dir"
  jq --arg s "$dir/a.sock" '.control = $s' "$(cfg "$d" a)" >"$d/a.o.json" && mv "$d/a.o.json" "$(cfg "$d" a)"
  s=$dir/a.sock
  tp_topo_pair || { fail "topology"; rm -rf "$dir"; return; }
  start a "$(cfg "$d" a)" || { rm -rf "$dir"; return; }
  [[ $(stat -c '%a %U' "$s") == "600 root" ]] || fail "socket is $(stat -c '%a %U' "$s"), expected 600 root"
  # The client runs as uid 65534 from a copy it can read (the checkout may be private to root).
  install -m 644 "$CTL" "$dir/control.py"
  setpriv --reuid=65534 --regid=65534 --clear-groups "$TP_PY" "$dir/control.py" request "$s" '{"op":"list"}' >"$TP_LOGDIR/nobody1.out" 2>&1 &&
    fail "uid 65534 got an answer through a 0600 socket: $(cat "$TP_LOGDIR/nobody1.out")"
  grep -q 'PermissionError: \[Errno 13\]' "$TP_LOGDIR/nobody1.out" ||
    fail "expected EACCES on connect for uid 65534: $(tail -1 "$TP_LOGDIR/nobody1.out")"
  chmod 666 "$s"   # even so, espd checks the peer's credentials
  setpriv --reuid=65534 --regid=65534 --clear-groups "$TP_PY" "$dir/control.py" request "$s" '{"op":"list"}' >"$TP_LOGDIR/nobody2.out" 2>&1 &&
    fail "uid 65534 got an answer through a world-writable socket: $(cat "$TP_LOGDIR/nobody2.out")"
  grep -q '"ok": false.*not the socket.s owner' "$TP_LOGDIR/nobody2.out" || fail "expected a refusal naming the owner: $(tail -1 "$TP_LOGDIR/nobody2.out")"
  ctl root request "$s" '{"op":"list"}' || fail "root (the owner) was refused"
  tp_espd_stop espd-a 3 || fail "$TP_ESPD_WHY"
  [[ -e $s ]] && fail "socket left after exit"
  rm -rf "$dir"
}

t_storm() {
  local ESPD=$ESPD_RELEASE TP_ESPD_START_TIMEOUT=120   # the release binary; b loads STORM_TUNNELS tunnels
  local LOAD_SECS=20   # room for 20,000 steps from one connection (1,500-4,000 steps/s here) inside the load
  local d=$TP_LOGDIR/cfg b4 sb t0 gen_s up_s lost_base sent_base kern_base steps
  gen "$d" --inner 4 || return
  t0=$(date +%s%N)
  "$TP_PY" "$CONFIGS" extra "$d" --host b --tunnels "$STORM_TUNNELS" >"$d.extra.log" 2>&1 ||
    { fail "configs.py extra: $(tail -1 "$d.extra.log")"; return; }
  gen_s=$(seconds_since "$t0")
  tp_topo_pair || { fail "building the pair topology failed"; return; }
  start a "$(cfg "$d" a)" "${ESPD_ARGS[@]}" || return
  t0=$(date +%s%N)
  start b "$(cfg "$d" b)" "${ESPD_ARGS[@]}" || return
  sb=$(sock "$d" b)
  ctl up-b wait --sock "$sb" --seconds 120 || return
  up_s=$(seconds_since "$t0")
  b4=$(sc "$d" .hosts.b.inner4)
  load_run base "$b4" || return
  lost_base=$RUN_LOST sent_base=$RUN_SENT kern_base=$RUN_KERNEL
  # the storm from 1 s into the run, 13 s at most: it is over before iperf3's 15 s are
  tp_bg storm b "$TP_PY" "$CTL" storm --sock "$sb" --tunnels "$STORM_TUNNELS" --steps "$STORM_STEPS" \
    --seconds $((LOAD_SECS - 2)) --delay 1
  load_run storm "$b4" || return
  tp_wait_exit "$(tp_pid storm)" 20 || { fail "the storm did not stop"; return; }
  ((TP_RC == 0)) || { fail "the storm failed: $(_tp_tail "$TP_LOGDIR/storm.err" 2) $(_tp_tail "$TP_LOGDIR/storm.out" 1)"; return; }
  steps=$(jq -r .steps "$TP_LOGDIR/storm.out")
  no_espd_drops "during the storm" 60
  local figures
  figures="b: $((STORM_TUNNELS + 1)) tunnels, config written in ${gen_s}s, up in ${up_s}s; baseline lost $lost_base of $sent_base ($kern_base); during the storm lost $RUN_LOST of $RUN_SENT ($RUN_KERNEL); storm $(jq -r '"\(.steps) of \(.of) steps in \(.seconds) s (\(.steps_per_s) steps/s, worst request \(.worst_request_ms) ms, the client used \(.client_cpu_s) s CPU)"' "$TP_LOGDIR/storm.out"); $(espd_losses); loop stall b $(stall_text b), a (no storm) $(stall_text a)"
  local why=() stall msg
  ((steps == STORM_STEPS)) || why+=("the storm did $steps of $STORM_STEPS rekey steps in $((LOAD_SECS - 2)) s")
  within_baseline "$lost_base" "$RUN_LOST" "$RUN_SENT" ||
    why+=("the storm cost datagrams: $RUN_LOST lost, at most $((lost_base + RUN_SENT / 10000 + 1)) allowed")
  # the stall that counts is the stormed espd's (b); a's is printed to tell the machine's share
  # The stall is a benchmark figure (issue 14: "longest loop gap printed (< 1 ms)"), printed with
  # its target, not a pass/fail criterion: this kernel has no IRQ time accounting, so softirq work of
  # the load's own packets that lands while a worker is between batches is charged to the worker,
  # and a's (no storm) figure in the same run shows that share.
  stall=$(jq -r '.stall_ms // empty' "$TP_LOGDIR/espd-b.counters.json" 2>/dev/null)
  if [[ -n $stall ]]; then
    if awk -v s="$stall" 'BEGIN{exit !(s < 1)}'; then figures+="; stall target < 1 ms: met"; else figures+="; stall target < 1 ms: NOT met ($stall ms)"; fi
  fi
  if ((${#why[@]})); then
    msg=$(printf '%s; ' "${why[@]}")
    fail "${msg%; }: $figures"
  else
    info "$figures"
  fi
  tp_espd_stop espd-a 3 || fail "$TP_ESPD_WHY"
  tp_espd_stop espd-b 60 || fail "$TP_ESPD_WHY"
}

retry_once() {  # retry_once FUNCTION [ARGS...] : a load test gets a second try after a failure (a 2-vCPU VM's
  # scheduling noise can lose a datagram in either run); the first try's failure is reported either way
  "$@"
  ((${#T_FAILS[@]})) || return 0
  local first=${T_FAILS[0]}
  T_FAILS=() T_INFO=()
  tp_teardown
  "$@"
  if ((${#T_FAILS[@]})); then T_FAILS+=("the first try failed too: $first"); else T_INFO+=("passed on the second try; the first failed: $first"); fi
}

run cli t_cli
run rekey retry_once t_rekey
run churn t_churn
run rekey-workers retry_once with_workers t_rekey
run churn-workers with_workers t_churn
run malformed t_malformed
run expiry t_expiry
run metrics t_metrics
run owner t_owner
run storm retry_once t_storm
run storm-workers retry_once with_workers t_storm
((LIST)) && exit 0

suite_summary
