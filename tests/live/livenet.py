"""Network namespaces, veths, the NAT and packet captures (documentation addresses only).

client c1 203.0.113.10 ─┐  bridge 203.0.113.1/26      192.0.2.2 │ 192.0.2.1
client c2 203.0.113.11 ─┼─ NAT namespace (nftables masquerade) ──── gateway: charon + espd
client c3 203.0.113.12 ─┘                                          TUN 198.51.100.1/24
"""

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from liveproc import Procs, run, wait_for

GW_ADDR = "192.0.2.1"
NAT_ADDR = "192.0.2.2"
GW_INNER = "198.51.100.1"  # the gateway's TUN address: the host behind the gateway


NETTOOL = os.path.join(os.path.dirname(os.path.abspath(__file__)), "nettool.py")


def words(args):
    """Arguments as strings: one string with spaces is split like a shell's words."""
    if len(args) == 1 and isinstance(args[0], str) and " " in args[0]:
        return shlex.split(args[0])
    return [str(a) for a in args]


class Netns:
    """A network namespace. ipv6=False: IPv4 only (no link-local addresses whose DAD would start
    charon's roam jobs); ipv6=True: IPv6 on, without DAD or router advertisements (no delays)."""

    def __init__(self, name, ipv6=False):
        self.name = name
        self.short = name.rsplit("-", 1)[-1]
        run(["ip", "netns", "add", name])
        self.ip("link", "set", "lo", "up")
        if ipv6:
            self.exec(
                ["sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0"]
            )
            self.exec(["sysctl", "-qw", "net.ipv6.conf.all.accept_ra=0", "net.ipv6.conf.default.accept_ra=0"])
        else:
            self.exec(["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"])
            self.exec(["sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1"])

    def __repr__(self):
        return f"Netns({self.name})"

    def ip(self, *args):
        return run(["ip", "-n", self.name, *args])

    def argv(self, argv):
        return ["ip", "netns", "exec", self.name, *argv]

    def exec(self, argv, **kw):
        return run(self.argv(argv), **kw)

    def delete(self):
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)

    def addr(self, dev, *cidrs):
        """Adds addresses to dev (IPv6 without DAD)."""
        for a in cidrs:
            self.ip("addr", "add", a, "dev", dev, *(["nodad"] if ":" in a else []))

    # nettool.py (this directory) inside the namespace; ARGS as separate values, or as one string
    # split like a shell's words ("flow --to 198.51.100.1 --port 7000 ...")
    def tool_argv(self, *args):
        return self.argv([sys.executable, NETTOOL, *words(args)])

    def tool(self, *args, timeout=60, check=False):
        """Runs `nettool.py ARGS` here to completion; the CompletedProcess (stdout: its output)."""
        return run(self.tool_argv(*args), timeout=timeout, check=check)

    def tool_json(self, *args, timeout=60):
        """nettool.py's one JSON line (ike-client, flow, send-esp), parsed; and its exit code."""
        p = self.tool(*args, timeout=timeout)
        lines = [x for x in p.stdout.splitlines() if x.startswith("{")]
        if not lines:
            raise AssertionError(
                f"nettool {' '.join(map(str, args))}: no JSON ({p.stdout[-300:]}{p.stderr[-300:]})"
            )
        return json.loads(lines[-1]), p.returncode

    # the kernel's view (bounded by run's timeout; no retries: callers wait with wait_for)
    def _out(self, argv):
        return run(self.argv(argv), check=False, timeout=10).stdout

    def udp_bound(self, port):
        return bool(self._out(["ss", "-Hlun", f"sport = :{port}"]).strip())

    def tcp_listening(self, port):
        return bool(self._out(["ss", "-Hltn", f"sport = :{port}"]).strip())

    def link_exists(self, dev):
        return (
            run(["ip", "-n", self.name, "-o", "link", "show", "dev", dev], check=False, timeout=10).returncode
            == 0
        )

    def link_up(self, dev):
        out = run(["ip", "-n", self.name, "-o", "link", "show", "dev", dev], check=False, timeout=10).stdout
        return bool(re.search(r"[<,]UP[,>]", out))

    def has_addr(self, dev, cidr):
        out = run(["ip", "-n", self.name, "-o", "addr", "show", "dev", dev], check=False, timeout=10).stdout
        return cidr in [line.split()[3] for line in out.splitlines() if len(line.split()) > 3]

    def route_dev(self, addr):
        """The device the kernel routes addr through ("" if none)."""
        out = run(["ip", "-n", self.name, "-o", "route", "get", addr], check=False, timeout=10)
        m = re.search(r" dev (\S+)", out.stdout)
        return m.group(1) if m else ""

    def route_get(self, addr):
        p = run(["ip", "-n", self.name, "-o", "route", "get", addr], check=False, timeout=10)
        return (p.stdout + p.stderr).strip().splitlines()[0] if (p.stdout + p.stderr).strip() else ""

    def tun_devices(self):
        """Names of the TUN/TAP devices in the namespace."""
        out = run(["ip", "-n", self.name, "-d", "-o", "link", "show"], check=False, timeout=10).stdout
        return [line.split(": ")[1].split("@")[0] for line in out.splitlines() if " tun type " in line]

    def wait_no_tun(self, timeout=1.0):
        """Milliseconds until no TUN device is left (None if one is still there after timeout).
        A TUN can outlive its process briefly: io_uring tears a ring down asynchronously, and reads
        still queued on the TUN keep its file, hence the device, alive until the kernel cancels them."""
        t0 = time.monotonic()
        while True:
            if not self.tun_devices():
                return int((time.monotonic() - t0) * 1000)
            if time.monotonic() - t0 > timeout:
                return None
            time.sleep(0.02)

    def link_stats(self, dev):
        """stats64 of a link (`ip -s -j link show`): {"rx": {...}, "tx": {...}}."""
        out = run(["ip", "-n", self.name, "-s", "-j", "link", "show", "dev", dev], timeout=10).stdout
        return json.loads(out)[0]["stats64"]

    def udp_rcvbuf_errors(self):
        """UDP datagrams this namespace's kernel dropped for a full socket buffer."""
        rows = [
            line.split()
            for line in self._out(["cat", "/proc/net/snmp"]).splitlines()
            if line.startswith("Udp:")
        ]
        return int(rows[1][rows[0].index("RcvbufErrors")])


