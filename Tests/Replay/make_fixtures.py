#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Writes the `espd replay` test cases: OUTDIR/<case>/{config.json,in.pcap|in.pcapng,expected.json}.

    make_fixtures.py OUTDIR [--only CASE ...] [--list]

Everything is deterministic (keys, IVs and packets derive from the case name), so running it twice
gives byte-identical files. ESP is produced by scapy's SecurityAssociation (scapy.layers.ipsec);
packets that must be *wrong* in a precise way (bad padding with a valid ICV) are sealed with
pyca/cryptography. See README.md for what each case covers and expected.json's format.
"""
from __future__ import annotations

import argparse
import hmac
import hashlib
import ipaddress
import json
import os
import shutil
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from espcommon import (  # noqa: E402
    ALGS, LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2, LINKTYPE_RAW, SAConf,
    aead_seal_raw, det_bytes, esp_encrypt, esp_in_udp, ip_packet, ipv4_header, l2_wrap,
    udp_packet, udp_segment, write_pcap, write_pcapng)

from scapy.layers.inet import ICMP, IP, TCP, UDP  # noqa: E402
from scapy.layers.inet6 import ICMPv6EchoRequest, IPv6  # noqa: E402
from scapy.packet import Raw  # noqa: E402

# Addresses used throughout (documentation prefixes).
LOCAL4, LOCAL6 = "192.0.2.1", "2001:db8::1"          # espd's outer address
PEER4, PEER6 = "203.0.113.7", "2001:db8:7::7"        # the usual remote gateway
TUN4, TUN6 = "198.51.100.1", "2001:db8:100::1"       # espd0's addresses
TUN_CONF = {"name": "espd0", "mtu": 1400, "addresses": ["198.51.100.1/24", "2001:db8:100::1/64"]}
REMOTE_TS = ["10.99.0.0/16", "2001:db8:99::/48"]
NAT_PUBLIC = "203.0.113.50"

VERDICTS = ("decapsulated", "encapsulated", "ike", "keepalive", "passed")


# --------------------------------------------------------------------------------------------
# Case builder
# --------------------------------------------------------------------------------------------


class Case:
    def __init__(self, name: str, description: str, linktype=LINKTYPE_ETHERNET, fmt="pcap",
                 nanosec=False, big_endian=False, eth_pad=True):
        self.name, self.description = name, description
        self.linktype, self.fmt, self.nanosec, self.big_endian = linktype, fmt, nanosec, big_endian
        self.eth_pad = eth_pad
        self.frames: list[bytes] = []
        self.verdicts: list[str] = []
        self.notes: list[str] = []
        self.outputs: list[dict] = []
        self.assumptions: list[str] = []
        self.truncate_bytes = 0      # cut this many bytes off the end of the capture file
        self.exit_code = 0           # expected exit status of espd replay
        self.config: dict = {"listen": [f"{LOCAL4}:4500"], "tun": dict(TUN_CONF), "tunnels": []}
        self._spi = 0
        self._ident = 0x4000

    # -- SAs and tunnels ----------------------------------------------------------------------
    def sa(self, label: str, alg: str, spi: int, esn=False, replay_window=None, seq=0) -> SAConf:
        a = ALGS[alg]
        return SAConf(spi=spi, alg=a, key=det_bytes(f"{self.name}/{label}/key", a.key_len),
                      auth_key=det_bytes(f"{self.name}/{label}/auth", a.auth_key_len), esn=esn,
                      replay_window=replay_window if replay_window is not None else 1024, seq=seq)

    @staticmethod
    def sa_json(sa: SAConf, inbound: bool, window_explicit=False) -> dict:
        j = {"spi": f"0x{sa.spi:08x}", "alg": sa.alg.name}
        if sa.alg.key_len:
            j["key"] = sa.key.hex()
        if sa.alg.auth_key_len:
            j["auth_key"] = sa.auth_key.hex()
        j["esn"] = sa.esn
        if inbound:
            if window_explicit or sa.replay_window != 1024:
                j["replay_window"] = sa.replay_window
            if sa.seq:
                j["replay_seq"] = f"0x{sa.seq:x}" if sa.seq > 0xFFFF else sa.seq
        elif sa.seq:
            j["seq"] = f"0x{sa.seq:x}" if sa.seq > 0xFFFF else sa.seq
        return j

    def tunnel(self, name: str, inbound: list, outbound: SAConf, mode="tunnel", peer=None,
               remote_ts=None, alias=None, local=None, window_explicit=False) -> dict:
        t = {"name": name, "mode": mode}
        if peer:
            t["peer"] = peer
        if local:
            t["local"] = local
        if remote_ts:
            t["remote_ts"] = list(remote_ts)
        if alias:
            t["alias"] = alias
        t["inbound"] = [self.sa_json(s, True, window_explicit) for s in inbound]
        t["outbound"] = self.sa_json(outbound, False)
        self.config["tunnels"].append(t)
        return t

    # -- packets ------------------------------------------------------------------------------
    def ident(self) -> int:
        self._ident += 1
        return self._ident

    def iv(self, sa: SAConf, seq64: int, salt="") -> bytes:
        return det_bytes(f"{self.name}/iv/{sa.spi:08x}/{seq64}/{salt}", sa.alg.iv_len)

    def add(self, ip: bytes, verdict: str, note: str, output: dict | None = None,
            frame: bytes | None = None):
        assert verdict in VERDICTS or verdict.startswith("drop:") or verdict == "damaged", verdict
        if frame is None:
            frame = l2_wrap(self.linktype, ip)
            if self.linktype == LINKTYPE_ETHERNET and self.eth_pad and len(frame) < 60:
                frame += b"\0" * (60 - len(frame))  # Ethernet minimum frame, as on the wire
        self.frames.append(frame)
        self.verdicts.append(verdict)
        self.notes.append(note)
        if output is not None:
            output = dict(output)
            output["frame"] = len(self.frames)
            self.outputs.append(output)
        return len(self.frames)

    def esp_udp(self, sa: SAConf, inner: bytes, seq64: int, src=PEER4, dst=LOCAL4, sport=4500,
                dport=4500, transport=False, ttl=64) -> bytes:
        """An ESP-in-UDP packet. inner: the inner IP packet (tunnel) or, for transport, an IP
        packet whose payload (upper-layer segment) is protected."""
        pkt = (IPv6 if inner[0] >> 4 == 6 else IP)(inner)
        esp = esp_encrypt(sa, pkt, seq64, self.iv(sa, seq64), tunnel=not transport)
        return esp_in_udp(src, dst, sport, dport, esp, ident=self.ident(), ttl=ttl) \
            if ":" not in src else esp_in_udp(src, dst, sport, dport, esp, ttl=ttl)

    # -- output descriptions ------------------------------------------------------------------
    @staticmethod
    def decap_tunnel(tunnel: str, inner: bytes) -> dict:
        return {"kind": "decap", "tunnel": tunnel, "mode": "tunnel", "hex": inner.hex()}

    @staticmethod
    def decap_transport(tunnel: str, packet: bytes) -> dict:
        return {"kind": "decap", "tunnel": tunnel, "mode": "transport", "hex": packet.hex(),
                "ignore_ipv4_fields": ["tos", "id", "flags", "ttl"]}

    @staticmethod
    def encap(tunnel: str, sa: SAConf, seq64: int, src: str, sport: int, dst: str, dport: int,
              inner: bytes, mode="tunnel", transport_pseudo=None) -> dict:
        o = {"kind": "encap", "tunnel": tunnel, "mode": mode,
             "outer": {"src": src, "dst": dst, "sport": sport, "dport": dport},
             "spi": f"0x{sa.spi:08x}", "seq": seq64, "esn": sa.esn, "inner_hex": inner.hex()}
        if mode == "transport":
            # inner_hex is the upper-layer segment; its checksum may be any of these.
            o["transport"] = {"proto": 17, "checksum_valid_over": transport_pseudo}
        return o

    # -- writing ------------------------------------------------------------------------------
    def summary(self) -> dict:
        verdicts = [v for v in self.verdicts if v != "damaged"]
        s = {"packets": len(verdicts)}
        for v in VERDICTS:
            s[v] = sum(1 for x in verdicts if x == v)
        drops: dict[str, int] = {}
        for x in verdicts:
            if x.startswith("drop:"):
                drops[x[5:]] = drops.get(x[5:], 0) + 1
        s["drops"] = dict(sorted(drops.items()))
        return s

    def write(self, outdir: str):
        d = os.path.join(outdir, self.name)
        if os.path.isdir(d):
            shutil.rmtree(d)
        os.makedirs(d)
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump(self.config, f, indent=2)
            f.write("\n")
        infile = "in.pcapng" if self.fmt == "pcapng" else "in.pcap"
        if self.fmt == "pcapng":
            write_pcapng(os.path.join(d, infile), self.linktype, self.frames)
        else:
            write_pcap(os.path.join(d, infile), self.linktype, self.frames, nanosec=self.nanosec,
                       big_endian=self.big_endian)
        if self.truncate_bytes:
            p = os.path.join(d, infile)
            os.truncate(p, os.path.getsize(p) - self.truncate_bytes)
        exp = {
            "case": self.name,
            "description": self.description,
            "input": {"file": infile, "format": self.fmt, "linktype": self.linktype,
                      "nanosecond": self.nanosec, "big_endian": self.big_endian},
            "exit_code": self.exit_code,
            "summary": self.summary(),
            "frames": [{"frame": i + 1, "verdict": v, "note": n}
                       for i, (v, n) in enumerate(zip(self.verdicts, self.notes))],
            "outputs": self.outputs,
        }
        if self.assumptions:
            exp["assumptions"] = self.assumptions
        with open(os.path.join(d, "expected.json"), "w") as f:
            json.dump(exp, f, indent=2)
            f.write("\n")
        return d


# --------------------------------------------------------------------------------------------
# Inner packets
# --------------------------------------------------------------------------------------------


def inner_v4(kind: str, n: int, src="10.99.0.5", dst=TUN4) -> bytes:
    if kind == "icmp":
        p = IP(src=src, dst=dst, id=0x100 + n) / ICMP(type=8, id=0x77, seq=n) / Raw(f"ping {n} ".encode() * 4)
    elif kind == "udp":
        p = IP(src=src, dst=dst, id=0x100 + n) / UDP(sport=40000 + n, dport=53) / Raw(det_bytes(f"udp{n}", 37))
    elif kind == "tcp":
        p = IP(src=src, dst=dst, id=0x100 + n, flags="DF") / TCP(
            sport=41000 + n, dport=443, flags="S", seq=1000 * n, window=64240,
            options=[("MSS", 1360), ("SAckOK", b""), ("WScale", 7)])
    elif kind == "tcpdata":
        p = IP(src=src, dst=dst, id=0x100 + n, flags="DF", tos=0x28) / TCP(
            sport=41000 + n, dport=443, flags="PA", seq=1000 * n, ack=77, window=501) / Raw(
                det_bytes(f"tcp{n}", 100 + n))
    elif kind == "big":
        p = IP(src=src, dst=dst, id=0x100 + n) / UDP(sport=5000, dport=5001) / Raw(det_bytes(f"big{n}", 1300))
    else:
        raise ValueError(kind)
    return bytes(p)


def inner_v6(kind: str, n: int, src="2001:db8:99::5", dst=TUN6) -> bytes:
    if kind == "icmp":
        p = IPv6(src=src, dst=dst) / ICMPv6EchoRequest(id=0x77, seq=n, data=f"ping6 {n} ".encode() * 4)
    elif kind == "udp":
        p = IPv6(src=src, dst=dst, fl=0x12345) / UDP(sport=40000 + n, dport=53) / Raw(det_bytes(f"udp6{n}", 41))
    elif kind == "tcp":
        p = IPv6(src=src, dst=dst) / TCP(sport=41000 + n, dport=443, flags="S", seq=1000 * n,
                                         window=64800, options=[("MSS", 1340), ("SAckOK", b"")])
    elif kind == "tcpdata":
        p = IPv6(src=src, dst=dst, tc=0x28) / TCP(sport=41000 + n, dport=443, flags="PA", seq=1000 * n,
                                                  ack=99, window=501) / Raw(det_bytes(f"tcp6{n}", 90 + n))
    elif kind == "big":
        p = IPv6(src=src, dst=dst) / UDP(sport=5000, dport=5001) / Raw(det_bytes(f"big6{n}", 1280))
    else:
        raise ValueError(kind)
    return bytes(p)


KINDS = ["icmp", "udp", "tcp", "tcpdata", "big"]

# --------------------------------------------------------------------------------------------
# decap-<alg>-v4 / -v6
# --------------------------------------------------------------------------------------------

DECAP_FORMATS = {
    # case suffix -> (linktype, fmt, nanosec, big_endian)
    "aes128gcm16-v4": (LINKTYPE_ETHERNET, "pcap", False, False),
    "aes128gcm16-v6": (LINKTYPE_ETHERNET, "pcap", True, False),
    "aes192gcm16-v4": (LINKTYPE_ETHERNET, "pcap", False, False),
    "aes192gcm16-v6": (LINKTYPE_ETHERNET, "pcap", False, False),
    "aes256gcm16-v4": (LINKTYPE_LINUX_SLL, "pcap", False, False),
    "aes256gcm16-v6": (LINKTYPE_LINUX_SLL2, "pcap", False, False),
    "chacha20poly1305-v4": (LINKTYPE_RAW, "pcap", False, False),
    "chacha20poly1305-v6": (LINKTYPE_ETHERNET, "pcapng", False, False),
    "aes128-sha256-v4": (LINKTYPE_ETHERNET, "pcap", False, True),
    "aes128-sha256-v6": (LINKTYPE_ETHERNET, "pcap", False, False),
    "aes256-sha256-v4": (LINKTYPE_RAW, "pcapng", False, False),
    "aes256-sha256-v6": (LINKTYPE_ETHERNET, "pcap", False, False),
    "null-sha256-v4": (LINKTYPE_ETHERNET, "pcap", False, False),
    "null-sha256-v6": (LINKTYPE_LINUX_SLL, "pcap", False, False),
    "aes128-sha1-v4": (LINKTYPE_ETHERNET, "pcap", False, False),
    "aes128-sha1-v6": (LINKTYPE_LINUX_SLL2, "pcap", False, False),
    "aes256-sha1-v4": (LINKTYPE_RAW, "pcap", False, False),
    "aes256-sha1-v6": (LINKTYPE_ETHERNET, "pcap", True, False),
    "aes128-sha384-v4": (LINKTYPE_ETHERNET, "pcapng", False, False),
    "aes128-sha384-v6": (LINKTYPE_ETHERNET, "pcap", False, True),
    "aes256-sha384-v4": (LINKTYPE_LINUX_SLL, "pcap", False, False),
    "aes256-sha384-v6": (LINKTYPE_ETHERNET, "pcap", False, False),
    "aes256-sha512-v4": (LINKTYPE_ETHERNET, "pcap", False, False),
    "aes256-sha512-v6": (LINKTYPE_RAW, "pcapng", False, False),
}

LT_NAMES = {LINKTYPE_ETHERNET: "Ethernet", LINKTYPE_RAW: "raw IP (101)",
            LINKTYPE_LINUX_SLL: "Linux cooked SLL (113)", LINKTYPE_LINUX_SLL2: "Linux cooked SLL2 (276)"}


def case_decap(alg: str, fam: str) -> Case:
    lt, fmt, ns, be = DECAP_FORMATS[f"{alg}-{fam}"]
    esn = fam == "v6"
    fmt_desc = f"{fmt}{' (nanosecond)' if ns else ''}{' (big-endian)' if be else ''}, {LT_NAMES[lt]}"
    if esn:
        desc = (f"ESP-in-UDP {alg}, tunnel mode, IPv6 inner ICMPv6/UDP/TCP from {PEER4}:4500; ESN "
                f"with replay_seq 0xfffffffd and sequence numbers crossing 2^32, one of them late "
                f"(0xffffffff after 0x100000000); {fmt_desc}.")
    else:
        desc = (f"ESP-in-UDP {alg}, tunnel mode, IPv4 inner ICMP/UDP/TCP from {PEER4}:4500; "
                f"32-bit sequence numbers with one reordering; {fmt_desc}.")
    c = Case(f"decap-{alg}-{fam}", desc, linktype=lt, fmt=fmt, nanosec=ns, big_endian=be)
    spi_in, spi_out = 0xC1A00000 | (hash_small(alg) << 4) | (2 if esn else 1), 0x00A10000 | hash_small(alg)
    if esn:
        sa = c.sa("in", alg, spi_in, esn=True, seq=0xFFFFFFFD)
        seqs = [0xFFFFFFFE, 0x100000000, 0xFFFFFFFF, 0x100000001, 0x100000002]
    else:
        sa = c.sa("in", alg, spi_in)
        seqs = [1, 2, 3, 5, 4]
    out = c.sa("out", alg, spi_out, esn=esn)
    inbound = [sa]
    rekey = None
    if alg == "aes128gcm16" and not esn:
        # Two inbound SAs, as during a rekey: packets on both, the old one still accepted.
        rekey = c.sa("in-new", alg, spi_in + 0x100)
        inbound.append(rekey)
        c.description += (f" Two inbound SAs (rekey): 0x{spi_in:08x} and 0x{rekey.spi:08x}, "
                          f"packets on both, interleaved.")
    c.tunnel("alice", inbound, out, peer=f"{PEER4}:4500", remote_ts=REMOTE_TS)
    mk = inner_v6 if esn else inner_v4
    for i, (kind, q) in enumerate(zip(KINDS, seqs)):
        inner = mk(kind, i + 1)
        c.add(c.esp_udp(sa, inner, q), "decapsulated", f"{kind} inner, seq 0x{q:x}",
              c.decap_tunnel("alice", inner))
    if rekey:
        for i, q in enumerate([1, 2]):
            inner = inner_v4("udp", 20 + i, src="10.99.7.7")
            c.add(c.esp_udp(rekey, inner, q), "decapsulated", f"new SA 0x{rekey.spi:08x} seq {q}",
                  c.decap_tunnel("alice", inner))
        inner = inner_v4("icmp", 30)
        c.add(c.esp_udp(sa, inner, 6), "decapsulated", "old SA still valid, seq 6",
              c.decap_tunnel("alice", inner))
    return c


def hash_small(s: str) -> int:
    return hashlib.sha256(s.encode()).digest()[0]


# --------------------------------------------------------------------------------------------
# decap-outer-v6, decap-raw-esp
# --------------------------------------------------------------------------------------------


def case_decap_outer_v6() -> Case:
    c = Case("decap-outer-v6", "ESP-in-UDP over an IPv6 outer header (UDP checksum set, as IPv6 "
             f"requires) from [{PEER6}]:4500 to [{LOCAL6}]:4500, aes128gcm16 tunnel mode, IPv4 "
             "and IPv6 inner packets; Ethernet.")
    c.config["listen"] = [f"{LOCAL4}:4500", f"[{LOCAL6}]:4500"]
    sa = c.sa("in", "aes128gcm16", 0xC1A06001)
    c.tunnel("v6peer", [sa], c.sa("out", "aes128gcm16", 0x00A16001), peer=f"[{PEER6}]:4500",
             remote_ts=REMOTE_TS)
    for i, inner in enumerate([inner_v4("udp", 1), inner_v6("icmp", 2), inner_v6("tcpdata", 3),
                               inner_v4("big", 4)]):
        c.add(c.esp_udp(sa, inner, i + 1, src=PEER6, dst=LOCAL6), "decapsulated",
              f"IPv6 outer, IPv{inner[0] >> 4} inner, seq {i + 1}", c.decap_tunnel("v6peer", inner))
    return c


def raw_esp(c: Case, sa: SAConf, inner: bytes, seq: int, src=PEER4, dst=LOCAL4) -> bytes:
    pkt = (IPv6 if inner[0] >> 4 == 6 else IP)(inner)
    esp = esp_encrypt(sa, pkt, seq, c.iv(sa, seq))
    if ":" in src:
        return ip_packet(src, dst, 50, esp)
    return ip_packet(src, dst, 50, esp, ident=c.ident())


def case_decap_raw_esp() -> Case:
    c = Case("decap-raw-esp", "ESP directly in IP (protocol 50, no UDP), aes256gcm16 tunnel mode, "
             "IPv4 and IPv6 outer; then the same SA continues in UDP (RFC 3948 peers may switch); "
             "an unknown SPI in raw ESP is counted unknown_spi; Ethernet.")
    c.config["listen"] = [f"{LOCAL4}:4500", f"[{LOCAL6}]:4500"]
    sa = c.sa("in", "aes256gcm16", 0xC1A05001)
    sa6 = c.sa("in6", "aes256gcm16", 0xC1A05002)
    c.tunnel("raw4", [sa], c.sa("out", "aes256gcm16", 0x00A15001), peer=f"{PEER4}:4500",
             remote_ts=["10.99.0.0/16"])
    c.tunnel("raw6", [sa6], c.sa("out6", "aes256gcm16", 0x00A15002), peer=f"[{PEER6}]:4500",
             remote_ts=["2001:db8:99::/48"])
    for i, kind in enumerate(["icmp", "udp", "tcp"]):
        inner = inner_v4(kind, i + 1)
        c.add(raw_esp(c, sa, inner, i + 1), "decapsulated", f"raw ESP v4, {kind}, seq {i + 1}",
              c.decap_tunnel("raw4", inner))
    for i, kind in enumerate(["icmp", "udp"]):
        inner = inner_v6(kind, i + 1)
        c.add(raw_esp(c, sa6, inner, i + 1, src=PEER6, dst=LOCAL6), "decapsulated",
              f"raw ESP v6, {kind}, seq {i + 1}", c.decap_tunnel("raw6", inner))
    stranger = c.sa("stranger", "aes256gcm16", 0xDEAD5001)
    c.add(raw_esp(c, stranger, inner_v4("udp", 9), 1), "drop:unknown_spi", "raw ESP, unknown SPI")
    inner = inner_v4("tcpdata", 4)
    c.add(c.esp_udp(sa, inner, 4), "decapsulated", "same SA, now ESP-in-UDP, seq 4",
          c.decap_tunnel("raw4", inner))
    return c


# --------------------------------------------------------------------------------------------
# classify
# --------------------------------------------------------------------------------------------


def ike_sa_init(spi_i: bytes, exchange=34, flags=0x08, msgid=0, body_len=40) -> bytes:
    """A plausible IKEv2 message: header (28 bytes) + one generic payload."""
    body = struct.pack("!BBH", 0, 0, 4 + body_len) + det_bytes("ikebody" + spi_i.hex(), body_len)
    hdr = spi_i + b"\0" * 8 + struct.pack("!BBBBII", 33, 0x20, exchange, flags, msgid, 28 + len(body))
    return hdr + body


def case_classify() -> Case:
    c = Case("classify", "RFC 3948 classification on the listen ports: ESP, NAT keepalives (one "
             "0xFF byte), IKE behind the 4-byte non-ESP marker, malformed datagrams (1-3 bytes, "
             "empty, zero SPI without a whole IKE header, short ESP), an unknown SPI, and packets "
             "that are not for a listen endpoint (passed); ESP on a second, wildcard listen port "
             "14500; Ethernet with minimum-size padding (small frames are padded to 60 bytes, so "
             "the IP total length, not the frame length, delimits the packet).")
    c.config["listen"] = [f"{LOCAL4}:4500", "0.0.0.0:14500"]
    c.config["nat_keepalive_seconds"] = 20
    c.config["ike"] = {"punt": "udp:127.0.0.1:4501"}
    sa = c.sa("in", "aes128gcm16", 0xC1A07001)
    c.tunnel("alice", [sa], c.sa("out", "aes128gcm16", 0x00A17001), peer=f"{PEER4}:4500",
             remote_ts=REMOTE_TS)
    u = lambda payload, sport=4500, dport=4500, src=PEER4, dst=LOCAL4: udp_packet(  # noqa: E731
        src, dst, sport, dport, payload, ident=c.ident())
    inner = inner_v4("icmp", 1)
    c.add(c.esp_udp(sa, inner, 1), "decapsulated", "ESP seq 1", c.decap_tunnel("alice", inner))
    c.add(u(b"\xff"), "keepalive", "NAT keepalive 0xFF (Ethernet-padded frame)")
    c.add(u(b"\0\0\0\0" + ike_sa_init(det_bytes("spii", 8))), "ike", "IKE_SA_INIT after non-ESP marker")
    c.add(u(b"\x00"), "drop:malformed", "1 byte 0x00")
    c.add(u(b"\xff\xff"), "drop:malformed", "2 bytes ff ff (not a keepalive)")
    c.add(u(b"\x01\x02\x03"), "drop:malformed", "3 bytes")
    c.add(u(b""), "drop:malformed", "empty UDP payload")
    c.add(u(b"\0\0\0\0"), "drop:malformed", "bare non-ESP marker, no IKE header")
    c.add(u(b"\0\0\0\0" + det_bytes("partial-ike", 20)), "drop:malformed",
          "zero SPI + 20 bytes (< 28-byte IKE header)")
    c.add(u(struct.pack("!II", sa.spi, 2) + det_bytes("short", 10)), "drop:malformed",
          "known SPI, 18-byte ESP (shorter than header+trailer+ICV)")
    stranger = c.sa("stranger", "aes128gcm16", 0xBADC0FFE)
    c.add(c.esp_udp(stranger, inner_v4("udp", 2), 1), "drop:unknown_spi", "well-formed ESP, unknown SPI")
    c.add(u(b"dns?", sport=33333, dport=53), "passed", "UDP to 192.0.2.1:53 (not a listen port)")
    c.add(u(b"\xff", dst="192.0.2.99"), "passed",
          "keepalive-looking UDP to 192.0.2.99:4500 (listen 192.0.2.1:4500 is address-specific)")
    c.add(u(b"\xff", sport=4500, dport=5000), "passed", "UDP from port 4500 to port 5000")
    c.add(bytes(IP(src=PEER4, dst=LOCAL4, id=c.ident(), flags="DF") / TCP(sport=50000, dport=22, flags="S", seq=1)),
          "passed", "TCP SYN to 192.0.2.1:22")
    c.add(bytes(IP(src=PEER4, dst=LOCAL4, id=c.ident()) / ICMP(type=8, id=1, seq=1) / Raw(b"abcdefgh")),
          "passed", "ICMP echo to 192.0.2.1")
    inner = inner_v4("udp", 3)
    c.add(c.esp_udp(sa, inner, 2), "decapsulated", "ESP seq 2", c.decap_tunnel("alice", inner))
    c.add(u(b"\0\0\0\0" + ike_sa_init(det_bytes("spii", 8), exchange=35, flags=0x08, msgid=1,
                                      body_len=200), sport=31001),
          "ike", "IKE_AUTH-like message from a NAT port 31001")
    c.add(u(b"\xff", sport=31001), "keepalive", "keepalive from NAT port 31001")
    inner = inner_v4("tcp", 4)
    c.add(c.esp_udp(sa, inner, 3, dport=14500), "decapsulated",
          "ESP seq 3 to port 14500 (wildcard listen 0.0.0.0:14500)", c.decap_tunnel("alice", inner))
    c.add(u(b"\xff", dport=14500, dst="192.0.2.200"), "keepalive",
          "keepalive to 192.0.2.200:14500 (wildcard listen)")
    c.add(u(b"\0\0\0\0" + ike_sa_init(det_bytes("spi2", 8)), dport=14500), "ike",
          "IKE on the wildcard listen port")
    inner = inner_v4("tcpdata", 5)
    c.add(c.esp_udp(sa, inner, 4), "decapsulated", "ESP seq 4", c.decap_tunnel("alice", inner))
    return c


# --------------------------------------------------------------------------------------------
# drops
# --------------------------------------------------------------------------------------------


def cbc_seal_raw(sa: SAConf, seq: int, iv: bytes, plaintext: bytes) -> bytes:
    """AES-CBC + HMAC-SHA-256-128 ESP over an arbitrary plaintext (no padding added, trailer
    included by the caller); the plaintext need not be a block multiple (then the last partial
    block is sent as-is: an invalid ciphertext length with a valid ICV)."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    full = len(plaintext) - len(plaintext) % 16
    enc = Cipher(algorithms.AES(sa.key), modes.CBC(iv)).encryptor()
    ct = enc.update(plaintext[:full]) + enc.finalize() + plaintext[full:]
    head = struct.pack("!II", sa.spi, seq) + iv + ct
    return head + hmac.new(sa.auth_key, head, hashlib.sha256).digest()[:16]


