#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Compares the result of `espd replay` with a case's expected.json.

    check.py CASEDIR OUT.pcap SUMMARY.json [-v]

CASEDIR holds config.json and expected.json (from make_fixtures.py); OUT.pcap is what
`espd replay --config CASEDIR/config.json --in CASEDIR/in.pcap --out OUT.pcap --json` wrote and
SUMMARY.json its standard output. Exits 0 if everything matches, 1 with one line per mismatch
otherwise (an unreadable OUT.pcap or SUMMARY.json is a mismatch), 2 if the case itself
cannot be loaded.

Decapsulated packets are compared byte for byte (tunnel mode) or with the rebuilt IPv4 header's
TOS/ID/flags/TTL masked (transport mode; checksums are still verified). Encapsulated packets are
checked field by field (outer addresses and ports, UDP length/checksum, SPI, sequence number),
then verified and decrypted with scapy's ESP implementation using the keys in config.json; the
inner packet, next header, padding (1, 2, 3, ...) and alignment are checked, and no IV may repeat
within an SA.
"""
from __future__ import annotations

import argparse
import json
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from espcommon import (  # noqa: E402
    ESPDecryptError, LINKTYPE_RAW, esp_decrypt, l4_checksum_valid, load_config, parse_ip,
    parse_spi, read_capture)

VERDICT_KEYS = ("decapsulated", "encapsulated", "ike", "keepalive", "passed")


class Checker:
    def __init__(self, casedir: str, verbose=False):
        self.casedir = casedir
        self.verbose = verbose
        with open(os.path.join(casedir, "expected.json")) as f:
            self.exp = json.load(f)
        self.cfg = load_config(os.path.join(casedir, "config.json"))
        self.problems: list[str] = []
        self.notes: list[str] = []
        self.ivs: dict[int, dict[bytes, int]] = {}

    def fail(self, msg: str):
        self.problems.append(msg)

    def frame_note(self, in_frame: int) -> str:
        for fr in self.exp.get("frames", []):
            if fr["frame"] == in_frame:
                return fr.get("note", "")
        return ""

    # ------------------------------------------------------------------ summary
    def check_summary(self, path: str):
        try:
            actual = load_summary(path)
        except Exception as e:  # noqa: BLE001
            self.fail(f"summary: cannot read {path}: {e}")
            return
        want = self.exp["summary"]
        for k in ("packets",) + VERDICT_KEYS:
            a = actual.get(k)
            if a is None:
                self.fail(f"summary: field {k!r} missing (expected {want[k]})")
            elif a != want[k]:
                self.fail(f"summary: {k} = {a}, expected {want[k]}{self.verdict_hint(k)}")
        adrops = actual.get("drops")
        if not isinstance(adrops, dict):
            self.fail(f"summary: 'drops' missing or not an object: {adrops!r}")
            adrops = {}
        wdrops = want.get("drops", {})
        for r in sorted(set(adrops) | set(wdrops)):
            a, w = adrops.get(r, 0) or 0, wdrops.get(r, 0)
            if a != w:
                self.fail(f"summary: drops.{r} = {a}, expected {w}{self.verdict_hint('drop:' + r)}")
        total = sum(int(actual.get(k, 0) or 0) for k in VERDICT_KEYS) + \
            sum(int(v or 0) for v in adrops.values())
        if actual.get("packets") is not None and total != actual["packets"]:
            self.fail(f"summary: verdicts add up to {total}, but packets = {actual['packets']} "
                      f"(INTERFACE.md: they must add up)")
        extra = sorted(set(actual) - set(("packets", "drops") + VERDICT_KEYS))
        if extra and self.verbose:
            self.notes.append(f"summary: extra fields ignored: {', '.join(extra)}")

    def verdict_hint(self, verdict: str) -> str:
        frames = [f["frame"] for f in self.exp.get("frames", []) if f["verdict"] == verdict]
        if not frames:
            return ""
        shown = ", ".join(str(x) for x in frames[:12]) + (" ..." if len(frames) > 12 else "")
        return f" (expected from input frame(s) {shown})"

    # ------------------------------------------------------------------ outputs
    def check_outputs(self, path: str):
        try:
            linktype, frames = read_capture(path)
        except Exception as e:  # noqa: BLE001
            self.fail(f"output: cannot read {path}: {e}")
            return
        if linktype != LINKTYPE_RAW:
            self.fail(f"output: link type {linktype}, expected {LINKTYPE_RAW} (RAW)")
        outs = self.exp["outputs"]
        if len(frames) != len(outs):
            self.fail(f"output: {len(frames)} packets written, expected {len(outs)}")
        for i, (fr, o) in enumerate(zip(frames, outs)):
            where = (f"out frame {i + 1} (expected from input frame {o['frame']}, tunnel "
                     f"{o.get('tunnel')}: {self.frame_note(o['frame'])})")
            try:
                if o["kind"] == "decap":
                    self.check_decap(where, fr, o)
                else:
                    self.check_encap(where, i + 1, fr, o)
            except Exception as e:  # noqa: BLE001 - report, never crash
                self.fail(f"{where}: cannot parse the packet: {e.__class__.__name__}: {e} "
                          f"[{fr[:64].hex()}...]")
        for j in range(len(outs), len(frames)):
            self.fail(f"out frame {j + 1}: unexpected extra packet: {describe(frames[j])}")
        for j in range(len(frames), len(outs)):
            o = outs[j]
            self.fail(f"expected output #{j + 1} missing (input frame {o['frame']}: "
                      f"{self.frame_note(o['frame'])})")

    def check_decap(self, where: str, got: bytes, o: dict):
        want = bytes.fromhex(o["hex"])
        if o.get("mode") == "transport" and got[:1] and got[0] >> 4 == 4 and want[0] >> 4 == 4:
            masked_got, masked_want = mask_ipv4(got, o.get("ignore_ipv4_fields", [])), \
                mask_ipv4(want, o.get("ignore_ipv4_fields", []))
            if masked_got != masked_want:
                self.fail(f"{where}: decapsulated (transport) packet differs "
                          f"{first_diff(masked_got, masked_want)}\n    got:  {describe(got)}\n"
                          f"    want: {describe(want)}")
                return
            ip = parse_ip(got)
            if not ip.header_checksum_ok:
                self.fail(f"{where}: rebuilt IPv4 header checksum is wrong")
            if ip.proto == 17:
                csum = struct.unpack("!H", ip.payload[6:8])[0]
                if csum != 0 and not l4_checksum_valid(ip.src, ip.dst, 17, ip.payload):
                    self.fail(f"{where}: UDP checksum 0x{csum:04x} not valid for {ip.src} -> {ip.dst}")
            return
        if got != want:
            self.fail(f"{where}: decapsulated packet differs {first_diff(got, want)}\n"
                      f"    got:  {describe(got)}\n    want: {describe(want)}")

    def check_encap(self, where: str, index: int, got: bytes, o: dict):
        ip = parse_ip(got)
        ou = o["outer"]
        errs = []
        if ip.src != ou["src"] or ip.dst != ou["dst"]:
            errs.append(f"outer {ip.src} -> {ip.dst}, expected {ou['src']} -> {ou['dst']}")
        if ip.proto != 17:
            errs.append(f"outer protocol {ip.proto}, expected 17 (UDP)")
            self.fail(f"{where}: " + "; ".join(errs))
            return
        if not ip.total_len_ok:
            errs.append("outer IP length field does not match the packet size")
        if not ip.header_checksum_ok:
            errs.append("outer IPv4 header checksum is wrong")
        if ip.ttl == 0:
            errs.append("outer TTL/hop limit 0")
        udp = ip.payload
        sport, dport, ulen, ucsum = struct.unpack("!HHHH", udp[:8])
        if (sport, dport) != (ou["sport"], ou["dport"]):
            errs.append(f"UDP ports {sport} -> {dport}, expected {ou['sport']} -> {ou['dport']}")
        if ulen != len(udp):
            errs.append(f"UDP length {ulen}, payload is {len(udp)} bytes")
        if ip.version == 6 and (ucsum == 0 or not l4_checksum_valid(ip.src, ip.dst, 17, udp)):
            errs.append(f"IPv6 UDP checksum 0x{ucsum:04x} is not valid (zero is not allowed)")
        if ip.version == 4 and ucsum != 0 and not l4_checksum_valid(ip.src, ip.dst, 17, udp):
            errs.append(f"IPv4 UDP checksum 0x{ucsum:04x} is neither 0 nor valid")
        esp = udp[8:]
        if len(esp) < 8:
            errs.append(f"UDP payload of {len(esp)} bytes is no ESP")
            self.fail(f"{where}: " + "; ".join(errs))
            return
        spi, seq_lo = struct.unpack("!II", esp[:8])
        wspi, wseq = parse_spi(o["spi"]), int(o["seq"])
        if spi == 0:
            errs.append("ESP SPI 0 (would be read as a non-ESP marker)")
        if spi != wspi:
            errs.append(f"SPI 0x{spi:08x}, expected 0x{wspi:08x}")
        if seq_lo != wseq & 0xFFFFFFFF:
            errs.append(f"sequence number {seq_lo} (0x{seq_lo:x}), expected low 32 bits of "
                        f"{wseq} (0x{wseq:x}) = {wseq & 0xFFFFFFFF}")
        tunnel, sa = self.cfg.sa_by_spi(wspi, "out")
        if sa is None:
            errs.append(f"SPI 0x{wspi:08x} is no outbound SA in config.json (fixture bug?)")
            self.fail(f"{where}: " + "; ".join(errs))
            return
        if len(esp) % 4:
            errs.append(f"ESP length {len(esp)} is not a multiple of 4 (RFC 4303 2.4)")
        try:
            plain = esp_decrypt(sa, esp, wseq >> 32)
        except ESPDecryptError as e:
            hint = ""
            if sa.esn:
                hint = (f" (ESN: the ICV covers the high 32 bits {wseq >> 32:#x}; a wrong high word "
                        f"fails here too)")
            errs.append(f"ESP does not verify/decrypt with SA 0x{wspi:08x} ({sa.alg.name}): {e}{hint}")
            self.fail(f"{where}: " + "; ".join(errs))
            return
        seen = self.ivs.setdefault(spi, {})
        if plain.iv and plain.iv in seen:
            errs.append(f"IV {plain.iv.hex()} repeats the one of out frame {seen[plain.iv]} on SA "
                        f"0x{spi:08x}")
        seen[plain.iv] = index
        if sa.alg.block > 4 and plain.ct_len % sa.alg.block:
            errs.append(f"ciphertext length {plain.ct_len} not a multiple of {sa.alg.block}")
        if plain.padding != bytes(range(1, plain.padlen + 1)):
            errs.append(f"padding {plain.padding.hex()} is not 01 02 03 ... (RFC 4303 2.4)")
        inner = bytes.fromhex(o["inner_hex"])
        if o.get("mode") == "transport":
            tp = o.get("transport", {})
            want_nh = tp.get("proto", 17)
            if plain.nh != want_nh:
                errs.append(f"next header {plain.nh}, expected {want_nh} (transport)")
            errs += self.compare_transport_segment(plain.data, inner, tp)
        else:
            want_nh = 4 if inner[0] >> 4 == 4 else 41
            if plain.nh != want_nh:
                errs.append(f"next header {plain.nh}, expected {want_nh} (tunnel, IPv{inner[0] >> 4} inner)")
            if plain.data != inner:
                errs.append(f"inner packet differs {first_diff(plain.data, inner)}\n"
                            f"    got:  {describe(plain.data)}\n    want: {describe(inner)}")
        if errs:
            self.fail(f"{where}: " + "; ".join(errs))
        elif self.verbose:
            self.notes.append(f"{where}: ok (SPI 0x{spi:08x} seq 0x{wseq:x}, pad {plain.padlen})")

    @staticmethod
    def compare_transport_segment(got: bytes, want: bytes, tp: dict) -> list:
        errs = []
        if len(got) != len(want):
            return [f"transport payload is {len(got)} bytes, expected {len(want)}\n"
                    f"    got:  {got.hex()}\n    want: {want.hex()}"]
        if got[:6] != want[:6] or got[8:] != want[8:]:
            errs.append(f"transport UDP segment differs {first_diff(got[:6] + b'..' + got[8:], want[:6] + b'..' + want[8:])}"
                        f"\n    got:  {got.hex()}\n    want: {want.hex()}")
        csum = struct.unpack("!H", got[6:8])[0]
        want_csum = struct.unpack("!H", want[6:8])[0]
        if want_csum == 0:
            if csum != 0:
                errs.append(f"UDP checksum 0x{csum:04x}, expected 0 (an IPv4 UDP checksum of 0 stays 0)")
        elif csum == 0:
            pass  # allowed for IPv4 UDP
        else:
            pairs = tp.get("checksum_valid_over", [])
            if not any(l4_checksum_valid(s, d, 17, got) for s, d in pairs):
                errs.append(f"UDP checksum 0x{csum:04x} is valid over none of "
                            + ", ".join(f"({s}, {d})" for s, d in pairs))
        return errs


def mask_ipv4(pkt: bytes, fields: list) -> bytes:
    b = bytearray(pkt)
    if len(b) < 20:
        return bytes(b)
    if "tos" in fields:
        b[1] = 0
    if "id" in fields:
        b[4:6] = b"\0\0"
    if "flags" in fields:
        b[6] &= 0x1F
    if "ttl" in fields:
        b[8] = 0
    b[10:12] = b"\0\0"  # header checksum is verified separately
    return bytes(b)


def first_diff(a: bytes, b: bytes) -> str:
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return f"(first difference at byte {i}: got {a[i]:02x}, want {b[i]:02x}; lengths {len(a)}/{len(b)})"
    return f"(lengths {len(a)} vs {len(b)}, common prefix identical)"


def describe(pkt: bytes) -> str:
    try:
        ip = parse_ip(pkt)
        s = f"IPv{ip.version} {ip.src} -> {ip.dst} proto {ip.proto} len {len(pkt)}"
        sp = dp = None
        if ip.proto in (6, 17) and len(ip.payload) >= 4:
            sp, dp = struct.unpack("!HH", ip.payload[:4])
            s += f" ports {sp} -> {dp}"
        if ip.proto == 17 and len(ip.payload) >= 16 and 4500 in (sp, dp):
            spi, seq = struct.unpack("!II", ip.payload[8:16])
            s += f" [as ESP: SPI 0x{spi:08x} seq {seq}]"
        return s + f" [{pkt[:48].hex()}{'...' if len(pkt) > 48 else ''}]"
    except Exception:  # noqa: BLE001
        return f"{len(pkt)} bytes [{pkt[:48].hex()}]"


def load_summary(path: str) -> dict:
    """The summary object; tolerates log lines around it (takes the last line that parses as a
    JSON object with a 'packets' field, or the whole file)."""
    with open(path) as f:
        text = f.read()
    try:
        j = json.loads(text)
        if isinstance(j, dict):
            return j
    except json.JSONDecodeError:
        pass
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                j = json.loads(line)
                if isinstance(j, dict) and "packets" in j:
                    return j
            except json.JSONDecodeError:
                continue
    raise ValueError("no JSON summary object found")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("casedir")
    ap.add_argument("out_pcap")
    ap.add_argument("summary_json")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    try:
        ck = Checker(args.casedir, args.verbose)
    except Exception as e:  # noqa: BLE001
        print(f"check.py: cannot load case {args.casedir}: {e}", file=sys.stderr)
        return 2
    ck.check_summary(args.summary_json)
    ck.check_outputs(args.out_pcap)
    name = ck.exp.get("case", os.path.basename(args.casedir.rstrip("/")))
    for n in ck.notes:
        print(f"  {n}")
    if ck.problems:
        print(f"FAIL {name}: {len(ck.problems)} mismatch(es)")
        for p in ck.problems:
            print(f"  - {p}")
        if ck.exp.get("assumptions"):
            print("  note: this case relies on assumptions about unspecified behaviour:")
            for a in ck.exp["assumptions"]:
                print(f"    * {a}")
        return 1
    print(f"PASS {name}: summary and {len(ck.exp['outputs'])} output packet(s) match")
    return 0


if __name__ == "__main__":
    sys.exit(main())