class Topology:
    """gateway, NAT and clients; clients are added on demand (c1 = 203.0.113.10, ...)."""

    def __init__(self, prefix, procs: Procs, workdir):
        self.prefix = prefix
        self.procs = procs
        self.workdir = workdir
        self.namespaces = []
        self.clients = []
        self.gw = self._ns("gw")
        self.nat = self._ns("nat")
        self.gw_if = f"{prefix}g"
        self.nat_wan = f"{prefix}n"
        self.bridge = f"{prefix}br"
        run(
            ["ip", "link", "add", self.gw_if, "netns", self.gw.name, "type", "veth"]
            + ["peer", "name", self.nat_wan, "netns", self.nat.name]
        )
        self.gw.ip("addr", "add", f"{GW_ADDR}/24", "dev", self.gw_if)
        self.gw.ip("link", "set", self.gw_if, "up")
        self.nat.ip("addr", "add", f"{NAT_ADDR}/24", "dev", self.nat_wan)
        self.nat.ip("link", "set", self.nat_wan, "up")
        self.nat.ip("link", "add", self.bridge, "type", "bridge")
        self.nat.ip("addr", "add", "203.0.113.1/26", "dev", self.bridge)
        self.nat.ip("link", "set", self.bridge, "up")
        self.nat.exec(["sysctl", "-qw", "net.ipv4.ip_forward=1"])
        self.set_masquerade("masquerade")

    def _ns(self, what):
        ns = Netns(f"{self.prefix}-{what}")
        self.namespaces.append(ns)
        return ns

    def set_masquerade(self, *rules):
        """Replaces the NAT's postrouting rules (each applies to packets out of its WAN side)."""
        body = "".join(f'  oifname "{self.nat_wan}" {r}\n' for r in rules)
        ruleset = (
            "table ip lvnat\ndelete table ip lvnat\n"
            "table ip lvnat {\n chain post {\n"
            "  type nat hook postrouting priority srcnat; policy accept;\n"
            f"{body} }}\n}}\n"
        )
        self.nat.exec(["nft", "-f", "-"], input=ruleset)

    def flush_conntrack(self):
        self.nat.exec(["conntrack", "-F"], check=False)

    def add_client(self):
        i = len(self.clients) + 1
        ns = self._ns(f"c{i}")
        inner, port = f"{self.prefix}c{i}", f"{self.prefix}b{i}"
        run(
            ["ip", "link", "add", inner, "netns", ns.name, "type", "veth"]
            + ["peer", "name", port, "netns", self.nat.name]
        )
        self.nat.ip("link", "set", port, "master", self.bridge)
        self.nat.ip("link", "set", port, "up")
        ns.addr = f"203.0.113.{9 + i}"
        ns.ip("addr", "add", f"{ns.addr}/26", "dev", inner)
        ns.ip("link", "set", inner, "up")
        ns.ip("route", "add", "default", "via", "203.0.113.1")
        self.clients.append(ns)
        return ns

    def destroy(self):
        for ns in reversed(self.namespaces):
            ns.delete()
        self.namespaces.clear()


