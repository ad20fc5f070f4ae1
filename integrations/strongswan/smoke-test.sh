#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Checks the installed kernel-espd and socket-espd plugins in network namespaces of its own:
#
#   1. charon loads both (and they take the IPsec backend and the IKE socket);
#   2. both refuse to load when the running strongSwan version differs (forced with
#      ESPD_SWAN_RUNNING_VERSION, which the version check reads for tests);
#   3. with an espd binary (ESPD, default ../../.build/release/espd): a gateway (charon with the
#      plugins + espd) and a client (charon with kernel-libipsec, an ESP of its own) connect with
#      IKEv2 and a PSK; the gateway's SPIs in espd match swanctl's, ping crosses the tunnel, and
#      `swanctl --terminate` removes the tunnel from espd. IKE starts on port 500 (espd's ike.listen)
#      and moves to 4500; a charon restarted under a running espd gets IKE again.
#
#   sudo integrations/strongswan/smoke-test.sh [--keep]   # --keep: leave the temp dir for reading
#
# Documentation addresses only (192.0.2.0/24 outside, 198.51.100.0/24 and 203.0.113.0/24 inside);
# every process is started by this script and stopped by its PID; the namespaces are removed.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
espd_bin=${ESPD:-$here/../../.build/release/espd}
keep=0
[[ ${1:-} == --keep ]] && keep=1

[[ $(id -u) -eq 0 ]] || {
  echo "smoke-test.sh: run as root (network namespaces)" >&2
  exit 2
}
for so in kernel-espd socket-espd; do
  [[ -e /usr/lib/ipsec/plugins/libstrongswan-$so.so ]] || {
    echo "smoke-test.sh: /usr/lib/ipsec/plugins/libstrongswan-$so.so missing: run build.sh first" >&2
    exit 2
  }
done

tmp=$(mktemp -d /tmp/espd-ss.XXXXXX)
chmod 0755 "$tmp"
gw=espd-ss$$-gw
cl=espd-ss$$-cl
pids=()
espd_end=
passed=0
failed=0

cleanup() {
  local pid
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  done
  ip netns del "$gw" 2>/dev/null || true
  ip netns del "$cl" 2>/dev/null || true
  if ((keep)); then echo "smoke-test.sh: kept $tmp" >&2; else rm -rf "$tmp"; fi
}
trap cleanup EXIT

ok() {
  echo "PASS $*"
  passed=$((passed + 1))
}
bad() {
  echo "FAIL $*"
  failed=$((failed + 1))
}
# expect FILE PATTERN WHAT: the file has a line matching the extended regex (waits up to 10 s)
expect() {
  local file=$1 pattern=$2 what=$3
  for _ in $(seq 100); do
    if grep -Eq -- "$pattern" "$file" 2>/dev/null; then
      ok "$what"
      return 0
    fi
    sleep 0.1
  done
  bad "$what (no line matching '$pattern' in $file)"
}

ip netns add "$gw"
ip netns add "$cl"
ip link add "ss$$g" netns "$gw" type veth peer name "ss$$c" netns "$cl"
ip -n "$gw" link set lo up
ip -n "$cl" link set lo up
ip -n "$gw" addr add 192.0.2.1/24 dev "ss$$g"
ip -n "$cl" addr add 192.0.2.2/24 dev "ss$$c"
ip -n "$gw" link set "ss$$g" up
ip -n "$cl" link set "ss$$c" up
ip -n "$cl" addr add 203.0.113.10/32 dev lo
ip -n "$cl" addr add 203.0.113.11/32 dev lo

crypto_plugins="random nonce openssl pem pkcs1 pkcs8 x509 pubkey revocation constraints hmac sha1 sha2 aes gcm kdf"

