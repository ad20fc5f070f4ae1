#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A small reference model of `espd replay`, written from INTERFACE.md, used to validate the
fixtures (that in.pcap + config.json really lead to expected.json) without espd:

    refmodel.py replay --config CONFIG --in IN.pcap --out OUT.pcap [--json] [--verdicts]
    refmodel.py keys --config CONFIG --format wireshark

(the same command line as espd, so run_espd.py can drive it in place of espd).

Its output is checked with check.py like espd's. It is slow, has no performance ambitions and
implements only what the fixtures need; where INTERFACE.md is silent it follows the assumptions
listed in README.md. ESP is done with scapy (espcommon.esp_decrypt / esp_encrypt).
"""
from __future__ import annotations

import argparse
import ipaddress
import json
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from espcommon import (  # noqa: E402
    ESPDecryptError, LINKTYPE_RAW, esp_decrypt, esp_encrypt, esp_in_udp, ipv4_header,
    ipv6_header, l2_strip, l4_checksum, load_config, read_capture_partial, write_pcap)
from scapy.layers.inet import IP  # noqa: E402
from scapy.layers.inet6 import IPv6  # noqa: E402

VERDICTS = ("decapsulated", "encapsulated", "ike", "keepalive", "passed")


class Drop(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class ReplayState:
    """RFC 4303 anti-replay window with ESN high-word inference (Appendix A)."""

    def __init__(self, window: int, esn: bool, start: int):
        self.w, self.esn, self.top = window, esn, start
        self.seen = {start}

    def infer(self, lo: int) -> int:
        if not self.esn:
            return lo
        w = max(self.w, 1)
        tl, th = self.top & 0xFFFFFFFF, self.top >> 32
        if tl >= w - 1:
            hi = th + 1 if lo < tl - w + 1 else th
        else:
            hi = th - 1 if lo >= (tl - w + 1) % 2**32 else th
        return (max(hi, 0) << 32) | lo

    def check(self, seq: int):
        if self.w == 0:
            return
        if seq <= self.top - self.w:
            raise Drop("outside_window")
        if seq in self.seen:
            raise Drop("replayed")

    def update(self, seq: int):
        if seq > self.top:
            self.top = seq
        self.seen.add(seq)


class Model:
    def __init__(self, cfg):
        self.cfg = cfg
        self.sa_in = {}
        for t in cfg.tunnels:
            for sa in t.inbound:
                self.sa_in[sa.spi] = (t, sa, ReplayState(sa.replay_window, sa.esn, sa.seq))
            t.out_seq = t.outbound.seq
            t.cur_peer = t.peer
            t.flows = set()
        self.counts = {v: 0 for v in VERDICTS}
        self.drops: dict[str, int] = {}
        self.out: list[bytes] = []
        self.verdicts: list[str] = []

    # ---------------------------------------------------------------- framing
    def process(self, linktype: int, frame: bytes):
        try:
            v = self._process(linktype, frame)
            self.counts[v] += 1
            self.verdicts.append(v)
        except Drop as d:
            self.drops[d.reason] = self.drops.get(d.reason, 0) + 1
            self.verdicts.append("drop:" + d.reason)

    def _process(self, linktype, frame) -> str:
        try:
            pkt = l2_strip(linktype, frame)
        except ValueError as e:
            if "not IP" in str(e):
                return "passed"
            raise Drop("malformed")
        except Exception:  # noqa: BLE001
            raise Drop("malformed")
        if len(frame) < {1: 14, 113: 16, 276: 20}.get(linktype, 0):
            raise Drop("malformed")
        if not pkt:
            raise Drop("malformed")
        ver = pkt[0] >> 4
        if ver == 4:
            if len(pkt) < 20:
                raise Drop("malformed")
            ihl = (pkt[0] & 15) * 4
            tot = struct.unpack("!H", pkt[2:4])[0]
            if ihl < 20 or tot < ihl or tot > len(pkt):
                raise Drop("malformed")
            pkt = pkt[:tot]
            src, dst = ipaddress.ip_address(pkt[12:16]), ipaddress.ip_address(pkt[16:20])
            proto, l4 = pkt[9], pkt[ihl:]
        elif ver == 6:
            if len(pkt) < 40:
                raise Drop("malformed")
            plen = struct.unpack("!H", pkt[4:6])[0]
            if 40 + plen > len(pkt):
                raise Drop("malformed")
            pkt = pkt[:40 + plen]
            src, dst = ipaddress.ip_address(pkt[8:24]), ipaddress.ip_address(pkt[24:40])
            proto, l4 = pkt[6], pkt[40:]
        else:
            raise Drop("malformed")
        if proto == 17 and self.is_listen(dst, l4):
            if len(l4) < 8:
                raise Drop("malformed")
            ulen = struct.unpack("!H", l4[4:6])[0]
            if ulen < 8 or ulen > len(l4):
                raise Drop("malformed")
            sport = struct.unpack("!H", l4[0:2])[0]
            p = l4[8:ulen]
            n = len(p)
            if n == 1 and p[0] == 0xFF:
                return "keepalive"
            if n < 4:
                raise Drop("malformed")
            if p[:4] == b"\0\0\0\0":
                if n >= 32:
                    return "ike"
                raise Drop("malformed")
            if n < 28:
                raise Drop("malformed")
            return self.inbound(p, pkt, (str(src), sport))
        if proto == 50:
            return self.inbound(l4, pkt, (str(src), None))
        return self.outbound(pkt, ver, src, dst, proto, l4)

    def is_listen(self, dst, l4) -> bool:
        if len(l4) < 4:
            return False
        dport = struct.unpack("!H", l4[2:4])[0]
        for addr, port in self.cfg.listen:
            a = ipaddress.ip_address(addr)
            if port == dport and a.version == dst.version and (a.is_unspecified or a == dst):
                return True
        return False

    # ---------------------------------------------------------------- inbound
    def inbound(self, esp: bytes, outer: bytes, src) -> str:
        spi = struct.unpack("!I", esp[:4])[0]
        if spi not in self.sa_in:
            raise Drop("unknown_spi")
        t, sa, rs = self.sa_in[spi]
        if len(esp) < 8 + sa.alg.iv_len + sa.alg.icv_len + 2:
            raise Drop("malformed")
        ct_len = len(esp) - 8 - sa.alg.iv_len - sa.alg.icv_len
        lo = struct.unpack("!I", esp[4:8])[0]
        seq = rs.infer(lo)
        rs.check(seq)
        try:
            plain = esp_decrypt(sa, esp, seq >> 32)
        except ESPDecryptError as e:
            if "ICV" in str(e):
                raise Drop("auth_failed")
            raise Drop("malformed")
        if sa.alg.block > 4 and ct_len % sa.alg.block:
            raise Drop("malformed")
        if plain.padlen + 2 > ct_len or plain.padding != bytes(range(1, plain.padlen + 1)):
            raise Drop("bad_padding")
        if plain.nh == 59:
            rs.update(seq)
            raise Drop("dummy")
        if t.mode == "tunnel":
            inner = plain.data
            if not inner or (inner[0] >> 4) not in (4, 6):
                raise Drop("malformed")
            isrc = ipaddress.ip_address(inner[12:16] if inner[0] >> 4 == 4 else inner[8:24])
            if not any(isrc in n for n in t.remote_ts):
                raise Drop("selector_mismatch")
            out = inner
        else:
            out = self.transport_rebuild(t, plain, outer)
        rs.update(seq)
        if src[1] is not None:
            t.cur_peer = src
        self.out.append(out)
        return "decapsulated"

    def transport_rebuild(self, t, plain, outer: bytes) -> bytes:
        alias = t.alias
        tun = next(str(a.ip) for a in self.cfg.tun_addresses if a.version == ipaddress.ip_address(alias).version)
        seg = bytearray(plain.data)
        if plain.nh in (17, 6):
            off = 6 if plain.nh == 17 else 16
            old = struct.unpack("!H", seg[off:off + 2])[0]
            if not (plain.nh == 17 and old == 0):
                struct.pack_into("!H", seg, off, l4_checksum(alias, tun, plain.nh, bytes(seg), off))
            sp, dp = struct.unpack("!HH", seg[:4])
            t.flows.add((plain.nh, sp, dp))
        if ipaddress.ip_address(alias).version == 4:
            tos, ident, flags, ttl = outer[1], struct.unpack("!H", outer[4:6])[0], outer[6] >> 5, outer[8]
            return ipv4_header(alias, tun, plain.nh, len(seg), ttl=ttl, ident=ident, tos=tos,
                               flags=flags) + bytes(seg)
        return ipv6_header(alias, tun, plain.nh, len(seg)) + bytes(seg)

    # ---------------------------------------------------------------- outbound
    def route(self, dst, proto, l4):
        best, blen = None, -1
        for t in self.cfg.tunnels:
            for n in t.remote_ts:
                if dst.version == n.version and dst in n and n.prefixlen > blen:
                    best, blen = t, n.prefixlen
        if best is not None:
            return best
        holders = [t for t in self.cfg.tunnels if t.alias and ipaddress.ip_address(t.alias) == dst]
        if not holders:
            return None
        if len(holders) == 1:
            return holders[0]
        if proto in (6, 17) and len(l4) >= 4:
            sp, dp = struct.unpack("!HH", l4[:4])
            for t in holders:
                if (proto, dp, sp) in t.flows:
                    return t
        raise Drop("no_route")

    def outbound(self, pkt, ver, src, dst, proto, l4) -> str:
        t = self.route(dst, proto, l4)
        if t is None:
            return "passed"
        sa = t.outbound
        if t.cur_peer is None:
            raise Drop("no_peer")
        peer_ip, peer_port = t.cur_peer
        fam = ipaddress.ip_address(peer_ip).version
        local, lport = None, None
        for addr, port in self.cfg.listen:
            a = ipaddress.ip_address(addr)
            if a.version == fam:
                lport = port
                if not a.is_unspecified:
                    local = addr
                break
        local = t.local or local
        if t.mode == "tunnel":
            payload, tunnel = (IPv6 if ver == 6 else IP)(pkt), True
        else:
            payload, tunnel = (IPv6 if ver == 6 else IP)(pkt), False
        overhead = (20 if fam == 4 else 40) + 8 + 8 + sa.alg.iv_len + sa.alg.icv_len + 2 + sa.alg.block
        body = len(pkt) if tunnel else len(l4)
        if body + overhead > 65535:
            raise Drop("too_big")
        seq = t.out_seq + 1
        if seq > (2**64 - 1 if sa.esn else 2**32 - 1):
            raise Drop("sequence_exhausted")
        t.out_seq = seq
        if not tunnel:
            # transport: checksum over the outer pseudo-header
            seg = bytearray(l4)
            if proto in (6, 17):
                off = 6 if proto == 17 else 16
                if not (proto == 17 and struct.unpack("!H", seg[off:off + 2])[0] == 0):
                    struct.pack_into("!H", seg, off, l4_checksum(local, peer_ip, proto, bytes(seg), off))
            hdr = ipv4_header(local, peer_ip, proto, len(seg)) if fam == 4 else ipv6_header(local, peer_ip, proto, len(seg))
            payload = (IP if fam == 4 else IPv6)(hdr + bytes(seg))
        esp = esp_encrypt(sa, payload, seq, os.urandom(sa.alg.iv_len), tunnel=tunnel)
        self.out.append(esp_in_udp(local, peer_ip, lport, peer_port, esp))
        return "encapsulated"

    def summary(self) -> dict:
        s = {"packets": len(self.verdicts)}
        s.update(self.counts)
        s["drops"] = dict(sorted(self.drops.items()))
        return s


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("replay")
    r.add_argument("--config", required=True)
    r.add_argument("--in", dest="inp", required=True)
    r.add_argument("--out", required=True)
    r.add_argument("--json", action="store_true")
    r.add_argument("--verdicts", action="store_true", help="print one verdict per input packet (stderr)")
    k = sub.add_parser("keys")
    k.add_argument("--config", required=True)
    k.add_argument("--format", choices=["wireshark"], required=True)
    a = ap.parse_args()
    cfg = load_config(a.config)
    if a.cmd == "keys":
        from wireshark_keys import fmt, reference
        for line in reference(cfg):
            print(fmt(line))
        return 0
    m = Model(cfg)
    linktype, frames, damage = read_capture_partial(a.inp)
    for fr in frames:
        m.process(linktype, fr)
    write_pcap(a.out, LINKTYPE_RAW, m.out)
    if a.verdicts:
        for i, v in enumerate(m.verdicts):
            print(f"# {i + 1}: {v}", file=sys.stderr)
    print(json.dumps(m.summary()) if a.json else m.summary(), flush=True)
    if damage:
        print(f"refmodel: damaged capture: {damage}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