def ping(ns, dst, src=None, count=3, interval=0.3, deadline=10):
    """Pings dst from the namespace; returns (received, transmitted)."""
    argv = ["ping", "-n", "-q", "-c", str(count), "-i", str(interval), "-w", str(deadline)]
    if src:
        argv += ["-I", src]
    p = ns.exec(argv + [dst], check=False, timeout=deadline + 5)
    for line in p.stdout.splitlines():
        if "packets transmitted" in line:
            parts = line.split(",")
            return int(parts[1].split()[0]), int(parts[0].split()[0])
    return 0, count


def ping_until(ns, dst, src=None, timeout=10):
    """Seconds until one ping gets through (TimeoutError after timeout)."""
    t0 = time.monotonic()
    wait_for(
        lambda: ping(ns, dst, src, count=1, deadline=1)[0] == 1,
        timeout,
        interval=0.2,
        what=f"a ping {src or ns.addr} -> {dst}",
    )
    return time.monotonic() - t0


class Capture:
    """dumpcap on one interface of a namespace, read back with tshark."""

    FIELDS = [
        "frame.number",
        "frame.time_relative",
        "ip.src",
        "ip.dst",
        "ip.proto",
        "udp.srcport",
        "udp.dstport",
        "isakmp.exchangetype",
        "esp.spi",
        "_ws.col.Protocol",
    ]

    def __init__(self, ns, iface, path, procs: Procs, snaplen=None, bpf=None):
        self.path = path
        self.procs = procs
        # snaplen: bytes kept of each packet (headers are enough to tell IKE from ESP, and quicker)
        snap = ["-s", str(snaplen)] if snaplen else []
        flt = ["-f", bpf] if bpf else []  # a capture filter, e.g. "udp port 4500"
        argv = ns.argv(["dumpcap", "-q", "-i", iface, *snap, *flt, "-w", path])
        self.proc = procs.start(argv, path + ".log")
        wait_for(
            lambda: os.path.exists(path) and os.path.getsize(path) > 0,
            10,
            what="dumpcap to start",
        )
        time.sleep(0.3)

    def stop(self, margin=0.3):
        """margin: libpcap hands dumpcap packets a block at a time, at most every 250 ms (its read
        timeout); a packet in a block not yet handed over at the signal is lost (1 s: four of them)."""
        time.sleep(margin)
        Procs.stop(self.proc, signal.SIGINT)

    def tshark(self, *args, esp_sa=None, timeout=60):
        """tshark -r on the capture with ARGS (see tshark() below); its stdout."""
        return tshark("-n", "-r", self.path, *args, esp_sa=esp_sa, timeout=timeout)

    def count(self, display_filter):
        """Packets matching a display filter."""
        return len(self.tshark("-Y", display_filter).splitlines())

    def packets(self, display_filter=None):
        argv = ["tshark", "-n", "-r", self.path, "-T", "fields", "-E", "separator=|"]
        argv += ["-d", "udp.port==500,isakmp"]
        if display_filter:
            argv += ["-Y", display_filter]
        for f in self.FIELDS:
            argv += ["-e", f]
        out = run(argv, timeout=60).stdout
        rows = []
        for line in out.splitlines():
            vals = line.split("|")
            row = dict(zip(self.FIELDS, vals, strict=False))
            # ICMP errors quote an inner header: the outer one is the first value
            for k in ("ip.src", "ip.dst", "ip.proto"):
                row[k] = row.get(k, "").split(",")[0]
            rows.append(row)
        return rows


def tshark(*args, esp_sa=None, timeout=60):
    """tshark with a throw-away profile (the user's Wireshark settings are neither read nor touched);
    esp_sa: a file of `espd keys --format wireshark` lines, installed as the profile's esp_sa table."""
    home = tempfile.mkdtemp(prefix="tshark.")
    try:
        os.makedirs(os.path.join(home, "wireshark"))
        if esp_sa:
            shutil.copy(esp_sa, os.path.join(home, "wireshark", "esp_sa"))
        env = dict(os.environ, HOME=home, XDG_CONFIG_HOME=home)
        return run(["tshark", *args], timeout=timeout, env=env).stdout
    finally:
        shutil.rmtree(home, ignore_errors=True)


# ------------------------------------------------------------------ the topologies of the espd-only suites
# (documentation addresses only; configs.py in scripts/netns writes matching espd configurations)
#   pair:  a ul0 192.0.2.1/24 2001:db8::1/64  <->  b ul0 192.0.2.2/24 2001:db8::2/64
#   nat:   gw ul0 192.0.2.1/24  <->  nat wan0 192.0.2.2/24 [masquerade] nat br0 203.0.113.1/24
#          c<i> eth0 203.0.113.(9+i)/24 (veth lan<i> in the nat namespace, on br0), default via .1
# The gateway has no route to 203.0.113.0/24: clients reach it only through the NAT.

