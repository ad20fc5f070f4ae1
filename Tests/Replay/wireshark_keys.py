#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Reference for `espd keys --config CONFIG --format wireshark`, and a checker for its output.

    wireshark_keys.py CONFIG                 # print the reference esp_sa lines
    wireshark_keys.py CONFIG --check KEYS    # check espd's lines against CONFIG; exit 0/1
    wireshark_keys.py CONFIG --direction in  # only inbound (or out) SAs

Line format (Wireshark's esp_sa UAT file, one SA per line, eight quoted fields):
    "IPv4","SRC","DST","0xSPI","<encryption name>","0x<key>","<authentication name>","0x<auth key>"
Names and key layout are the ones verified with tshark 4.0.17 in WIRESHARK.md.

--check accepts any address that is either "*" or the address this script would print, SPIs with
or without leading zeros, hex in either case, and "" or "0x" for an absent key; it requires one
line per SA of the config (no more, no fewer) with the right names and keys.
"""
from __future__ import annotations

import argparse
import ipaddress
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from espcommon import load_config  # noqa: E402

LINE_RE = re.compile(r'^\s*' + ",".join([r'"([^"]*)"'] * 8) + r'\s*$')


def local_address(cfg, t, fam: int | None):
    if t.local:
        return t.local
    for addr, _ in cfg.listen:
        a = ipaddress.ip_address(addr)
        if (fam is None or a.version == fam) and not a.is_unspecified:
            return addr
    return None


def reference(cfg, direction="both") -> list[dict]:
    """One dict per SA: spi, dir, family, src, dst, enc, key, auth, auth_key, alg."""
    out = []
    for t in cfg.tunnels:
        peer = t.peer[0] if t.peer else None
        fam = ipaddress.ip_address(peer).version if peer else (
            ipaddress.ip_address(t.local).version if t.local else None)
        local = local_address(cfg, t, fam)
        if fam is None and local:
            fam = ipaddress.ip_address(local).version
        famname = "IPv6" if fam == 6 else "IPv4"
        sas = []
        if direction in ("both", "in"):
            sas += [("in", sa, peer, local) for sa in t.inbound]
        if direction in ("both", "out"):
            sas.append(("out", t.outbound, local, peer))
        for d, sa, src, dst in sas:
            a = sa.alg
            out.append(dict(
                tunnel=t.name, dir=d, spi=sa.spi, alg=a.name, family=famname,
                src=src or "*", dst=dst or "*", enc=a.ws_encryption,
                key="0x" + sa.key.hex() if sa.key else "",
                auth=a.ws_authentication, auth_key="0x" + sa.auth_key.hex() if sa.auth_key else "",
                esn=sa.esn, tshark40_ok=a.tshark40_ok))
    return out


def fmt(r: dict) -> str:
    return ",".join(f'"{x}"' for x in (r["family"], r["src"], r["dst"], f"0x{r['spi']:08x}", r["enc"],
                                        r["key"], r["auth"], r["auth_key"]))


def parse_lines(text: str) -> tuple[list, list]:
    """(parsed lines as (lineno, fields), problems)."""
    lines, problems = [], []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        m = LINE_RE.match(line)
        if not m:
            problems.append(f"line {n}: not eight quoted comma-separated fields: {line!r}")
            continue
        lines.append((n, list(m.groups())))
    return lines, problems


def same_address(a: str, b: str) -> bool:
    try:
        return ipaddress.ip_address(a) == ipaddress.ip_address(b)
    except ValueError:
        return a == b


def norm_key(k: str) -> str:
    k = k.strip().lower()
    if k in ("", "0x"):
        return ""
    return k if k.startswith("0x") else "(not 0x-prefixed) " + k


def check(cfg, text: str, direction="both") -> list[str]:
    lines, problems = parse_lines(text)
    ref = {r["spi"]: r for r in reference(cfg, direction)}
    seen = {}
    for n, f in lines:
        fam, src, dst, spi_s, enc, key, auth, akey = f
        try:
            spi = int(spi_s, 16) if spi_s.lower().startswith("0x") else None
        except ValueError:
            spi = None
        if spi is None:
            problems.append(f"line {n}: SPI {spi_s!r} is not 0x-prefixed hex")
            continue
        r = ref.get(spi)
        if r is None:
            problems.append(f"line {n}: SPI 0x{spi:08x} is not an SA of the config")
            continue
        if spi in seen:
            problems.append(f"line {n}: SPI 0x{spi:08x} already on line {seen[spi]}")
        seen[spi] = n
        what = f"line {n} (SPI 0x{spi:08x}, {r['dir']}bound SA of tunnel {r['tunnel']}, {r['alg']})"
        if fam not in ("IPv4", "IPv6"):
            problems.append(f"{what}: protocol {fam!r}, expected \"IPv4\" or \"IPv6\" (Wireshark rejects others, e.g. \"Any\")")
        elif fam != r["family"]:
            problems.append(f"{what}: protocol {fam}, expected {r['family']} (the family of the SA's addresses)")
        for label, got, want in (("source", src, r["src"]), ("destination", dst, r["dst"])):
            if got != "*" and not same_address(got, want):
                problems.append(f"{what}: {label} {got!r}, expected {want!r} or \"*\"")
        if enc != r["enc"]:
            problems.append(f"{what}: encryption name {enc!r}, expected {r['enc']!r}")
        if auth != r["auth"]:
            problems.append(f"{what}: authentication name {auth!r}, expected {r['auth']!r}")
        if norm_key(key) != norm_key(r["key"]):
            problems.append(f"{what}: encryption key {key!r}, expected {r['key']!r}"
                            + (" (AES-GCM/ChaCha20 keys include the 4-byte salt)" if r["alg"] != "null-sha256" else ""))
        if norm_key(akey) != norm_key(r["auth_key"]):
            problems.append(f"{what}: authentication key {akey!r}, expected {r['auth_key']!r}")
    for spi, r in ref.items():
        if spi not in seen:
            problems.append(f"missing line for SPI 0x{spi:08x} ({r['dir']}bound SA of tunnel {r['tunnel']})")
    return problems


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("config")
    ap.add_argument("--check", metavar="KEYS_FILE")
    ap.add_argument("--direction", choices=["both", "in", "out"], default="both")
    a = ap.parse_args()
    cfg = load_config(a.config)
    if not a.check:
        for r in reference(cfg, a.direction):
            print(fmt(r))
        return 0
    with open(a.check) as f:
        problems = check(cfg, f.read(), a.direction)
    if problems:
        print(f"FAIL keys: {len(problems)} problem(s)")
        for p in problems:
            print(f"  - {p}")
        return 1
    print(f"PASS keys: one correct esp_sa line per SA ({len(reference(cfg, a.direction))})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