def case_drops() -> Case:
    c = Case("drops", "One packet (at least) per drop reason that can be crafted from outside: "
             "unknown_spi, auth_failed (a flipped ciphertext bit, and a flipped ICV bit for "
             "AES-CBC/HMAC), replayed (the same packet twice, and sequence number 0 = replay_seq), "
             "outside_window (replay_window 32: exactly 32 behind is outside, 31 behind is inside), "
             "malformed (truncated ESP; CBC ciphertext not a block multiple with a valid ICV), "
             "bad_padding (valid ICV, pad bytes 9 9 9 with pad length 3; pad length longer than "
             "the payload; same for AES-CBC), selector_mismatch (inner source outside remote_ts, "
             "IPv4 and IPv6), sequence_exhausted (outbound seq 0xfffffffe without ESN: one packet "
             "goes out with 0xffffffff, the next is dropped). no_route is not here: see "
             "nat-shared-alias-unlearned.")
    gw_in = c.sa("gw-in", "aes128gcm16", 0xC1A08001, replay_window=32)
    c.tunnel("gw", [gw_in], c.sa("gw-out", "aes128gcm16", 0x00A18001), peer=f"{PEER4}:4500",
             remote_ts=REMOTE_TS, window_explicit=True)
    cbc_in = c.sa("cbc-in", "aes128-sha256", 0xC1A08002)
    c.tunnel("cbc", [cbc_in], c.sa("cbc-out", "aes128-sha256", 0x00A18002), peer="203.0.113.8:4500",
             remote_ts=["10.88.0.0/16"])
    exh_out = c.sa("exh-out", "aes256gcm16", 0x00A18003, seq=0xFFFFFFFE)
    c.tunnel("exh", [c.sa("exh-in", "aes256gcm16", 0xC1A08003)], exh_out, peer="203.0.113.77:4500",
             remote_ts=["10.77.0.0/16"])

    def ok(seq, n, note, inner=None):
        inner = inner or inner_v4("udp", n)
        c.add(c.esp_udp(gw_in, inner, seq), "decapsulated", note, c.decap_tunnel("gw", inner))

    ok(1, 1, "valid, seq 1")
    c.add(c.esp_udp(c.sa("x", "aes128gcm16", 0x0BADBAD0), inner_v4("udp", 2), 1), "drop:unknown_spi",
          "SPI 0x0badbad0 is not configured")
    good2 = c.esp_udp(gw_in, inner_v4("icmp", 3), 2)
    bad = bytearray(good2)
    bad[20 + 8 + 8 + 8 + 5] ^= 0x01  # IP(20) UDP(8) SPI/seq(8) IV(8), then ciphertext byte 5
    c.add(bytes(bad), "drop:auth_failed", "seq 2 with one ciphertext bit flipped")
    c.add(good2, "decapsulated", "seq 2, intact (the forgery must not have consumed seq 2)",
          c.decap_tunnel("gw", inner_v4("icmp", 3)))
    c.add(good2, "drop:replayed", "seq 2 again, byte-identical")
    c.add(c.esp_udp(gw_in, inner_v4("udp", 4), 0), "drop:replayed",
          "seq 0 with a valid ICV (replay_seq defaults to 0, which counts as seen)")
    ok(200, 5, "seq 200 moves the window to 169..200")
    c.add(c.esp_udp(gw_in, inner_v4("udp", 6), 100), "drop:outside_window", "seq 100 (100 behind)")
    ok(199, 7, "seq 199, inside the window")
    c.add(c.esp_udp(gw_in, inner_v4("udp", 8), 168), "drop:outside_window",
          "seq 168 (32 behind 200, window 32)")
    ok(169, 9, "seq 169 (31 behind 200), the oldest inside the window")
    esp = c.esp_udp(gw_in, inner_v4("udp", 10), 201)
    c.add(esp[:28 + 26], "drop:malformed", "ESP truncated to 26 bytes (known SPI)")
    c.add(udp_packet(PEER4, LOCAL4, 4500, 4500, esp[28:28 + 30], udp_checksum=0, ident=c.ident()),
          "drop:malformed", "ESP truncated to 30 bytes (less than SPI+seq+IV+ICV for GCM)")
    # bad padding with valid ICVs (sealed with pyca/cryptography)
    inner = bytes(IP(src="10.99.0.5", dst=TUN4, id=0x311) / UDP(sport=40011, dport=53) / Raw(det_bytes("pad", 35)))
    assert (len(inner) + 3 + 2) % 4 == 0, len(inner)   # needs exactly 3 pad bytes
    pt = inner + b"\x09\x09\x09" + bytes([3, 4])
    c.add(esp_in_udp(PEER4, LOCAL4, 4500, 4500, aead_seal_raw(gw_in, 202, c.iv(gw_in, 202), pt),
                     ident=c.ident()),
          "drop:bad_padding", "seq 202: pad length 3 but pad bytes 09 09 09 (valid ICV)")
    pt = b"\x01\x02" + bytes([200, 4])  # 4-byte plaintext claiming 200 bytes of padding
    c.add(esp_in_udp(PEER4, LOCAL4, 4500, 4500, aead_seal_raw(gw_in, 203, c.iv(gw_in, 203), pt),
                     ident=c.ident()),
          "drop:bad_padding", "seq 203: pad length 200 in a 4-byte plaintext (valid ICV)")
    c.add(c.esp_udp(gw_in, inner_v4("udp", 12, src="10.250.0.1"), 204), "drop:selector_mismatch",
          "seq 204: inner source 10.250.0.1 outside remote_ts 10.99.0.0/16")
    c.add(c.esp_udp(gw_in, inner_v6("udp", 13, src="2001:db8:250::1"), 205), "drop:selector_mismatch",
          "seq 205: inner source 2001:db8:250::1 outside remote_ts 2001:db8:99::/48")
    ok(206, 14, "seq 206, still fine after all that")

    # AES-CBC + HMAC
    inner = inner_v4("tcp", 15, src="10.88.0.5")
    c.add(c.esp_udp(cbc_in, inner, 1, src="203.0.113.8"), "decapsulated", "CBC tunnel, seq 1",
          c.decap_tunnel("cbc", inner))
    bad = bytearray(c.esp_udp(cbc_in, inner_v4("udp", 16, src="10.88.0.5"), 2, src="203.0.113.8"))
    bad[-1] ^= 0x80
    c.add(bytes(bad), "drop:auth_failed", "CBC tunnel, seq 2, last ICV bit flipped")
    inner = inner_v4("udp", 17, src="10.88.0.5")        # 65 bytes
    need = (-(len(inner) + 2)) % 16
    assert need >= 2, need
    pt = inner + bytes([7] * need) + bytes([need, 4])      # wrong pad bytes (7 7 ...), valid length
    c.add(esp_in_udp("203.0.113.8", LOCAL4, 4500, 4500,
                     cbc_seal_raw(cbc_in, 3, c.iv(cbc_in, 3), pt), ident=c.ident()),
          "drop:bad_padding", f"CBC tunnel, seq 3: pad length {need}, pad bytes all 07 (valid ICV)")
    pt = inner + bytes(range(1, need + 1)) + bytes([need, 4]) + b"\x01"  # 1 stray byte: not a block multiple
    c.add(esp_in_udp("203.0.113.8", LOCAL4, 4500, 4500,
                     cbc_seal_raw(cbc_in, 4, c.iv(cbc_in, 4), pt), ident=c.ident()),
          "drop:malformed", "CBC tunnel, seq 4: ciphertext not a multiple of 16 (valid ICV)")

    # outbound sequence number exhaustion (no ESN)
    p = inner_v4("udp", 18, src=TUN4, dst="10.77.1.1")
    c.add(p, "encapsulated", "to 10.77.1.1: last usable sequence number 0xffffffff",
          c.encap("exh", exh_out, 0xFFFFFFFF, LOCAL4, 4500, "203.0.113.77", 4500, p))
    c.add(inner_v4("udp", 19, src=TUN4, dst="10.77.1.2"), "drop:sequence_exhausted",
          "to 10.77.1.2: the 32-bit counter would wrap")
    return c


