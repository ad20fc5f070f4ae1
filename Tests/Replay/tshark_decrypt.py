#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Decrypts the ESP in a capture with tshark, using `espd keys --format wireshark` lines.

    tshark_decrypt.py CONFIG CAPTURE KEYS_FILE [--casedir CASEDIR] [--wildcard-addresses] [-v]

KEYS_FILE is Wireshark's esp_sa UAT format (what `espd keys --config CONFIG --format wireshark`
prints). It is installed as the esp_sa file of a throw-away personal configuration directory
(HOME and XDG_CONFIG_HOME point to a temporary directory, so the user's own Wireshark settings
are neither read nor touched), and tshark runs with ESP decryption and authentication checking on.
ESP-in-UDP on port 4500 is decoded by Wireshark's `udpencap` dissector (registered on udp.port
4500 by default; source or destination port 4500 is enough, so NAT ports on the other side work).

For every ESP packet it reports whether tshark authenticated (ICV good) and decrypted it. With
--casedir, the decrypted payloads are also compared with expected.json: for espd's OUT.pcap the
encapsulated outputs (in order), for the case's own in.pcap the packets expected to be
decapsulated (tunnel mode).

Known limits of tshark 4.0.x (Debian 12), see WIRESHARK.md: no ChaCha20-Poly1305 for ESP (those
lines are reported and skipped), and no ESN (with esn=true the ICV never verifies: the packet is
still decrypted and compared, but reported as "ICV not verifiable (ESN)").

Exit status: 0 if every ESP packet that tshark can handle was authenticated, decrypted and (with
--casedir) matched; 1 otherwise; 2 on usage errors or if tshark is missing.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from espcommon import load_config  # noqa: E402
from wireshark_keys import parse_lines  # noqa: E402

FIELDS = ["frame.number", "frame.protocols", "ip.src", "ip.dst", "ipv6.src", "ipv6.dst", "udp.srcport", "udp.dstport",
          "esp.spi", "esp.sequence", "esp.icv_good", "esp.icv_bad", "esp.protocol", "esp.pad_len",
          "esp.contained_data"]

# Encryption names tshark 4.0.17 accepts in esp_sa (it rejects the line otherwise).
TSHARK40_ENC = {"NULL", "TripleDES-CBC [RFC2451]", "AES-CBC [RFC3602]", "AES-CTR [RFC3686]",
                "DES-CBC [RFC2405]", "CAST5-CBC [RFC2144]", "BLOWFISH-CBC [RFC2451]", "TWOFISH-CBC",
                "AES-GCM with 8 octet ICV [RFC4106]", "AES-GCM with 12 octet ICV [RFC4106]",
                "AES-GCM with 16 octet ICV [RFC4106]"}


def tshark_path() -> str | None:
    return shutil.which("tshark")


# Protocols left enabled: everything else is disabled in the throw-away profile, so that no
# dissector of the *decrypted* payload (DNS, L2TP, TCP options, ...) can throw an exception; tshark
# 4.0 adds the ICV status after dissecting the payload, and an exception there hides it.
KEEP_PROTOCOLS = {"frame", "eth", "ethertype", "vlan", "sll", "raw", "ip", "ipv6", "udp",
                  "udpencap", "esp", "data", "pcap_pktdata"}


def all_protocols() -> list[str]:
    p = subprocess.run([tshark_path(), "-G", "protocols"], capture_output=True, text=True)
    return [line.split("\t")[2] for line in p.stdout.splitlines() if line.count("\t") >= 2]


def run_tshark(capture: str, uat_lines: list[str], udpencap_ports=()) -> tuple[list[dict], str]:
    """Runs tshark with these esp_sa lines; returns (rows, stderr)."""
    with tempfile.TemporaryDirectory(prefix="espd-tshark-") as home:
        wsdir = os.path.join(home, "wireshark")
        os.makedirs(wsdir)
        with open(os.path.join(wsdir, "esp_sa"), "w") as f:
            f.write("".join(line + "\n" for line in uat_lines))
        with open(os.path.join(wsdir, "disabled_protos"), "w") as f:
            f.write("".join(p + "\n" for p in all_protocols() if p not in KEEP_PROTOCOLS))
        env = dict(os.environ, HOME=home, XDG_CONFIG_HOME=home)
        cmd = [tshark_path(), "-n", "-r", capture,
               "-o", "esp.enable_encryption_decode:TRUE",
               "-o", "esp.enable_authentication_check:TRUE",
               "-o", "esp.do_esp_sequence_analysis:FALSE"]
        for port in sorted(set(udpencap_ports) - {4500}):
            cmd += ["-d", f"udp.port=={port},udpencap"]
        cmd += ["-Y", "esp", "-T", "fields", "-E", "separator=/t", "-E", "occurrence=a"]
        for fl in FIELDS:
            cmd += ["-e", fl]
        p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    stderr = "\n".join(line for line in p.stderr.splitlines() if "Running as user" not in line and line.strip())
    if p.returncode != 0 and "cut short in the middle of a packet" not in stderr:
        raise RuntimeError(f"tshark failed ({p.returncode}): {stderr}")
    rows = []
    for line in p.stdout.splitlines():
        vals = line.split("\t")
        vals += [""] * (len(FIELDS) - len(vals))
        rows.append({k: v for k, v in zip(FIELDS, vals)})
    return rows, stderr


