#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Synthesizes what a correct `espd replay` would produce for a case (for testing check.py and
tshark_decrypt.py without espd):

    synth_perfect.py CASEDIR OUT.pcap SUMMARY.json

Decapsulated packets are copied from expected.json; encapsulated ones are built here with scapy
(random IVs, like a real implementation) with the expected SPI, sequence number and endpoints.
"""
from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from espcommon import (  # noqa: E402
    LINKTYPE_RAW, esp_encrypt, esp_in_udp, ipv4_header, ipv6_header, load_config, parse_spi,
    write_pcap)
from scapy.layers.inet import IP  # noqa: E402
from scapy.layers.inet6 import IPv6  # noqa: E402


def build_encap(cfg, o: dict) -> bytes:
    _, sa = cfg.sa_by_spi(parse_spi(o["spi"]), "out")
    inner = bytes.fromhex(o["inner_hex"])
    ou = o["outer"]
    iv = os.urandom(sa.alg.iv_len)
    if o.get("mode") == "transport":
        hdr = (ipv4_header(ou["src"], ou["dst"], 17, len(inner)) if ":" not in ou["src"]
               else ipv6_header(ou["src"], ou["dst"], 17, len(inner)))
        pkt = (IPv6 if ":" in ou["src"] else IP)(hdr + inner)
        esp = esp_encrypt(sa, pkt, int(o["seq"]), iv, tunnel=False)
    else:
        pkt = (IPv6 if inner[0] >> 4 == 6 else IP)(inner)
        esp = esp_encrypt(sa, pkt, int(o["seq"]), iv, tunnel=True)
    return esp_in_udp(ou["src"], ou["dst"], ou["sport"], ou["dport"], esp)


def main() -> int:
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    casedir, out_pcap, summary = sys.argv[1:]
    with open(os.path.join(casedir, "expected.json")) as f:
        exp = json.load(f)
    cfg = load_config(os.path.join(casedir, "config.json"))
    frames = []
    for o in exp["outputs"]:
        frames.append(bytes.fromhex(o["hex"]) if o["kind"] == "decap" else build_encap(cfg, o))
    write_pcap(out_pcap, LINKTYPE_RAW, frames)
    with open(summary, "w") as f:
        json.dump(exp["summary"], f)
        f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