# write_conf DIR PLUGINS PORT NATT EXTRA: a strongswan.conf for one charon
write_conf() {
  local dir=$1 plugins=$2 port=$3 natt=$4 extra=${5:-}
  mkdir -p "$dir"
  cat >"$dir/strongswan.conf" <<EOF
charon {
  load_modular = no
  load = $plugins
  port = $port
  port_nat_t = $natt
  install_virtual_ip = no
  retransmit_tries = 3
  filelog {
    log {
      path = $dir/charon.log
      time_format = %T
      default = 1
      knl = 2
      net = 1
      flush_line = yes
    }
  }
  syslog {
    daemon {
      default = -1
    }
  }
  plugins {
    vici {
      socket = unix://$dir/charon.vici
    }
    kernel-espd {
      control = $tmp/espd/control.sock
      timeout = 3000
    }
    socket-espd {
      punt = unix:$tmp/espd/ike.sock
      ${espd_end:+espd = $espd_end}
    }
    $extra
  }
}
EOF
}

# start_charon NS DIR [ENV...]: charon in the namespace with a /run of its own (pid file, ...);
# its PID in last_pid
start_charon() {
  local ns=$1 dir=$2
  shift 2
  # a fresh log per start; the former one stays beside it
  [[ -s $dir/charon.log ]] && mv "$dir/charon.log" "$dir/charon.log.$(date +%s%N)"
  : >"$dir/charon.log"
  env STRONGSWAN_CONF="$dir/strongswan.conf" "$@" ip netns exec "$ns" \
    unshare --mount --propagation private sh -c 'mount -t tmpfs tmpfs /run && exec nice -n 19 /usr/lib/ipsec/charon' \
    >"$dir/charon.out" 2>&1 &
  last_pid=$!
  pids+=("$last_pid")
}

stop_pid() {
  local pid=$1
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
}

mkdir -p "$tmp/espd"
gw_plugins="$crypto_plugins vici kernel-espd socket-espd kernel-netlink updown"

# --- 1. the plugins load ---------------------------------------------------------------------------
echo "== 1. charon loads kernel-espd and socket-espd"
write_conf "$tmp/gw" "$gw_plugins" 4500 4500
start_charon "$gw" "$tmp/gw"
pid=$last_pid
expect "$tmp/gw/charon.log" 'loaded plugins: .*kernel-espd socket-espd' "charon lists kernel-espd and socket-espd as loaded"
expect "$tmp/gw/charon.log" "socket-espd: IKE through espd's punt channel unix:$tmp/espd/ike.sock" "socket-espd bound the punt channel"
expect "$tmp/gw/charon.log" "kernel-espd: SAs go to espd on $tmp/espd/control.sock" "kernel-espd is charon's IPsec backend"
expect "$tmp/gw/charon.log" "kernel-espd: cannot subscribe to espd's events .*no control socket" "kernel-espd waits for espd when it is not running"
if [[ -S $tmp/espd/ike.sock ]]; then ok "punt socket $tmp/espd/ike.sock exists"; else bad "no punt socket"; fi
stop_pid "$pid"
if [[ ! -e $tmp/espd/ike.sock ]]; then ok "punt socket removed when charon stops"; else bad "punt socket left behind"; fi

# --- 2. version check ------------------------------------------------------------------------------
echo "== 2. a charon of another version refuses them"
start_charon "$gw" "$tmp/gw" ESPD_SWAN_RUNNING_VERSION=5.9.7-1
pid=$last_pid
expect "$tmp/gw/charon.log" 'kernel-espd: not loaded: built for strongSwan 5.9.8 .* running strongSwan is 5.9.7-1' "kernel-espd refuses strongSwan 5.9.7"
expect "$tmp/gw/charon.log" 'socket-espd: not loaded: built for strongSwan 5.9.8 .* running strongSwan is 5.9.7-1' "socket-espd refuses strongSwan 5.9.7"
if grep -Eq 'loaded plugins: .*(kernel-espd|socket-espd)' "$tmp/gw/charon.log"; then
  bad "a refused plugin was listed as loaded"
else
  ok "neither plugin listed as loaded"
fi
stop_pid "$pid"

# --- 3. IKEv2 through espd ----------------------------------------------------------------------------
if [[ ! -x $espd_bin ]]; then
  echo "== 3. skipped: no espd binary at $espd_bin"
