#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# bench-e2e.sh - espd end to end, next to its peers, in one run: iperf3 TCP and UDP between two
# network namespaces through a plain veth, wireguard-go, strongSwan kernel-libipsec and espd.
#
# Usage: sudo scripts/bench-e2e.sh [-d SECONDS] [-t TESTS] [-s SETUPS] [--io uring|mmsg]
#                                  [--espd PATH] [-o OUTDIR] [--crypto] [--no-syscalls]
#   -d SECONDS     iperf3 duration per test (default 10)
#   -t TESTS       default "tcp udp1400 udp1372 udp64" (those of ../shared/bench/peers.sh)
#   -s SETUPS      default "veth wggo swan espd"
#   --io B         espd's I/O backend (default uring)
#   --espd PATH    the espd binary to measure (default: $ESPD, else build a release binary with
#                  `swift build -c release --scratch-path ${SCRATCH_PATH:-.build}`)
#   -o OUTDIR      results directory (default scripts/results/<timestamp>, gitignored)
#   --crypto       also run peers.sh's `openssl speed` measurements (12 s)
#   --no-syscalls  do not count espd's syscalls (perf stat on raw_syscalls:sys_enter)
#   --espd-args A  extra arguments for `espd run` (e.g. "--udp-gro off --tun-offload off": before/after)
#   --no-workers   skip the `--workers 2` against `--workers 1` comparison (tests/live/test_bench_workers.py,
#                  about 30 s; run with the espd setup)
#
# Method: the peers (veth, wggo, swan) are measured by ../shared/bench/peers.sh itself
# (`-o OUTDIR/peers`). espd is measured with peers.sh's own functions, loaded from that file at
# run time (ns_up, run_test, settle, ticks, peak_rss, ...), so the namespaces (pb-a/pb-b), the
# addresses (192.0.2.1/.2 underlay, 198.51.100.1 <-> 203.0.113.1 inner), the iperf3 command lines,
# the CPU accounting and the settling between tests are the harness's, not a copy of them. The
# rows are merged into one results.tsv; the report adds espd/peer ratios and espd's own counters.
# Only processes this script started are signalled, by PID; namespaces and keys are removed on
# exit. A full run takes about 3.5 minutes with -d 10 (plus the build).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PEERS_DIR=$(cd "$ROOT/../shared/bench" 2>/dev/null && pwd) || PEERS_DIR=$ROOT/../shared/bench
PEERS_SH=$PEERS_DIR/peers.sh

DUR=10
TESTS="tcp udp1400 udp1372 udp64"
SETUPS="veth wggo swan espd"
IO=uring
ESPD_BIN=${ESPD:-}
ESPD_ARGS=""
OUTDIR=""
CRYPTO=0
SYSCALLS=1
WORKERS_CMP=1
while (($#)); do
  case $1 in
    -d) DUR=${2:?-d needs seconds}; shift 2 ;;
    -t) TESTS=${2:?-t needs tests}; shift 2 ;;
    -s) SETUPS=${2:?-s needs setups}; shift 2 ;;
    --io) IO=${2:?--io needs uring or mmsg}; shift 2 ;;
    --espd) ESPD_BIN=${2:?--espd needs a path}; ESPD_GIVEN=1; shift 2 ;;
    -o) OUTDIR=${2:?-o needs a directory}; shift 2 ;;
    --crypto) CRYPTO=1; shift ;;
    --no-syscalls) SYSCALLS=0; shift ;;
    --espd-args) ESPD_ARGS=${2?--espd-args needs a string}; shift 2 ;;
    --no-workers) WORKERS_CMP=0; shift ;;
    -h | --help) sed -n '3,28p' "$0"; exit 0 ;;
    *) echo "bench-e2e.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
done
[[ $DUR =~ ^[0-9]+$ && $DUR -gt 0 ]] || { echo "bench-e2e.sh: bad -d $DUR" >&2; exit 2; }
[[ $IO == uring || $IO == mmsg ]] || { echo "bench-e2e.sh: --io: uring or mmsg" >&2; exit 2; }
for s in $SETUPS; do
  [[ $s =~ ^(veth|wggo|swan|espd)$ ]] || { echo "bench-e2e.sh: unknown setup $s" >&2; exit 2; }
done
for t in $TESTS; do
  [[ $t =~ ^(tcp|udp1400|udp1372|udp64)$ ]] || { echo "bench-e2e.sh: unknown test $t" >&2; exit 2; }
done
PEER_SETUPS=$(for s in $SETUPS; do [[ $s == espd ]] || printf '%s ' "$s"; done)
PEER_SETUPS=${PEER_SETUPS% }
DO_ESPD=0; [[ " $SETUPS " == *" espd "* ]] && DO_ESPD=1

log() { printf '%s %s\n' "$(date +%T)" "$*" >&2; }
die() { log "FATAL: $*"; exit 1; }

[[ $EUID -eq 0 ]] || die "must run as root (network namespaces, TUN devices)"
[[ -r $PEERS_SH ]] || die "missing $PEERS_SH (the shared peer harness)"

