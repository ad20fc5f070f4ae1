"""Network namespaces, veths, the NAT and packet captures (documentation addresses only).

client c1 203.0.113.10 ─┐  bridge 203.0.113.1/26      192.0.2.2 │ 192.0.2.1
client c2 203.0.113.11 ─┼─ NAT namespace (nftables masquerade) ──── gateway: charon + espd
client c3 203.0.113.12 ─┘                                          TUN 198.51.100.1/24
"""

import os
import signal
import subprocess
import time

from liveproc import Procs, run, wait_for

GW_ADDR = "192.0.2.1"
NAT_ADDR = "192.0.2.2"
GW_INNER = "198.51.100.1"  # the gateway's TUN address: the host behind the gateway


class Netns:
    def __init__(self, name):
        self.name = name
        run(["ip", "netns", "add", name])
        self.ip("link", "set", "lo", "up")
        # IPv4 only: no link-local addresses whose DAD would start charon's roam jobs
        self.exec(["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"])
        self.exec(["sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1"])

    def ip(self, *args):
        return run(["ip", "-n", self.name, *args])

    def argv(self, argv):
        return ["ip", "netns", "exec", self.name, *argv]

    def exec(self, argv, **kw):
        return run(self.argv(argv), **kw)

    def delete(self):
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)


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

    def __init__(self, ns, iface, path, procs: Procs, snaplen=None):
        self.path = path
        self.procs = procs
        # snaplen: bytes kept of each packet (headers are enough to tell IKE from ESP, and quicker)
        snap = ["-s", str(snaplen)] if snaplen else []
        argv = ns.argv(["dumpcap", "-q", "-i", iface, *snap, "-w", path])
        self.proc = procs.start(argv, path + ".log")
        wait_for(
            lambda: os.path.exists(path) and os.path.getsize(path) > 0,
            10,
            what="dumpcap to start",
        )
        time.sleep(0.3)

    def stop(self):
        time.sleep(0.3)
        Procs.stop(self.proc, signal.SIGINT)

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
