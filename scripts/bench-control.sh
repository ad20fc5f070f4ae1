#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# bench-control.sh - the control path at scale: for each tunnel count N, espd starts (in its own
# network namespace) with N responder tunnels written by `bench control config`, and this measures
#   start-up      from exec until the control socket answers {"op":"subscribe"} (`bench control wait`:
#                 the socket exists early, the answer comes once tunnels, routes and loops are up)
#   memory        VmRSS once started; per tunnel = (RSS_N - RSS_0) / N, RSS_0 from an espd with none
#   control path  `bench control run`: hitless rekey steps one request at a time (rekey_serial) and
#                 pipelined (rekey_pipelined), add_tunnel + delete_tunnel pairs (tunnel_churn_serial),
#                 stats answers (stats_serial); answer times p50/p99/max
#   shutdown      SIGTERM until espd exits (at most 120 s, then SIGKILL)
# then prints a table and the targets (issue 14): at 100,000 and 1,000,000 tunnels >= 5,000 rekey
# steps/s one at a time with p99 <= 2 ms; the rate at 1,000,000 >= 0.8 x the rate at 1,000; RSS per
# tunnel <= 4.6 KB (at the largest N). Figures are printed, never asserted, unless --gate.
#
# Usage: sudo scripts/bench-control.sh [--tunnels "1000 10000 100000 1000000"] [--steps K] [--workers W]
#                                      [--espd PATH] [--bench PATH] [--out FILE] [--depth D]
#                                      [--pin none|same|cross] [--busy-poll] [--stats-request LINE] [--gate]
#   --tunnels LIST  tunnel counts (default "1000 10000 100000 1000000")
#   --steps K       rekey steps per rekey case (default 5000); churn pairs are K/5
#   --workers W     espd run --workers (default 1)
#   --espd PATH     the binary (default .build/release/espd, built if missing)
#   --bench PATH    the bench binary (default .build/release/bench, built if missing)
#   --out FILE      the JSON lines of every case (default .build/bench-control/results-<time>.jsonl)
#   --depth D       outstanding requests in rekey_pipelined (default 64)
#   --pin MODE      none (default): the scheduler places the client and espd's control thread; same:
#                   both on CPU 0; cross: control thread on CPU 0, client on CPU 1. On small VMs a
#                   wake-up across CPUs costs tens of µs, so serial figures depend on this
#   --busy-poll     the client spins for answers instead of sleeping in read(2) (bench --busy-poll)
#   --stats-request LINE  what stats_serial sends (default {"op":"stats"}: every tunnel's counters)
#   --gate          exit 1 if a measured target is missed (a target not measured is reported, not failed)
#
# Needs root (network namespace, TUN). Namespace espd-cb<PID>, work dir from mktemp -d (configs, control
# socket, espd logs; kept and named on failure). Only the espd processes started here are signalled,
# by PID; the namespace is deleted on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

LIST="1000 10000 100000 1000000" STEPS=5000 WORKERS=1 ESPD_BIN="" BENCH_BIN="" OUT="" DEPTH=64 PIN=none
BUSY=0 GATE=0 STATS_REQUEST='{"op":"stats"}'
while (($#)); do
  case $1 in
    --tunnels) LIST=${2:?--tunnels needs a list}; shift 2 ;;
    --steps) STEPS=${2:?--steps needs a count}; shift 2 ;;
    --workers) WORKERS=${2:?--workers needs a count}; shift 2 ;;
    --espd) ESPD_BIN=${2:?--espd needs a path}; shift 2 ;;
    --bench) BENCH_BIN=${2:?--bench needs a path}; shift 2 ;;
    --out) OUT=${2:?--out needs a file}; shift 2 ;;
    --depth) DEPTH=${2:?--depth needs a count}; shift 2 ;;
    --pin) PIN=${2:?--pin needs none, same or cross}; shift 2 ;;
    --busy-poll) BUSY=1; shift ;;
    --stats-request) STATS_REQUEST=${2:?--stats-request needs a request line}; shift 2 ;;
    --gate) GATE=1; shift ;;
    -h | --help) sed -n '3,35p' "$0"; exit 0 ;;
    *) echo "bench-control.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
done
for n in $LIST; do
  [[ $n =~ ^[0-9]+$ && $n -ge 1 ]] || { echo "bench-control.sh: bad tunnel count $n" >&2; exit 2; }
