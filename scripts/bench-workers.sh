#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# bench-workers.sh - `espd run --workers N` against `--workers 1`, in one run: UDP 64-byte datagrams
# in many flows, one per tunnel (a concentrator's load: many clients, each with its own SAs),
# between two network namespaces over a veth.
#
# Usage: sudo scripts/bench-workers.sh [-d SECONDS] [-k TUNNELS] [-w "1 2"] [-b RATE] [--espd PATH]
#                                      [-o OUTDIR]
#   -d SECONDS   iperf3 duration per run (default 10)
#   -k TUNNELS   tunnels, each carrying one iperf3 UDP flow (default 4)
#   -w LIST      worker counts to measure (default "1 2"; the first is the baseline)
#   -b RATE      offered load per flow, iperf3 -b (default 0: unlimited, as the harness's UDP tests;
#                25M is ~49k datagrams/s of 64 B, with -k 4 about 195k/s, what one worker carries here)
#   --espd PATH  the binary (default: $ESPD, else .build/release/espd, built if missing)
#   -o OUTDIR    results directory (default scripts/results/workers-<timestamp>, gitignored)
#
# Side a sends, side b receives; each side runs espd with the same --workers. Namespaces bw-a and
# bw-b, underlay 192.0.2.1/.2, tunnel k carries 198.51.100.k <-> 203.0.113.k. Printed per worker
# count: datagrams received per second (sum over the flows, iperf3 receiver side), loss, the
# datagrams side b's espd opened per second, CPU of both espd processes, packets each worker
# processed and handed over; then the ratios to the baseline. On a machine with few CPUs the
# iperf3 processes compete with espd for them: the received rate then also says how the scheduler
# shared the CPUs out, and the opened rate is espd's own. Only processes started here are signalled, by PID; the namespaces go on exit.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
ROOT=$PWD

DUR=10 K=4 WORKERS="1 2" RATE=0 ESPD_BIN=${ESPD:-} OUTDIR=""
while (($#)); do
  case $1 in
    -d) DUR=${2:?-d needs seconds}; shift 2 ;;
    -k) K=${2:?-k needs a count}; shift 2 ;;
    -w) WORKERS=${2:?-w needs a list}; shift 2 ;;
    -b) RATE=${2:?-b needs a rate}; shift 2 ;;
    --espd) ESPD_BIN=${2:?--espd needs a path}; shift 2 ;;
    -o) OUTDIR=${2:?-o needs a directory}; shift 2 ;;
    -h | --help) sed -n '3,21p' "$0"; exit 0 ;;
    *) echo "bench-workers.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
done
[[ $DUR =~ ^[0-9]+$ && $DUR -gt 0 ]] || { echo "bench-workers.sh: bad -d $DUR" >&2; exit 2; }
[[ $K =~ ^[0-9]+$ && $K -ge 1 && $K -le 64 ]] || { echo "bench-workers.sh: -k: 1 to 64" >&2; exit 2; }
for w in $WORKERS; do [[ $w =~ ^[0-9]+$ && $w -ge 1 ]] || { echo "bench-workers.sh: bad worker count $w" >&2; exit 2; }; done
((EUID == 0)) || { echo "bench-workers.sh: needs root (network namespaces)" >&2; exit 2; }

log() { printf '%s %s\n' "$(date +%T)" "$*" >&2; }
die() { log "FATAL: $*"; exit 1; }
for c in iperf3 jq ip python3 openssl; do command -v "$c" >/dev/null || die "$c is missing (scripts/bootstrap.sh installs it)"; done
if [[ -z $ESPD_BIN ]]; then
  ESPD_BIN=$ROOT/.build/release/espd
  [[ -x $ESPD_BIN ]] || { log "building espd (release)"; swift build -c release >/dev/null 2>&1 || die "release build failed"; }