else
  echo "== 3. a kernel-libipsec client connects to charon + espd with IKEv2 and a PSK"
  cp "$espd_bin" "$tmp/espd/espd"
  cat >"$tmp/espd/espd.json" <<EOF
{
  "listen": ["192.0.2.1:4500"],
  "tun": { "name": "espd0", "mtu": 1400, "addresses": ["198.51.100.1/24"] },
  "ike": { "punt": "unix:$tmp/espd/ike.sock", "punt_local": "unix:$tmp/espd/ike-espd.sock", "listen": ["192.0.2.1:500"] },
  "control": "$tmp/espd/control.sock",
  "tunnels": []
}
EOF
  mkdir -p "$tmp/gw/swanctl" "$tmp/cl/swanctl"
  cat >"$tmp/gw/swanctl/swanctl.conf" <<'EOF'
connections {
  rw {
    version = 2
    local_addrs = 192.0.2.1
    proposals = aes256-sha256-x25519, aes256-sha256-modp2048
    local { auth = psk
            id = gw.example }
    remote { auth = psk
             id = client.example }
    children {
      net {
        local_ts = 198.51.100.0/24
        remote_ts = 203.0.113.10/32
        esp_proposals = aes128gcm16, aes256-sha256
      }
      bad {
        local_ts = 198.51.100.0/25
        remote_ts = 203.0.113.10/32
        esp_proposals = aes192-sha256
      }
      vol {
        local_ts = 198.51.100.0/24
        remote_ts = 203.0.113.11/32
        esp_proposals = aes256gcm16
        rekey_bytes = 3000
      }
    }
  }
}
secrets {
  ike-rw {
    id-gw = gw.example
    id-cl = client.example
    secret = "espd smoke test only"
  }
}
EOF
  cat >"$tmp/cl/swanctl/swanctl.conf" <<'EOF'