def case_drops_too_big() -> Case:
    c = Case("drops-too-big", "A packet is encapsulated with sequence number 1, then a 65535-byte "
             "IPv4 packet routed into the same tunnel cannot be encapsulated (the outer packet "
             "would exceed 65535 bytes): too_big.")
    out = c.sa("out", "aes128gcm16", 0x00A19001)
    c.tunnel("gw", [c.sa("in", "aes128gcm16", 0xC1A09001)], out, peer=f"{PEER4}:4500",
             remote_ts=REMOTE_TS)
    p = inner_v4("udp", 1, src=TUN4, dst="10.99.1.1")
    c.add(p, "encapsulated", "normal packet, seq 1",
          c.encap("gw", out, 1, LOCAL4, 4500, PEER4, 4500, p))
    huge = bytes(IP(src=TUN4, dst="10.99.1.1", id=7) / UDP(sport=9, dport=9) / Raw(b"\xab" * (65535 - 28)))
    assert len(huge) == 65535
    c.add(huge, "drop:too_big", "65535-byte IPv4 packet to 10.99.1.1")
    c.assumptions.append("too_big is the reason for an inner packet whose encapsulation cannot fit "
                         "an IPv4 packet (not no_route).")
    return c


def case_drops_extra() -> Case:
    c = Case("drops-extra", "Drop reasons espd has beyond INTERFACE.md's list (names from "
             "Sources/Dataplane/DropReason.swift): dummy (an authenticated ESP packet with Next "
             "Header 59, RFC 4303 2.6: discarded, and it does not move the peer) and no_peer (a "
             "responder tunnel without `peer` has nothing to send to until its first "
             "authenticated packet arrives).")
    sa_in = c.sa("in", "aes128gcm16", 0xC1A0B101)
    out = c.sa("out", "aes128gcm16", 0x00A1B101)
    c.tunnel("resp", [sa_in], out, remote_ts=REMOTE_TS)
    p = inner_v4("udp", 1, src=TUN4, dst="10.99.1.1")
    c.add(p, "drop:no_peer", "to 10.99.1.1 before the responder knows its peer")
    dummy = det_bytes("tfc-dummy", 12) + bytes([1, 2]) + bytes([2, 59])
    c.add(esp_in_udp(PEER4, LOCAL4, 4500, 4500, aead_seal_raw(sa_in, 1, c.iv(sa_in, 1), dummy),
                     ident=c.ident()),
          "drop:dummy", "seq 1: Next Header 59 (dummy packet), valid ICV")
    p = inner_v4("udp", 2, src=TUN4, dst="10.99.1.2")
    c.add(p, "drop:no_peer", "still no peer: a dummy packet does not teach it")
    inner = inner_v4("icmp", 3)
    c.add(c.esp_udp(sa_in, inner, 2, sport=40500), "decapsulated", "seq 2 from 203.0.113.7:40500",
          c.decap_tunnel("resp", inner))
    p = inner_v4("udp", 4, src=TUN4, dst="10.99.1.3")
    c.add(p, "encapsulated", "to the learned peer, seq 1",
          c.encap("resp", out, 1, LOCAL4, 4500, PEER4, 40500, p))
    c.assumptions += ["The drop reason names dummy and no_peer (not in INTERFACE.md's list).",
                      "A dummy packet (Next Header 59) does not update the peer endpoint."]
    return c


