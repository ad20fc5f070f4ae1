#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A tiny test IKE responder on espd's punt socket (docs/INTERFACE.md "The IKE punt channel").

    ike_responder.py [--listen udp:127.0.0.1:4501 | unix:PATH] [--count N] [--timeout S]
    ike_responder.py --selftest

espd hands every IKE datagram it receives on a NAT-T port (the non-ESP marker stripped) to the punt
socket, prefixed by a 40-byte header (big-endian):

    0-1 "EP"   2 version (1)   3 family (4|6)   4-5 source port   6-7 destination port
    8-23 source address   24-39 destination address   (IPv4: 4 address bytes, then 12 zeros)

This responder answers each one by sending back, to the address the punted datagram came from (espd's
punt socket), the same header with source and destination swapped (source = espd's listen address to
send from, destination = the peer) followed by a reply: the IKE header of the request (RFC 7296 §3.1)
with the Response flag set, the Initiator flag cleared and a responder SPI filled in. espd then sends
it to the peer from that listen socket with the non-ESP marker in front. It does no real IKE.

Each event is one JSON line on stdout (flushed): `listening`, `request` (addresses, ports, IKE
header fields), `reply`, `ignored` (bad header: no reply). Exits 0 after --count requests were
answered, at --timeout (1 if fewer than --count were answered), or on SIGTERM/SIGINT (0).
--selftest checks the responder against hand-made punt datagrams over UDP and a Unix socket.
"""
from __future__ import annotations

import argparse
import ipaddress
import json
import os
import select
import signal
import socket
import struct
import sys
import tempfile
import threading
import time

MAGIC = b"EP"
VERSION = 1
HEADER = 40
IKE_HEADER = 28
FLAG_INITIATOR = 0x08
FLAG_RESPONSE = 0x20


class BadHeader(ValueError):
    pass


def parse_header(data: bytes) -> dict:
    """The punt header's fields; raises BadHeader."""
    if len(data) < HEADER:
        raise BadHeader(f"{len(data)} bytes, shorter than the {HEADER}-byte header")
    if data[:2] != MAGIC:
        raise BadHeader(f"magic {data[:2].hex()}, expected 4550")
    if data[2] != VERSION:
        raise BadHeader(f"version {data[2]}, expected {VERSION}")
    fam = data[3]
    sport, dport = struct.unpack("!HH", data[4:8])
    src, dst = data[8:24], data[24:40]
    if fam == 4:
        if any(src[4:]) or any(dst[4:]):
            raise BadHeader("IPv4 address padding is not zero")
        s, d = ipaddress.IPv4Address(src[:4]), ipaddress.IPv4Address(dst[:4])
    elif fam == 6:
        s, d = ipaddress.IPv6Address(src), ipaddress.IPv6Address(dst)
    else:
        raise BadHeader(f"family {fam}, expected 4 or 6")
    return {"family": fam, "src": str(s), "sport": sport, "dst": str(d), "dport": dport}


def build_header(family: int, src: str, sport: int, dst: str, dport: int) -> bytes:
    def addr(a: str) -> bytes:
        b = ipaddress.ip_address(a).packed
        return b + bytes(16 - len(b))
    return MAGIC + bytes([VERSION, family]) + struct.pack("!HH", sport, dport) + addr(src) + addr(dst)


def ike_fields(msg: bytes) -> dict | None:
    if len(msg) < IKE_HEADER:
        return None
    spi_i, spi_r = msg[0:8], msg[8:16]
    nxt, ver, xchg, flags, msgid, length = struct.unpack("!BBBBII", msg[16:28])
    return {"spi_i": spi_i.hex(), "spi_r": spi_r.hex(), "next_payload": nxt, "version": f"{ver >> 4}.{ver & 15}",
            "exchange": xchg, "flags": flags, "message_id": msgid, "length": length}


def ike_reply(msg: bytes, spi_r: bytes) -> bytes:
    """A header-only IKE response to msg (or, for a too-short message, the message itself reversed)."""
    if len(msg) < IKE_HEADER:
        return b"ike_responder: not IKE: " + msg[::-1]
    _, ver, xchg, flags, msgid, _ = struct.unpack("!BBBBII", msg[16:28])
    rspi = msg[8:16] if any(msg[8:16]) else spi_r
    flags = (flags | FLAG_RESPONSE) & ~FLAG_INITIATOR
    return msg[0:8] + rspi + struct.pack("!BBBBII", 0, ver, xchg, flags, msgid, IKE_HEADER)


def fmt(addr) -> str:
    """A socket address as HOST:PORT ([HOST]:PORT for IPv6) or a Unix path."""
    if isinstance(addr, tuple):
        host, port = addr[0], addr[1]
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return str(addr)


