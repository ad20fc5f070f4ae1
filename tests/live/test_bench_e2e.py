"""espd end to end, next to its peers, in one run (was scripts/bench-e2e.sh): iperf3 TCP and UDP
between two network namespaces through a plain veth, wireguard-go, strongSwan kernel-libipsec and
espd.

Method: the peers (veth, wggo, swan) are measured by ../shared/bench/peers.sh itself (`-o
OUTDIR/peers`). espd is measured with peers.sh's own functions, loaded from that file at run time
(ns_up, run_test, settle, ticks, peak_rss, host_busy, ...), so the veth, the addresses (192.0.2.1/.2
underlay, 198.51.100.1 <-> 203.0.113.1 inner), the iperf3 command lines, the CPU accounting and the
settling between tests are the harness's, not a copy of them (the namespaces are named after this
run, PREFIX-a and PREFIX-b, instead of pb-a/pb-b). The rows are merged into one results.tsv; the
report adds espd/peer ratios and espd's own counters, then the `--workers 2` against `--workers 1`
comparison (test_bench_workers.py's). A baseline that cannot run here is skipped with its reason
(bash installed the missing packages with apt-get; a test does not): peers.sh needs wireguard-go,
wg, swanctl and charon with kernel-libipsec; without peers.sh itself the test is skipped.

Parameters (environment, the bash options' defaults):
  BENCH_E2E_SECONDS   iperf3 duration per test (-d, default 10)
  BENCH_E2E_TESTS     default "tcp udp1400 udp1372 udp64" (-t)
  BENCH_E2E_SETUPS    default "veth wggo swan espd" (-s)
  BENCH_E2E_IO        espd's I/O backend (--io, default uring)
  BENCH_E2E_OUT       results directory (-o, default scripts/results/<timestamp>, gitignored)
  BENCH_E2E_CRYPTO=1  also peers.sh's `openssl speed` measurements (--crypto)
  BENCH_E2E_SYSCALLS=0  do not count espd's syscalls (--no-syscalls; perf stat raw_syscalls:sys_enter)
  BENCH_E2E_ESPD_ARGS extra arguments for `espd run` (--espd-args, e.g. "--udp-gro off")
  BENCH_E2E_WORKERS=0 skip the --workers comparison (--no-workers)
  BENCH_PEERS         the peer harness (default ../shared/bench/peers.sh); ESPD: espd

    sudo ESPD=.build/release/espd python3 -m pytest -q -s -rxXs -m bench tests/live -k bench-e2e
"""

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import time

import pytest

from livebench import columns, env, jq_num, jq_round, repo_path, stamp, stop_process, ticks
from livecontrol import jload, named
from liveproc import run, tail
from netlab import REPO
from test_bench_workers import compare_workers

pytestmark = pytest.mark.bench

HARNESS_FUNCS = (
    "bg kill_pids ns_up ns_down ticks host_busy now settle wait_listen run_test run_tests peak_rss fail_setup"
)
# Everything peers.sh defines between `BG_PID=""` and its setups section, minus its traps, as
# function definitions only (`declare -f` in a subshell), as bench-e2e.sh loaded them.
LOAD = r"""src=$(sed -n "/^BG_PID=\"\"/,/^# -* setups/p" "$1" | grep -v "^trap ")
eval "$src" >/dev/null 2>&1 || exit 1
declare -f $2"""
UL_A, UL_B, IN_A, IN_B = "192.0.2.1", "192.0.2.2", "198.51.100.1", "203.0.113.1"
NET_A, NET_B = "198.51.100.0/24", "203.0.113.0/24"
# espd: the TUN MTU that lets a 1428-byte inner packet (udp1400) through unfragmented, like
# wireguard-go's 1440. ESP-in-UDP, IPv4 outer, aes128gcm16: 20 IP + 8 UDP + 8 ESP (SPI, seq) + 8 IV +
# inner + pad + 2 (pad length, next header) + 16 ICV, where pad makes inner + 2 a multiple of 4
# (RFC 4303 2.4; GCM has no block). Outer = inner + 62 + pad <= 1500 gives inner <= 1438.
ESPD_MTU = 1438
TUN_A, TUN_B = "pbespa", "pbespb"
HEADER = "setup\ttest\trx_gbps\trx_kpps\ttx_kpps\tloss_pct\tfwd_cpu_pct\thost_busy_pct\twall_s\tnote\n"
PEER_TOOLS = ("ip", "iperf3", "jq", "openssl", "wg", "wireguard-go", "swanctl", "timeout", "ss")


def log(text):
    print(f"{time.strftime('%T')} {text}", flush=True)