connections {
  gw {
    version = 2
    local_addrs = 192.0.2.2
    remote_addrs = 192.0.2.1
    dpd_delay = 2s
    proposals = aes256-sha256-x25519, aes256-sha256-modp2048
    local { auth = psk
            id = client.example }
    remote { auth = psk
             id = gw.example }
    children {
      net {
        local_ts = 203.0.113.10/32
        remote_ts = 198.51.100.0/24
        esp_proposals = aes128gcm16
      }
      bad {
        local_ts = 203.0.113.10/32
        remote_ts = 198.51.100.0/25
        esp_proposals = aes192-sha256
      }
      vol {
        local_ts = 203.0.113.11/32
        remote_ts = 198.51.100.0/24
        esp_proposals = aes256gcm16
      }
    }
  }
}
secrets {
  ike-gw {
    id-gw = gw.example
    id-cl = client.example
    secret = "espd smoke test only"
  }
}
EOF
  # curve25519 may be missing from a minimal install: the modp2048 group backs it up
  for p in curve25519 gmp; do
    [[ -e /usr/lib/ipsec/plugins/libstrongswan-$p.so ]] && gw_plugins="$p $gw_plugins"
  done
  # IKE starts on 500 (espd's ike.listen) and floats to 4500; espd's end of the punt channel is known
  espd_end=unix:$tmp/espd/ike-espd.sock
  write_conf "$tmp/gw" "$gw_plugins" 500 4500
  cl_plugins="$crypto_plugins vici kernel-libipsec kernel-netlink socket-default updown"
  for p in curve25519 gmp; do
    [[ -e /usr/lib/ipsec/plugins/libstrongswan-$p.so ]] && cl_plugins="$p $cl_plugins"
  done
  write_conf "$tmp/cl" "$cl_plugins" 500 4500
  start_charon "$gw" "$tmp/gw"
  gw_pid=$last_pid
  start_charon "$cl" "$tmp/cl"
  cl_pid=$last_pid
  for _ in $(seq 100); do [[ -S $tmp/espd/ike.sock && -S $tmp/gw/charon.vici && -S $tmp/cl/charon.vici ]] && break; sleep 0.1; done
  # espd connects its punt channel to charon's socket at start: charon first
  start_espd() {
    ip netns exec "$gw" nice -n 19 "$tmp/espd/espd" run --config "$tmp/espd/espd.json" \
      >>"$tmp/espd/espd.out" 2>&1 &
    espd_pid=$!
    pids+=("$espd_pid")
  }
  start_espd
  expect "$tmp/gw/charon.log" "kernel-espd: subscribed to espd's events" "kernel-espd subscribed to espd's events"

  # spis SIDE: spi_in and spi_out of the CHILD_SA "net" as swanctl --list-sas shows them
  spis() {
    local out=$tmp/$1/sas.out
    swanctl --list-sas --uri "unix://$tmp/$1/charon.vici" --child net >"$out" 2>/dev/null || true
    spi_in=$(sed -n 's/^ *in  *\([0-9a-f]\{8\}\)[ ,(].*/\1/p' "$out" | tail -n 1)
    spi_out=$(sed -n 's/^ *out *\([0-9a-f]\{8\}\)[ ,(].*/\1/p' "$out" | tail -n 1)
  }
  # check_spis WHAT [INBOUND_COUNT]: espd's tunnel has the gateway's SPIs, the client mirrors them
  check_spis() {
    local what=$1 count=${2:-0} cl_in cl_out
    spis cl
    cl_in=$spi_in
    cl_out=$spi_out
    spis gw
    ip netns exec "$gw" "$tmp/espd/espd" tunnel list --json --control "$tmp/espd/control.sock" >"$tmp/espd/list.json" 2>&1 || true
    if [[ -n $spi_in && -n $spi_out ]] && python3 - "$tmp/espd/list.json" "$spi_in" "$spi_out" "$count" <<'PY'; then
import json, sys
tunnels = json.load(open(sys.argv[1]))["tunnels"]
want_in, want_out, count = int(sys.argv[2], 16), int(sys.argv[3], 16), int(sys.argv[4])
ok = any(
    any(int(sa["spi"], 16) == want_in for sa in t["inbound"])
    and int(t["outbound"]["spi"], 16) == want_out
    and (count == 0 or len(t["inbound"]) == count)
    for t in tunnels
)
sys.exit(0 if ok else 1)
PY
      ok "$what: espd's tunnel has the gateway's SPIs ${spi_in}_i ${spi_out}_o"
    else
      bad "$what: espd's tunnels do not match the gateway's SPIs ${spi_in:-?}_i ${spi_out:-?}_o: $(head -c 400 "$tmp/espd/list.json")"
    fi
    if [[ -n $spi_in && $cl_in == "$spi_out" && $cl_out == "$spi_in" ]]; then
      ok "$what: the client's SPIs mirror the gateway's"
    else
      bad "$what: the client's SPIs ${cl_in:-?}_i ${cl_out:-?}_o do not mirror the gateway's"
    fi
  }
  # swanctl COMMAND first, then its options
  gwctl() { swanctl "$1" --uri "unix://$tmp/gw/charon.vici" "${@:2}"; }
  clctl() { swanctl "$1" --uri "unix://$tmp/cl/charon.vici" "${@:2}"; }
  if gwctl --load-all --file "$tmp/gw/swanctl/swanctl.conf" >"$tmp/gw/load.out" 2>&1; then
    ok "gateway: swanctl --load-all"
  else bad "gateway: swanctl --load-all ($(tail -n 2 "$tmp/gw/load.out"))"; fi
  if clctl --load-all --file "$tmp/cl/swanctl/swanctl.conf" >"$tmp/cl/load.out" 2>&1; then
    ok "client: swanctl --load-all"
  else bad "client: swanctl --load-all ($(tail -n 2 "$tmp/cl/load.out"))"; fi
  if timeout 30 swanctl --initiate --uri "unix://$tmp/cl/charon.vici" --child net --timeout 20 >"$tmp/cl/initiate.out" 2>&1; then
    ok "client: swanctl --initiate --child net"
  else
    bad "client: swanctl --initiate ($(tail -n 3 "$tmp/cl/initiate.out"))"
  fi
  gwctl --list-sas >"$tmp/gw/sas.out" 2>&1 || true
  clctl --list-sas >"$tmp/cl/sas.out" 2>&1 || true
  ip netns exec "$gw" "$tmp/espd/espd" tunnel list --json --control "$tmp/espd/control.sock" >"$tmp/espd/list.json" 2>&1 || true
  expect "$tmp/gw/charon.log" 'kernel-espd: tunnel charon-[0-9a-f]{4}-[0-9]+ \(reqid [0-9]+, tunnel mode, peer 192.0.2.2\[4500\]\) added to espd' "kernel-espd added the CHILD_SA to espd as one tunnel"
  check_spis "after the CHILD_SA came up"
  if ip netns exec "$cl" ping -c 3 -i 0.3 -W 2 -I 203.0.113.10 198.51.100.1 >"$tmp/cl/ping.out" 2>&1; then
    ok "ping 203.0.113.10 -> 198.51.100.1 through libipsec, espd and back"
  else
    bad "ping through the tunnel ($(tail -n 2 "$tmp/cl/ping.out"))"
  fi

  echo "== 3b. CHILD_SA rekey"
  old_in=$spi_in
  clctl --rekey --child net >"$tmp/cl/rekey.out" 2>&1 || true
  for _ in $(seq 50); do
    spis gw
    [[ -n $spi_in && $spi_in != "$old_in" ]] && grep -q "inbound SA $old_in deleted from tunnel" "$tmp/gw/charon.log" && break
    sleep 0.2
  done
  expect "$tmp/gw/charon.log" "inbound SA [0-9a-f]{8} added to tunnel charon-" "the new inbound SA went to espd as a rekey"
  expect "$tmp/gw/charon.log" "outbound SA [0-9a-f]{8} added to tunnel charon-" "the new outbound SA went to espd as a rekey"
  expect "$tmp/gw/charon.log" "inbound SA $old_in deleted from tunnel charon-" "the old inbound SA was deleted from espd"
  check_spis "after the rekey (one inbound SA left)" 1
  if ip netns exec "$cl" ping -c 3 -i 0.3 -W 2 -I 203.0.113.10 198.51.100.1 >"$tmp/cl/ping2.out" 2>&1; then
    ok "ping through the rekeyed tunnel"
  else
    bad "ping through the rekeyed tunnel ($(tail -n 2 "$tmp/cl/ping2.out"))"
  fi

  echo "== 3c. espd restarted under charon"
  stop_pid "$espd_pid"
  start_espd
  expect "$tmp/gw/charon.log" "espd lost tunnel charon-[0-9a-f]{4}-[0-9]+ .*rekeying" "kernel-espd saw espd lose the tunnel and rekeyed the CHILD_SA"
  back=0
  for _ in $(seq 20); do
    if ip netns exec "$cl" ping -c 1 -W 1 -I 203.0.113.10 198.51.100.1 >/dev/null 2>&1; then
      back=1
      break
    fi
    sleep 0.5
  done
  if ((back)); then ok "traffic back after espd's restart"; else bad "no traffic within 20 s of espd's restart"; fi
  check_spis "after espd's restart"

  echo "== 3d. a proposal espd cannot do"
  clctl --initiate --child bad --timeout 10 >"$tmp/cl/bad.out" 2>&1 || true
  expect "$tmp/gw/charon.log" "kernel-espd: cannot install inbound SA [0-9a-f]{8} \\(reqid [0-9]+\\): AES_CBC with a 24-byte key and HMAC_SHA2_256_128: key size not supported by espd" "AES-192-CBC refused with one log line"
  ip netns exec "$gw" "$tmp/espd/espd" tunnel list --json --control "$tmp/espd/control.sock" >"$tmp/espd/list-bad.json" 2>&1 || true
  if python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if len(d["tunnels"]) == 1 else 1)' "$tmp/espd/list-bad.json"; then
    ok "nothing of the refused CHILD_SA in espd"
  else
    bad "espd's tunnels after the refused CHILD_SA: $(head -c 300 "$tmp/espd/list-bad.json")"
  fi

  echo "== 3e. espd's byte limit starts a rekey (expire event)"
  if clctl --initiate --child vol --timeout 10 >"$tmp/cl/vol.out" 2>&1; then
    ok "client: swanctl --initiate --child vol"
  else bad "client: initiate vol ($(tail -n 2 "$tmp/cl/vol.out"))"; fi
  ip netns exec "$cl" ping -c 5 -i 0.2 -s 1000 -W 2 -I 203.0.113.11 198.51.100.1 >"$tmp/cl/ping-vol.out" 2>&1 || true
  expect "$tmp/gw/charon.log" "kernel-espd: (inbound|outbound) SA [0-9a-f]{8} of tunnel charon-[0-9a-f]{4}-[0-9]+ reached its soft bytes limit" "espd's soft expire event reached charon"
  expect "$tmp/gw/charon.log" "creating rekey job for CHILD_SA ESP/0x[0-9a-f]{8}/" "charon queued the rekey"
  expect "$tmp/cl/charon.log" "CHILD_SA vol\\{[0-9]+\\} established" "the rekeyed CHILD_SA vol is established"

  gwctl --terminate --ike rw --timeout 10 >"$tmp/gw/terminate.out" 2>&1 || true
  expect "$tmp/gw/charon.log" 'kernel-espd: tunnel charon-[0-9a-f]{4}-[0-9]+ \(reqid [0-9]+\) deleted from espd' "swanctl --terminate deleted the tunnel from espd"
  ip netns exec "$gw" "$tmp/espd/espd" tunnel list --json --control "$tmp/espd/control.sock" >"$tmp/espd/list2.json" 2>&1 || true
  if python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); t=d.get("tunnels", d if isinstance(d, list) else None); sys.exit(0 if t == [] else 1)' "$tmp/espd/list2.json"; then
    ok "espd has no tunnel left"
  else
    bad "espd still has tunnels: $(head -c 300 "$tmp/espd/list2.json")"
  fi

  echo "== 3f. a charon killed without cleaning up: the next one deletes its tunnels"
  clctl --initiate --child net --timeout 10 >"$tmp/cl/initiate3.out" 2>&1 || true
  expect "$tmp/espd/espd.out" "control: add_tunnel charon-" "a tunnel is in espd again"
  kill -9 "$gw_pid" 2>/dev/null || true
  wait "$gw_pid" 2>/dev/null || true
  start_charon "$gw" "$tmp/gw"
  gw_pid=$last_pid
  expect "$tmp/gw/charon.log" "kernel-espd: deleted 1 tunnels a former charon left in espd" "the new charon deleted the former one's tunnel"
  ip netns exec "$gw" "$tmp/espd/espd" tunnel list --json --control "$tmp/espd/control.sock" >"$tmp/espd/list3.json" 2>&1 || true
  if python3 -c 'import json,sys; sys.exit(0 if json.load(open(sys.argv[1]))["tunnels"] == [] else 1)' "$tmp/espd/list3.json"; then
    ok "espd has no tunnel of the killed charon"
  else
    bad "espd still has tunnels: $(head -c 300 "$tmp/espd/list3.json")"
  fi

  echo "== 3g. the restarted charon takes IKE from the running espd (the punt channel is not connected)"
  for _ in $(seq 50); do [[ -S $tmp/gw/charon.vici ]] && break; sleep 0.1; done
  gwctl --load-all --file "$tmp/gw/swanctl/swanctl.conf" >"$tmp/gw/load2.out" 2>&1 || true
  clctl --terminate --ike gw --timeout 5 >/dev/null 2>&1 || true
  if timeout 30 swanctl --initiate --uri "unix://$tmp/cl/charon.vici" --child net --timeout 20 >"$tmp/cl/initiate4.out" 2>&1 &&
    ip netns exec "$cl" ping -c 2 -i 0.3 -W 2 -I 203.0.113.10 198.51.100.1 >"$tmp/cl/ping4.out" 2>&1; then
    ok "the client connects to the new charon through the same espd, ping crosses"
  else
    bad "no IKE_SA with the restarted charon ($(tail -n 2 "$tmp/cl/initiate4.out"))"
  fi
  stop_pid "$cl_pid"
  stop_pid "$gw_pid"
  stop_pid "$espd_pid"
fi

echo "$passed passed, $failed failed"
((failed == 0))