def case_framing() -> Case:
    c = Case("framing", "Damaged IP/UDP framing inside an intact capture file: IP total length "
             "beyond the captured bytes, UDP length beyond the IP payload, IPv4 IHL 4, IPv6 "
             "payload length beyond the frame, an Ethernet frame shorter than its header (all "
             "malformed); an ARP frame (not IP: passed); trailing Ethernet padding after a valid "
             "ESP packet (ignored: decapsulated).")
    sa = c.sa("in", "aes128gcm16", 0xC1A0A001)
    c.tunnel("alice", [sa], c.sa("out", "aes128gcm16", 0x00A1A001), peer=f"{PEER4}:4500",
             remote_ts=REMOTE_TS)
    good = c.esp_udp(sa, inner_v4("udp", 1), 1)
    ipl = bytearray(good[:60])
    struct.pack_into("!H", ipl, 2, 200)
    struct.pack_into("!H", ipl, 10, 0)
    struct.pack_into("!H", ipl, 10, inet_cs(bytes(ipl[:20])))
    c.add(bytes(ipl), "drop:malformed", "IPv4 total length 200, only 60 bytes captured")
    udpl = bytearray(c.esp_udp(sa, inner_v4("udp", 2), 2))
    struct.pack_into("!H", udpl, 24, len(udpl) - 20 + 100)
    c.add(bytes(udpl), "drop:malformed", "UDP length 100 bytes longer than the IP payload")
    ihl = bytearray(c.esp_udp(sa, inner_v4("udp", 3), 3))
    ihl[0] = 0x44
    struct.pack_into("!H", ihl, 10, 0)
    struct.pack_into("!H", ihl, 10, inet_cs(bytes(ihl[:20])))
    c.add(bytes(ihl), "drop:malformed", "IPv4 IHL 4 (16-byte header)")
    v6 = c.esp_udp(sa, inner_v4("udp", 4), 4, src=PEER6, dst=LOCAL6)
    v6b = bytearray(v6)
    struct.pack_into("!H", v6b, 4, len(v6) - 40 + 64)
    c.config["listen"] = [f"{LOCAL4}:4500", f"[{LOCAL6}]:4500"]
    c.add(bytes(v6b), "drop:malformed", "IPv6 payload length 64 bytes beyond the frame")
    c.add(b"", "drop:malformed", "Ethernet frame of 10 bytes", frame=b"\x02\x00\x00\x00\x00\x01\x02\x00\x00\x00")
    arp = (b"\xff" * 6 + bytes.fromhex("0200000000fe") + b"\x08\x06" +
           bytes.fromhex("0001080006040001") + bytes.fromhex("0200000000fe") + bytes([203, 0, 113, 7]) +
           b"\0" * 6 + bytes([192, 0, 2, 1]) + b"\0" * 18)
    c.add(b"", "passed", "ARP request (not IP)", frame=arp)
    inner = inner_v4("icmp", 5)
    good = c.esp_udp(sa, inner, 5)
    c.add(b"", "decapsulated", "valid ESP followed by 24 bytes of Ethernet trailer",
          c.decap_tunnel("alice", inner), frame=l2_wrap(LINKTYPE_ETHERNET, good) + b"\xee" * 24)
    c.assumptions += [
        "A frame whose IP/UDP lengths do not fit the captured bytes (or an IPv4 IHL < 5, or a "
        "frame shorter than its link-layer header) is counted as drops.malformed.",
        "A non-IP frame (ARP) is counted as passed (neither ESP nor routed to a tunnel).",
        "Bytes after the IP total length (Ethernet padding/trailer) are ignored.",
    ]
    return c


