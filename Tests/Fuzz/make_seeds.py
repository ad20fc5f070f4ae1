#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Writes the fuzz targets' seed corpora from the project's own captures and configurations.

    make_seeds.py FIXTURES OUTDIR

FIXTURES is a folder written by Tests/Replay/make_fixtures.py (the replay test cases: pcap and
pcapng captures, their configurations). OUTDIR/<Target>/ receives one file per seed, in the input
layout each target documents at its top:

- FuzzPcap: every capture as it is.
- FuzzClassify: every UDP payload to port 4500 in the captures (keepalives, IKE, ESP, junk).
- FuzzESPOpen: each of those ESP payloads as a forgery, and each inner IP packet of the captures
  as the plaintext of an authentic packet (a correct RFC 4303 trailer), the same packet again (a
  replay), and one with a bad trailer.
- FuzzInbound: the UDP payloads as raw datagrams, and the inner packets rewritten to come from each
  tunnel's traffic selector (or, in transport mode, as the payload behind the alias) as authentic
  ones, each twice (the second a replay).
- FuzzConfig: every configuration file, and each again with every limit set.
- FuzzControl: requests built from the configurations' tunnels (add, rekey, delete, list, ...),
  with roomy and with tight limits.
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
        conf = json.loads(raw)
        configs.append(conf)
        conf_limited = dict(conf, limits={"tunnels": max(1, len(conf.get("tunnels", []))), "sas": 1000,
                                          "inbound_sas_per_tunnel": 2, "control_connections": 8,
                                          "ike_queue_bytes": 65536, "ike_per_second": 100,
                                          "ike_per_source_per_second": 10})
        write(outdir, "FuzzConfig", json.dumps(conf_limited).encode())

    payloads = list(dict.fromkeys(payloads))[:200]
    inners = list(dict.fromkeys(inners))[:100]

    def esp_forgery(p: bytes) -> bytes:
        return bytes([0x80]) + struct.pack(">H", len(p)) + p

    def esp_authentic(seq: int, text: bytes) -> bytes:
        return bytes([0x40]) + struct.pack(">QHBH", seq, 0, 0, len(text)) + text

    def dgram_raw(p: bytes) -> bytes:
        return bytes([0x00, 0x00, 0x07]) + struct.pack(">HH", 4500, len(p)) + p

    def dgram_authentic(t: int, seq: int, nh: int, body: bytes) -> bytes:
        return bytes([0x80 | t, 0x00, 0x07]) + struct.pack(">HIBHBH", 4500, seq, nh & 0xFF, 0, 0, len(body)) + body

    for n, p in enumerate(payloads):
        write(outdir, "FuzzClassify", p)
        if len(p) >= 8:
            write(outdir, "FuzzESPOpen", bytes([n % 7, n % 6]) + esp_forgery(p))
        write(outdir, "FuzzInbound", dgram_raw(p))

    for n, inner in enumerate(inners):
        # FuzzESPOpen, authentic: a correct trailer (pad to 4, pad bytes 1, 2, ...), the same packet
        # again (a replay), then one with a bad trailer.
        pad = (-(len(inner) + 2)) % 4
        good = inner + bytes(range(1, pad + 1)) + bytes([pad, 4])
        bad = inner + bytes([9] * pad) + bytes([pad, 4]) if pad else inner + bytes([3, 4])
        write(outdir, "FuzzESPOpen", bytes([n % 7, 0]) + esp_authentic(n + 1, good) + esp_authentic(n + 1, good)
              + esp_authentic(n + 2, bad))
        # FuzzInbound, authentic: the inner packet from each tunnel's side, then the same again.
        for t, source in enumerate(TUNNEL_SOURCES):
            try:
                pkt = IP(inner) if inner[0] >> 4 == 4 else IPv6(inner)
            except Exception:
                continue
            if source is None:  # transport mode: the upper-layer segment after the IP header
                nh = pkt.proto if inner[0] >> 4 == 4 else pkt.nh
                body = bytes(pkt.payload)
            elif ":" in source:
                nh, body = 41, bytes(IPv6(src=source, dst=GATEWAY_V6, nh=17) / UDP(sport=4000, dport=5000)
                                     / Raw(bytes(pkt.payload)[:64]))
            else:
                pkt = IP(bytes(pkt))
                pkt.src, pkt.dst = source, GATEWAY_V4
                del pkt.chksum
                if TCP in pkt:
                    del pkt[TCP].chksum
                if UDP in pkt:
                    del pkt[UDP].chksum
                nh, body = 4, bytes(pkt)
            one = dgram_authentic(t, n + 1, nh, body)
            write(outdir, "FuzzInbound", one + one)

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
                {"op": "query_sa", "name": t["name"], "spi": new_in["spi"], "direction": "inbound"},
                {"op": "query_sa", "name": t["name"], "spi": new_out["spi"], "direction": "outbound"},
                {"op": "update_tunnel", "name": t["name"], "peer": "203.0.113.7:4500"},
                {"op": "alloc_spi", "min": "0x7c000000", "max": "0x7c00000f"},
                {"op": "release_spi", "spi": "0x7c000001"},
                {"op": "list", "names_only": True, "prefix": "seed-"},
                {"op": "delete_tunnel", "name": t["name"]},
            ]
            # Byte 0: the limits (0xff: the most room FuzzControl gives; 0x00: none to spare).
            for limits in (b"\xff", b"\x00"):
                write(outdir, "FuzzControl", limits + "\n".join(json.dumps(x) for x in lines).encode() + b"\n")
    write(outdir, "FuzzControl", b'\xff{"op":"delete_tunnel","name":"gcm-v4"}\n{"op":"delete_sa","spi":"0x1003"}\n')
    write(outdir, "FuzzControl", b'\x00{"op":"subscribe"}\n{"op":"list"}\n')
    for t in sorted(os.listdir(outdir)):
        print(f"{t}: {len(os.listdir(os.path.join(outdir, t)))} seeds")
    return 0


if __name__ == "__main__":
    sys.exit(main())
