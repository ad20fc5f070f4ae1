# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=bash disable=SC2034  # a sourced library: its callers read the TP_* results it sets
# topology.sh - a sourced library: network namespaces, veths, addresses, an nftables masquerade NAT
# router, processes started and stopped by PID, bounded waits, and a trap that always cleans up.
#
#   TP_PREFIX=espd-t$$          # optional, before tp_init: namespace prefix (unique per run)
#   source scripts/netns/topology.sh
#   tp_init                     # work dir, helper tools, EXIT/INT/TERM trap (tp_cleanup)
#   tp_topo_pair                # or: tp_topo_nat 2
#   tp_bg NAME NS CMD...        # background process, logs in $TP_LOGDIR/NAME.{out,err}
#   tp_espd_start NAME NS CONFIG [--io mmsg]; tp_espd_stats NAME; tp_espd_stop NAME
#   tp_teardown                 # kill our processes, delete our namespaces (the trap does it too)
#   tp_nat_rule nat wan0 [PORTS]; tp_exec nat conntrack -F   # remap the NAT (rebinding)
#   tp_espd_reload NAME         # SIGHUP, wait for `reloaded` / `reload failed` on stderr
#
# Addresses (documentation ranges only; nothing leaves the namespaces; configs.py uses the same):
#   pair:  a ul0 192.0.2.1/24 2001:db8::1/64  <->  b ul0 192.0.2.2/24 2001:db8::2/64
#   nat:   gw ul0 192.0.2.1/24  <->  nat wan0 192.0.2.2/24 [masquerade] nat br0 203.0.113.1/24
#          c<i> eth0 203.0.113.(9+i)/24 (veth lan<i> in the nat namespace, on br0), default via .1
# The gateway has no route to 203.0.113.0/24: clients reach it only through the NAT.
#
# Every wait is bounded. Only processes started by tp_bg are signalled, by PID. The library does not
# set -e/-u; it is safe under them. Needs root, ip, nft, python3, jq (dumpcap/tshark for captures).

TP_PREFIX=${TP_PREFIX:-espd-t$$}
TP_WORK=${TP_WORK:-}
TP_LOGDIR=${TP_LOGDIR:-}
TP_KEEP=${TP_KEEP:-0}          # 1: keep the work dir (logs, configs, captures) on exit and say so; 2: keep quietly
TP_PY=${TP_PY:-}
TP_NAMESPACES=()
TP_PIDS=()
declare -gA TP_PID=()          # name -> PID of processes started with tp_bg
TP_BG_PID=""
TP_RC=""                       # exit code of the last process tp_wait_exit / tp_stop saw exit
TP_INITED=0
TP_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)   # the repository

# Outer and inner plan (keep in step with configs.py).
TP_GW_OUT4=192.0.2.1 TP_NAT_OUT4=192.0.2.2 TP_NAT_IN4=203.0.113.1
TP_A_OUT4=192.0.2.1 TP_B_OUT4=192.0.2.2 TP_A_OUT6=2001:db8::1 TP_B_OUT6=2001:db8::2

tp_log() { printf '%s %s\n' "$(date +%T)" "$*" >&2; }
tp_die() { tp_log "FATAL: $*"; exit 1; }