A_OUT4, B_OUT4, A_OUT6, B_OUT6 = "192.0.2.1", "192.0.2.2", "2001:db8::1", "2001:db8::2"
GW_OUT4, NAT_OUT4, NAT_IN4, NAT_LAN4 = "192.0.2.1", "192.0.2.2", "203.0.113.1", "203.0.113.0/24"


class Namespaces:
    """Namespaces named PREFIX-SHORT (hosts by their short name: a, b, gw, nat, c1...), all deleted
    by destroy(); the base of the pair and nat topologies."""

    def __init__(self, prefix):
        self.prefix = prefix
        self.hosts = {}

    def add(self, short):
        ns = Netns(f"{self.prefix}-{short}", ipv6=True)
        self.hosts[short] = ns
        return ns

    def __getitem__(self, short):
        return self.hosts[short]

    def veth(self, h1, if1, h2, if2):
        """A veth pair between two namespaces, both ends up."""
        n1, n2 = self.hosts[h1], self.hosts[h2]
        run(
            [
                "ip",
                "link",
                "add",
                if1,
                "netns",
                n1.name,
                "type",
                "veth",
                "peer",
                "name",
                if2,
                "netns",
                n2.name,
            ]
        )
        n1.ip("link", "set", if1, "up")
        n2.ip("link", "set", if2, "up")

    def destroy(self):
        for ns in reversed(list(self.hosts.values())):
            ns.delete()
        self.hosts.clear()

    def leftovers(self):
        """Our namespaces the kernel still has."""
        out = run(["ip", "netns", "list"], check=False).stdout
        return [line.split()[0] for line in out.splitlines() if line.startswith(self.prefix + "-")]


class PairTopology(Namespaces):
    """a <-> b on one veth (ul0), IPv4 and IPv6 outer addresses."""

    def __init__(self, prefix):
        super().__init__(prefix)
        self.a, self.b = self.add("a"), self.add("b")
        self.veth("a", "ul0", "b", "ul0")
        self.a.addr("ul0", f"{A_OUT4}/24", f"{A_OUT6}/64")
        self.b.addr("ul0", f"{B_OUT4}/24", f"{B_OUT6}/64")


class NatTopology(Namespaces):
    """gw <-> nat (nftables masquerade out of wan0) <-> bridge br0 <-> c1..cN."""

    def __init__(self, prefix, clients=2):
        super().__init__(prefix)
        self.gw, self.nat = self.add("gw"), self.add("nat")
        self.clients = [self.add(f"c{i}") for i in range(1, clients + 1)]
        self.veth("gw", "ul0", "nat", "wan0")
        self.gw.addr("ul0", f"{GW_OUT4}/24")
        self.nat.addr("wan0", f"{NAT_OUT4}/24")
        self.nat.ip("link", "add", "br0", "type", "bridge")
        self.nat.ip("link", "set", "br0", "up")
        self.nat.addr("br0", f"{NAT_IN4}/24")
        for i, c in enumerate(self.clients, 1):
            self.veth("nat", f"lan{i}", c.short, "eth0")
            self.nat.ip("link", "set", f"lan{i}", "master", "br0")
            c.addr("eth0", f"203.0.113.{9 + i}/24")
            c.ip("route", "add", "default", "via", NAT_IN4)
        self.nat.exec(["sysctl", "-qw", "net.ipv4.ip_forward=1"])
        self.nat.exec(
            ["nft", "-f", "-"],
            input="table ip espd_nat {\n  chain postrouting {\n"
            "    type nat hook postrouting priority srcnat; policy accept;\n"
            '    oifname "wan0" masquerade\n  }\n}\n',
        )

    def remap(self, ports=None, flush=True):
        """Replaces the masquerade rule, atomically, by one for the LAN only (the router's own
        packets keep their source), optionally `to :PORTS` (e.g. "40000-40100") for TCP and UDP;
        flush: delete the conntrack entries, which keep their mapping otherwise (NAT rebinding)."""
        rule = f'add rule ip espd_nat postrouting ip saddr {NAT_LAN4} oifname "wan0"'
        lines = ["flush chain ip espd_nat postrouting"]
        if ports:
            lines.append(f"{rule} meta l4proto {{ tcp, udp }} masquerade to :{ports}")
        lines.append(f"{rule} masquerade")
        self.nat.exec(["nft", "-f", "-"], input="\n".join(lines) + "\n")
        if flush:
            self.flush_conntrack()

    def flush_conntrack(self):
        self.nat.exec(["conntrack", "-F"], check=False)

    def conntrack_udp(self, dport=4500):
        """`conntrack -L -p udp --dport PORT` in the NAT namespace (its text)."""
        p = self.nat.exec(["conntrack", "-L", "-p", "udp", "--dport", str(dport)], check=False)
        return p.stdout + p.stderr