def case_truncated_file() -> Case:
    c = Case("truncated-file", "A capture file cut short in the middle of its last packet: the "
             "packets before the damage are processed and written, the summary is printed (the "
             "damaged record is not counted in `packets`), then one line says where the file is "
             "damaged, and espd replay exits with status 1.")
    sa = c.sa("in", "aes128gcm16", 0xC1A0F001)
    out = c.sa("out", "aes128gcm16", 0x00A1F001)
    c.tunnel("alice", [sa], out, peer=f"{PEER4}:4500", remote_ts=REMOTE_TS)
    for i, kind in enumerate(["icmp", "udp", "tcp"]):
        inner = inner_v4(kind, i + 1)
        c.add(c.esp_udp(sa, inner, i + 1), "decapsulated", f"seq {i + 1}", c.decap_tunnel("alice", inner))
    p = inner_v4("udp", 4, src=TUN4, dst="10.99.3.3")
    c.add(p, "encapsulated", "plain packet to 10.99.3.3, seq 1",
          c.encap("alice", out, 1, LOCAL4, 4500, PEER4, 4500, p))
    c.add(c.esp_udp(sa, inner_v4("big", 5), 4), "damaged",
          "record cut short: 1000 bytes of it are missing from the file")
    c.truncate_bytes = 1000
    c.exit_code = 1
    c.assumptions.append("The damaged record is not counted in `packets` (it was never read whole).")
    return c