class Harness:
    """peers.sh's functions run in bash with the globals they use (FWD: the forwarders' PIDs)."""

    def __init__(self, peers_sh, ns_a, ns_b, work, raw, results, dur):
        p = run(["bash", "-c", LOAD, "_", peers_sh, HARNESS_FUNCS], check=False)
        assert p.returncode == 0, f"cannot load the harness functions from {peers_sh}"
        self.defs = p.stdout
        for f in HARNESS_FUNCS.split():
            assert re.search(rf"^{f} \(\)", self.defs, re.M), f"{peers_sh} no longer defines {f}()"
        self.vars = {
            "NS_A": ns_a, "NS_B": ns_b, "UL_A": UL_A, "UL_B": UL_B, "IN_A": IN_A, "IN_B": IN_B,
            "NET_A": NET_A, "NET_B": NET_B, "WG_A": "pbwga", "WG_B": "pbwgb",
            "WG_DIR_EXISTED": 1,  # ns_down must never rmdir /run/wireguard on our behalf
            "PORT": 5201, "HZ": os.sysconf("SC_CLK_TCK"), "NCPU": os.cpu_count(), "WORK": work, "RAW": raw,
            "RESULTS": results, "DUR": dur, "OUTDIR": os.path.dirname(results), "NS_CREATED": 0,
            "TUN_MTU": 1500,
        }  # fmt: skip

    def __call__(self, script, fwd=(), check=False, **override):
        """Runs SCRIPT (calls of the harness functions); its stdout (its log lines are printed);
        check: AssertionError if it fails (ns_up dies when the namespaces cannot be made)."""
        values = {**self.vars, **override}
        pre = "".join(f"{k}={shlex.quote(str(v))}\n" for k, v in values.items())
        pre += f'FWD=({" ".join(map(str, fwd))})\nPIDS=()\nBG_PID=""\n'
        pre += 'log() { printf "%s %s\\n" "$(date +%T)" "$*"; }\ndie() { log "FATAL: $*"; exit 1; }\n'
        p = subprocess.run(
            ["bash", "-c", pre + self.defs + "\n" + script],
            capture_output=True,
            text=True,
            timeout=int(values["DUR"]) + 180,
        )
        if p.stderr.strip():
            print(p.stderr.rstrip())
        assert not check or p.returncode == 0, f"{script}: {(p.stdout + p.stderr).strip()[-300:]}"
        return p.stdout


class HarnessNamespaces:
    """net.topo for the namespaces the harness's ns_up made: the lab deletes them at the end."""

    def __init__(self, *names):
        self.names = names

    def destroy(self):
        for n in self.names:
            subprocess.run(["ip", "netns", "del", n], capture_output=True)


def foreign_ns(*ours):
    """The network namespaces that are not this run's."""
    out = run(["ip", "netns", "list"], check=False).stdout
    return " ".join(x.split()[0] for x in out.splitlines() if x.split() and x.split()[0] not in ours)


def busy_sample(h):
    """(loadavg 1m, busy % of all CPUs over 2 s), with the harness's host_busy."""
    b0, t0 = map(int, h("host_busy").split())
    time.sleep(2)
    b1, t1 = map(int, h("host_busy").split())
    with open("/proc/loadavg") as f:
        load = f.read().split()[0]
    return load, round(100 * (b1 - b0) / (t1 - t0)) if t1 > t0 else 0


