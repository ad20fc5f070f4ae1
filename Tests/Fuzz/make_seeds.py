#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Writes the fuzz targets' seed corpora from the project's own captures and configurations.

    make_seeds.py FIXTURES OUTDIR

FIXTURES is a folder written by Tests/Replay/make_fixtures.py (the replay test cases: pcap and
pcapng captures, their configurations). OUTDIR/<Target>/ receives one file per seed, in the input
layout each target documents at its top:

- FuzzPcap: every capture as it is.
- FuzzClassify: every UDP payload to port 4500 in the captures (keepalives, IKE, ESP, junk).
- FuzzESPOpen: each of those ESP payloads as a forgery (byte 0 bit 7: the SA's SPI in front), and
  each inner IP packet of the captures as the plaintext of an authentic packet (with a correct
  RFC 4303 trailer, and once with a bad one).
- FuzzInbound: the UDP payloads as raw datagrams, and the inner packets rewritten to come from each
  tunnel's traffic selector (or, in transport mode, as the payload behind the alias) as authentic ones.
- FuzzConfig: every configuration file.
- FuzzControl: requests built from the configurations' tunnels (add, rekey, delete, list, ...).
"""
from __future__ import annotations

import hashlib
import json
import os
import struct
import sys

from scapy.all import IP, IPv6, UDP, Raw, rdpcap  # noqa: F401  (scapy parses pcap and pcapng)
from scapy.layers.inet import TCP
from scapy.layers.l2 import CookedLinux, Ether

# FuzzGateway.shapes: (tunnel-mode source prefix, or None for transport) per tunnel index.
TUNNEL_SOURCES = ["203.0.113.5", "2001:db8:10::5", None, None, "203.0.113.40"]
GATEWAY_V4 = "198.51.100.1"
GATEWAY_V6 = "2001:db8:1::1"


def write(outdir: str, target: str, data: bytes) -> None:
    d = os.path.join(outdir, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, hashlib.sha1(data).hexdigest()[:16]), "wb") as f:
        f.write(data)


def ip_layer(pkt):
    for layer in (IP, IPv6):
        if layer in pkt:
            return pkt[layer]
    return None


def captures(fixtures: str):
    for case in sorted(os.listdir(fixtures)):
        d = os.path.join(fixtures, case)
        if not os.path.isdir(d):
            continue
        for name in ("in.pcap", "in.pcapng"):
            p = os.path.join(d, name)
            if os.path.exists(p):
                yield case, p


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    fixtures, outdir = sys.argv[1], sys.argv[2]
    payloads: list[bytes] = []
    inners: list[bytes] = []
    configs: list[dict] = []
    for case, path in captures(fixtures):
        with open(path, "rb") as f:
            write(outdir, "FuzzPcap", f.read())
        try:
            packets = rdpcap(path)
        except Exception:  # the damaged-file case: its bytes are a seed for FuzzPcap only
            continue
        for pkt in packets:
            ip = ip_layer(pkt)
            if ip is None:
                continue
            if UDP in ip and ip[UDP].dport == 4500:
                payloads.append(bytes(ip[UDP].payload))
            elif UDP not in ip or ip[UDP].dport != 4500:
                inners.append(bytes(ip))
        with open(os.path.join(os.path.dirname(path), "config.json"), "rb") as f:
            raw = f.read()
        write(outdir, "FuzzConfig", raw)
        configs.append(json.loads(raw))

    payloads = list(dict.fromkeys(payloads))[:200]
    inners = list(dict.fromkeys(inners))[:100]
    for p in payloads:
        write(outdir, "FuzzClassify", p)
        for sa in range(7):
            if len(p) >= 8:
                write(outdir, "FuzzESPOpen", bytes([0x80 | sa]) + p)
                break
        write(outdir, "FuzzInbound", bytes([0x00, 0x00, 0x07]) + struct.pack(">H", 4500) + p)

    for n, inner in enumerate(inners):
        # FuzzESPOpen, authentic: a correct trailer (pad to 4, pad bytes 1, 2, ...) and a bad one.
        sa = n % 7
        pad = (-(len(inner) + 2)) % 4
        good = inner + bytes(range(1, pad + 1)) + bytes([pad, 4])
        bad = inner + bytes([9] * pad) + bytes([pad, 4]) if pad else inner + bytes([3, 4])
        for text in (good, bad):
            write(outdir, "FuzzESPOpen", bytes([0x40 | sa]) + struct.pack(">QHB", n + 1, 0, 0) + text)
        # FuzzInbound, authentic: the inner packet from each tunnel's side.
        for t, source in enumerate(TUNNEL_SOURCES):
            try:
                pkt = IP(inner) if inner[0] >> 4 == 4 else IPv6(inner)
            except Exception:
                continue
            if source is None:  # transport mode: the upper-layer segment after the IP header
                segment = bytes(pkt.payload)
                nh = pkt.proto if inner[0] >> 4 == 4 else pkt.nh
                body = segment
            elif ":" in source:
                nh, body = 41, bytes(IPv6(src=source, dst=GATEWAY_V6, nh=17) / UDP(sport=4000, dport=5000) / Raw(bytes(pkt.payload)[:64]))
            else:
                pkt = IP(bytes(pkt))
                pkt.src, pkt.dst = source, GATEWAY_V4
                del pkt.chksum
                if TCP in pkt:
                    del pkt[TCP].chksum
                if UDP in pkt:
                    del pkt[UDP].chksum
                nh, body = 4, bytes(pkt)
            header = bytes([0x80 | t, 0x00, 0x07]) + struct.pack(">H", 4500)
            write(outdir, "FuzzInbound", header + struct.pack(">IB", n + 1, nh & 0xFF) + b"\x00\x00\x00" + body)

    # FuzzControl: one session of requests per configuration's tunnels.
    for c in configs:
        for t in c.get("tunnels", [])[:4]:
            t = dict(t)
            t["name"] = "seed-" + t["name"]
            for sa in t.get("inbound", []):
                sa["spi"] = hex(int(str(sa["spi"]), 0) ^ 0x00F00000)
            t["outbound"]["spi"] = hex(int(str(t["outbound"]["spi"]), 0) ^ 0x00F00000)
            if "alias" in t or t.get("mode") == "transport":
                t["alias"] = "198.51.100.200"
            if "remote_ts" in t:
                t["remote_ts"] = ["192.0.2.128/28"]
            new_in = dict(t["inbound"][0], spi="0x7a000001")
            new_out = dict(t["outbound"], spi="0x7b000001")
            lines = [
                {"op": "add_tunnel", "tunnel": t},
                {"op": "rekey", "name": t["name"], "inbound": new_in},
                {"op": "rekey", "name": t["name"], "outbound": new_out},
                {"op": "delete_sa", "spi": t["inbound"][0]["spi"]},
                {"op": "list"},
                {"op": "stats"},
                {"op": "delete_tunnel", "name": t["name"]},
            ]
            write(outdir, "FuzzControl", "\n".join(json.dumps(x) for x in lines).encode() + b"\n")
    write(outdir, "FuzzControl", b'{"op":"delete_tunnel","name":"gcm-v4"}\n{"op":"delete_sa","spi":"0x1003"}\n')
    write(outdir, "FuzzControl", b'{"op":"subscribe"}\n{"op":"list"}\n')
    for t in sorted(os.listdir(outdir)):
        print(f"{t}: {len(os.listdir(os.path.join(outdir, t)))} seeds")
    return 0


if __name__ == "__main__":
    sys.exit(main())