def first(v: str) -> str:
    return v.split(",")[0] if v else ""


def load_expectations(casedir: str | None, mode: str) -> dict[int, dict] | None:
    """frame number in the capture -> what it must be.

    mode "out" (espd's OUT.pcap): the encapsulated outputs, in order.
    mode "in" (the case's in.pcap): per input frame, its expected verdict and, when decapsulated,
    the payload the ESP must carry (tunnel: the inner packet; transport: the UDP segment, whose
    checksum the receiver rewrites, so it is not compared)."""
    if not casedir:
        return None
    with open(os.path.join(casedir, "expected.json")) as f:
        exp = json.load(f)
    out: dict[int, dict] = {}
    if mode == "in":
        for fr in exp["frames"]:
            out[fr["frame"]] = {"verdict": fr["verdict"], "desc": f"input frame {fr['frame']} ({fr['note']})"}
        for o in exp["outputs"]:
            if o["kind"] == "decap":
                pkt = bytes.fromhex(o["hex"])
                if o.get("mode") == "transport":
                    ihl = (pkt[0] & 15) * 4 if pkt[0] >> 4 == 4 else 40
                    out[o["frame"]].update(mode="transport", payload=pkt[ihl:])
                else:
                    out[o["frame"]].update(mode="tunnel", payload=pkt)
    else:
        for i, o in enumerate(exp["outputs"]):
            if o["kind"] == "encap":
                out[i + 1] = {"verdict": "encapsulated", "mode": o.get("mode", "tunnel"),
                              "payload": bytes.fromhex(o["inner_hex"]),
                              "desc": f"expected output #{i + 1} (from input frame {o['frame']})"}
    return out


def outer_endpoints(r: dict) -> tuple[str, str]:
    layers = r["frame.protocols"].split(":")
    first_ip = next((x for x in layers if x in ("ip", "ipv6")), "ip")
    return first(r[f"{first_ip}.src"]), first(r[f"{first_ip}.dst"])