class EspdSetup:
    """espd on both ends of the harness's veth, measured with run_test; its own counters around
    every test (SIGUSR1 snapshots, the kernel's drops around it, CPU, syscalls with perf)."""

    def __init__(self, net, h, s, espd_out, work):
        self.net, self.h, self.s, self.work = net, h, s, work
        self.raw = os.path.join(espd_out, "raw")
        self.espd_out = espd_out
        self.ns = {"a": h.vars["NS_A"], "b": h.vars["NS_B"]}
        self.procs = {}
        self.perf = []

    def fail(self, why):
        self.h(f"fail_setup espd {shlex.quote(why)}")
        self.h("ns_down", NS_CREATED=1)
        return "-"

    def config(self, side, keys):
        a = side == "a"
        cfg = {
            "listen": [f"{UL_A if a else UL_B}:4500"],
            "tun": {
                "name": TUN_A if a else TUN_B,
                "mtu": ESPD_MTU,
                "addresses": [f"{IN_A if a else IN_B}/24"],
            },
            "control": f"{self.work}/espd-{side}.sock",
            "tunnels": [
                {
                    "name": "bench",
                    "mode": "tunnel",
                    "peer": f"{UL_B if a else UL_A}:4500",
                    "remote_ts": [NET_B if a else NET_A],
                    "inbound": [
                        {"spi": "0xe5d0b001" if a else "0xe5d0a001", "alg": "aes128gcm16", "key": keys[not a]}
                    ],
                    "outbound": {
                        "spi": "0xe5d0a001" if a else "0xe5d0b001",
                        "alg": "aes128gcm16",
                        "key": keys[a],
                    },
                }
            ],
        }
        path = f"{self.work}/espd-{side}.json"
        with open(path, "w") as f:
            json.dump(cfg, f, indent=2)
        return path

    def ip(self, side, *args):
        p = run(["ip", "-n", self.ns[side], *args], check=False, timeout=10)
        return p.stdout + p.stderr

    def kernel_counters(self, side):
        """What the kernel dropped around espd, its CPU ticks and involuntary context switches."""
        tun = TUN_A if side == "a" else TUN_B
        try:
            st = json.loads(self.ip(side, "-s", "-j", "link", "show", "dev", tun))[0]["stats64"]
            tx, rx = st["tx"].get("dropped", 0), st["rx"].get("dropped", 0)
        except (ValueError, IndexError, KeyError):
            tx = rx = 0
        out = run(["ip", "netns", "exec", self.ns[side], "ss", "-Hnuam", "sport = :4500"], check=False).stdout
        sd = sum(int(x) for x in re.findall(r"skmem:\(.*,d(\d+)\)", out))
        snmp = run(["ip", "netns", "exec", self.ns[side], "cat", "/proc/net/snmp"], check=False).stdout
        rows = [x.split() for x in snmp.splitlines() if x.startswith("Udp:")]
        rb = int(rows[1][rows[0].index("RcvbufErrors")]) if len(rows) > 1 else 0
        pid = self.procs[side].pid
        nv = 0
        for tid in os.listdir(f"/proc/{pid}/task") if os.path.isdir(f"/proc/{pid}/task") else []:
            try:
                with open(f"/proc/{pid}/task/{tid}/status") as f:
                    nv += sum(int(x.split()[1]) for x in f if x.startswith("nonvoluntary_ctxt_switches"))
            except OSError:
                pass
        return {"tun_tx_dropped": tx, "tun_rx_dropped": rx, "sock_drops": sd, "udp_rcvbuf_errors": rb}, {
            "ticks": ticks(pid),
            "nvcsw": nv,
        }

    def snapshot(self, label):
        """SIGUSR1 both; their stats line, with the kernel's counters, into raw/stats-{a,b}.jsonl."""
        for side, p in self.procs.items():
            out = f"{self.work}/espd-{side}.out"

            def lines(out=out):
                with open(out, errors="replace") as f:
                    return [x for x in f if x.startswith('{"stats"')]

            n = len(lines())
            try:
                os.kill(p.pid, signal.SIGUSR1)
            except ProcessLookupError:
                record = {}
            else:
                for _ in range(50):
                    if len(lines()) > n:
                        break
                    time.sleep(0.1)
                k, proc = self.kernel_counters(side)
                last = lines()[-1:] if lines() else []
                record = {"label": label, "kernel": {**k, **proc}, **(jload(last[0]) if last else {})}
            with open(f"{self.raw}/stats-{side}.jsonl", "a") as f:
                f.write(json.dumps(record, separators=(",", ":")) + "\n")

    def perf_start(self, test):
        self.perf = []
        if not self.s.syscalls:
            return
        for side, p in self.procs.items():
            argv = ["perf", "stat", "-x,", "-e", "raw_syscalls:sys_enter", "-p", str(p.pid)]
            argv += ["-o", f"{self.raw}/perf-{test}-{side}.csv"]
            self.perf.append(self.net.procs.start(argv, os.devnull))
        time.sleep(0.2)

    def perf_stop(self):
        """perf stat prints its counts on SIGINT (it installs its own handler)."""
        for p in self.perf:
            p.send_signal(signal.SIGINT)
        for p in self.perf:
            p.wait()
        self.perf = []

    def ping_us(self, *args):
        """Median and p90 round trip in microseconds of 300 pings, 10 ms apart ("-" "-": too few)."""
        p = run(
            ["ip", "netns", "exec", self.ns["a"], "ping", "-n", "-c", "300", "-i", "0.01", *args], check=False
        )
        v = sorted(float(x) for x in re.findall(r"time=([0-9.]+) ms", p.stdout))
        if len(v) < 100:
            return "-", "-"
        return f"{v[len(v) // 2] * 1000:.0f}", f"{v[int(len(v) * 0.9) - 1] * 1000:.0f}"

    def latency_sample(self):
        """Added latency at low load: ping through the tunnel minus ping over the bare veth."""
        veth, tun = self.ping_us(UL_B), self.ping_us("-I", IN_A, IN_B)
        with open(f"{self.espd_out}/latency.tsv", "a") as f:
            f.write(f"veth\t{veth[0]}\t{veth[1]}\nespd\t{tun[0]}\t{tun[1]}\n")

    def latency_wggo(self):
        """The same latency for wireguard-go, set up here the way peers.sh does (its setups are not
        loadable); nothing when wireguard-go or wg is missing."""
        if not (shutil.which("wireguard-go") and shutil.which("wg")):
            return False
        h, w = self.h, self.work
        h("ns_up", check=True)
        keys = {x: run(["wg", "genkey"]).stdout.strip() for x in ("a", "b")}
        pubs = {x: run(["wg", "pubkey"], input=keys[x] + "\n").stdout.strip() for x in ("a", "b")}
        procs = []
        for x, dev in (("a", "pbwga"), ("b", "pbwgb")):
            with open(f"{w}/wl-{x}.key", "w") as f:
                f.write(keys[x] + "\n")
            argv = ["ip", "netns", "exec", self.ns[x], "env", "WG_PROCESS_FOREGROUND=1", "wireguard-go", dev]
            procs.append(self.net.procs.start(argv, f"{w}/wl-{x}.log"))
        # Each device is up once its link exists and wireguard-go listens on its UAPI socket (`wg
        # set` before that fails: "Protocol not supported", seen here).
        for _ in range(50):
            if all(
                dev in self.ip(x, "link", "show", dev) and os.path.exists(f"/var/run/wireguard/{dev}.sock")
                for x, dev in (("a", "pbwga"), ("b", "pbwgb"))
            ):
                break
            time.sleep(0.1)
        for x, y, dev, peer, inner, remote in (
            ("a", "b", "pbwga", UL_B, IN_A, NET_B),
            ("b", "a", "pbwgb", UL_A, IN_B, NET_A),
        ):
            wg = ["wg", "set", dev, "private-key", f"{w}/wl-{x}.key", "listen-port", "51820", "peer", pubs[y]]
            run(["ip", "netns", "exec", self.ns[x], *wg, "endpoint", f"{peer}:51820", "allowed-ips", remote])
            self.ip(x, "addr", "add", f"{inner}/24", "dev", dev)
            self.ip(x, "link", "set", dev, "up")
            self.ip(x, "route", "add", remote, "dev", dev)
        run(["ip", "netns", "exec", self.ns["a"], "ping", "-q", "-c", "3", "-I", IN_A, IN_B], check=False)
        veth, tun = self.ping_us(UL_B), self.ping_us("-I", IN_A, IN_B)
        with open(f"{self.espd_out}/latency.tsv", "a") as f:
            f.write(f"veth (wggo run)\t{veth[0]}\t{veth[1]}\nwggo\t{tun[0]}\t{tun[1]}\n")
        for p in procs:
            stop_process(p, 3)
        for x in ("a", "b"):
            os.unlink(f"{w}/wl-{x}.key")
        h("ns_down", NS_CREATED=1)
        return True

    def run(self):
        """The whole espd setup; espd's exit status after SIGTERM ("a=N b=N")."""
        h, s, raw = self.h, self.s, self.raw
        h("ns_up", check=True)
        keys = (os.urandom(20).hex(), os.urandom(20).hex())  # (b -> a, a -> b)
        cfg = {side: self.config(side, keys) for side in ("a", "b")}
        p = run([self.net.espd_binary, "check", "--config", cfg["a"]], check=False)
        with open(f"{raw}/espd-check-a.txt", "w") as f:
            f.write(p.stdout + p.stderr)
        if p.returncode != 0:
            return self.fail("espd check rejects the config (raw/espd-check-a.txt)")
        for side in ("a", "b"):
            argv = [self.net.espd_binary, "run", "--config", cfg[side], "--io", s.io, *s.espd_args.split()]
            self.procs[side] = self.net.procs.start(
                ["ip", "netns", "exec", self.ns[side], *argv],
                f"{self.work}/espd-{side}.out",
                err_path=f"{self.work}/espd-{side}.log",
            )
        ok = False
        for _ in range(100):
            if any(p.poll() is not None for p in self.procs.values()):
                logs = " ".join(tail(f"{self.work}/espd-{x}.log", 1) for x in ("a", "b"))
                return self.fail(f"espd exited at start: {logs}")
            if (
                f"dev {TUN_A}" in self.ip("a", "route", "get", IN_B)
                and f"dev {TUN_B}" in self.ip("b", "route", "get", IN_A)
                and IN_B in self.ip("b", "-o", "addr", "show", "dev", TUN_B)
            ):
                ok = True
                break
            time.sleep(0.1)
        if not ok:
            return self.fail("TUN/routes not up after 10 s (see espd-*.log)")
        ping = ["ip", "netns", "exec", self.ns["a"], "ping", "-q", "-c", "1", "-W", "1", "-I", IN_A, IN_B]
        if not any(run(ping, check=False).returncode == 0 for _ in range(10)):
            return self.fail("no ping through the tunnel (see espd-*.log)")
        with open(f"{raw}/espd-setup.txt", "w") as f:
            for side in ("a", "b"):
                with open(f"{self.work}/espd-{side}.log", errors="replace") as g:
                    f.write("".join(x for x in g if "io:" in x))
            f.write(self.ip("a", "-d", "link", "show", TUN_A) + self.ip("a", "route", "get", IN_B))
            f.write(self.ip("a", "rule"))
        fwd = [p.pid for p in self.procs.values()]
        h("settle", fwd)
        self.latency_sample()
        self.snapshot("start")
        for t in s.tests:
            self.perf_start(t)
            h(f"run_test espd {t} {IN_B} {IN_A}", fwd, TUN_MTU=ESPD_MTU)
            self.perf_stop()
            self.snapshot(t)
        h("peak_rss espd", fwd, OUTDIR=self.espd_out)
        # SIGTERM: espd prints its final stats and must exit 0
        rcs = {}
        for p in self.procs.values():
            p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 5
        for side, p in self.procs.items():
            try:
                rcs[side] = p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                rcs[side] = "killed"
        if "killed" in rcs.values():
            log("espd did not exit within 5 s of SIGTERM")
            for p in self.procs.values():
                stop_process(p, 3)
        status = f"a={rcs['a']} b={rcs['b']}"
        with open(f"{raw}/espd-setup.txt", "a") as f:
            f.write(f"exit codes after SIGTERM: {status}\n")
        for side in ("a", "b"):
            out = f"{self.work}/espd-{side}.out"
            with open(out, errors="replace") as f:
                last = [x for x in f if x.startswith('{"stats"')][-1:]
            with open(f"{raw}/espd-{side}-exit.json", "w") as f:
                f.write("".join(last))
            shutil.copy(out, raw)
        h("ns_down", NS_CREATED=1)
        return status