tp_require() {  # tp_require CMD... : die naming every missing command
  local c missing=()
  for c in "$@"; do command -v "$c" >/dev/null 2>&1 || missing+=("$c"); done
  ((${#missing[@]} == 0)) || tp_die "missing: ${missing[*]} (run scripts/bootstrap.sh)"
}

tp_init() {
  ((TP_INITED)) && return 0
  [[ $EUID -eq 0 ]] || tp_die "must run as root (network namespaces)"
  tp_require ip nft jq python3 timeout ss
  if [[ -z $TP_WORK ]]; then
    TP_WORK=$(mktemp -d "/tmp/${TP_PREFIX}.XXXXXX") || tp_die "mktemp failed"
  fi
  mkdir -p "$TP_WORK" || tp_die "cannot create $TP_WORK"
  TP_LOGDIR=${TP_LOGDIR:-$TP_WORK}
  # The real interpreter, not a version-manager shim: starts faster and works the same in `ip netns exec`.
  TP_PY=${TP_PY:-$(python3 -c 'import sys; print(sys.executable)')}
  _tp_write_nettool "$TP_WORK/nettool.py" || tp_die "cannot copy tests/live/nettool.py into $TP_WORK"
  trap tp_cleanup EXIT
  trap 'tp_log "interrupted"; exit 130' INT TERM HUP
  TP_INITED=1
}

tp_ns() { printf '%s-%s' "$TP_PREFIX" "$1"; }   # tp_ns SHORT : the full namespace name

tp_ns_add() {  # tp_ns_add SHORT... : create namespaces (lo up, no IPv6 DAD delays)
  local s ns
  for s in "$@"; do
    ns=$(tp_ns "$s")
    ip netns add "$ns" || { tp_log "ip netns add $ns failed"; return 1; }
    TP_NAMESPACES+=("$ns")
    ip -n "$ns" link set lo up
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 \
      net.ipv6.conf.all.accept_ra=0 net.ipv6.conf.default.accept_ra=0 >/dev/null
  done
}

tp_exec() { local ns; ns=$(tp_ns "$1"); shift; ip netns exec "$ns" "$@"; }   # tp_exec SHORT CMD...

tp_veth() {  # tp_veth SHORT1 IF1 SHORT2 IF2 : a veth pair between two namespaces, both ends up
  local n1 n2
  n1=$(tp_ns "$1") n2=$(tp_ns "$3")
  ip link add "$2" netns "$n1" type veth peer name "$4" netns "$n2" || return 1
  ip -n "$n1" link set "$2" up && ip -n "$n2" link set "$4" up
}

tp_addr() {  # tp_addr SHORT IF CIDR... (IPv6 without DAD)
  local ns a; ns=$(tp_ns "$1")
  for a in "${@:3}"; do
    if [[ $a == *:* ]]; then ip -n "$ns" addr add "$a" dev "$2" nodad || return 1
    else ip -n "$ns" addr add "$a" dev "$2" || return 1; fi
  done
}

tp_nat_masquerade() {  # tp_nat_masquerade SHORT OUTIF : forwarding on, nftables masquerade out of OUTIF
  local ns; ns=$(tp_ns "$1")
  ip netns exec "$ns" sysctl -qw net.ipv4.ip_forward=1 >/dev/null || return 1
  ip netns exec "$ns" nft -f - <<EOF
table ip espd_nat {
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    oifname "$2" masquerade
  }
}
EOF
}

TP_NAT_LAN4=203.0.113.0/24
tp_nat_rule() {  # tp_nat_rule SHORT OUTIF [PORTS] : replace the masquerade rule, atomically, by one for the
  # LAN only (the router's own packets keep their source), optionally `to :PORTS` (e.g. 40000-40100).
  # Existing conntrack entries keep their mapping: flush them (conntrack -F) to make the change bite.
  local ns rule; ns=$(tp_ns "$1")
  rule="add rule ip espd_nat postrouting ip saddr $TP_NAT_LAN4 oifname \"$2\""
  {
    echo "flush chain ip espd_nat postrouting"
    [[ -n ${3:-} ]] && echo "$rule meta l4proto { tcp, udp } masquerade to :$3"
    echo "$rule masquerade"
  } | ip netns exec "$ns" nft -f -
}

# pair: a <-> b on one veth (ul0), IPv4 and IPv6 outer addresses.
tp_topo_pair() {
  tp_ns_add a b || return 1
  tp_veth a ul0 b ul0 || return 1
  tp_addr a ul0 "$TP_A_OUT4/24" "$TP_A_OUT6/64" && tp_addr b ul0 "$TP_B_OUT4/24" "$TP_B_OUT6/64"
}

# nat: gw <-> nat (masquerade) <-> bridge <-> c1..cN.
tp_topo_nat() {
  local n=${1:-2} i
  tp_ns_add gw nat || return 1
  for ((i = 1; i <= n; i++)); do tp_ns_add "c$i" || return 1; done
  tp_veth gw ul0 nat wan0 || return 1
  tp_addr gw ul0 "$TP_GW_OUT4/24" && tp_addr nat wan0 "$TP_NAT_OUT4/24" || return 1
  ip -n "$(tp_ns nat)" link add br0 type bridge || return 1
  ip -n "$(tp_ns nat)" link set br0 up
  tp_addr nat br0 "$TP_NAT_IN4/24" || return 1
  for ((i = 1; i <= n; i++)); do
    tp_veth nat "lan$i" "c$i" eth0 || return 1
    ip -n "$(tp_ns nat)" link set "lan$i" master br0 || return 1
    tp_addr "c$i" eth0 "203.0.113.$((9 + i))/24" || return 1
    ip -n "$(tp_ns "c$i")" route add default via "$TP_NAT_IN4" || return 1
  done
  tp_nat_masquerade nat wan0
}

# ------------------------------------------------------------------ processes (by PID only)

tp_bg() {  # tp_bg NAME SHORT CMD... : run CMD in namespace SHORT in the background
  local name=$1 ns; ns=$(tp_ns "$2"); shift 2
  ip netns exec "$ns" "$@" >"$TP_LOGDIR/$name.out" 2>"$TP_LOGDIR/$name.err" </dev/null &
  TP_BG_PID=$!
  TP_PIDS+=("$TP_BG_PID")
  TP_PID[$name]=$TP_BG_PID
}

tp_pid() { printf '%s' "${TP_PID[$1]:-}"; }

tp_alive() {  # tp_alive PID : running (not a zombie)
  local st
  [[ -n ${1:-} && -r /proc/$1/stat ]] || return 1
  st=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)
  [[ -n $st && $st != Z && $st != X ]]
}

tp_wait_exit() {  # tp_wait_exit PID SECONDS : 0 if it exited in time (TP_RC = its exit code)
  local pid=$1 i n
  n=$(awk -v t="$2" 'BEGIN{printf "%d", t * 20}')
  for ((i = 0; i < n; i++)); do
    tp_alive "$pid" || break
    sleep 0.05
  done
  tp_alive "$pid" && return 1
  TP_RC=0
  wait "$pid" 2>/dev/null || TP_RC=$?
  return 0
}

tp_stop() {  # tp_stop NAME|PID [SECONDS=3] : SIGTERM, wait, then SIGKILL; TP_RC = its exit code
  local pid=${TP_PID[$1]:-$1} t=${2:-3}
  TP_RC=""
  [[ $pid =~ ^[0-9]+$ ]] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  if ! tp_wait_exit "$pid" "$t"; then
    kill -KILL "$pid" 2>/dev/null || true
    tp_wait_exit "$pid" 2 || true
    TP_RC=137
  fi
  return 0
}

tp_stop_all() {  # kill every process we started (TERM, 3 s, KILL), in parallel
  local p live=() i
  for p in "${TP_PIDS[@]}"; do tp_alive "$p" && live+=("$p"); done
  if ((${#live[@]})); then
    for p in "${live[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for i in $(seq 30); do
      local any=0
      for p in "${live[@]}"; do tp_alive "$p" && any=1; done
      ((any)) || break
      sleep 0.1
    done
    for p in "${live[@]}"; do if tp_alive "$p"; then kill -KILL "$p" 2>/dev/null || true; fi; done
  fi
  for p in "${TP_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  TP_PIDS=()
  TP_PID=()
  return 0
}

tp_teardown() {  # stop our processes, delete our namespaces (keeps the work dir)
  tp_stop_all
  local ns
  for ns in "${TP_NAMESPACES[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
  TP_NAMESPACES=()
  return 0
}

tp_cleanup() {  # the EXIT trap: always runs
  local rc=$?
  set +e   # a caller's errexit must not cut the cleanup short
  trap - EXIT INT TERM HUP
  tp_teardown
  if [[ -n $TP_WORK && -d $TP_WORK ]]; then
    case $TP_KEEP in
      1) tp_log "kept logs, configs and captures in $TP_WORK" ;;
      2) ;;
      *) rm -rf "$TP_WORK" ;;
    esac
  fi
  exit "$rc"
}

tp_leftovers() {  # prints our namespaces and processes still alive (nothing when clean)
  ip netns list 2>/dev/null | awk -v p="$TP_PREFIX-" 'index($1, p) == 1 {print "namespace " $1}'
  local p
  for p in "${TP_PIDS[@]}"; do if tp_alive "$p"; then echo "process $p"; fi; done
  return 0
}

# ------------------------------------------------------------------ bounded waits

tp_wait() {  # tp_wait SECONDS CMD... : poll CMD every 0.1 s until it succeeds; 1 on timeout
  local t=$1 i n; shift
  n=$(awk -v t="$t" 'BEGIN{printf "%d", t * 10}')
  for ((i = 0; i <= n; i++)); do
    "$@" >/dev/null 2>&1 && return 0
    ((i < n)) && sleep 0.1
  done
  return 1
}

tp_udp_rcvbuf_errors() {  # tp_udp_rcvbuf_errors SHORT : UDP datagrams the namespace's kernel dropped for a full socket buffer
  # shellcheck disable=SC2016  # awk's own $fields, not the shell's
  tp_exec "$1" awk '/^Udp:/ { if (!h) { for (i = 1; i <= NF; i++) col[$i] = i; h = 1 } else print $col["RcvbufErrors"] }' /proc/net/snmp
}
tp_has_line() { [[ -f $1 ]] && grep -qE -- "$2" "$1"; }                   # tp_has_line FILE REGEX
tp_udp_bound() { ss -N "$(tp_ns "$1")" -Hlun "sport = :$2" 2>/dev/null | grep -q .; }   # SHORT PORT
tp_tcp_listening() { ss -N "$(tp_ns "$1")" -Hltn "sport = :$2" 2>/dev/null | grep -q .; }
tp_link_up() { ip -n "$(tp_ns "$1")" -o link show dev "$2" 2>/dev/null | grep -q '[<,]UP[,>]'; }
tp_link_exists() { ip -n "$(tp_ns "$1")" -o link show dev "$2" >/dev/null 2>&1; }
tp_has_addr() {  # tp_has_addr SHORT DEV CIDR
  ip -n "$(tp_ns "$1")" -o addr show dev "$2" 2>/dev/null | awk '{print $4}' | grep -qxF -- "$3"
}
tp_route_dev() {  # tp_route_dev SHORT ADDR : the device the kernel routes ADDR through
  ip -n "$(tp_ns "$1")" -o route get "$2" 2>/dev/null | sed -n 's/.* dev \([^ ]*\).*/\1/p' | head -1
}
tp_routes_via() { [[ $(tp_route_dev "$1" "$2") == "$3" ]]; }              # SHORT ADDR DEV
tp_tun_devices() {  # tp_tun_devices SHORT : names of TUN/TAP devices in the namespace
  ip -n "$(tp_ns "$1")" -d -o link show 2>/dev/null | awk -F': ' '/ tun type /{sub(/@.*/, "", $2); print $2}'
}

TP_TUN_GONE_MS=""
tp_wait_no_tun() {  # tp_wait_no_tun SHORT [SECONDS=1] : wait until no TUN device is left; TP_TUN_GONE_MS = how long
  # (a TUN can outlive its process briefly: io_uring tears a ring down asynchronously, and reads still
  # queued on the TUN keep its file, hence the device, alive until the kernel cancels them)
  local t0 i n
  t0=$(date +%s%N)
  n=$(awk -v t="${2:-1}" 'BEGIN{printf "%d", t * 50}')
  for ((i = 0; i <= n; i++)); do
    if [[ -z $(tp_tun_devices "$1") ]]; then TP_TUN_GONE_MS=$((($(date +%s%N) - t0) / 1000000)); return 0; fi
    sleep 0.02
  done
  TP_TUN_GONE_MS=""
  return 1
}

# ------------------------------------------------------------------ tools

tp_py() { local ns; ns=$(tp_ns "$1"); shift; ip netns exec "$ns" "$TP_PY" "$TP_WORK/nettool.py" "$@"; }
tp_ping() { local s=$1; shift; tp_py "$s" ping "$@"; }   # tp_ping SHORT [-c N] [-s SIZE] ADDR

tp_capture_start() {  # tp_capture_start NAME SHORT IF [CAPTURE FILTER] : dumpcap -> $TP_LOGDIR/NAME.pcapng
  local f=$TP_LOGDIR/$1.pcapng
  command -v dumpcap >/dev/null || { tp_log "dumpcap missing (apt-get install tshark)"; return 1; }
  rm -f "$f"
  if [[ -n ${4:-} ]]; then tp_bg "$1" "$2" dumpcap -q -i "$3" -f "$4" -w "$f"
  else tp_bg "$1" "$2" dumpcap -q -i "$3" -w "$f"; fi
  # dumpcap writes the pcapng section header as soon as it captures
  tp_wait 5 test -s "$f" || { tp_log "capture $1 did not start: $(tail -2 "$TP_LOGDIR/$1.err")"; return 1; }
  sleep 0.2
}

TP_CAPTURE=""
tp_capture_stop() {  # tp_capture_stop NAME : SIGTERM (dumpcap flushes); TP_CAPTURE = the file
  # libpcap hands dumpcap packets a block at a time, at most every 250 ms (its read timeout): a
  # packet in a block not yet handed over at SIGTERM is lost. Four read timeouts of margin.
  sleep 1
  tp_stop "$1" 3
  TP_CAPTURE=$TP_LOGDIR/$1.pcapng
}

tp_tshark() {  # tshark with a throw-away profile (the user's Wireshark settings are neither read nor touched)
  local home; home=$(mktemp -d "$TP_WORK/tshark.XXXXXX")
  mkdir -p "$home/wireshark"
  [[ -n ${TP_ESP_SA:-} ]] && cp "$TP_ESP_SA" "$home/wireshark/esp_sa"
  local rc=0
  HOME=$home XDG_CONFIG_HOME=$home tshark "$@" 2> >(grep -v 'Running as user' >&2) || rc=$?
  rm -rf "$home"
  return $rc
}

# ------------------------------------------------------------------ espd

ESPD=${ESPD:-}
TP_ESPD_START_TIMEOUT=${TP_ESPD_START_TIMEOUT:-8}
TP_ESPD_WHY=""     # why the last tp_espd_* call failed (one line)

_tp_tail() { [[ -f $1 ]] && tail -n "${2:-3}" "$1" | tr '\n' '|' | sed 's/|$//'; }

tp_espd_start() {  # tp_espd_start NAME SHORT CONFIG [ARGS...] : start `espd run`, wait until it is ready
  # ready = still running, TUN device up with every tun.addresses entry, every listen port bound
  local name=$1 short=$2 cfg=$3 tun addrs ports a p pid i
  shift 3
  TP_ESPD_WHY=""
  [[ -x $ESPD ]] || { TP_ESPD_WHY="espd binary not found ($ESPD)"; return 1; }
  tun=$(jq -r '.tun.name // "espd0"' "$cfg")
  mapfile -t addrs < <(jq -r '.tun.addresses[]?' "$cfg")
  mapfile -t ports < <(jq -r '.listen[]' "$cfg" | sed 's/.*://')
  tp_bg "$name" "$short" "$ESPD" run --config "$cfg" "$@"
  pid=$TP_BG_PID
  local n; n=$((TP_ESPD_START_TIMEOUT * 10))
  for ((i = 0; i <= n; i++)); do
    if ! tp_alive "$pid"; then
      TP_RC=0; wait "$pid" 2>/dev/null || TP_RC=$?
      TP_ESPD_WHY="espd $name exited at start (rc=$TP_RC): $(_tp_tail "$TP_LOGDIR/$name.err" 2)"
      return 1
    fi
    local ready=1
    tp_link_up "$short" "$tun" || ready=0
    if ((ready)); then for a in "${addrs[@]}"; do tp_has_addr "$short" "$tun" "$a" || { ready=0; break; }; done; fi
    if ((ready)); then for p in "${ports[@]}"; do tp_udp_bound "$short" "$p" || { ready=0; break; }; done; fi
    ((ready)) && return 0
    sleep 0.1
  done
  local what=""
  tp_link_exists "$short" "$tun" || what+=" no TUN $tun;"
  tp_link_exists "$short" "$tun" && ! tp_link_up "$short" "$tun" && what+=" TUN $tun not UP;"
  for a in "${addrs[@]}"; do tp_has_addr "$short" "$tun" "$a" || what+=" no address $a on $tun;"; done
  for p in "${ports[@]}"; do tp_udp_bound "$short" "$p" || what+=" UDP port $p not bound;"; done
  TP_ESPD_WHY="espd $name not ready after ${TP_ESPD_START_TIMEOUT}s:${what} stderr: $(_tp_tail "$TP_LOGDIR/$name.err" 2)"
  return 1
}

TP_RELOAD_LINE="" TP_RELOAD_MS=""
tp_espd_reload() {  # tp_espd_reload NAME [SECONDS=5] : SIGHUP; wait for a new `reloaded` or `reload failed`
  # line on espd's stderr; TP_RELOAD_LINE = it, TP_RELOAD_MS = how long it took; 0 only for `reloaded`
  local name=$1 t=${2:-5} pid err n i t0 m
  pid=$(tp_pid "$name"); err=$TP_LOGDIR/$name.err
  TP_RELOAD_LINE="" TP_RELOAD_MS=""
  tp_alive "$pid" || { TP_ESPD_WHY="espd $name is not running"; return 1; }
  n=$(grep -cE 'reloaded|reload failed' "$err" 2>/dev/null || true)
  t0=$(date +%s%N)
  kill -HUP "$pid" 2>/dev/null || true
  m=$(awk -v t="$t" 'BEGIN{printf "%d", t * 50}')
  for ((i = 0; i < m; i++)); do
    if (($(grep -cE 'reloaded|reload failed' "$err" 2>/dev/null) > n)); then
      TP_RELOAD_MS=$((($(date +%s%N) - t0) / 1000000))
      TP_RELOAD_LINE=$(grep -E 'reloaded|reload failed' "$err" | tail -1)
      [[ $TP_RELOAD_LINE == *"reload failed"* ]] && { TP_ESPD_WHY="espd $name: $TP_RELOAD_LINE"; return 1; }
      return 0
    fi
    tp_alive "$pid" || { TP_ESPD_WHY="espd $name exited after SIGHUP: $(_tp_tail "$err" 2)"; return 1; }
    sleep 0.02
  done
  TP_ESPD_WHY="espd $name logged neither 'reloaded' nor 'reload failed' within ${t}s of SIGHUP"
  return 1
}

tp_proc_mem() {  # tp_proc_mem PID : "VmRSS VmHWM" in kB from /proc/PID/status
  awk '/^VmRSS:/{r=$2} /^VmHWM:/{h=$2} END{print r+0, h+0}' "/proc/$1/status" 2>/dev/null
}

TP_STATS_LINE=""
tp_espd_stats() {  # tp_espd_stats NAME : SIGUSR1, wait for a new {"stats":...} line; TP_STATS_LINE = it
  local name=$1 pid out n i
  pid=$(tp_pid "$name"); out=$TP_LOGDIR/$name.out
  TP_STATS_LINE=""
  tp_alive "$pid" || { TP_ESPD_WHY="espd $name is not running"; return 1; }
  n=$(grep -c '^{"stats"' "$out" 2>/dev/null || true)
  kill -USR1 "$pid" 2>/dev/null || true
  for i in $(seq 30); do
    if (($(grep -c '^{"stats"' "$out" 2>/dev/null) > n)); then
      TP_STATS_LINE=$(grep '^{"stats"' "$out" | tail -1)
      return 0
    fi
    sleep 0.1
  done
  TP_ESPD_WHY="espd $name printed no {\"stats\":...} line on stdout within 3 s of SIGUSR1"
  return 1
}

tp_espd_stop() {  # tp_espd_stop NAME [SECONDS=3] : SIGTERM; 0 if it exited 0 in time, left no TUN
  local name=$1 t=${2:-3} pid short
  pid=$(tp_pid "$name")
  TP_ESPD_WHY=""
  [[ -n $pid ]] || { TP_ESPD_WHY="espd $name was never started"; return 1; }
  if ! tp_alive "$pid"; then
    TP_RC=0; wait "$pid" 2>/dev/null || TP_RC=$?
    TP_ESPD_WHY="espd $name had already exited (rc=$TP_RC): $(_tp_tail "$TP_LOGDIR/$name.err" 2)"
    return 1
  fi
  kill -TERM "$pid" 2>/dev/null || true
  if ! tp_wait_exit "$pid" "$t"; then
    kill -KILL "$pid" 2>/dev/null || true; tp_wait_exit "$pid" 2 || true
    TP_ESPD_WHY="espd $name did not exit within ${t}s of SIGTERM (killed)"
    return 1
  fi
  ((TP_RC == 0)) || { TP_ESPD_WHY="espd $name exited $TP_RC after SIGTERM: $(_tp_tail "$TP_LOGDIR/$name.err" 2)"; return 1; }
  return 0
}

tp_stat() {  # tp_stat NAME KEY : a counter from the last stats line espd NAME printed (see nettool stats)
  "$TP_PY" "$TP_WORK/nettool.py" stats "$TP_LOGDIR/$1.out" "$2"
}

# ------------------------------------------------------------------ iperf3

TP_IPERF_SUMMARY=""
tp_iperf() {  # tp_iperf NAME SERVER_SHORT CLIENT_SHORT SERVER_ADDR SECONDS [iperf3 client args...]
  # 0 if the run completed and moved data; TP_IPERF_SUMMARY says what it measured (or why it failed)
  local name=$1 srv=$2 cli=$3 addr=$4 secs=$5 j rc port=5201
  shift 5
  j=$TP_LOGDIR/$name.json
  tp_bg "$name-server" "$srv" iperf3 -s -1 -p $port
  if ! tp_wait 5 tp_tcp_listening "$srv" $port; then
    TP_IPERF_SUMMARY="iperf3 server did not start"; tp_stop "$name-server" 1; return 1
  fi
  rc=0
  timeout $((secs + 15)) ip netns exec "$(tp_ns "$cli")" iperf3 -c "$addr" -p $port -t "$secs" \
    --connect-timeout 3000 -J "$@" >"$j" 2>"$TP_LOGDIR/$name.client.err" || rc=$?
  tp_stop "$name-server" 2
  if ((rc != 0)) || ! jq -e '.end.sum_sent' "$j" >/dev/null 2>&1; then
    local err; err=$(jq -r '.error // empty' "$j" 2>/dev/null || true)
    ((rc == 124)) && err="timed out${err:+: $err}"
    TP_IPERF_SUMMARY="iperf3 failed (rc=$rc${err:+: $err})"
    return 1
  fi
  TP_IPERF_SUMMARY=$(jq -r '.end as $e | if .start.test_start.protocol == "UDP" then
      "\($e.sum.bits_per_second / 1e6 | floor) Mbit/s, \($e.sum.lost_packets)/\($e.sum.packets) lost"
    else
      "\($e.sum_received.bits_per_second / 1e6 | floor) Mbit/s received"
    end' "$j" || true)
  jq -e '.end | if .sum_received then .sum_received.bytes > 0 else (.sum.packets - .sum.lost_packets) > 0 end' \
    "$j" >/dev/null || { TP_IPERF_SUMMARY="iperf3 moved no data ($TP_IPERF_SUMMARY)"; return 1; }
}

tp_iperf_udp_loss() { jq -r '.end.sum.lost_percent // 100 | floor' "$TP_LOGDIR/$1.json" 2>/dev/null || echo 100; }

# ------------------------------------------------------------------ the helper tool (Python, tests/live/nettool.py)

_tp_write_nettool() {  # the helper tool (tests/live/nettool.py, shared with the pytest suites) into the work dir
  install -m 755 "$TP_ROOT/tests/live/nettool.py" "$1"
}