def same_payload(mode: str, got: bytes, want: bytes) -> bool:
    if mode == "tunnel":
        return got == want
    # transport: UDP checksum may legitimately differ (NAT fix-up / pseudo-header of either side)
    return len(got) == len(want) and got[:6] == want[:6] and got[8:] == want[8:]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("config")
    ap.add_argument("capture")
    ap.add_argument("keys_file")
    ap.add_argument("--casedir", help="compare with CASEDIR/expected.json")
    ap.add_argument("--mode", choices=["out", "in"],
                    help="capture is espd's OUT.pcap (default) or the case's in.pcap (default if its "
                         "name starts with 'in.')")
    ap.add_argument("--wildcard-addresses", action="store_true",
                    help="replace SRC/DST of every line by * (e.g. when a NAT moved the peer)")
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args()
    if not tshark_path():
        print("tshark_decrypt.py: tshark not found", file=sys.stderr)
        return 2
    mode = a.mode or ("in" if os.path.basename(a.capture).startswith("in.") else "out")
    cfg = load_config(a.config)
    with open(a.keys_file) as f:
        parsed, problems = parse_lines(f.read())
    fails = list(problems)
    uat, skipped_spis = [], {}
    for n, fields in parsed:
        if a.wildcard_addresses:
            fields[1] = fields[2] = "*"
        if fields[4] not in TSHARK40_ENC:
            try:
                skipped_spis[int(fields[3], 16)] = fields[4]
            except ValueError:
                pass
            continue
        uat.append(",".join(f'"{x}"' for x in fields))
    rows, stderr = run_tshark(a.capture, uat, [p for _, p in cfg.listen])
    for m in re.finditer(r"esp_sa:(\d+): (.*)", stderr):
        fails.append(f"tshark rejected esp_sa line {m.group(1)}: {m.group(2)}  [{uat[int(m.group(1)) - 1]}]")
    if stderr and not re.search(r"esp_sa:\d+", stderr):
        print(f"tshark stderr: {stderr}")
    want = load_expectations(a.casedir, mode)
    ok = skipped = unverifiable = 0
    seen_frames = set()
    for r in rows:
        fr = int(r["frame.number"])
        seen_frames.add(fr)
        spi = int(r["esp.spi"], 16) if r["esp.spi"] else 0
        seq = first(r["esp.sequence"])
        src, dst = outer_endpoints(r)
        where = (f"frame {fr} {src}:{first(r['udp.srcport']) or '-'} -> {dst}:{first(r['udp.dstport']) or '-'} "
                 f"SPI 0x{spi:08x} seq {seq}")
        w = want.get(fr) if want is not None else {"verdict": "encapsulated" if mode == "out" else None}
        if w is None:
            fails.append(f"{where}: an ESP packet where {os.path.basename(a.casedir.rstrip('/'))} expects none")
            continue
        verdict = w.get("verdict")
        tun, sa = cfg.sa_by_spi(spi, "out" if mode == "out" else "in")
        if sa is None:
            tun, sa = cfg.sa_by_spi(spi, "in" if mode == "out" else "out")
        good, bad = first(r["esp.icv_good"]), first(r["esp.icv_bad"])
        data_hex = first(r["esp.contained_data"])
        nh = first(r["esp.protocol"])
        must_decrypt = verdict in ("encapsulated", "decapsulated") or (want is None and mode == "in")
        if sa is None:
            (fails.append if must_decrypt else lambda x: print(f"  info {x}"))(f"{where}: SPI not in the config")
            continue
        if spi in skipped_spis or not sa.alg.tshark40_ok:
            skipped += 1
            print(f"  skip {where}: {sa.alg.name} is not supported by this tshark's ESP dissector")
            continue
        if not must_decrypt:
            # fixture validation of deliberately bad packets: what does Wireshark think?
            status = "ICV good" if good == "1" else "ICV bad" if bad == "1" else "not decrypted"
            if verdict == "drop:auth_failed" and bad != "1" and not sa.esn:
                fails.append(f"{where}: expected {verdict}, but tshark says: {status}")
            elif verdict == "drop:bad_padding" and good != "1" and not sa.esn:
                fails.append(f"{where}: expected {verdict} (valid ICV), but tshark says: {status}")
            elif a.verbose:
                print(f"  info {where}: {verdict}; tshark: {status}")
            continue
        if good == "1":
            status = "ICV good"
        elif sa.esn and data_hex:
            status = "ICV not verifiable (ESN, unsupported by tshark 4.0)"
            unverifiable += 1
        elif not data_hex:
            fails.append(f"{where}: tshark did not decrypt it (no matching esp_sa line? family/addresses/SPI)")
            continue
        else:
            fails.append(f"{where}: tshark says the ICV is bad (icv_good={good!r} icv_bad={bad!r})")
            continue
        data = bytes.fromhex(data_hex.replace(":", ""))
        exp_nh = None
        if tun is not None:
            exp_nh = ({4: 0x04, 6: 0x29}.get(data[0] >> 4) if tun.mode == "tunnel" and data else 0x11)
        if exp_nh is not None and (not nh or int(nh, 16) != exp_nh):
            fails.append(f"{where}: next header {nh or '(none)'}, expected 0x{exp_nh:02x}")
            continue
        if want is not None and "payload" in w:
            if not same_payload(w["mode"], data, w["payload"]):
                fails.append(f"{where}: decrypted payload differs from {w['desc']}\n"
                             f"    tshark: {data.hex()}\n    want:   {w['payload'].hex()}")
                continue
            status += ", payload matches expected.json"
        ok += 1
        if a.verbose or "ESN" in status:
            print(f"  ok   {where}: {status}, next header {nh}, {len(data)} bytes")
    if want is not None:
        for fr, w in sorted(want.items()):
            if "payload" in w and fr not in seen_frames:
                fails.append(f"frame {fr}: tshark saw no ESP there, but {w['desc']} expects one")
    print(f"tshark: {ok} ESP packet(s) decrypted"
          + (f" ({unverifiable} without ICV check: ESN)" if unverifiable else "")
          + (f", {skipped} skipped (algorithm unsupported by tshark)" if skipped else "")
          + f", {len(fails)} problem(s)")
    for f_ in fails:
        print(f"  - {f_}")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