def espd_counters(raw, tests):
    """espd's counters per test: the differences between consecutive snapshots, per side."""
    head = "test side encap decap dropped drop_reasons tun_write_dropped udp_send_dropped k_tun_txq_drop "
    head += "k_sock_drop k_ns_udp_rcvbuf_err cpu_s preempted batches pkts_per_batch syscalls syscalls_per_pkt"
    rows = [head.split()]
    hz = os.sysconf("SC_CLK_TCK")
    for side in ("a", "b"):
        path = f"{raw}/stats-{side}.jsonl"
        if not os.path.exists(path) or not os.path.getsize(path):
            continue
        with open(path) as f:
            snaps = [json.loads(x) for x in f if x.strip()]
        for prev, cur in zip(snaps, snaps[1:], strict=False):
            a, b = prev.get("stats") or {}, cur.get("stats") or {}
            ka, kb = prev.get("kernel") or {}, cur.get("kernel") or {}

            def d(key, a=a, b=b):
                return (b.get(key) or 0) - (a.get(key) or 0)

            def dk(key, ka=ka, kb=kb):
                return (kb.get(key) or 0) - (ka.get(key) or 0)

            da, db = a.get("drops") or {}, b.get("drops") or {}
            why = (
                ",".join(f"{k}={v - (da.get(k) or 0)}" for k, v in db.items() if v - (da.get(k) or 0) > 0)
                or "-"
            )
            test = cur.get("label")
            ppb = jq_num(jq_round(d("batched_packets") / d("batches") * 10) / 10) if d("batches") > 0 else "-"
            sc = spp = "-"
            perf = f"{raw}/perf-{test}-{side}.csv"
            if os.path.exists(perf) and os.path.getsize(perf):
                with open(perf) as f:
                    found = [x.split(",")[0] for x in f if "raw_syscalls:sys_enter" in x]
                if found and found[0].isdigit():
                    sc = found[0]
                    pk = d("encapsulated") + d("decapsulated") + d("dropped")
                    spp = f"{int(sc) / pk:.3f}" if pk > 0 else "-"
            cpu = jq_round(dk("ticks") / hz * 100) / 100
            rows.append(
                [test, side, d("encapsulated"), d("decapsulated"), d("dropped"), why, d("tun_write_dropped")]
                + [d("udp_send_dropped"), dk("tun_tx_dropped"), dk("sock_drops"), dk("udp_rcvbuf_errors")]
                + [jq_num(cpu), dk("nvcsw"), d("batches"), ppb, sc, spp]
            )
    return rows


