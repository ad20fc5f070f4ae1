#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Hostile traffic at an espd listen socket, paced, counted (tests/live/test_hostile.py).

    flood.py --to ADDR:PORT [--from ADDR] --seconds S [--random PPS] [--forge PPS --spi SPI]
             [--replay PPS --sniff IF --sniff-dst ADDR:PORT] [--ike PPS]

Kinds (each at its own rate, interleaved, in 1 ms rounds):
  random  datagrams of 2-1400 random bytes whose first word is not zero (never IKE, never a
          keepalive): an unknown SPI, or too short for ESP
  forge   ESP with a valid SPI, a random sequence number and a random body: fails its ICV (or, below
          the window, is a replay or outside it)
  replay  authentic ESP datagrams captured on --sniff going to --sniff-dst during the first second,
          sent again: replays (or outside the window)
  ike     the non-ESP marker and a 28-byte IKE header: punted to the IKE daemon (or rate-limited)
Prints one JSON object: packets sent per kind, the seconds, and the send errors (ENOBUFS etc.).
Nothing here ever sees a key.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import socket
import struct
import sys
import time

ETH_P_ALL, ETH_P_IP = 0x0003, 0x0800


def endpoint(s: str) -> tuple[str, int]:
    host, _, port = s.rpartition(":")
    return host.strip("[]"), int(port)


SOL_PACKET, PACKET_VNET_HDR = 263, 15


def sniff(ifname: str, dst: tuple[str, int], want: int, seconds: float) -> list[bytes]:
    """UDP payloads of ESP datagrams (IPv4) to `dst` seen on `ifname`, up to `want` of them.

    espd sends with UDP GSO: what the interface shows is one super-packet of many datagrams. The
    virtio-net header (PACKET_VNET_HDR) gives the segment size to cut it back into the datagrams
    the peer receives; replaying the super-packet whole would be one 64 KB datagram, fragmented.
    """
    # ETH_P_ALL: a socket for ETH_P_IP alone is not shown the host's own outgoing packets.
    # SOCK_RAW (Ethernet header included): the kernel gives the virtio-net header only to those.
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)
    s.bind((ifname, 0))
    s.settimeout(0.2)
    daddr = socket.inet_aton(dst[0])
    out: list[bytes] = []
    end = time.monotonic() + seconds
    while len(out) < want and time.monotonic() < end:
        try:
            raw, addr = s.recvfrom(65535 + 10 + 14)
        except socket.timeout:
            continue
        gso_size = struct.unpack_from("<H", raw, 4)[0]
        pkt = raw[10 + 14:]
        if addr[1] != ETH_P_IP or len(pkt) < 28 or pkt[9] != 17 or pkt[16:20] != daddr:
            continue
        ihl = (pkt[0] & 0x0F) * 4
        dport = struct.unpack(">H", pkt[ihl + 2:ihl + 4])[0]
        if dport != dst[1]:
            continue
        payload = pkt[ihl + 8:]
        step = gso_size if gso_size else len(payload)
        for i in range(0, len(payload), step):
            d = payload[i:i + step]
            if len(d) >= 28 and d[:4] != b"\0\0\0\0":
                out.append(d)
    s.close()
    return out[:want]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--to", required=True)
    ap.add_argument("--from", dest="source", default="")
    ap.add_argument("--seconds", type=float, required=True)
    ap.add_argument("--random", type=int, default=0)
    ap.add_argument("--forge", type=int, default=0)
    ap.add_argument("--spi", default="")
    ap.add_argument("--replay", type=int, default=0)
    ap.add_argument("--sniff", default="")
    ap.add_argument("--sniff-dst", default="")
    ap.add_argument("--ike", type=int, default=0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--tag", default="", help="text appended to every IKE datagram (to tell senders apart)")
    a = ap.parse_args()
    rng = random.Random(a.seed)
    to = endpoint(a.to)
    fam = socket.AF_INET6 if ":" in to[0] else socket.AF_INET
    sock = socket.socket(fam, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    sock.bind((a.source, 0))
    sock.connect(to)

    pools: dict[str, list[bytes]] = {}
    if a.random:
        pool = []
        for _ in range(4096):
            n = rng.randrange(2, 1401)
            b = bytearray(rng.randbytes(n))
            if b[:4] == b"\0\0\0\0" or len(b) < 4 and b[0] == 0:
                b[0] = 1
            pool.append(bytes(b))
        pools["random"] = pool
    if a.forge:
        spi = int(a.spi, 0)
        pools["forge"] = [struct.pack(">II", spi, rng.getrandbits(32) or 1) + rng.randbytes(rng.randrange(40, 1400))
                          for _ in range(4096)]
    if a.ike:
        tag = a.tag.encode()
        pools["ike"] = [b"\0\0\0\0" + rng.randbytes(8) + b"\0" * 8 + bytes([0x21, 0x20, 0x22, 0x08]) +
                        b"\0\0\0\0" + struct.pack(">I", 28 + 40 + len(tag)) + rng.randbytes(40) + tag
                        for _ in range(256)]
    captured = 0
    if a.replay:
        got = sniff(a.sniff, endpoint(a.sniff_dst), 4096, 3.0)
        captured = len(got)
        if not got:
            print(json.dumps({"error": f"no ESP to {a.sniff_dst} seen on {a.sniff} to replay"}))
            return 1
        pools["replay"] = got

    rates = {"random": a.random, "forge": a.forge, "replay": a.replay, "ike": a.ike}
    sent = {k: 0 for k in pools}
    errors = 0
    start = time.monotonic()
    end = start + a.seconds
    index = {k: 0 for k in pools}
    while True:
        now = time.monotonic()
        if now >= end:
            break
        elapsed = now - start
        for k, pool in pools.items():
            due = int(rates[k] * elapsed) - sent[k]
            i = index[k]
            for _ in range(max(0, due)):
                try:
                    sock.send(pool[i])
                    sent[k] += 1
                except OSError:
                    errors += 1
                    sent[k] += 1  # not on the wire; counted apart so the totals still pace
                i = (i + 1) % len(pool)
            index[k] = i
        time.sleep(0.001)
    wire = {k: v for k, v in sent.items()}
    print(json.dumps({"sent": wire, "send_errors": errors, "seconds": round(time.monotonic() - start, 3),
                      "captured": captured}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
