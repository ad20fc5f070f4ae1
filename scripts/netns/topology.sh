# SPDX-License-Identifier: Apache-2.0
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
  _tp_write_nettool "$TP_WORK/nettool.py"
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

# ------------------------------------------------------------------ the helper tool (Python)

_tp_write_nettool() {
  cat >"$1" <<'PYEOF'
#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Network helpers for the netns tests (written by topology.sh; no dependency beyond Python 3).

  ping [-c N] [-i S] [-W S] [-s SIZE] [--min K] ADDR    ICMP/ICMPv6 echo over a raw socket
  udp-server --port P [--bind A] [--count N] [--timeout S] [--echo]   one JSON line per datagram
  udp-client --to A --port P --payload TEXT [--count N] [--timeout S] [--no-echo] [--sport P]
  ike-client --to A [--port 4500] [--timeout S]          non-ESP marker + IKE header, expects a reply
  stats FILE KEY                                          a counter from espd's last {"stats":...} line
  echo-tag --bind A --port P [--proto udp|tcp] [--duration S] [--hello A:P] [--silent]
                                                          echo; replies start "from=ADDR:PORT|"
  flow --to A --port P --tag T [--bind A] [--sport P] [--proto udp|tcp] [--count N] [--interval S]
       [--linger S] [--expect-from ADDR[:PORT]]   numbered requests to echo-tag; one JSON summary line
                                                  (SIGTERM: stop sending, linger, print the summary)
  send-esp --bind A --sport P --to A --port P --hex H [--hex H...] [--seq N] [--flip-last] [--count K]
                                                          datagrams built from captured ESP (forgeries)
"""
import argparse, json, os, select, socket, struct, sys, time


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack(f"!{len(b) // 2}H", b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def fam_of(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def ping(a):
    v6 = ":" in a.addr
    s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_RAW,
                      socket.IPPROTO_ICMPV6 if v6 else socket.IPPROTO_ICMP)
    if a.source:
        s.bind((a.source, 0))
    ident = os.getpid() & 0xFFFF
    got, rtts = 0, []
    for seq in range(1, a.count + 1):
        payload = (struct.pack("!d", time.time()) + bytes(range(256)) * 64)[:max(a.size, 8)]
        t = 128 if v6 else 8
        hdr = struct.pack("!BBHHH", t, 0, 0, ident, seq)
        if not v6:  # the kernel computes the ICMPv6 checksum itself (RFC 3542 §3.1)
            hdr = struct.pack("!BBHHH", t, 0, csum(hdr + payload), ident, seq)
        t0 = time.monotonic()
        try:
            s.sendto(hdr + payload, (a.addr, 0))
        except OSError as e:
            print(f"seq={seq}: send failed: {e}")
            time.sleep(a.interval)
            continue
        deadline = t0 + a.wait
        ok = False
        while not ok:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([s], [], [], left)[0]:
                break
            data, src = s.recvfrom(65535)
            if not v6:
                data = data[(data[0] & 15) * 4:]
            if len(data) < 8:
                continue
            typ, _, _, rid, rseq = struct.unpack("!BBHHH", data[:8])
            if typ == (129 if v6 else 0) and rid == ident and rseq == seq:
                ok = True
                rtt = (time.monotonic() - t0) * 1000
                rtts.append(rtt)
                got += 1
                print(f"{len(data)} bytes from {src[0]}: seq={seq} time={rtt:.2f} ms")
        if not ok:
            print(f"seq={seq}: no reply within {a.wait} s")
        if seq < a.count:
            time.sleep(max(0.0, a.interval - (time.monotonic() - t0)))
    need = a.min if a.min is not None else a.count
    avg = f", avg {sum(rtts) / len(rtts):.2f} ms" if rtts else ""
    print(f"ping {a.addr}: {a.count} sent, {got} received{avg}")
    return 0 if got >= need else 1


def udp_server(a):
    fam = fam_of(a.bind) if a.bind else socket.AF_INET6
    s = socket.socket(fam, socket.SOCK_DGRAM)
    if fam == socket.AF_INET6 and not a.bind:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind((a.bind or "::", a.port))
    print(json.dumps({"event": "listening", "port": a.port}), flush=True)
    n, deadline = 0, time.monotonic() + a.timeout
    while n < a.count:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([s], [], [], left)[0]:
            break
        data, src = s.recvfrom(65535)
        n += 1
        host = src[0][7:] if src[0].startswith("::ffff:") else src[0]
        print(json.dumps({"event": "datagram", "from": host, "port": src[1], "len": len(data),
                          "text": data[:64].decode("latin-1")}), flush=True)
        if a.echo:
            s.sendto(data, src)
    return 0 if n >= a.count else 1


def udp_client(a):
    s = socket.socket(fam_of(a.to), socket.SOCK_DGRAM)
    if a.sport:
        s.bind(("::" if ":" in a.to else "0.0.0.0", a.sport))
    payload = a.payload.encode()
    echoed = 0
    for i in range(a.count):
        s.sendto(payload, (a.to, a.port))
        if a.no_echo:
            time.sleep(0.05)
            continue
        deadline = time.monotonic() + a.timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([s], [], [], left)[0]:
                print(f"datagram {i + 1}: no echo within {a.timeout} s")
                break
            data, src = s.recvfrom(65535)
            if data == payload:
                echoed += 1
                print(f"datagram {i + 1}: echoed by {src[0]}:{src[1]}")
                break
    if a.no_echo:
        print(f"sent {a.count}")
        return 0
    print(f"udp {a.to}:{a.port}: {a.count} sent, {echoed} echoed")
    return 0 if echoed == a.count else 1


def ike_client(a):
    s = socket.socket(fam_of(a.to), socket.SOCK_DGRAM)
    spi_i = os.urandom(8)
    # RFC 7296 §3.1: SPIi, SPIr (0), next payload (none), version 2.0, IKE_SA_INIT (34), Initiator, msg 0, length
    ike = spi_i + bytes(8) + struct.pack("!BBBBII", 0, 0x20, 34, 0x08, 0, 28)
    s.sendto(b"\0\0\0\0" + ike, (a.to, a.port))   # RFC 3948 §2.2 non-ESP marker
    if not select.select([s], [], [], a.timeout)[0]:
        print(json.dumps({"ok": False, "error": f"no reply within {a.timeout} s"}))
        return 1
    data, src = s.recvfrom(65535)
    res = {"from": f"{src[0]}:{src[1]}", "len": len(data), "hex": data[:48].hex()}
    problems = []
    if len(data) < 4 + 28:
        problems.append("reply shorter than marker + IKE header")
    else:
        if data[:4] != b"\0\0\0\0":
            problems.append("no non-ESP marker")
        if data[4:12] != spi_i:
            problems.append("SPIi differs")
        if not data[4 + 19] & 0x20:
            problems.append("Response flag not set")
        if data[4 + 18] != 34:
            problems.append("exchange type differs")
    if src[1] != a.port:
        problems.append(f"reply from port {src[1]}, expected {a.port}")
    res.update(ok=not problems, problems=problems)
    print(json.dumps(res))
    return 0 if not problems else 1


def big_buffers(s, n=4 << 20):
    """Socket buffers that hold a burst (espd drains a backlog at once after a pause): a loss must
    be the dataplane's, not this tool's."""
    for force, plain in ((33, socket.SO_RCVBUF), (32, socket.SO_SNDBUF)):  # SO_RCVBUFFORCE, SO_SNDBUFFORCE
        try:
            s.setsockopt(socket.SOL_SOCKET, force, n)
        except OSError:
            s.setsockopt(socket.SOL_SOCKET, plain, n)


def echo_tag(a):
    """Echo that names the sender as this host sees it: reply = b"from=ADDR:PORT|" + request
    (UDP: per datagram; TCP: per line). One JSON line per request on stdout."""
    fam = fam_of(a.bind)
    deadline = time.monotonic() + a.duration

    def tag(src):
        return b"from=%s:%d|" % (src[0].encode(), src[1])

    def log(src, data):
        print(json.dumps({"event": "request", "from": src[0], "port": src[1],
                          "text": data[:64].decode("latin-1")}), flush=True)

    if a.proto == "udp":
        s = socket.socket(fam, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        big_buffers(s)
        s.bind((a.bind, a.port))
        if a.hello:  # speak first from this very socket (so that a peer can learn the flow)
            host, _, port = a.hello.rpartition(":")
            s.sendto(b"hello", (host.strip("[]"), int(port)))
        print(json.dumps({"event": "listening", "port": a.port}), flush=True)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return 0
            if not select.select([s], [], [], left)[0]:
                continue
            data, src = s.recvfrom(65535)
            if not a.silent:
                try:
                    s.sendto(tag(src) + data, src)
                except OSError as e:
                    print(json.dumps({"event": "send-error", "error": str(e)}), flush=True)
            log(src, data)
    import threading
    srv = socket.socket(fam, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((a.bind, a.port))
    srv.listen(16)
    print(json.dumps({"event": "listening", "port": a.port}), flush=True)

    def serve(conn, src):
        buf = b""
        conn.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            while True:
                d = conn.recv(65535)
                if not d:
                    return
                buf += d
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    conn.sendall(tag(src) + line + b"\n")
                    log(src, line)
        except OSError:
            return
        finally:
            conn.close()

    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return 0
        if not select.select([srv], [], [], left)[0]:
            continue
        conn, src = srv.accept()
        print(json.dumps({"event": "connection", "from": src[0], "port": src[1]}), flush=True)
        threading.Thread(target=serve, args=(conn, src), daemon=True).start()


def flow(a):
    """COUNT numbered requests "TAG:SEQ" every INTERVAL to an echo-tag server; prints one JSON line:
    sent, received (own replies), lost, foreign (replies carrying another client's tag), bad_from
    (replies naming a sender other than --expect-from), from (the senders the server named)."""
    tag = a.tag.encode()
    fam = fam_of(a.to)
    any_addr = "::" if fam == socket.AF_INET6 else "0.0.0.0"
    tcp = a.proto == "tcp"
    s = socket.socket(fam, socket.SOCK_STREAM if tcp else socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if not tcp:
        big_buffers(s)
    if a.bind or a.sport:
        s.bind((a.bind or any_addr, a.sport or 0))
    res = {"tag": a.tag, "proto": a.proto, "to": f"{a.to}:{a.port}", "count": a.count}
    if tcp:
        s.settimeout(a.connect_timeout)
        try:
            s.connect((a.to, a.port))
        except OSError as e:
            res.update(error=f"connect: {e}", sent=0, received=0, lost=a.count)
            print(json.dumps(res))
            return 1
        s.setblocking(False)
        res["local"] = "%s:%d" % s.getsockname()[:2]
    got, sent_at, foreign, froms = {}, {}, {}, {}
    bad_from = dups = send_errors = malformed = 0
    first_error = None
    buf = b""

    def handle(reply, now):
        nonlocal bad_from, dups, malformed
        if not reply.startswith(b"from=") or b"|" not in reply:
            malformed += 1
            return
        head, payload = reply[5:].split(b"|", 1)
        frm = head.decode("latin-1")
        froms[frm] = froms.get(frm, 0) + 1
        if a.expect_from and a.expect_from not in (frm, frm.rsplit(":", 1)[0]):
            bad_from += 1
        ptag, _, pseq = payload.rpartition(b":")
        if ptag != tag or not pseq.isdigit():
            k = ptag.decode("latin-1")
            foreign[k] = foreign.get(k, 0) + 1
            return
        seq = int(pseq)
        if seq in got:
            dups += 1
        else:
            got[seq] = (now - sent_at.get(seq, now)) * 1000

    import signal
    stop = []   # SIGTERM/SIGINT: stop sending, wait --linger for the replies, print the summary
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    t0 = time.monotonic()
    i, end = 0, None
    while True:
        now = time.monotonic()
        if stop and i < a.count:
            a.count = i
            res.update(count=i, stopped=True)
        if i < a.count and now >= t0 + i * a.interval:
            i += 1
            msg = tag + b":%d" % i
            try:
                if tcp:
                    s.sendall(msg + b"\n")
                else:
                    s.sendto(msg, (a.to, a.port))
                sent_at[i] = now
            except OSError as e:
                send_errors += 1
                first_error = first_error or str(e)
            continue
        if i >= a.count:
            if end is None:
                end = now + a.linger
            if len(got) >= len(sent_at) or now >= end:
                break
            wait = end - now
        else:
            wait = t0 + i * a.interval - now
        try:
            if not select.select([s], [], [], max(0.0, wait))[0]:
                continue
        except InterruptedError:
            continue
        try:
            data = s.recv(65535)
        except (BlockingIOError, InterruptedError):
            continue
        except OSError as e:
            first_error = first_error or f"recv: {e}"
            if tcp:
                break
            continue
        now = time.monotonic()
        if tcp:
            if not data:
                break
            buf += data
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                handle(line, now)
        else:
            handle(data, now)
    lost = sorted(set(sent_at) - set(got))
    rtts = sorted(got.values())
    res.update(sent=len(sent_at), send_errors=send_errors, received=len(got), lost=len(lost), lost_seqs=lost[:20],
               dups=dups, foreign=foreign, bad_from=bad_from, malformed=malformed, **{"from": froms},
               rtt_ms_max=round(rtts[-1], 2) if rtts else None,
               rtt_ms_p50=round(rtts[len(rtts) // 2], 2) if rtts else None,
               seconds=round(time.monotonic() - t0, 2))
    if first_error:
        res["error"] = first_error
    print(json.dumps(res))
    ok = len(sent_at) == a.count and not lost and not foreign and not bad_from and not malformed
    return 0 if ok else 1


def send_esp(a):
    """Datagrams made from captured ESP packets (hex UDP payloads): optionally with the sequence
    number replaced (SEQ, SEQ+1, ...) and/or the last byte (the end of the ICV) flipped."""
    s = socket.socket(fam_of(a.to), socket.SOCK_DGRAM)
    s.bind((a.bind, a.sport))
    n, seq = 0, a.seq
    for h in a.hex:
        for _ in range(a.count):
            p = bytearray(bytes.fromhex(h))
            if len(p) < 8:
                print(json.dumps({"error": "shorter than an ESP header"}))
                return 1
            if seq is not None:
                p[4:8] = struct.pack("!I", seq & 0xFFFFFFFF)
                seq += 1
            if a.flip_last:
                p[-1] ^= 0xFF
            s.sendto(bytes(p), (a.to, a.port))
            n += 1
            time.sleep(0.01)
    print(json.dumps({"sent": n, "from": "%s:%d" % s.getsockname()[:2]}))
    return 0


def find(obj, key):
    """espd's counter KEY: stats.KEY, stats.global.KEY, stats.drops.KEY, stats.global.drops.KEY,
    else the shallowest numeric KEY anywhere in the stats object (breadth first)."""
    for path in ((key,), ("global", key), ("total", key), ("drops", key), ("global", "drops", key)):
        o = obj
        for p in path:
            o = o.get(p) if isinstance(o, dict) else None
        if isinstance(o, (int, float)) and not isinstance(o, bool):
            return o, ".".join(("stats",) + path)
    queue = [(obj, "stats")]
    while queue:
        o, where = queue.pop(0)
        if isinstance(o, dict):
            if isinstance(o.get(key), (int, float)) and not isinstance(o.get(key), bool):
                return o[key], f"{where}.{key}"
            queue += [(v, f"{where}.{k}") for k, v in o.items()]
        elif isinstance(o, list):
            queue += [(v, f"{where}[{i}]") for i, v in enumerate(o)]
    return None, None


def stats(a):
    last = None
    try:
        with open(a.file, errors="replace") as f:
            for line in f:
                if line.startswith('{"stats"'):
                    last = line
    except OSError as e:
        print(f"cannot read {a.file}: {e}", file=sys.stderr)
        return 2
    if last is None:
        print(f'no {{"stats":...}} line in {a.file}', file=sys.stderr)
        return 2
    try:
        obj = json.loads(last)["stats"]
    except (ValueError, KeyError, TypeError) as e:
        print(f"bad stats line ({e}): {last[:200]}", file=sys.stderr)
        return 2
    v, where = find(obj, a.key)
    if v is None:
        print(f"no counter {a.key!r} in the stats JSON", file=sys.stderr)
        return 3
    print(int(v) if float(v).is_integer() else v)
    return 0


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("ping")
    p.add_argument("addr")
    p.add_argument("-c", "--count", type=int, default=3)
    p.add_argument("-i", "--interval", type=float, default=0.2)
    p.add_argument("-W", "--wait", type=float, default=1.0)
    p.add_argument("-s", "--size", type=int, default=56)
    p.add_argument("-I", "--source")
    p.add_argument("--min", type=int)
    p = sub.add_parser("udp-server")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--bind")
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--timeout", type=float, default=10)
    p.add_argument("--echo", action="store_true")
    p = sub.add_parser("udp-client")
    p.add_argument("--to", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--payload", required=True)
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--timeout", type=float, default=2)
    p.add_argument("--no-echo", action="store_true")
    p.add_argument("--sport", type=int, help="source port")
    p = sub.add_parser("ike-client")
    p.add_argument("--to", required=True)
    p.add_argument("--port", type=int, default=4500)
    p.add_argument("--timeout", type=float, default=3)
    p = sub.add_parser("stats")
    p.add_argument("file")
    p.add_argument("key")
    p = sub.add_parser("echo-tag")
    p.add_argument("--bind", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--proto", choices=["udp", "tcp"], default="udp")
    p.add_argument("--duration", type=float, default=30)
    p.add_argument("--hello", help="udp: first send one datagram to ADDR:PORT from the server's socket")
    p.add_argument("--silent", action="store_true", help="udp: log the requests, answer none (a sink)")
    p = sub.add_parser("flow")
    p.add_argument("--to", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--tag", required=True)
    p.add_argument("--bind")
    p.add_argument("--sport", type=int)
    p.add_argument("--proto", choices=["udp", "tcp"], default="udp")
    p.add_argument("--count", type=int, default=10)
    p.add_argument("--interval", type=float, default=0.02)
    p.add_argument("--linger", type=float, default=1.0, help="seconds to wait for replies after the last send")
    p.add_argument("--connect-timeout", type=float, default=3.0)
    p.add_argument("--expect-from", help="the sender every reply must name (ADDR or ADDR:PORT)")
    p = sub.add_parser("send-esp")
    p.add_argument("--bind", required=True)
    p.add_argument("--sport", type=int, required=True)
    p.add_argument("--to", required=True)
    p.add_argument("--port", type=int, default=4500)
    p.add_argument("--hex", action="append", required=True, help="an ESP packet (UDP payload) in hex; repeatable")
    p.add_argument("--seq", type=int, help="replace the sequence numbers with SEQ, SEQ+1, ...")
    p.add_argument("--flip-last", action="store_true", help="flip every bit of the last byte (the ICV's)")
    p.add_argument("--count", type=int, default=1, help="datagrams per --hex")
    a = ap.parse_args()
    return {"ping": ping, "udp-server": udp_server, "udp-client": udp_client, "ike-client": ike_client,
            "stats": stats, "echo-tag": echo_tag, "flow": flow, "send-esp": send_esp}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
PYEOF
}