def read_tsv(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [x.rstrip("\n").split("\t") for x in f if x.strip()]


def summary(rows, tests):
    """peers.sh's summary over the merged rows: value [fwd CPU% of one core, a+b]."""
    v, order = {}, []
    for r in rows:
        setup, test = r[0], r[1]
        note = r[9] if len(r) > 9 else ""
        if "FAILED" in note:
            text = "FAILED"
        elif test == "tcp":
            text = r[2]
        elif test == "udp64":
            text = f"{r[3]} kpps {r[5]}%"
        else:
            text = f"{r[2]} Gb/s {r[5]}%"
        if r[6] not in ("-", "") and text != "FAILED":
            text += f" [{r[6]}]"
        if "fragmented" in note:
            text += " *"
        v[(setup, test)] = text
        if setup not in order:
            order.append(setup)
    hdr = {"tcp": "TCP Gbit/s", "udp1400": "UDP-1400 rx, loss", "udp1372": "UDP-1372 rx, loss"}
    hdr["udp64"] = "UDP-64 rx, loss"
    lines = [f"{'setup':<6}" + "".join(f" | {hdr.get(t, t):<26}" for t in tests)]
    for setup in order:
        lines.append(f"{setup:<6}" + "".join(f" | {v.get((setup, t), '-'):<26}" for t in tests))
    return lines


def ratios(rows, tests, peers):
    """espd / peer per test (TCP: rx Gbit/s; UDP: rx kpps), per fwd CPU too; targets against wggo
    and swan: TCP >= 5x, UDP-64 >= 3x, the others >= 1.5x."""
    ok, val, cpu = {}, {}, {}
    for r in rows:
        k = (r[0], r[1])
        ok[k] = "FAILED" not in (r[9] if len(r) > 9 else "")
        val[k], cpu[k] = (r[2] if r[1] == "tcp" else r[3]), r[6]

    def f(x):
        try:
            return float(x)
        except ValueError:
            return 0.0

    line = f"{'test':<8} {'metric':<7} {'espd':>9}" + "".join(
        f" | {p:>9} {'espd/' + p:>8} {'per-core':>8} {'':<4}" for p in peers
    )
    lines = [line]
    for t in tests:
        e = ("espd", t)
        line = f"{t:<8} {'Gbit/s' if t == 'tcp' else 'kpps':<7} {val[e] if ok.get(e) else '-':>9}"
        for p in peers:
            k = (p, t)
            r = c = "-"
            mark = ""
            if ok.get(k) and ok.get(e) and f(val[k]) > 0:
                r = f"{f(val[e]) / f(val[k]):.2f}x"
                if f(cpu[e]) > 0 and f(cpu[k]) > 0:
                    c = f"{(f(val[e]) / f(cpu[e])) / (f(val[k]) / f(cpu[k])):.2f}x"
                goal = 5 if t == "tcp" else 3 if t == "udp64" else 1.5
                if p in ("wggo", "swan"):
                    mark = "ok" if f(val[e]) / f(val[k]) >= goal else "LOW"
            line += f" | {val[k] if ok.get(k) else '-':>9} {r:>8} {c:>8} {mark:<4}"
        lines.append(line)
    return lines


class Settings:
    def __init__(self):
        self.dur = int(env("BENCH_E2E_SECONDS", "10", r"[1-9][0-9]*", "a positive number of seconds"))
        self.tests = env("BENCH_E2E_TESTS", "tcp udp1400 udp1372 udp64").split()
        for t in self.tests:
            assert t in ("tcp", "udp1400", "udp1372", "udp64"), f"BENCH_E2E_TESTS: unknown test {t}"
        self.setups = env("BENCH_E2E_SETUPS", "veth wggo swan espd").split()
        for x in self.setups:
            assert x in ("veth", "wggo", "swan", "espd"), f"BENCH_E2E_SETUPS: unknown setup {x}"
        self.io = env("BENCH_E2E_IO", "uring", r"uring|mmsg", "uring or mmsg")
        self.outdir = repo_path(env("BENCH_E2E_OUT", f"scripts/results/{stamp()}"))
        self.crypto = env("BENCH_E2E_CRYPTO", "0") == "1"
        self.syscalls = env("BENCH_E2E_SYSCALLS", "1") == "1"
        self.espd_args = env("BENCH_E2E_ESPD_ARGS", "")
        self.workers = env("BENCH_E2E_WORKERS", "1") == "1"
        self.peers_sh = repo_path(env("BENCH_PEERS", os.path.join("..", "shared", "bench", "peers.sh")))


def peers_missing():
    """What peers.sh needs and this machine lacks (bash installed it with apt-get)."""
    missing = [t for t in PEER_TOOLS if not shutil.which(t)]
    if not os.access("/usr/lib/ipsec/charon", os.X_OK):
        missing.append("/usr/lib/ipsec/charon")
    if not os.path.exists("/usr/lib/ipsec/plugins/libstrongswan-kernel-libipsec.so"):
        missing.append("kernel-libipsec")
    return missing


@named("name", {"bench-e2e": "bench-e2e"})
def test_bench_e2e(net, name):
    s = Settings()
    if not os.access(s.peers_sh, os.R_OK):
        pytest.skip(f"missing {s.peers_sh} (the shared peer harness, whose functions measure espd too)")
    peers = [x for x in s.setups if x != "espd"]
    do_espd = "espd" in s.setups
    espd_out, work = os.path.join(s.outdir, "espd"), os.path.join(net.dir, "work")
    raw = os.path.join(espd_out, "raw")
    for d in (raw, work):
        os.makedirs(d, exist_ok=True)
    os.chmod(work, 0o700)  # configs hold keys
    results = os.path.join(espd_out, "results.tsv")
    with open(results, "w") as f:
        f.write(HEADER)
    ns_a, ns_b = f"{net.prefix}-a", f"{net.prefix}-b"
    net.topo = HarnessNamespaces(ns_a, ns_b)
    h = Harness(s.peers_sh, ns_a, ns_b, work, raw, results, s.dur)
    if s.syscalls:
        p = run(
            ["perf", "stat", "-x,", "-e", "raw_syscalls:sys_enter", "-o", "/dev/null", "--", "true"],
            check=False,
        )
        if not shutil.which("perf") or p.returncode != 0:
            log("perf with raw_syscalls tracepoints unavailable: no syscall counts")
            s.syscalls = False
    log(
        f"results -> {s.outdir} ({s.dur}s per test; setups: {' '.join(s.setups)}; "
        f"tests: {' '.join(s.tests)}; espd --io {s.io})"
    )
    foreign0 = foreign_ns(ns_a, ns_b)
    if foreign0:
        log(f"warning: other network namespaces exist ({foreign0}): another test may be running")
    load0, busy0 = busy_sample(h)
    log(f"host before: loadavg {load0}, busy {busy0}% of {os.cpu_count()} CPUs (2 s sample)")
    if busy0 > 15:
        log(f"warning: the machine is busy ({busy0}%) before the run; figures will be disturbed")
    t0 = time.monotonic()
    skipped = []
    if peers:
        missing = peers_missing()
        if missing:
            skipped.append(
                f"peers {' '.join(peers)} not run: peers.sh needs {', '.join(missing)} (not installed)"
            )
            log(skipped[-1])
        else:
            argv = ["bash", s.peers_sh, "-d", str(s.dur), "-s", " ".join(peers), "-t", " ".join(s.tests)]
            argv += ["-o", f"{s.outdir}/peers", *([] if s.crypto else ["-C"])]
            log(f"peers: {' '.join(argv[1:])}")
            with open(f"{s.outdir}/peers.stdout", "w") as out, open(f"{s.outdir}/peers.stderr", "w") as err:
                prc = subprocess.run(argv, stdout=out, stderr=err).returncode
            if prc != 0:
                log(f"warning: peers.sh exited {prc} (see {s.outdir}/peers.stderr)")
    status = "-"
    workers_report = ""
    if do_espd:
        with open(f"{espd_out}/latency.tsv", "w") as f:
            f.write("path\tmedian_us\tp90_us\n")
        setup = EspdSetup(net, h, s, espd_out, work)
        log("latency: wireguard-go")
        if not setup.latency_wggo():
            skipped.append("latency of wireguard-go not measured: wireguard-go and wg are not installed")
            log(skipped[-1])
        log(f"setup espd ({net.session.espd_source}, --io {s.io}, tun mtu {ESPD_MTU})")
        status = setup.run()
        if s.workers:
            log("workers: --workers 2 against --workers 1 (test_bench_workers.py)")
            workers_report, failed = compare_workers(net, s.dur, 4, ["1", "2"], "0", f"{s.outdir}/workers")
            if failed:
                log(f"warning: the workers comparison failed: {'; '.join(failed)}")
    foreign1 = foreign_ns(ns_a, ns_b)
    load1, busy1 = busy_sample(h)
    for x in os.listdir(work):  # the daemons' logs kept, the configs (keys) not
        if x.endswith(".log"):
            shutil.copy(os.path.join(work, x), raw)
    log(f"host after: loadavg {load1}, busy {busy1}% (2 s sample); took {time.monotonic() - t0:.0f} s")

    # merge
    merged = read_tsv(f"{s.outdir}/peers/results.tsv")[1:] + read_tsv(results)[1:]
    with open(f"{s.outdir}/results.tsv", "w") as f:
        f.write(HEADER + "".join("\t".join(r) + "\n" for r in merged))
    peak = read_tsv(f"{s.outdir}/peers/peak_rss.tsv") + read_tsv(f"{espd_out}/peak_rss.tsv")
    counters = espd_counters(raw, s.tests) if do_espd else []
    report = [
        "== per test (rx = iperf3 receiver side; fwd_cpu = both forwarder processes, % of one core;",
        f"   host_busy = all {os.cpu_count()} CPUs, % of total; UDP tests are"
        " -b 0 i.e. unlimited offered load)",
        columns([HEADER.strip().split("\t"), *merged]),
        "",
        "== summary: value [fwd CPU% of one core, a+b]",
        *summary(merged, s.tests),
        "  * inner packet larger than the tunnel MTU: each datagram is IP-fragmented in two",
        "  tunnel MTUs: wggo 1440 (1500-20-8-32), swan 1400 (hard-coded by kernel-libipsec),",
        f"  espd {ESPD_MTU} (1500 - 20 IP - 8 UDP - 8 ESP - 8 IV - 2 trailer - 16 ICV, inner+2 4-aligned:",
        "  the largest inner packet that fits one 1500-byte outer packet;"
        " udp1400's 1428 B is not fragmented)",
    ]
    lat = read_tsv(f"{espd_out}/latency.tsv")
    if len(lat) > 1:
        report += [
            "",
            "== added latency at low load (300 pings 10 ms apart, a -> b; target: under 50 us median)",
        ]
        report.append(columns(lat))
        m = {r[0]: r[1] for r in lat[1:]}
        added = ""
        if m.get("veth", "").isdigit() and m.get("espd", "").isdigit():
            us = int(m["espd"]) - int(m["veth"])
            added = f"added: espd {us} us median ({'ok' if us < 50 else 'HIGH'})"
        if m.get("veth (wggo run)", "").isdigit() and m.get("wggo", "").isdigit():
            added += f", wireguard-go {int(m['wggo']) - int(m['veth (wggo run)'])} us"
        report.append(added)
    if peak:
        report += ["", "== forwarder peak RSS (VmHWM, side a then b)", columns(peak)]
    crypto = read_tsv(f"{s.outdir}/peers/crypto.tsv")
    if crypto:
        report += ["", "== openssl speed -elapsed -seconds 3 -evp (one core)", columns(crypto)]
    if len(counters) > 1:
        report += [
            "",
            "== espd counters per test and side (SIGUSR1 deltas; syscalls: perf stat raw_syscalls:sys_enter,",
            "   per packet handled by that side = encap + decap + dropped;"
            " k_tun_txq_drop: the kernel could not",
            "   queue a packet to espd's TUN (espd reads too slowly); k_sock_drop:"
            " espd's UDP socket overflowed;",
            "   k_ns_udp_rcvbuf_err: Udp RcvbufErrors of the whole namespace (side"
            " b: mostly the iperf3 server);",
            "   cpu_s: CPU seconds of that espd over the test and its settling;"
            " preempted: involuntary context switches)",
            columns(counters),
        ]
    report += ["", "== TCP: sender retransmits (iperf3) per setup"]
    for x in s.setups:
        j = f"{raw}/espd-tcp.json" if x == "espd" else f"{s.outdir}/peers/raw/{x}-tcp.json"
        if os.path.exists(j) and os.path.getsize(j):
            with open(j, errors="replace") as f:
                rt = jload(f.read()).get("end", {}).get("sum_sent", {}).get("retransmits", "-")
            report.append(f"{x:<6} {rt}")
    report += [
        "",
        "== espd vs peers: ratio = espd / peer (> 1: espd ahead). TCP: rx Gbit/s; UDP: rx kpps (received",
        "   datagrams/s). per-core: the same ratio per fwd CPU (rx / fwd_cpu)."
        " targets against wggo and swan:",
        "   TCP >= 5x, UDP-64 >= 3x, the others >= 1.5x",
        *ratios(merged, s.tests, peers),
        "",
    ]
    if workers_report:
        report += ["", *[x for x in workers_report.splitlines() if not x.startswith("results:")]]
    report.append("")
    if do_espd:
        report.append(
            f"espd exit status after SIGTERM: {status} (final stats: espd/raw/espd-{{a,b}}-exit.json)"
        )
    report.append(
        f"host: before loadavg {load0} busy {busy0}%, after loadavg {load1}"
        f" busy {busy1}% ({os.cpu_count()} CPUs)"
    )
    if foreign0 or foreign1:
        report.append(
            f"warning: other network namespaces before ({foreign0 or 'none'}) / after "
            f"({foreign1 or 'none'}): another test shared the CPUs"
        )
    if busy0 > 15 or busy1 > 15:
        report.append("warning: the host was busy outside this benchmark; re-run on a quiet machine")
    report += [f"not run: {x}" for x in skipped]
    report.append(f"results: {s.outdir}")
    text = "\n".join(report)
    print(text)
    with open(f"{s.outdir}/table.txt", "w") as f:
        f.write(text + "\n")
    net.figures.extend(ratios(merged, s.tests, peers))
    env_txt(net, s, f"{s.outdir}/env.txt", (load0, busy0, load1, busy1))


def env_txt(net, s, path, host):
    """peers.sh's env.txt (or the date, kernel and CPUs), peers.sh's hash, espd, the tree, the host."""
    try:
        with open(f"{s.outdir}/peers/env.txt") as f:
            head = f.read()
    except OSError:
        head = f"date: {time.strftime('%FT%T%z')}\nkernel: {os.uname().release}\ncpus: {os.cpu_count()}\n"
    sha = run(["sha256sum", s.peers_sh], check=False).stdout.split()[:1]
    tree = run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], check=False).stdout.strip()
    dirty = run(
        ["git", "-C", REPO, "status", "--porcelain", "--untracked-files=no"], check=False
    ).stdout.strip()
    with open(path, "w") as f:
        f.write(head + f"peers.sh: {s.peers_sh} sha256 {' '.join(sha)}\n")
        if "espd" in s.setups:
            f.write(f"espd: {net.session.espd_source}, --io {s.io} {s.espd_args}, tun mtu {ESPD_MTU}\n")
            f.write(
                f"repo tree: {tree}{' + uncommitted changes' if dirty else ''} (espd"
                " binary given, not necessarily built from it)\n"
            )
        f.write("host before: loadavg {}, busy {}% ; after: loadavg {}, busy {}%\n".format(*host))