fi
[[ -x $ESPD_BIN ]] || die "espd binary $ESPD_BIN not found"
OUTDIR=${OUTDIR:-$ROOT/scripts/results/workers-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUTDIR" || die "cannot create $OUTDIR"
NS_A=bw-a NS_B=bw-b HZ=$(getconf CLK_TCK)
# Before the trap: if the names are taken, their namespaces are another run's, not ours to delete.
for ns in $NS_A $NS_B; do
  ip netns list | awk -v n="$ns" '$1 == n { f = 1 } END { exit !f }' && die "namespace $ns exists (another run?)"
done
WORK=$(mktemp -d /tmp/espd-bw.XXXXXX)
PIDS=()

kill_pids() {  # kill_pids PID... : TERM, then KILL what is left after 2 s (only our own PIDs)
  local p
  for p in "$@"; do kill -TERM "$p" 2>/dev/null; done
  for _ in $(seq 20); do
    local alive=0
    for p in "$@"; do kill -0 "$p" 2>/dev/null && alive=1; done
    ((alive)) || return 0
    sleep 0.1
  done
  for p in "$@"; do kill -KILL "$p" 2>/dev/null; done
}
cleanup() {
  ((${#PIDS[@]})) && kill_pids "${PIDS[@]}"
  ip netns del $NS_A 2>/dev/null; ip netns del $NS_B 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ns_up() {
  ip netns add $NS_A && ip netns add $NS_B || return 1
  ip -n $NS_A link add bwa0 type veth peer name bwb0 netns $NS_B || return 1
  ip -n $NS_A addr add 192.0.2.1/24 dev bwa0 && ip -n $NS_B addr add 192.0.2.2/24 dev bwb0 || return 1
  ip -n $NS_A link set bwa0 up && ip -n $NS_B link set bwb0 up || return 1
  ip -n $NS_A link set lo up && ip -n $NS_B link set lo up
}
ns_down() { ip netns del $NS_A 2>/dev/null; ip netns del $NS_B 2>/dev/null; sleep 0.2; }

# Configs: K tunnels between a and b, one SA pair each, random keys.
python3 - "$WORK" "$K" <<'EOF' || die "cannot write the configs"
import json, os, sys
work, k = sys.argv[1], int(sys.argv[2])
# Per tunnel i: the a -> b SA and the b -> a SA.
ab = {i: (f"0x{0xa0000000 + i:08x}", os.urandom(20).hex()) for i in range(1, k + 1)}
ba = {i: (f"0x{0xb0000000 + i:08x}", os.urandom(20).hex()) for i in range(1, k + 1)}
def side(me, peer, name, mine, theirs, out, inb):
    return {"listen": [f"{me}:4500"], "control": f"{work}/{name}.sock",
            "tun": {"name": f"bw{name}", "mtu": 1438, "addresses": [f"{mine}.{i}/32" for i in range(1, k + 1)]},
            "tunnels": [{"name": f"t{i}", "mode": "tunnel", "peer": f"{peer}:4500",
                         "remote_ts": [f"{theirs}.{i}/32"],
                         "inbound": [{"spi": inb[i][0], "alg": "aes128gcm16", "key": inb[i][1]}],
                         "outbound": {"spi": out[i][0], "alg": "aes128gcm16", "key": out[i][1]}}
                        for i in range(1, k + 1)]}
json.dump(side("192.0.2.1", "192.0.2.2", "a", "198.51.100", "203.0.113", ab, ba), open(f"{work}/a.json", "w"))
json.dump(side("192.0.2.2", "192.0.2.1", "b", "203.0.113", "198.51.100", ba, ab), open(f"{work}/b.json", "w"))
EOF
"$ESPD_BIN" check --config "$WORK/a.json" >/dev/null 2>&1 || die "espd check rejects the generated config"

OFFERED=$RATE
[[ $RATE == 0 ]] && OFFERED=unlimited

ticks() { local t=0 p; for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0))); done; echo $t; }

RESULTS=$OUTDIR/results.tsv
printf 'workers\trx_kpps\tsent_kpps\tloss_pct\topened_kpps_b\tespd_cpu_pct\tworker_packets_b\thanded_over_b\thandoff_dropped\n' >"$RESULTS"

measure() {  # measure WORKERS
  local w=$1 a b i ok=0 srv=() cli=()
  ns_up || { log "cannot build the namespaces"; return 1; }
  ip netns exec $NS_A "$ESPD_BIN" run --config "$WORK/a.json" --workers "$w" >"$WORK/a-$w.out" 2>"$WORK/a-$w.log" &
  a=$!; PIDS+=("$a")
  ip netns exec $NS_B "$ESPD_BIN" run --config "$WORK/b.json" --workers "$w" >"$WORK/b-$w.out" 2>"$WORK/b-$w.log" &
  b=$!; PIDS+=("$b")
  for _ in $(seq 100); do
    ip -n $NS_A route get "203.0.113.$K" 2>/dev/null | grep -q "dev bwa" &&
      ip -n $NS_B route get "198.51.100.$K" 2>/dev/null | grep -q "dev bwb" && { ok=1; break; }
    { kill -0 "$a" 2>/dev/null && kill -0 "$b" 2>/dev/null; } || break
    sleep 0.1
  done
  ((ok)) || { log "espd did not come up (see $WORK/*-$w.log)"; cp "$WORK"/*-"$w".log "$OUTDIR/" 2>/dev/null; return 1; }
  for i in $(seq "$K"); do
    ip netns exec $NS_A ping -q -c 1 -W 2 -I "198.51.100.$i" "203.0.113.$i" >/dev/null 2>&1 ||
      { log "no ping through tunnel t$i"; return 1; }
  done
  for i in $(seq "$K"); do
    ip netns exec $NS_B iperf3 -s -1 -B "203.0.113.$i" -p $((5300 + i)) >"$WORK/srv-$w-$i.log" 2>&1 &
    srv+=($!); PIDS+=($!)
  done
  sleep 1
  local t0 c0 t1 c1
  local q0 q1 s0 s1
  q0=$(date +%s.%N)
  s0=$("$ESPD_BIN" stats --json --control "$WORK/b.sock" 2>/dev/null)
  t0=$(date +%s.%N) c0=$(ticks "$a" "$b")
  for i in $(seq "$K"); do
    timeout $((DUR + 30)) ip netns exec $NS_A iperf3 -c "203.0.113.$i" -B "198.51.100.$i" -p $((5300 + i)) -u -l 64 \
      -b "$RATE" -t "$DUR" -J >"$OUTDIR/iperf-w$w-t$i.json" 2>/dev/null &
    cli+=($!)
  done
  wait "${cli[@]}"
  t1=$(date +%s.%N) c1=$(ticks "$a" "$b")
  s1=$("$ESPD_BIN" stats --json --control "$WORK/b.sock" 2>/dev/null)
  q1=$(date +%s.%N)
  kill_pids "${srv[@]}"
  kill_pids "$a" "$b"
  wait "$a" "$b" 2>/dev/null
  PIDS=()
  cp "$WORK/a-$w.log" "$WORK/b-$w.log" "$OUTDIR/" 2>/dev/null
  # the stats answers around the run (`espd stats` returns once every worker was counted)
  local last first; first=$s0 last=$s1
  log "workers $w: stats answered in $(awk -v a="$q0" -v b="$t0" 'BEGIN{printf "%.0f", (b-a)*1000}') ms before the run and $(awk -v a="$t1" -v b="$q1" 'BEGIN{printf "%.0f", (b-a)*1000}') ms after it"
  local cpu; cpu=$(awk -v d=$((c1 - c0)) -v hz="$HZ" -v a="$t0" -v b="$t1" 'BEGIN{printf "%.0f", 100*d/hz/(b-a)}')
  local opened; opened=$(jq -n --argjson a "${first:-null}" --argjson b "${last:-null}" --arg t0 "$t0" --arg t1 "$t1" \
    'if $a and $b then (($b.stats.decapsulated - $a.stats.decapsulated) / (($t1 | tonumber) - ($t0 | tonumber)) / 1e3 * 100 | round / 100) else "-" end' 2>/dev/null || echo -)
  jq -s -r --arg w "$w" --arg cpu "$cpu" --arg opened "$opened" --argjson st "${last:-null}" '
    (map(.end.sum_received // {packets:0,lost_packets:0,seconds:1})) as $r |
    (map(.end.sum_sent // {packets:0,seconds:1})) as $s |
    [$w,
     (($r | map((.packets - .lost_packets) / .seconds) | add) / 1e3 * 100 | round / 100),
     (($s | map(.packets / .seconds) | add) / 1e3 * 100 | round / 100),
     ((($r | map(.lost_packets) | add) / ([($r | map(.packets) | add), 1] | max) * 10000 | round) / 100),
     $opened, $cpu,
     (if $st then ($st.stats.workers // [] | map(.packets | tostring) | join("/")) else "-" end),
     (if $st then ($st.stats.handoff_packets // 0) else "-" end),
     (if $st then ($st.stats.handoff_dropped // 0) else "-" end)] | map(tostring) | join("\t")' \
    "$OUTDIR"/iperf-w"$w"-t*.json >>"$RESULTS"
  log "workers $w: $(tail -1 "$RESULTS" | cut -f2-9 | tr '\t' ' ')"
  ns_down
}

log "espd $ESPD_BIN; $K tunnels, one UDP flow of 64-byte datagrams each at $OFFERED; $DUR s per run; $(nproc) CPUs"
for w in $WORKERS; do measure "$w" || log "workers $w: FAILED"; sleep 2; done

echo "== espd --workers N, UDP 64 B, $K flows in $K tunnels, offered $OFFERED each ($(nproc) CPUs, the iperf3 processes included)"
column -t -s $'\t' "$RESULTS"
awk -F'\t' 'NR == 2 {first = $1; rx = $2; op = $5}
  NR > 2 && rx > 0 {
  printf "workers %s / workers %s: %.2fx received datagrams per second (target for 2: at least 1.6x)", $1, first, $2 / rx
  if (op > 0 && $5 > 0) printf "; %.2fx datagrams opened by side b", $5 / op
  printf "\n"
}' "$RESULTS"
echo "results: $OUTDIR"