done
[[ -n ${LIST// /} ]] || { echo "bench-control.sh: --tunnels: empty list" >&2; exit 2; }
[[ $STEPS =~ ^[0-9]+$ && $STEPS -ge 5 ]] || { echo "bench-control.sh: --steps: at least 5" >&2; exit 2; }
[[ $WORKERS =~ ^[0-9]+$ && $WORKERS -ge 1 ]] || { echo "bench-control.sh: bad --workers $WORKERS" >&2; exit 2; }
[[ $DEPTH =~ ^[0-9]+$ && $DEPTH -ge 1 ]] || { echo "bench-control.sh: bad --depth $DEPTH" >&2; exit 2; }
[[ $PIN == none || $PIN == same || $PIN == cross ]] ||
  { echo "bench-control.sh: --pin: none, same or cross" >&2; exit 2; }
((EUID == 0)) || { echo "bench-control.sh: needs root (network namespace, TUN)" >&2; exit 2; }

log() { printf '%s %s\n' "$(date +%T)" "$*" >&2; }
die() { log "FATAL: $*"; exit 1; }
for c in ip jq awk taskset timeout; do
  command -v "$c" >/dev/null || die "$c is missing (scripts/bootstrap.sh installs it)"
done
if [[ -z $ESPD_BIN || -z $BENCH_BIN ]]; then
  if [[ ! -x .build/release/espd || ! -x .build/release/bench ]]; then
    log "building espd and bench (release)"
    swift build -c release >/dev/null 2>&1 || die "release build failed (swift build -c release)"
  fi
fi
ESPD_BIN=${ESPD_BIN:-$ROOT/.build/release/espd}
BENCH_BIN=${BENCH_BIN:-$ROOT/.build/release/bench}
[[ -x $ESPD_BIN ]] || die "espd binary $ESPD_BIN not found"
[[ -x $BENCH_BIN ]] || die "bench binary $BENCH_BIN not found"
"$BENCH_BIN" control --help >/dev/null 2>&1 || die "$BENCH_BIN has no 'control' benchmark (an older build?)"
if [[ $PIN == cross ]] && (($(nproc) < 2)); then die "--pin cross needs two CPUs"; fi
OUT=${OUT:-$ROOT/.build/bench-control/results-$(date +%Y%m%d-%H%M%S).jsonl}
mkdir -p "$(dirname "$OUT")" || die "cannot create the directory of $OUT"

NS=espd-cb$$
# Before the trap: if the name is taken, the namespace is someone else's, not ours to delete.
ip netns list | awk -v n="$NS" '$1 == n { f = 1 } END { exit !f }' && die "namespace $NS exists (another run?)"
WORK=$(mktemp -d /tmp/espd-cb.XXXXXX)
ESPD_PID="" KEEP=0 FAILED=0

alive() {  # alive PID : running (not a zombie)
  local st
  [[ -n ${1:-} && -r /proc/$1/stat ]] || return 1
  st=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)
  [[ -n $st && $st != Z && $st != X ]]
}
stop_espd() {  # stop_espd SECONDS : SIGTERM to our espd, wait, SIGKILL; sets STOP_S and STOP_RC
  local t=$1 t0 i
  STOP_S="" STOP_RC=""
  [[ -n $ESPD_PID ]] || return 0
  t0=$(date +%s%N)
  kill -TERM "$ESPD_PID" 2>/dev/null || true
  for ((i = 0; i < t * 20; i++)); do
    alive "$ESPD_PID" || break
    sleep 0.05
  done
  if alive "$ESPD_PID"; then
    log "espd (pid $ESPD_PID) still running ${t} s after SIGTERM: SIGKILL"
    kill -KILL "$ESPD_PID" 2>/dev/null || true
    STOP_RC=137
  fi
  wait "$ESPD_PID" 2>/dev/null && STOP_RC=${STOP_RC:-0} || STOP_RC=${STOP_RC:-$?}
  STOP_S=$(awk -v a="$t0" -v b="$(date +%s%N)" 'BEGIN { printf "%.2f", (b - a) / 1e9 }')
  ESPD_PID=""
}
# shellcheck disable=SC2317  # reached through the EXIT trap
cleanup() {
  stop_espd 5
  ip netns del "$NS" 2>/dev/null || true
  if ((KEEP)); then log "work dir kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM HUP

ns_up() {  # a fresh namespace for each espd: nothing one run left behind reaches the next
  ip netns del "$NS" 2>/dev/null || true
  ip netns add "$NS" || return 1
  ip -n "$NS" link set lo up || return 1
  ip netns exec "$NS" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 \
    net.ipv6.conf.all.accept_ra=0 net.ipv6.conf.default.accept_ra=0 >/dev/null
}

control_tid() {  # control_tid PID : the thread espd names espd-control
  local t
  for t in /proc/"$1"/task/*; do
    [[ $(cat "$t/comm" 2>/dev/null) == espd-control ]] && { printf '%s' "${t##*/}"; return 0; }
  done
  return 1
}

# start_espd N : config, exec, wait for the answer; sets STARTUP_S, RSS_KB, SOCK (ESPD_PID)
start_espd() {
  local n=$1 cfg t0 t1
  cfg=$WORK/c$n.json SOCK=$WORK/c$n.sock
  "$BENCH_BIN" control config --tunnels "$n" --out "$cfg" --control "$SOCK" --tun espdcb0 >/dev/null ||
    { log "bench control config failed"; return 1; }
  ns_up || { log "cannot create namespace $NS"; return 1; }
  t0=$(date +%s%N)
  ip netns exec "$NS" "$ESPD_BIN" run --config "$cfg" --workers "$WORKERS" >"$WORK/espd-$n.out" 2>"$WORK/espd-$n.err" \
    </dev/null &
  ESPD_PID=$!
  if ! "$BENCH_BIN" control wait --control "$SOCK" --pid "$ESPD_PID" --timeout 3600 >/dev/null; then
    log "espd with $n tunnels did not come up; its log ends:"
    tail -5 "$WORK/espd-$n.err" >&2
    return 1
  fi
  t1=$(date +%s%N)
  STARTUP_S=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
  RSS_KB=$(awk '/^VmRSS:/ { print $2 }' "/proc/$ESPD_PID/status")
  rm -f "$cfg"  # up to 260 MB
}

fmt() {  # fmt NUMBER DIGITS : fixed decimals, or the text as it is ("-")
  if [[ $1 =~ ^[0-9]+([.][0-9]+)?$ ]]; then printf "%.${2}f" "$1"; else printf '%s' "$1"; fi
}
ROW_FORMAT='%9s | %10s | %10s | %9s | %8s | %8s | %8s | %11s | %9s | %8s | %8s | %8s'

result() {  # result CASE FIELD : a field of the current N's line of that case ("-" when absent)
  jq -rn --arg c "$1" --arg f "$2" '[inputs | select(.case == $c)] | first | .[$f] // "-"' <<<"$RUN_LINES"
}

COMMIT=$(git -C "$ROOT" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
jq -cn --arg commit "$COMMIT" --arg espd "$ESPD_BIN" --argjson workers "$WORKERS" --argjson steps "$STEPS" \
  --argjson depth "$DEPTH" --arg pin "$PIN" --argjson busy "$( ((BUSY)) && echo true || echo false)" \
  --argjson cpus "$(nproc)" --arg kernel "$(uname -r)" --arg stats "$STATS_REQUEST" \
  '{header: "bench-control", $commit, $espd, $workers, $steps, $depth, $pin, busy_poll: $busy, stats_request: $stats,
    $cpus, $kernel}' >"$OUT"

log "baseline: espd with 0 tunnels"
start_espd 0 || { KEEP=1; die "the baseline espd did not start"; }
RSS0=$RSS_KB
stop_espd 120
log "baseline: start-up $STARTUP_S s, RSS $RSS0 kB"
printf '{"case":"espd_start","tunnels":0,"startup_s":%s,"rss_kb":%d,"shutdown_s":%s,"exit":%s}\n' \
  "$STARTUP_S" "$RSS0" "$STOP_S" "$STOP_RC" >>"$OUT"

declare -A ROW=() RATE=() P99=() RSSPT=()
for n in $LIST; do
  log "N=$n: writing the configuration and starting espd"
  if ! start_espd "$n"; then
    FAILED=1 KEEP=1
    stop_espd 10
    ROW[$n]=$(printf '%10s | %s' "$n" "espd did not start (log: $WORK/espd-$n.err)")
    continue
  fi
  RSSPT[$n]=$(awk -v a="$RSS_KB" -v b="$RSS0" -v n="$n" 'BEGIN { printf "%.2f", (a - b) / n }')
  log "N=$n: up in $STARTUP_S s, RSS $RSS_KB kB (${RSSPT[$n]} KB per tunnel); running bench control run"
  client=("$BENCH_BIN")
  case $PIN in
    same | cross)
      tid=$(control_tid "$ESPD_PID") || die "no espd-control thread in espd (pid $ESPD_PID)"
      taskset -p -c 0 "$tid" >/dev/null
      client=(taskset -c "$([[ $PIN == same ]] && echo 0 || echo 1)" "$BENCH_BIN")
      ;;
  esac
  busy=()
  ((BUSY)) && busy=(--busy-poll)
  rc=0
  RUN_LINES=$(timeout 3600 "${client[@]}" control run --json --control "$SOCK" --tunnels "$n" --steps "$STEPS" \
    --depth "$DEPTH" --stats-request "$STATS_REQUEST" "${busy[@]}") || rc=$?
  if ((rc != 0)); then
    FAILED=1 KEEP=1
    log "N=$n: bench control run exited $rc (espd log: $WORK/espd-$n.err)"
  fi
  alive "$ESPD_PID" || { FAILED=1 KEEP=1; log "N=$n: espd exited during the run (log: $WORK/espd-$n.err)"; }
  [[ -n $RUN_LINES ]] && printf '%s\n' "$RUN_LINES" >>"$OUT"
  log "N=$n: stopping espd (SIGTERM)"
  stop_espd 120
  log "N=$n: stopped in $STOP_S s (exit $STOP_RC)"
  [[ $STOP_RC == 0 ]] || { FAILED=1 KEEP=1; }
  printf '{"case":"espd_start","tunnels":%d,"startup_s":%s,"rss_kb":%d,"rss_per_tunnel_kb":%s,%s}\n' \
    "$n" "$STARTUP_S" "$RSS_KB" "${RSSPT[$n]}" "\"shutdown_s\":$STOP_S,\"exit\":$STOP_RC" >>"$OUT"
  RATE[$n]=$(result rekey_serial steps_per_s)
  P99[$n]=$(result rekey_serial p99_ms)
  # shellcheck disable=SC2059  # ROW_FORMAT is this script's own format (column widths)
  ROW[$n]=$(printf "$ROW_FORMAT" "$n" "$STARTUP_S" "${RSSPT[$n]}" "$(fmt "${RATE[$n]}" 1)" \
    "$(fmt "$(result rekey_serial p50_ms)" 3)" "$(fmt "${P99[$n]}" 3)" "$(fmt "$(result rekey_serial max_ms)" 3)" \
    "$(fmt "$(result rekey_pipelined steps_per_s)" 1)" "$(fmt "$(result tunnel_churn_serial pairs_per_s)" 1)" \
    "$(fmt "$(result tunnel_churn_serial p99_ms)" 3)" "$(fmt "$(result stats_serial answers_per_s)" 1)" \
    "$(fmt "$(result stats_serial p99_ms)" 3)")
done

echo
echo "control path: espd $ESPD_BIN, --workers $WORKERS, $STEPS rekey steps," \
  "pin $PIN$( ((BUSY)) && echo ', busy-poll'), baseline RSS $RSS0 kB"
# shellcheck disable=SC2059  # ROW_FORMAT is this script's own format (column widths)
printf "$ROW_FORMAT\n" tunnels "start-up s" "RSS/tun KB" "rekey/s" "p50 ms" "p99 ms" "max ms" "pipelined/s" \
  "add+del/s" "p99 ms" "stats/s" "p99 ms"
for n in $LIST; do printf '%s\n' "${ROW[$n]}"; done
echo "(rekey/s: hitless rekey steps per second one request at a time, 3 requests each; pipelined/s: the same"
echo " with up to $DEPTH requests outstanding; add+del/s: add_tunnel + delete_tunnel pairs; times: from the"
echo " request written to its answer read)"

# Targets: each is "met", "NOT met" or "not measured"; MISSED counts the measured misses.
MISSED=0 V=""
check() {  # check AWK-CONDITION : V = met / NOT met (no subshell: MISSED must survive)
  if awk "BEGIN { exit !($1) }"; then V=met; else V="NOT met" MISSED=$((MISSED + 1)); fi
}
num() { [[ ${1:-} =~ ^[0-9]+([.][0-9]+)?$ ]]; }
echo
echo "targets:"
for n in 100000 1000000; do
  if num "${RATE[$n]:-}" && num "${P99[$n]:-}"; then
    check "${RATE[$n]} >= 5000"
    rate_v=$V
    check "${P99[$n]} <= 2"
    echo "  $n tunnels: >= 5000 rekey steps/s one at a time (${RATE[$n]}): $rate_v; p99 <= 2 ms (${P99[$n]}): $V"
  else
    echo "  $n tunnels: >= 5000 rekey steps/s one at a time, p99 <= 2 ms: not measured"
  fi
done
if num "${RATE[1000000]:-}" && num "${RATE[1000]:-}"; then
  check "${RATE[1000000]} >= 0.8 * ${RATE[1000]}"
  echo "  rate at 1,000,000 >= 0.8 x rate at 1,000 (${RATE[1000000]} vs ${RATE[1000]}): $V"
else
  echo "  rate at 1,000,000 >= 0.8 x rate at 1,000: not measured (needs both in --tunnels)"
fi
largest=""
for n in $LIST; do
  if num "${RSSPT[$n]:-}" && [[ -z $largest || $n -gt $largest ]]; then largest=$n; fi
done
if [[ -n $largest ]]; then
  check "${RSSPT[$largest]} <= 4.6"
  echo "  RSS per tunnel <= 4.6 KB (at $largest tunnels: ${RSSPT[$largest]}): $V"
else
  echo "  RSS per tunnel <= 4.6 KB: not measured"
fi
echo "results: $OUT"

((FAILED)) && { log "some runs failed (see above; work dir $WORK kept)"; exit 1; }
((GATE && MISSED)) && { log "--gate: $MISSED target(s) not met"; exit 1; }
exit 0