def inet_cs(b: bytes) -> int:
    from espcommon import inet_checksum
    return inet_checksum(b)


# --------------------------------------------------------------------------------------------
# encap-tunnel, nat-rebinding
# --------------------------------------------------------------------------------------------


def case_encap_tunnel() -> Case:
    c = Case("encap-tunnel", "Plain IP packets routed into tunnels by longest prefix match on "
             "remote_ts and encapsulated (tunnel mode) with every algorithm: outer source from the "
             "tunnel's `local` (listen 0.0.0.0:4500 is a wildcard) or the specific IPv6 listen "
             "address; a NAT peer port; an IPv6 outer peer; outbound ESN crossing 2^32 (aes256gcm16 "
             "from seq 0xfffffffe; aes256-sha256 from 0xffffffff, so its first packet has low "
             "word 0); a starting seq 41; packets to no tunnel are passed.")
    c.config["listen"] = ["0.0.0.0:4500", f"[{LOCAL6}]:4500"]
    T = {}

    def tun(name, alg, n, peer, ts, esn=False, seq=0, local=LOCAL4):
        out = c.sa(f"{name}-out", alg, 0x00A1B000 + n, esn=esn, seq=seq)
        c.tunnel(name, [c.sa(f"{name}-in", alg, 0xC1A0B000 + n, esn=esn)], out, peer=peer,
                 remote_ts=ts, local=local)
        T[name] = [out, seq]

    tun("gcm128", "aes128gcm16", 1, "203.0.113.10:4500", ["10.20.0.0/16"])
    tun("gcm256", "aes256gcm16", 2, "203.0.113.11:4500", ["10.20.5.0/24"], esn=True, seq=0xFFFFFFFE)
    tun("gcm192", "aes192gcm16", 7, "203.0.113.17:4500", ["10.70.0.0/16"])
    tun("chacha", "chacha20poly1305", 3, "203.0.113.12:31337", ["10.30.0.0/16", "2001:db8:30::/48"])
    tun("cbc128", "aes128-sha256", 4, f"[{PEER6}]:4500", ["10.40.0.0/16", "2001:db8:40::/48"], local=None)
    tun("cbc256", "aes256-sha256", 5, "203.0.113.14:4500", ["10.50.0.0/16"], esn=True, seq=0xFFFFFFFF)
    tun("null", "null-sha256", 6, "203.0.113.15:4500", ["10.60.0.0/16"], seq=41)
    cfg = {t["name"]: t for t in c.config["tunnels"]}

    def send(name, pkt, note):
        out, last = T[name]
        seq = last + 1
        T[name][1] = seq
        from espcommon import parse_endpoint
        peer_ip, peer_port = parse_endpoint(cfg[name]["peer"])
        src = cfg[name].get("local") or LOCAL6
        c.add(pkt, "encapsulated", f"{note} -> {name} seq 0x{seq:x}",
              c.encap(name, out, seq, src, 4500, peer_ip, peer_port, pkt))

    n = 0

    def p4(dst, kind="udp", src=TUN4):
        nonlocal n
        n += 1
        return inner_v4(kind, n, src=src, dst=dst)

    def p6(dst, kind="udp", src=TUN6):
        nonlocal n
        n += 1
        return inner_v6(kind, n, src=src, dst=dst)

    send("gcm128", p4("10.20.6.1", "icmp"), "10.20.6.1 matches 10.20.0.0/16")
    send("gcm256", p4("10.20.5.9", "tcp"), "10.20.5.9 matches the longer 10.20.5.0/24")
    send("gcm256", p4("10.20.5.10", "udp", src="198.51.100.20"), "from a LAN host")
    send("gcm128", p4("10.20.255.255", "tcpdata"), "10.20.255.255")
    send("gcm192", p4("10.70.1.1", "udp"), "10.70.1.1")
    c.add(p4("8.8.8.8", "udp"), "passed", "8.8.8.8: no tunnel")
    send("chacha", p4("10.30.1.1", "big"), "1328-byte packet")
    send("chacha", p6("2001:db8:30::9", "icmp"), "IPv6 inner")
    send("cbc128", p4("10.40.0.1", "udp"), "IPv6 outer peer, IPv4 inner")
    send("cbc128", p6("2001:db8:40::1", "tcpdata"), "IPv6 outer peer, IPv6 inner")
    send("gcm256", p4("10.20.5.11", "icmp"), "third on the ESN SA")
    send("cbc256", p4("10.50.0.1", "udp"), "ESN, first packet 0x100000000")
    send("cbc256", p4("10.50.0.2", "big"), "ESN")
    c.add(p6("2001:db8:31::1", "udp"), "passed", "2001:db8:31::1: no tunnel")
    send("null", p4("10.60.3.3", "tcpdata"), "null encryption")
    send("chacha", p6("2001:db8:30::10", "udp"), "IPv6")
    c.add(p4("198.51.100.77", "icmp"), "passed", "198.51.100.77: local LAN, no tunnel")
    send("gcm128", p4("10.20.0.1", "udp"), "10.20.0.1")
    c.assumptions.append("With a wildcard listen address the outer source is the tunnel's `local` "
                         "(port: the listen port 4500); an IPv6 peer uses the IPv6 listen address.")
    return c


def case_encap_hmac() -> Case:
    c = Case("encap-hmac", "Plain IP packets routed into tunnels and encapsulated (tunnel mode) with "
             "the AES-CBC + HMAC transforms that Windows' and macOS/iOS's built-in clients propose: "
             "aes128-sha1 and aes256-sha1 (HMAC-SHA-1-96, 12-byte ICV), aes128-sha384 and "
             "aes256-sha384 (HMAC-SHA-384-192, 24-byte ICV), aes256-sha512 (HMAC-SHA-512-256, "
             "32-byte ICV). Two tunnels name their SAs the ip xfrm way, `cbc(aes)`, the HMAC told by "
             "the auth_key's length (20 and 48 bytes); IPv4 and IPv6 inner packets of several "
             "sizes (every padding length class); a starting seq 41; outbound ESN crossing 2^32 "
             "(aes256-sha512 from seq 0xffffffff); a packet to no tunnel is passed.")
    T = {}

    def tun(name, alg, n, ts, esn=False, seq=0, xfrm_name=None):
        out = c.sa(f"{name}-out", alg, 0x00A1C000 + n, esn=esn, seq=seq)
        t = c.tunnel(name, [c.sa(f"{name}-in", alg, 0xC1A0C000 + n, esn=esn)], out,
                     peer=f"203.0.113.{20 + n}:4500", remote_ts=ts)
        if xfrm_name:
            t["inbound"][0]["alg"] = t["outbound"]["alg"] = xfrm_name
        T[name] = [out, seq, f"203.0.113.{20 + n}"]

    tun("sha1-128", "aes128-sha1", 1, ["10.81.0.0/16", "2001:db8:81::/48"])
    tun("sha1-256", "aes256-sha1", 2, ["10.82.0.0/16"], xfrm_name="cbc(aes)")
    tun("sha384-128", "aes128-sha384", 3, ["10.83.0.0/16", "2001:db8:83::/48"])
    tun("sha384-256", "aes256-sha384", 4, ["10.84.0.0/16"], xfrm_name="cbc(aes)")
    tun("sha512", "aes256-sha512", 5, ["10.85.0.0/16", "2001:db8:85::/48"], seq=41)
    tun("sha512-esn", "aes256-sha512", 6, ["10.86.0.0/16"], esn=True, seq=0xFFFFFFFF)

    def send(name, pkt, note):
        out, last, peer = T[name]
        seq = last + 1
        T[name][1] = seq
        c.add(pkt, "encapsulated", f"{note} -> {name} seq 0x{seq:x}",
              c.encap(name, out, seq, LOCAL4, 4500, peer, 4500, pkt))

    n = 0

    def p4(dst, kind="udp"):
        nonlocal n
        n += 1
        return inner_v4(kind, n, src=TUN4, dst=dst)

    def p6(dst, kind="udp"):
        nonlocal n
        n += 1
        return inner_v6(kind, n, src=TUN6, dst=dst)

    send("sha1-128", p4("10.81.0.1", "icmp"), "ICMP")
    send("sha1-128", p6("2001:db8:81::1", "tcpdata"), "IPv6 inner")
    send("sha1-256", p4("10.82.0.1", "udp"), "UDP (alg cbc(aes), 20-byte auth_key)")
    send("sha1-256", p4("10.82.0.2", "big"), "1328-byte packet")
    send("sha384-128", p4("10.83.0.1", "tcp"), "TCP SYN")
    send("sha384-128", p6("2001:db8:83::1", "icmp"), "IPv6 inner")
    send("sha384-256", p4("10.84.0.1", "tcpdata"), "TCP data (alg cbc(aes), 48-byte auth_key)")
    c.add(p4("8.8.8.8", "udp"), "passed", "8.8.8.8: no tunnel")
    send("sha512", p4("10.85.0.1", "udp"), "UDP")
    send("sha512", p6("2001:db8:85::1", "big"), "IPv6 inner, 1328 bytes")
    send("sha512-esn", p4("10.86.0.1", "icmp"), "ESN, first packet 0x100000000")
    send("sha512-esn", p4("10.86.0.2", "udp"), "ESN")
    send("sha384-256", p4("10.84.0.2", "icmp"), "second on the cbc(aes) SHA-384 SA")
    return c