# ---------------------------------------------------------------- packages
need_pkgs() {  # installs, with apt-get, the packages whose command is missing
  local missing=() pair
  for pair in iperf3:iperf3 jq:jq wireguard-go:wireguard-go wg:wireguard-tools swanctl:strongswan-swanctl \
              ip:iproute2 ss:iproute2 ping:iputils-ping openssl:openssl column:bsdextrautils; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
  done
  [[ -x /usr/lib/ipsec/charon ]] || missing+=(strongswan-charon)
  [[ -e /usr/lib/ipsec/plugins/libstrongswan-kernel-libipsec.so ]] || missing+=(libcharon-extra-plugins)
  ((${#missing[@]})) || return 0
  log "installing ${missing[*]} (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends $(printf '%s\n' "${missing[@]}" | sort -u) >/dev/null ||
    die "apt-get install failed"
}
need_pkgs

# ---------------------------------------------------------------- espd binary
if ((DO_ESPD)); then
  if [[ -z $ESPD_BIN ]]; then
    SCRATCH=${SCRATCH_PATH:-.build}
    log "building espd (swift build -c release --scratch-path $SCRATCH) ..."
    swift build -c release --scratch-path "$SCRATCH" --product espd >&2 || die "swift build failed"
    ESPD_BIN=$SCRATCH/release/espd
  fi
  [[ $ESPD_BIN == /* ]] || ESPD_BIN=$ROOT/$ESPD_BIN
  [[ -x $ESPD_BIN ]] || die "espd binary $ESPD_BIN not found"
fi

# ---------------------------------------------------------------- harness functions from peers.sh
# Everything peers.sh defines between `BG_PID=""` and its setups section, minus its traps: bg,
# kill_pids, ns_up, ns_down, ticks, host_busy, now, settle, wait_listen, run_test, run_tests,
# peak_rss, fail_setup. Loaded as function definitions only (`declare -f` in a subshell).
HARNESS_FUNCS="bg kill_pids ns_up ns_down ticks host_busy now settle wait_listen run_test run_tests peak_rss fail_setup"
defs=$(bash -c '
  src=$(sed -n "/^BG_PID=\"\"/,/^# -* setups/p" "$1" | grep -v "^trap ")
  eval "$src" >/dev/null 2>&1 || exit 1
  declare -f $2' _ "$PEERS_SH" "$HARNESS_FUNCS") || die "cannot load the harness functions from $PEERS_SH"
eval "$defs"
for f in $HARNESS_FUNCS; do declare -F "$f" >/dev/null || die "$PEERS_SH no longer defines $f()"; done

# The globals those functions use, with peers.sh's values.
NS_A=pb-a NS_B=pb-b
UL_A=192.0.2.1 UL_B=192.0.2.2
IN_A=198.51.100.1 IN_B=203.0.113.1
NET_A=198.51.100.0/24 NET_B=203.0.113.0/24
WG_A=pbwga WG_B=pbwgb
WG_DIR_EXISTED=1            # ns_down must never rmdir /run/wireguard on our behalf
PORT=5201
TUN_MTU=1500
FWD=()
PIDS=()
BG_PID=""
NS_CREATED=0
HZ=$(getconf CLK_TCK)
NCPU=$(nproc)

# espd: the TUN MTU that lets a 1428-byte inner packet (udp1400) through unfragmented, like
# wireguard-go's 1440. ESP-in-UDP, IPv4 outer, aes128gcm16: 20 IP + 8 UDP + 8 ESP (SPI, seq)
# + 8 IV + inner + pad + 2 (pad length, next header) + 16 ICV, where pad makes inner + 2 a multiple
# of 4 (RFC 4303 2.4; GCM has no block). Outer = inner + 62 + pad <= 1500 gives inner <= 1438
# (1438 + 2 = 1440, pad 0: exactly 1500). wireguard-go: 1500 - 20 - 8 - 32 = 1440 (16-byte
# padding, 1440 is a multiple); libipsec: 1400, hard-coded (udp1400 is fragmented there).
ESPD_MTU=1438
ESPD_TUN_A=pbespa ESPD_TUN_B=pbespb

STAMP=$(date +%Y%m%d-%H%M%S)
OUTDIR=${OUTDIR:-$ROOT/scripts/results/$STAMP}
[[ $OUTDIR == /* ]] || OUTDIR=$ROOT/$OUTDIR
mkdir -p "$OUTDIR" || die "cannot create $OUTDIR"
ESPD_OUT=$OUTDIR/espd               # espd's rows, in peers.sh's layout
RAW=$ESPD_OUT/raw
mkdir -p "$RAW"
RESULTS=$ESPD_OUT/results.tsv
printf 'setup\ttest\trx_gbps\trx_kpps\ttx_kpps\tloss_pct\tfwd_cpu_pct\thost_busy_pct\twall_s\tnote\n' >"$RESULTS"
WORK=$(mktemp -d /tmp/bench-e2e.XXXXXX) || die "mktemp failed"
chmod 700 "$WORK"
PEERS_PID=""
ESPD_RC="-"
NS_OURS=0   # 1 once ns_free found the names free: only then may cleanup delete the namespaces

cleanup() {
  trap - EXIT INT TERM
  if [[ -n $PEERS_PID ]] && kill -0 "$PEERS_PID" 2>/dev/null; then
    kill -TERM "$PEERS_PID" 2>/dev/null   # its own trap kills its processes and deletes pb-a/pb-b
    wait "$PEERS_PID" 2>/dev/null
  fi
  if ((NS_OURS)); then ns_down; fi   # never another run's pb-a/pb-b
  cp "$WORK"/*.log "$RAW/" 2>/dev/null
  rm -rf "$WORK"                        # configs hold keys
}
trap cleanup EXIT
trap 'log interrupted; exit 130' INT TERM

ns_free() {
  local ns
  NS_OURS=0
  for ns in $NS_A $NS_B; do
    ip netns list | awk -v n="$ns" '$1 == n { f = 1 } END { exit !f }' &&
      die "namespace $ns already exists (another benchmark running? else: ip netns del $ns)"
  done
  NS_OURS=1
}

busy_sample() {  # busy_sample : "<loadavg 1m> <busy % of all CPUs over 2 s>"
  local b0 t0 b1 t1
  read -r b0 t0 < <(host_busy); sleep 2; read -r b1 t1 < <(host_busy)
  printf '%s %s\n' "$(cut -d' ' -f1 /proc/loadavg)" \
    "$(awk -v a="$b0" -v b="$b1" -v c="$t0" -v d="$t1" 'BEGIN{printf "%.0f", (d>c)?100*(b-a)/(d-c):0}')"
}

# ---------------------------------------------------------------- espd
espd_config() {  # espd_config SIDE OUTFILE
  local side=$1 listen peer addr ts tun in_spi out_spi in_key out_key
  if [[ $side == a ]]; then
    listen=$UL_A peer=$UL_B addr=$IN_A/24 ts=$NET_B tun=$ESPD_TUN_A
    in_spi=0xe5d0b001 out_spi=0xe5d0a001 in_key=$KEY_BA out_key=$KEY_AB
  else
    listen=$UL_B peer=$UL_A addr=$IN_B/24 ts=$NET_A tun=$ESPD_TUN_B
    in_spi=0xe5d0a001 out_spi=0xe5d0b001 in_key=$KEY_AB out_key=$KEY_BA
  fi
  cat >"$2" <<EOF
{
  "listen": ["$listen:4500"],
  "tun": { "name": "$tun", "mtu": $ESPD_MTU, "addresses": ["$addr"] },
  "control": "$WORK/espd-$side.sock",
  "tunnels": [
    {
      "name": "bench",
      "mode": "tunnel",
      "peer": "$peer:4500",
      "remote_ts": ["$ts"],
      "inbound": [ { "spi": "$in_spi", "alg": "aes128gcm16", "key": "$in_key" } ],
      "outbound": { "spi": "$out_spi", "alg": "aes128gcm16", "key": "$out_key" }
    }
  ]
}
EOF
}

stats_lines() { grep -c '^{"stats"' "$1" 2>/dev/null; }

ping_median_us() {  # ping_median_us ARGS... : median and p90 round trip in microseconds of 300 pings, 10 ms apart
  ip netns exec $NS_A ping -n -c 300 -i 0.01 "$@" 2>/dev/null |
    sed -n 's/.*time=\([0-9.]*\) ms.*/\1/p' | sort -g |
    awk '{v[NR]=$1} END{if (NR < 100) {print "- -"; exit} printf "%.0f %.0f\n", v[int(NR/2)+1]*1000, v[int(NR*0.9)]*1000}'
}

latency_sample() {  # added latency at low load: ping through the tunnel minus ping over the bare veth
  local veth tun
  veth=$(ping_median_us $UL_B) tun=$(ping_median_us -I $IN_A $IN_B)
  printf 'veth\t%s\t%s\nespd\t%s\t%s\n' ${veth% *} ${veth#* } ${tun% *} ${tun#* } >>"$ESPD_OUT/latency.tsv"
}

latency_wggo() {  # the same for wireguard-go, set up here the way peers.sh does (its setups are not loadable)
  command -v wireguard-go >/dev/null && command -v wg >/dev/null || return 0
  ns_free; ns_up
  local ka kb pa pb wa wb i
  ka=$(wg genkey) kb=$(wg genkey); pa=$(echo "$ka" | wg pubkey) pb=$(echo "$kb" | wg pubkey)
  echo "$ka" >"$WORK/wl-a.key"; echo "$kb" >"$WORK/wl-b.key"
  ip netns exec $NS_A env WG_PROCESS_FOREGROUND=1 wireguard-go $WG_A >"$WORK/wl-a.log" 2>&1 &
  wa=$!; PIDS+=("$wa")
  ip netns exec $NS_B env WG_PROCESS_FOREGROUND=1 wireguard-go $WG_B >"$WORK/wl-b.log" 2>&1 &
  wb=$!; PIDS+=("$wb")
  for i in $(seq 50); do ip -n $NS_A link show $WG_A >/dev/null 2>&1 && ip -n $NS_B link show $WG_B >/dev/null 2>&1 && break; sleep 0.1; done
  ip netns exec $NS_A wg set $WG_A private-key "$WORK/wl-a.key" listen-port 51820 peer "$pb" endpoint $UL_B:51820 allowed-ips $NET_B
  ip netns exec $NS_B wg set $WG_B private-key "$WORK/wl-b.key" listen-port 51820 peer "$pa" endpoint $UL_A:51820 allowed-ips $NET_A
  ip -n $NS_A addr add $IN_A/24 dev $WG_A; ip -n $NS_B addr add $IN_B/24 dev $WG_B
  ip -n $NS_A link set $WG_A up; ip -n $NS_B link set $WG_B up
  ip -n $NS_A route add $NET_B dev $WG_A 2>/dev/null; ip -n $NS_B route add $NET_A dev $WG_B 2>/dev/null
  ip netns exec $NS_A ping -q -c 3 -I $IN_A $IN_B >/dev/null 2>&1
  local veth tun
  veth=$(ping_median_us $UL_B) tun=$(ping_median_us -I $IN_A $IN_B)
  printf 'veth (wggo run)\t%s\t%s\nwggo\t%s\t%s\n' ${veth% *} ${veth#* } ${tun% *} ${tun#* } >>"$ESPD_OUT/latency.tsv"
  kill_pids "$wa" "$wb"; forget_pids "$wa" "$wb"
  rm -f "$WORK"/wl-*.key
  ns_down
}

espd_snapshot() {  # espd_snapshot LABEL : SIGUSR1 both, append their stats line to stats-{a,b}.jsonl
  local side pid f n i
  for side in a b; do
    [[ $side == a ]] && pid=$ESPD_A || pid=$ESPD_B
    f=$WORK/espd-$side.out
    n=$(stats_lines "$f")
    kill -USR1 "$pid" 2>/dev/null || { echo '{}' >>"$RAW/stats-$side.jsonl"; continue; }
    for i in $(seq 50); do (($(stats_lines "$f") > n)) && break; sleep 0.1; done
    grep '^{"stats"' "$f" | tail -1 | jq -c --arg l "$1" --argjson k "$(kernel_counters $side)" \
      '{label:$l, kernel:$k} + .' >>"$RAW/stats-$side.jsonl" 2>/dev/null ||
      echo "{\"label\":\"$1\"}" >>"$RAW/stats-$side.jsonl"
  done
}

kernel_counters() {  # kernel_counters SIDE : what the kernel dropped around espd, as JSON
  # tun_tx_dropped: packets the kernel could not queue to espd's TUN (espd not reading fast enough);
  # sock_drops: datagrams dropped at espd's UDP socket (receive buffer full; ss skmem "d").
  local ns tun
  [[ $1 == a ]] && ns=$NS_A tun=$ESPD_TUN_A || ns=$NS_B tun=$ESPD_TUN_B
  local tx rx sd
  read -r tx rx < <(ip -n "$ns" -s -j link show dev "$tun" 2>/dev/null |
    jq -r '.[0].stats64 | "\(.tx.dropped // 0) \(.rx.dropped // 0)"' 2>/dev/null)
  sd=$(ip netns exec "$ns" ss -Hnuam "sport = :4500" 2>/dev/null |
    sed -n 's/.*skmem:(.*,d\([0-9]*\)).*/\1/p' | awk '{s+=$1} END{print s+0}')
  local rb
  rb=$(ip netns exec "$ns" awk '/^Udp:/{if (!h) {for (i=1;i<=NF;i++) c[$i]=i; h=1} else print $c["RcvbufErrors"]}' /proc/net/snmp 2>/dev/null)
  # and the process itself: CPU ticks (all threads) and involuntary context switches (preempted:
  # a sign that it competes for a CPU) summed over its threads
  local pid tk nv
  [[ $1 == a ]] && pid=$ESPD_A || pid=$ESPD_B
  tk=$(ticks "$pid")
  nv=$(cat /proc/"$pid"/task/*/status 2>/dev/null | awk '/^nonvoluntary_ctxt_switches/{s+=$2} END{print s+0}')
  printf '{"tun_tx_dropped":%s,"tun_rx_dropped":%s,"sock_drops":%s,"udp_rcvbuf_errors":%s,"ticks":%s,"nvcsw":%s}\n' \
    "${tx:-0}" "${rx:-0}" "${sd:-0}" "${rb:-0}" "${tk:-0}" "${nv:-0}"
}

PERF_PIDS=()
perf_start() {  # perf_start TEST : count espd's syscalls during the test (both processes)
  PERF_PIDS=()
  ((SYSCALLS)) || return 0
  local side pid
  for side in a b; do
    [[ $side == a ]] && pid=$ESPD_A || pid=$ESPD_B
    perf stat -x, -e raw_syscalls:sys_enter -p "$pid" -o "$RAW/perf-$1-$side.csv" >/dev/null 2>&1 &
    PERF_PIDS+=($!); PIDS+=($!)
  done
  sleep 0.2
}
perf_stop() {  # perf stat prints its counts on SIGINT (it installs its own handler)
  local p
  ((${#PERF_PIDS[@]})) || return 0
  for p in "${PERF_PIDS[@]}"; do kill -INT "$p" 2>/dev/null; done
  for p in "${PERF_PIDS[@]}"; do wait "$p" 2>/dev/null; done
  forget_pids "${PERF_PIDS[@]}"
  PERF_PIDS=()
}
forget_pids() {  # forget_pids PID... : drop reaped processes from PIDS (no signal to a reused PID)
  local keep=() p q drop
  for p in "${PIDS[@]}"; do
    drop=0
    for q in "$@"; do [[ $p == "$q" ]] && drop=1; done
    ((drop)) || keep+=("$p")
  done
  PIDS=("${keep[@]}")
}

setup_espd() {
  FWD=()
  ns_free
  ns_up
  KEY_AB=$(openssl rand -hex 20) KEY_BA=$(openssl rand -hex 20)
  espd_config a "$WORK/espd-a.json"
  espd_config b "$WORK/espd-b.json"
  "$ESPD_BIN" check --config "$WORK/espd-a.json" >"$RAW/espd-check-a.txt" 2>&1 ||
    { fail_setup espd "espd check rejects the config (raw/espd-check-a.txt)"; ns_down; return; }
  # `ip netns exec` execs espd: $! is espd itself, as for wireguard-go in peers.sh.
  # shellcheck disable=SC2086 # ESPD_ARGS is a list of words
  ip netns exec $NS_A "$ESPD_BIN" run --config "$WORK/espd-a.json" --io "$IO" $ESPD_ARGS >"$WORK/espd-a.out" 2>"$WORK/espd-a.log" &
  ESPD_A=$!; PIDS+=("$ESPD_A")
  # shellcheck disable=SC2086
  ip netns exec $NS_B "$ESPD_BIN" run --config "$WORK/espd-b.json" --io "$IO" $ESPD_ARGS >"$WORK/espd-b.out" 2>"$WORK/espd-b.log" &
  ESPD_B=$!; PIDS+=("$ESPD_B")
  local i ok=0
  for i in $(seq 100); do
    kill -0 "$ESPD_A" 2>/dev/null && kill -0 "$ESPD_B" 2>/dev/null ||
      { fail_setup espd "espd exited at start: $(tail -1 "$WORK/espd-a.log" "$WORK/espd-b.log" | tr '\n' ' ')"; ns_down; return; }
    ip -n $NS_A route get $IN_B 2>/dev/null | grep -q "dev $ESPD_TUN_A" &&
      ip -n $NS_B route get $IN_A 2>/dev/null | grep -q "dev $ESPD_TUN_B" &&
      ip -n $NS_B -o addr show dev $ESPD_TUN_B 2>/dev/null | grep "$IN_B" >/dev/null && { ok=1; break; }
    sleep 0.1
  done
  ((ok)) || { fail_setup espd "TUN/routes not up after 10 s (see espd-*.log)"; ns_down; return; }
  for i in $(seq 10); do
    ip netns exec $NS_A ping -q -c 1 -W 1 -I $IN_A $IN_B >/dev/null 2>&1 && { ok=2; break; }
  done
  ((ok == 2)) || { fail_setup espd "no ping through the tunnel (see espd-*.log)"; ns_down; return; }
  { grep -h 'io:' "$WORK/espd-a.log" "$WORK/espd-b.log"
    ip -n $NS_A -d link show $ESPD_TUN_A; ip -n $NS_A route get $IN_B; ip -n $NS_A rule; } >"$RAW/espd-setup.txt" 2>&1
  FWD=("$ESPD_A" "$ESPD_B"); TUN_MTU=$ESPD_MTU
  settle
  latency_sample
  espd_snapshot start
  local t
  for t in $TESTS; do
    perf_start "$t"
    run_test espd "$t" $IN_B $IN_A
    perf_stop
    espd_snapshot "$t"
  done
  OUTDIR=$ESPD_OUT peak_rss espd
  # SIGTERM: espd prints its final stats and must exit 0 (bash reaps exited children itself, so
  # kill -0 fails once one has exited, and `wait` still returns its status).
  local rc_a=killed rc_b=killed
  kill -TERM "$ESPD_A" "$ESPD_B" 2>/dev/null
  for i in $(seq 50); do
    kill -0 "$ESPD_A" 2>/dev/null || kill -0 "$ESPD_B" 2>/dev/null || break
    sleep 0.1
  done
  kill -0 "$ESPD_A" 2>/dev/null || { wait "$ESPD_A" 2>/dev/null; rc_a=$?; }
  kill -0 "$ESPD_B" 2>/dev/null || { wait "$ESPD_B" 2>/dev/null; rc_b=$?; }
  [[ $rc_a == killed || $rc_b == killed ]] && { log "espd did not exit within 5 s of SIGTERM"; kill_pids "$ESPD_A" "$ESPD_B"; }
  forget_pids "$ESPD_A" "$ESPD_B"
  ESPD_RC="a=$rc_a b=$rc_b"
  echo "exit codes after SIGTERM: $ESPD_RC" >>"$RAW/espd-setup.txt"
  for side in a b; do grep '^{"stats"' "$WORK/espd-$side.out" | tail -1 >"$RAW/espd-$side-exit.json"; done
  cp "$WORK/espd-a.out" "$WORK/espd-b.out" "$RAW/" 2>/dev/null
  FWD=()
  ns_down
}

# espd's counters per test: the differences between consecutive SIGUSR1 snapshots, per side.
espd_counters() {
  local side
  printf 'test\tside\tencap\tdecap\tdropped\tdrop_reasons\ttun_write_dropped\tudp_send_dropped\tk_tun_txq_drop\tk_sock_drop\tk_ns_udp_rcvbuf_err\tcpu_s\tpreempted\tbatches\tpkts_per_batch\tsyscalls\tsyscalls_per_pkt\n'
  for side in a b; do
    [[ -s $RAW/stats-$side.jsonl ]] || continue
    jq -rs --arg side "$side" --argjson hz "$HZ" '
      . as $s | range(1; length) as $i | ($s[$i-1].stats // {}) as $a | ($s[$i].stats // {}) as $b |
      def d(k): (($b[k] // 0) - ($a[k] // 0));
      [ $s[$i].label, $side, d("encapsulated"), d("decapsulated"), d("dropped"),
        ([($b.drops // {}) | to_entries[] | select(.value - (($a.drops // {})[.key] // 0) > 0)
          | "\(.key)=\(.value - (($a.drops // {})[.key] // 0))"] | join(",") | if . == "" then "-" else . end),
        d("tun_write_dropped"), d("udp_send_dropped"),
        ((($s[$i].kernel.tun_tx_dropped // 0) - ($s[$i-1].kernel.tun_tx_dropped // 0))),
        ((($s[$i].kernel.sock_drops // 0) - ($s[$i-1].kernel.sock_drops // 0))),
        ((($s[$i].kernel.udp_rcvbuf_errors // 0) - ($s[$i-1].kernel.udp_rcvbuf_errors // 0))),
        ((($s[$i].kernel.ticks // 0) - ($s[$i-1].kernel.ticks // 0)) / $hz * 100 | round / 100),
        ((($s[$i].kernel.nvcsw // 0) - ($s[$i-1].kernel.nvcsw // 0))), d("batches"),
        (if d("batches") > 0 then (d("batched_packets") / d("batches") * 10 | round / 10) else "-" end)
      ] | map(tostring) | join("\t")' "$RAW/stats-$side.jsonl" |
    while IFS=$'\t' read -r test s enc dec drp why twd usd ktd ksd kru cpu nvc bat ppb; do
      local sc="-" spp="-" f=$RAW/perf-$test-$s.csv
      if [[ -s $f ]]; then
        sc=$(awk -F, '/raw_syscalls:sys_enter/{print $1; exit}' "$f")
        [[ $sc =~ ^[0-9]+$ ]] && spp=$(awk -v c="$sc" -v p=$((enc + dec + drp)) 'BEGIN{printf (p>0)?"%.3f":"-", c/p}') || sc="-"
      fi
      printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$test" "$s" "$enc" "$dec" "$drp" "$why" "$twd" "$usd" "$ktd" "$ksd" "$kru" "$cpu" "$nvc" "$bat" "$ppb" "$sc" "$spp"
    done
  done
}

# ---------------------------------------------------------------- main
ns_free
if ((SYSCALLS)); then
  command -v perf >/dev/null && perf stat -x, -e raw_syscalls:sys_enter -o /dev/null -- true >/dev/null 2>&1 ||
    { log "perf with raw_syscalls tracepoints unavailable: no syscall counts"; SYSCALLS=0; }
fi
log "results -> $OUTDIR (${DUR}s per test; setups: $SETUPS; tests: $TESTS; espd --io $IO)"
foreign_ns() { ip netns list 2>/dev/null | awk '{print $1}' | grep -vx -e "$NS_A" -e "$NS_B" | tr '\n' ' '; }
FOREIGN0=$(foreign_ns)
[[ -n $FOREIGN0 ]] && log "warning: other network namespaces exist ($FOREIGN0): another test may be running"
read -r LOAD0 BUSY0 < <(busy_sample)
log "host before: loadavg $LOAD0, busy ${BUSY0}% of $NCPU CPUs (2 s sample)"
((BUSY0 > 15)) && log "warning: the machine is busy (${BUSY0}%) before the run; figures will be disturbed"
T0=$SECONDS

if [[ -n $PEER_SETUPS ]]; then
  log "peers: $PEERS_SH -s \"$PEER_SETUPS\" -d $DUR -t \"$TESTS\""
  pargs=(-d "$DUR" -s "$PEER_SETUPS" -t "$TESTS" -o "$OUTDIR/peers")
  ((CRYPTO)) || pargs+=(-C)
  bash "$PEERS_SH" "${pargs[@]}" >"$OUTDIR/peers.stdout" 2> >(tee "$OUTDIR/peers.stderr" >&2) &
  PEERS_PID=$!
  wait "$PEERS_PID"; prc=$?; PEERS_PID=""
  ((prc == 0)) || log "warning: peers.sh exited $prc (see $OUTDIR/peers.stderr)"
fi
if ((DO_ESPD)); then
  printf 'path\tmedian_us\tp90_us\n' >"$ESPD_OUT/latency.tsv"
  log "latency: wireguard-go"
  latency_wggo
  log "setup espd ($ESPD_BIN, --io $IO, tun mtu $ESPD_MTU)"
  setup_espd
  if ((WORKERS_CMP)); then
    log "workers: --workers 2 against --workers 1 (tests/live/test_bench_workers.py)"
    # its report (what bench-workers.sh printed on stdout) is OUTDIR/workers/table.txt
    ESPD=$ESPD_BIN BENCH_WORKERS_SECONDS=$DUR BENCH_WORKERS_OUT=$OUTDIR/workers \
      python3 -m pytest -q -s -p no:cacheprovider -m bench "$ROOT/tests/live" -k bench-workers >"$OUTDIR/workers.log" 2>&1 ||
      log "warning: the workers comparison failed (see $OUTDIR/workers.log)"
    cp "$OUTDIR/workers/table.txt" "$OUTDIR/workers.txt" 2>/dev/null
  fi
fi
FOREIGN1=$(foreign_ns)
read -r LOAD1 BUSY1 < <(busy_sample)
log "host after: loadavg $LOAD1, busy ${BUSY1}% (2 s sample); took $((SECONDS - T0)) s"

# ---------------------------------------------------------------- merge
MERGED=$OUTDIR/results.tsv
{
  head -1 "$RESULTS"
  [[ -f $OUTDIR/peers/results.tsv ]] && tail -n +2 "$OUTDIR/peers/results.tsv"
  tail -n +2 "$RESULTS"
} >"$MERGED"
cat "$OUTDIR/peers/peak_rss.tsv" "$ESPD_OUT/peak_rss.tsv" 2>/dev/null >"$OUTDIR/peak_rss.tsv"
((DO_ESPD)) && espd_counters >"$OUTDIR/espd_counters.tsv"
{
  cat "$OUTDIR/peers/env.txt" 2>/dev/null || { echo "date: $(date -Is)"; echo "kernel: $(uname -r)"; echo "cpus: $NCPU"; }
  echo "peers.sh: $PEERS_SH sha256 $(sha256sum "$PEERS_SH" | cut -d' ' -f1)"
  if ((DO_ESPD)); then
    echo "espd: $ESPD_BIN ($("$ESPD_BIN" --version 2>/dev/null | head -1)), --io $IO ${ESPD_ARGS:+$ESPD_ARGS }, tun mtu $ESPD_MTU"
    echo "repo tree: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)$(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null | grep . >/dev/null && echo ' + uncommitted changes')$([[ -n ${ESPD:-}${ESPD_GIVEN:-} ]] && echo ' (espd binary given, not necessarily built from it)')"
  fi
  echo "host before: loadavg $LOAD0, busy $BUSY0% ; after: loadavg $LOAD1, busy $BUSY1%"
} >"$OUTDIR/env.txt"

# ---------------------------------------------------------------- report
{
  echo "== per test (rx = iperf3 receiver side; fwd_cpu = both forwarder processes, % of one core;"
  echo "   host_busy = all $NCPU CPUs, % of total; UDP tests are -b 0 i.e. unlimited offered load)"
  column -t -s $'\t' "$MERGED"
  echo
  echo "== summary: value [fwd CPU% of one core, a+b]"
  # peers.sh's summary, over the merged rows
  awk -F'\t' -v tests="$TESTS" '
    NR==1 {next}
    { k=$1 SUBSEP $2; if ($10 ~ /FAILED/) v[k]="FAILED"; else if ($2=="tcp") v[k]=sprintf("%s", $3);
      else if ($2=="udp64") v[k]=sprintf("%s kpps %s%%", $4, $6); else v[k]=sprintf("%s Gb/s %s%%", $3, $6);
      if ($7 != "-" && $7 != "" && v[k] != "FAILED") v[k]=v[k] " [" $7 "]";
      if ($10 ~ /fragmented/) v[k]=v[k] " *";
      if (!($1 in seen)) { seen[$1]=1; order[++n]=$1 } }
    END {
      nt=split(tests, T, " ")
      hdr["tcp"]="TCP Gbit/s"; hdr["udp1400"]="UDP-1400 rx, loss"; hdr["udp1372"]="UDP-1372 rx, loss"; hdr["udp64"]="UDP-64 rx, loss"
      printf "%-6s", "setup"; for (i=1;i<=nt;i++) printf " | %-26s", (T[i] in hdr ? hdr[T[i]] : T[i]); printf "\n"
      for (j=1;j<=n;j++) { printf "%-6s", order[j]; for (i=1;i<=nt;i++) { k=order[j] SUBSEP T[i]; printf " | %-26s", (k in v ? v[k] : "-") } printf "\n" }
    }' "$MERGED"
  echo "  * inner packet larger than the tunnel MTU: each datagram is IP-fragmented in two"
  echo "  tunnel MTUs: wggo 1440 (1500-20-8-32), swan 1400 (hard-coded by kernel-libipsec),"
  echo "  espd $ESPD_MTU (1500 - 20 IP - 8 UDP - 8 ESP - 8 IV - 2 trailer - 16 ICV, inner+2 4-aligned:"
  echo "  the largest inner packet that fits one 1500-byte outer packet; udp1400's 1428 B is not fragmented)"
  if [[ -s $ESPD_OUT/latency.tsv ]]; then
    echo
    echo "== added latency at low load (300 pings 10 ms apart, a -> b; target: under 50 us median)"
    column -t -s $'\t' "$ESPD_OUT/latency.tsv"
    awk -F'\t' '$1=="veth"{v=$2} $1=="espd"{e=$2} $1=="veth (wggo run)"{vw=$2} $1=="wggo"{w=$2}
      END{if (v ~ /^[0-9]+$/ && e ~ /^[0-9]+$/) printf "added: espd %d us median (%s)", e-v, (e-v < 50 ? "ok" : "HIGH");
          if (vw ~ /^[0-9]+$/ && w ~ /^[0-9]+$/) printf ", wireguard-go %d us", w-vw; print ""}' "$ESPD_OUT/latency.tsv"
  fi
  if [[ -s $OUTDIR/peak_rss.tsv ]]; then
    echo
    echo "== forwarder peak RSS (VmHWM, side a then b)"
    column -t -s $'\t' "$OUTDIR/peak_rss.tsv"
  fi
  if [[ -s $OUTDIR/peers/crypto.tsv ]]; then
    echo
    echo "== openssl speed -elapsed -seconds 3 -evp (one core)"
    column -t -s $'\t' "$OUTDIR/peers/crypto.tsv"
  fi
  if [[ -s $OUTDIR/espd_counters.tsv ]]; then
    echo
    echo "== espd counters per test and side (SIGUSR1 deltas; syscalls: perf stat raw_syscalls:sys_enter,"
    echo "   per packet handled by that side = encap + decap + dropped; k_tun_txq_drop: the kernel could not"
    echo "   queue a packet to espd's TUN (espd reads too slowly); k_sock_drop: espd's UDP socket overflowed;"
    echo "   k_ns_udp_rcvbuf_err: Udp RcvbufErrors of the whole namespace (side b: mostly the iperf3 server);"
    echo "   cpu_s: CPU seconds of that espd over the test and its settling; preempted: involuntary context switches)"
    column -t -s $'\t' "$OUTDIR/espd_counters.tsv"
  fi
  echo
  echo "== TCP: sender retransmits (iperf3) per setup"
  for s in $SETUPS; do
    j=$OUTDIR/peers/raw/$s-tcp.json; [[ $s == espd ]] && j=$RAW/espd-tcp.json
    [[ -s $j ]] || continue
    printf '%-6s %s\n' "$s" "$(jq -r '.end.sum_sent.retransmits // "-"' "$j" 2>/dev/null)"
  done
  echo
  echo "== espd vs peers: ratio = espd / peer (> 1: espd ahead). TCP: rx Gbit/s; UDP: rx kpps (received"
  echo "   datagrams/s). per-core: the same ratio per fwd CPU (rx / fwd_cpu). targets against wggo and swan:"
  echo "   TCP >= 5x, UDP-64 >= 3x, the others >= 1.5x"
  awk -F'\t' -v tests="$TESTS" -v peers="$PEER_SETUPS" '
    NR==1 {next}
    { k=$1 SUBSEP $2; ok[k] = ($10 !~ /FAILED/);
      val[k] = ($2 == "tcp") ? $3 : $4; cpu[k] = $7 }
    function fmt(x) { return (x == "" || x == "-") ? "-" : sprintf("%.2f", x) }
    END {
      nt = split(tests, T, " "); np = split(peers, P, " ")
      printf "%-8s %-7s %9s", "test", "metric", "espd"
      for (j=1;j<=np;j++) printf " | %9s %8s %8s %-4s", P[j], "espd/" P[j], "per-core", ""
      printf "\n"
      for (i=1;i<=nt;i++) {
        e = "espd" SUBSEP T[i]
        printf "%-8s %-7s %9s", T[i], (T[i]=="tcp" ? "Gbit/s" : "kpps"), ((e in ok) && ok[e] ? val[e] : "-")
        for (j=1;j<=np;j++) {
          p = P[j] SUBSEP T[i]; r = "-"; c = "-"; mark = ""
          if ((p in ok) && ok[p] && (e in ok) && ok[e] && val[p] > 0) {
            r = sprintf("%.2fx", val[e] / val[p])
            if (cpu[e] > 0 && cpu[p] > 0) c = sprintf("%.2fx", (val[e]/cpu[e]) / (val[p]/cpu[p]))
            goal = (T[i] == "tcp") ? 5 : (T[i] == "udp64") ? 3 : 1.5
            if (P[j] == "wggo" || P[j] == "swan") mark = (val[e] / val[p] >= goal) ? "ok" : "LOW"
          }
          printf " | %9s %8s %8s %-4s", ((p in ok) && ok[p] ? val[p] : "-"), r, c, mark
        }
        printf "\n"
      }
    }' "$MERGED"
  echo
  if [[ -s $OUTDIR/workers.txt ]]; then
    echo
    grep -v '^results:' "$OUTDIR/workers.txt"
  fi
  echo
  [[ $DO_ESPD == 1 ]] && echo "espd exit status after SIGTERM: $ESPD_RC (final stats: espd/raw/espd-{a,b}-exit.json)"
  echo "host: before loadavg $LOAD0 busy ${BUSY0}%, after loadavg $LOAD1 busy ${BUSY1}% ($NCPU CPUs)"
  [[ -n $FOREIGN0$FOREIGN1 ]] &&
    echo "warning: other network namespaces before (${FOREIGN0:-none}) / after (${FOREIGN1:-none}): another test shared the CPUs"
  ((BUSY0 > 15 || BUSY1 > 15)) && echo "warning: the host was busy outside this benchmark; re-run on a quiet machine"
  echo "results: $OUTDIR"
} | tee "$OUTDIR/table.txt"