class Responder:
    """Answers punted IKE datagrams on one socket. Not thread-safe."""

    def __init__(self, spec: str, out=sys.stdout):
        self.out = out
        self.spi_r = os.urandom(8)
        self.answered = 0
        self.unix_path = None
        if spec.startswith("udp:"):
            host, _, port = spec[4:].rpartition(":")
            host = host.strip("[]")
            fam = socket.AF_INET6 if ":" in host else socket.AF_INET
            self.sock = socket.socket(fam, socket.SOCK_DGRAM)
            self.sock.bind((host, int(port)))
        elif spec.startswith("unix:"):
            self.unix_path = spec[5:]
            if os.path.exists(self.unix_path):
                os.unlink(self.unix_path)
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self.sock.bind(self.unix_path)
        else:
            raise SystemExit(f"ike_responder.py: --listen: expected udp:HOST:PORT or unix:PATH, got {spec!r}")
        self.address = self.sock.getsockname()

    def emit(self, **kw) -> None:
        print(json.dumps(kw), file=self.out, flush=True)

    def handle(self, data: bytes, sender) -> bytes | None:
        """Returns the reply for one punted datagram, or None (and logs why)."""
        try:
            h = parse_header(data)
        except BadHeader as e:
            self.emit(event="ignored", reason=str(e), len=len(data), sender=fmt(sender))
            return None
        msg = data[HEADER:]
        self.emit(event="request", sender=fmt(sender), len=len(msg), ike=ike_fields(msg), **h)
        # Reply from espd's listen address (the request's destination) to the peer (its source).
        reply = build_header(h["family"], h["dst"], h["dport"], h["src"], h["sport"]) + ike_reply(msg, self.spi_r)
        return reply

    def serve(self, count: int = 0, timeout: float = 0) -> int:
        self.emit(event="listening", address=self.unix_path or fmt(self.address))
        deadline = time.monotonic() + timeout if timeout else None
        while not count or self.answered < count:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                break
            if not select.select([self.sock], [], [], left)[0]:
                continue
            data, sender = self.sock.recvfrom(65535)
            reply = self.handle(data, sender)
            if reply is None:
                continue
            if not sender:
                self.emit(event="error", reason="the sender has no address to reply to (unbound Unix socket)")
                continue
            self.sock.sendto(reply, sender)
            self.answered += 1
            self.emit(event="reply", to=fmt(sender), len=len(reply))
        return 0 if not count or self.answered >= count else 1

    def close(self) -> None:
        self.sock.close()
        if self.unix_path and os.path.exists(self.unix_path):
            os.unlink(self.unix_path)


def selftest() -> int:
    """Hand-made punt datagrams against a responder in a thread: UDP (IPv4 and IPv6 peers), Unix."""
    problems = []
    tmp = tempfile.mkdtemp(prefix="ike-responder-")
    log = open(os.devnull, "w")
    for spec in ("udp:127.0.0.1:0", f"unix:{tmp}/punt.sock"):
        r = Responder(spec, out=log)
        t = threading.Thread(target=r.serve, kwargs={"count": 2, "timeout": 5}, daemon=True)
        t.start()
        if spec.startswith("udp:"):
            c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            c.bind(("127.0.0.1", 0))
            target = r.address
        else:
            c = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            c.bind(f"{tmp}/espd.sock")   # espd's end must be bound to get an answer
            target = r.unix_path
        c.settimeout(3)
        cases = [(4, "192.0.2.2", 4500, "192.0.2.1", 4500), (6, "2001:db8::2", 61234, "2001:db8::1", 4500)]
        # a bad header first: no answer, the next good one is still answered
        c.sendto(b"XX" + bytes(38) + bytes(28), target)
        for fam, src, sport, dst, dport in cases:
            spi_i = os.urandom(8)
            ike = spi_i + bytes(8) + struct.pack("!BBBBII", 33, 0x20, 34, FLAG_INITIATOR, 0, IKE_HEADER)
            c.sendto(build_header(fam, src, sport, dst, dport) + ike, target)
            try:
                rep = c.recv(65535)
            except socket.timeout:
                problems.append(f"{spec} family {fam}: no reply")
                continue
            try:
                h = parse_header(rep)
            except BadHeader as e:
                problems.append(f"{spec} family {fam}: bad reply header: {e}")
                continue
            want = {"family": fam, "src": str(ipaddress.ip_address(dst)), "sport": dport,
                    "dst": str(ipaddress.ip_address(src)), "dport": sport}
            if h != want:
                problems.append(f"{spec} family {fam}: reply header {h}, expected {want}")
            f = ike_fields(rep[HEADER:])
            if not f or f["spi_i"] != spi_i.hex() or not f["flags"] & FLAG_RESPONSE or f["flags"] & FLAG_INITIATOR \
                    or f["exchange"] != 34 or f["spi_r"] == "00" * 8 or f["length"] != len(rep) - HEADER:
                problems.append(f"{spec} family {fam}: bad IKE reply {f}")
        t.join(6)
        if t.is_alive():
            problems.append(f"{spec}: responder did not finish after 2 answers")
        c.close()
        r.close()
    for p in (f"{tmp}/espd.sock",):
        if os.path.exists(p):
            os.unlink(p)
    os.rmdir(tmp)
    log.close()
    for p in problems:
        print(f"selftest: {p}")
    print(f"ike_responder selftest: {'ok' if not problems else 'FAILED'}")
    return 1 if problems else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--listen", default="udp:127.0.0.1:4501", help="udp:HOST:PORT or unix:PATH (espd's ike.punt)")
    ap.add_argument("--count", type=int, default=0, help="exit after answering N requests (0: run until signalled)")
    ap.add_argument("--timeout", type=float, default=0, help="exit after S seconds (0: no limit)")
    ap.add_argument("--selftest", action="store_true", help="check against hand-made punt datagrams and exit")
    a = ap.parse_args()
    if a.selftest:
        return selftest()
    r = Responder(a.listen)

    def stop(_sig, _frm):
        r.close()
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        return r.serve(a.count, a.timeout)
    finally:
        r.close()


if __name__ == "__main__":
    sys.exit(main())