def case_nat_rebinding() -> Case:
    c = Case("nat-rebinding", "The peer endpoint follows the source of the latest packet that "
             "passed ICV and replay checks (NAT rebinding), never a forged or replayed one; a "
             "responder tunnel without `peer` learns it from its first authenticated packet.")
    r_in, r_out = c.sa("roam-in", "aes128gcm16", 0xC1A0C001), c.sa("roam-out", "aes128gcm16", 0x00A1C001)
    c.tunnel("roam", [r_in], r_out, peer=f"{PEER4}:4500", remote_ts=["10.99.0.0/16"])
    s_in, s_out = c.sa("resp-in", "chacha20poly1305", 0xC1A0C002), c.sa("resp-out", "chacha20poly1305", 0x00A1C002)
    c.tunnel("resp", [s_in], s_out, remote_ts=["10.98.0.0/16"])
    seq = {"roam": 0, "resp": 0}

    def out(name, sa, dst, peer, note, n):
        seq[name] += 1
        p = inner_v4("udp", n, src=TUN4, dst=dst)
        c.add(p, "encapsulated", f"{note}: to {peer[0]}:{peer[1]} seq {seq[name]}",
              c.encap(name, sa, seq[name], LOCAL4, 4500, peer[0], peer[1], p))

    out("roam", r_out, "10.99.1.1", (PEER4, 4500), "configured peer", 1)
    inner = inner_v4("icmp", 2)
    first = c.esp_udp(r_in, inner, 1, sport=40000)
    c.add(first, "decapsulated", "valid from 203.0.113.7:40000 (NAT rebinding)", c.decap_tunnel("roam", inner))
    out("roam", r_out, "10.99.1.1", (PEER4, 40000), "peer moved", 3)
    forged = bytearray(c.esp_udp(r_in, inner_v4("udp", 4), 2, src="203.0.113.99", sport=50000))
    forged[-3] ^= 0x10
    c.add(bytes(forged), "drop:auth_failed", "forged seq 2 from 203.0.113.99:50000")
    out("roam", r_out, "10.99.1.2", (PEER4, 40000), "peer unchanged by a forgery", 5)
    replay = bytearray(first)
    # same ESP, different outer source
    ip = IP(bytes(replay))
    ip.src, ip[UDP].sport = "198.18.0.1", 1234
    del ip.chksum
    c.add(bytes(ip), "drop:replayed", "seq 1 replayed from 198.18.0.1:1234")
    out("roam", r_out, "10.99.1.3", (PEER4, 40000), "peer unchanged by a replay", 6)
    inner = inner_v4("tcp", 7)
    c.add(c.esp_udp(r_in, inner, 2, src="203.0.113.8"), "decapsulated",
          "valid seq 2 from 203.0.113.8:4500 (new address)", c.decap_tunnel("roam", inner))
    out("roam", r_out, "10.99.1.4", ("203.0.113.8", 4500), "peer moved again", 8)
    inner = inner_v4("udp", 9, src="10.98.0.5")
    c.add(c.esp_udp(s_in, inner, 1, src="198.18.5.5", sport=61000), "decapsulated",
          "responder tunnel: first packet from 198.18.5.5:61000", c.decap_tunnel("resp", inner))
    out("resp", s_out, "10.98.0.5", ("198.18.5.5", 61000), "learned peer", 10)
    return c


# --------------------------------------------------------------------------------------------
# NAT transport cases (L2TP/IPsec clients behind one NAT)
# --------------------------------------------------------------------------------------------

CLIENTS = [  # name, NAT port, private address, alg
    ("client1", 4500, "192.168.1.11", "aes128gcm16"),
    ("client2", 31001, "192.168.1.12", "aes256gcm16"),
    ("client3", 31002, "192.168.1.13", "aes128-sha256"),
]


def l2tp_sccrq(host: str, tunnel_id: int) -> bytes:
    avps = b""

    def avp(attr, value, mandatory=True):
        return struct.pack("!HHH", (0x8000 if mandatory else 0) | (6 + len(value)), 0, attr) + value

    avps += avp(0, struct.pack("!H", 1))              # Message Type: SCCRQ
    avps += avp(2, struct.pack("!H", 0x0100))         # Protocol Version 1.0
    avps += avp(7, host.encode())                     # Host Name
    avps += avp(9, struct.pack("!H", tunnel_id))      # Assigned Tunnel ID
    avps += avp(10, struct.pack("!H", 8))             # Receive Window Size
    return struct.pack("!HHHHHH", 0xC802, 12 + len(avps), 0, 0, 0, 0) + avps


def l2tp_data(tunnel_id: int, session_id: int, ppp: bytes) -> bytes:
    return struct.pack("!HHHH", 0x4002, 8 + len(ppp), tunnel_id, session_id) + ppp


def l2tp_reply(tunnel_id: int, n: int) -> bytes:
    # SCCRP-like control message back to the client's tunnel
    body = struct.pack("!HHH", 0x8008, 0, 0) + struct.pack("!H", 2)
    body += struct.pack("!HHH", 0x8000 | 6 + 2, 0, 9) + struct.pack("!H", 0x100 + n)
    return struct.pack("!HHHHHH", 0xC802, 12 + len(body), tunnel_id, 0, 0, 1) + body


def transport_inbound(c: Case, name: str, sa: SAConf, seq: int, natport: int, private: str,
                      sport: int, dport: int, payload: bytes, alias: str, zero_csum=False,
                      ttl=128):
    """A client's ESP (transport mode) and the packet espd must write to the TUN."""
    seg = udp_segment(private, LOCAL4, sport, dport, payload, checksum=0 if zero_csum else None)
    orig = IP(bytes(ipv4_header(private, LOCAL4, 17, len(seg)) + seg))
    esp = esp_encrypt(sa, orig, seq, c.iv(sa, seq), tunnel=False)
    ident = c.ident()
    outer = esp_in_udp(NAT_PUBLIC, LOCAL4, natport, 4500, esp, ident=ident, ttl=ttl)
    # espd: rebuilt from the alias to the TUN address, checksum over the new pseudo-header
    new_seg = udp_segment(alias, TUN4, sport, dport, payload, checksum=0 if zero_csum else None)
    expected = ipv4_header(alias, TUN4, 17, len(new_seg), ttl=ttl, ident=ident) + new_seg
    return outer, expected


def reply_out(c: Case, name: str, sa: SAConf, seq: int, natport: int, alias: str, sport: int,
              dport: int, payload: bytes, note: str):
    p = ipv4_header(TUN4, alias, 17, 8 + len(payload), ident=c.ident()) + \
        udp_segment(TUN4, alias, sport, dport, payload)
    seg = p[20:]
    c.add(p, "encapsulated", note,
          c.encap(name, sa, seq, LOCAL4, 4500, NAT_PUBLIC, natport, seg, mode="transport",
                  transport_pseudo=[[LOCAL4, NAT_PUBLIC], [TUN4, alias]]))


def case_nat_transport_aliases() -> Case:
    c = Case("nat-transport-aliases", "Many clients behind one NAT (L2TP/IPsec): three "
             f"transport-mode tunnels, peer {NAT_PUBLIC} with NAT ports 4500/31001/31002, aliases "
             "198.51.100.131/.132/.133, identical inner flows udp 1701 -> 1701 with per-client "
             "L2TP payloads (aes128gcm16, aes256gcm16, aes128-sha256). Inbound: decapsulated "
             "packets are rebuilt from the client's alias to 198.51.100.1 with the UDP checksum "
             "recomputed (one client sends checksum 0, which stays 0). Outbound: replies from "
             "198.51.100.1 to each alias are encapsulated with that client's SA to its NAT port.")
    sas = {}
    for i, (name, port, priv, alg) in enumerate(CLIENTS):
        sa_in = c.sa(f"{name}-in", alg, 0xC1A0D001 + i)
        sa_out = c.sa(f"{name}-out", alg, 0x00A1D001 + i)
        alias = f"198.51.100.{131 + i}"
        c.tunnel(name, [sa_in], sa_out, mode="transport", peer=f"{NAT_PUBLIC}:{port}", alias=alias)
        sas[name] = (sa_in, sa_out, port, priv, alias)
    seqs = {n: 0 for n in sas}
    oseqs = {n: 0 for n in sas}

    def inbound(name, payload, note, zero=False):
        sa_in, _, port, priv, alias = sas[name]
        seqs[name] += 1
        outer, expected = transport_inbound(c, name, sa_in, seqs[name], port, priv, 1701, 1701,
                                            payload, alias, zero_csum=zero)
        c.add(outer, "decapsulated", f"{name} from {NAT_PUBLIC}:{port}: {note}",
              c.decap_transport(name, expected))

    def reply(name, payload, note):
        _, sa_out, port, _, alias = sas[name]
        oseqs[name] += 1
        reply_out(c, name, sa_out, oseqs[name], port, alias, 1701, 1701, payload,
                  f"reply to {alias}:1701 -> {name} ({NAT_PUBLIC}:{port}) seq {oseqs[name]}: {note}")

    for i, name in enumerate(sas):
        inbound(name, l2tp_sccrq(f"win-{name}", 0x10 + i), "L2TP SCCRQ")
    for i, name in enumerate(["client3", "client1", "client2"]):
        reply(name, l2tp_reply(0x10 + int(name[-1]) - 1, i), "SCCRP")
    for i, name in enumerate(sas):
        inbound(name, l2tp_data(0x10 + i, 0x20 + i, b"\xff\x03\xc0\x21\x01\x01\x00\x04"),
                "L2TP data (PPP LCP)", zero=(name == "client2"))
    for i, name in enumerate(["client1", "client2", "client3", "client2"]):
        reply(name, l2tp_data(0x100 + int(name[-1]), 7, b"\xff\x03\xc0\x21\x02\x01\x00\x04" + bytes([i])),
              "L2TP data")
    c.assumptions += [
        "Decapsulated transport packets: IPv4 header rebuilt (alias -> TUN address, protocol from "
        "the ESP next header, valid header checksum); TOS/ID/flags/TTL are not compared (the "
        "expected hex copies them from the outer header, as the Linux kernel does).",
        "Encapsulated transport packets: the UDP checksum inside ESP is accepted if valid over "
        "either (local outer address, peer address) or the original (198.51.100.1, alias) "
        "pseudo-header; everything else in the segment must be byte-identical.",
    ]
    return c


def case_nat_shared_alias(unlearned=False) -> Case:
    name = "nat-shared-alias-unlearned" if unlearned else "nat-shared-alias"
    if unlearned:
        desc = ("Three transport tunnels sharing alias 198.51.100.131: replies whose inner 5-tuple "
                "was never learned from an inbound packet cannot be steered: drops.no_route "
                "(assumption). One learned flow still works.")
    else:
        desc = ("The same three clients behind one NAT sharing one alias 198.51.100.131, with "
                "distinct inner source ports 1701/1702/1703 -> 1701; replies from "
                "198.51.100.1:1701 to alias:170x are steered by the inner 5-tuple learned from "
                "inbound packets (per-SPI flow table) to the right SA and NAT port.")
    c = Case(name, desc)
    alias = "198.51.100.131"
    sas = {}
    for i, (cname, port, priv, alg) in enumerate(CLIENTS):
        sa_in = c.sa(f"{cname}-in", alg, 0xC1A0E001 + i)
        sa_out = c.sa(f"{cname}-out", alg, 0x00A1E001 + i)
        c.tunnel(cname, [sa_in], sa_out, mode="transport", peer=f"{NAT_PUBLIC}:{port}", alias=alias)
        sas[cname] = (sa_in, sa_out, port, priv, 1701 + i)
    seqs = {n: 0 for n in sas}
    oseqs = {n: 0 for n in sas}

    def inbound(cname, payload, note):
        sa_in, _, port, priv, sport = sas[cname]
        seqs[cname] += 1
        outer, expected = transport_inbound(c, cname, sa_in, seqs[cname], port, priv, sport, 1701,
                                            payload, alias)
        c.add(outer, "decapsulated", f"{cname} udp {sport}->1701: {note}",
              c.decap_transport(cname, expected))

    def reply(cname, payload, note):
        _, sa_out, port, _, sport = sas[cname]
        oseqs[cname] += 1
        reply_out(c, cname, sa_out, oseqs[cname], port, alias, 1701, sport, payload,
                  f"reply to {alias}:{sport} -> {cname} ({NAT_PUBLIC}:{port}) seq {oseqs[cname]}: {note}")

    if unlearned:
        p = ipv4_header(TUN4, alias, 17, 8 + 12, ident=c.ident()) + udp_segment(TUN4, alias, 1701, 1702, b"unlearned-1")
        c.add(p, "drop:no_route", "reply to alias:1702 before any inbound packet")
        inbound("client1", l2tp_sccrq("win-client1", 0x10), "L2TP SCCRQ (learns 1701->1701)")
        p = ipv4_header(TUN4, alias, 17, 8 + 12, ident=c.ident()) + udp_segment(TUN4, alias, 1701, 1799, b"unlearned-2")
        c.add(p, "drop:no_route", "reply to alias:1799 (no flow)")
        reply("client1", l2tp_reply(0x10, 0), "the learned flow works")
        c.assumptions.append("A packet to an alias shared by several tunnels whose 5-tuple matches "
                             "no learned flow is dropped as no_route (rather than sent into an "
                             "arbitrary one of the tunnels).")
        return c
    for i, cname in enumerate(sas):
        inbound(cname, l2tp_sccrq(f"win-{cname}", 0x10 + i), "L2TP SCCRQ")
    for i, cname in enumerate(["client2", "client3", "client1"]):
        reply(cname, l2tp_reply(0x10 + int(cname[-1]) - 1, i), "SCCRP")
    for i, cname in enumerate(["client3", "client1", "client2"]):
        inbound(cname, l2tp_data(0x10 + i, 0x20 + i, b"\xff\x03\xc0\x21\x09\x01\x00\x08" + bytes(4)),
                "L2TP data")
    for i, cname in enumerate(["client1", "client3", "client2", "client3"]):
        reply(cname, l2tp_data(0x200 + i, 9, b"\xff\x03\xc0\x21\x0a\x01\x00\x08" + bytes(4)), "L2TP data")
    c.assumptions += [
        "Decapsulated transport packets: TOS/ID/flags/TTL of the rebuilt IPv4 header are not compared.",
        "Encapsulated transport packets: the UDP checksum inside ESP is accepted if valid over "
        "either (local, peer) or (198.51.100.1, alias).",
    ]
    return c


# --------------------------------------------------------------------------------------------

def all_cases():
    out = []
    for alg in ["aes128gcm16", "aes192gcm16", "aes256gcm16", "chacha20poly1305", "aes128-sha256",
                "aes256-sha256", "null-sha256", "aes128-sha1", "aes256-sha1", "aes128-sha384",
                "aes256-sha384", "aes256-sha512"]:
        for fam in ["v4", "v6"]:
            out.append((f"decap-{alg}-{fam}", lambda a=alg, f=fam: case_decap(a, f)))
    out += [
        ("decap-outer-v6", case_decap_outer_v6),
        ("decap-raw-esp", case_decap_raw_esp),
        ("classify", case_classify),
        ("drops", case_drops),
        ("drops-too-big", case_drops_too_big),
        ("drops-extra", case_drops_extra),
        ("framing", case_framing),
        ("encap-tunnel", case_encap_tunnel),
        ("encap-hmac", case_encap_hmac),
        ("nat-rebinding", case_nat_rebinding),
        ("nat-transport-aliases", case_nat_transport_aliases),
        ("nat-shared-alias", lambda: case_nat_shared_alias(False)),
        ("nat-shared-alias-unlearned", lambda: case_nat_shared_alias(True)),
        ("truncated-file", case_truncated_file),
    ]
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("outdir", nargs="?")
    ap.add_argument("--only", nargs="*", help="case names to write (default: all)")
    ap.add_argument("--list", action="store_true", help="list the cases and exit")
    args = ap.parse_args()
    cases = all_cases()
    if args.list:
        for name, fn in cases:
            print(name)
        return 0
    if not args.outdir:
        ap.error("OUTDIR is required")
    os.makedirs(args.outdir, exist_ok=True)
    for name, fn in cases:
        if args.only and name not in args.only:
            continue
        c = fn()
        assert c.name == name, (c.name, name)
        d = c.write(args.outdir)
        s = c.summary()
        counts = ", ".join(f"{k}={v}" for k, v in s.items() if k not in ("packets", "drops") and v)
        drops = ", ".join(f"{k}={v}" for k, v in s["drops"].items())
        print(f"{d}: {s['packets']} packets ({counts}{'; drops ' + drops if drops else ''}), "
              f"{len(c.outputs)} outputs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
