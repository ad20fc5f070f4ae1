#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Tests the test harness itself, without espd:

    selftest.py [--keep DIR] [--no-tshark]

1. make_fixtures.py is reproducible (two runs give byte-identical files).
2. refmodel.py (a small Python model of `espd replay` written from INTERFACE.md) processes every
   in.pcap with its config.json: check.py must PASS, and its per-packet verdicts must equal
   expected.json's. This validates that the fixtures are consistent with their configs.
3. synth_perfect.py's output passes check.py; a dozen corruptions of it must FAIL.
4. ESN fixtures are re-verified with an ESP implementation independent of scapy (pyca/cryptography
   and hmac directly: RFC 4106/7634 AAD SPI|seq_hi|seq_lo, RFC 4303 ICV over ...|seq_hi).
5. tshark (Wireshark's own ESP code) decrypts every fixture's in.pcap with the reference esp_sa
   lines and agrees with expected.json (payloads of decapsulated packets, ICV good for
   bad_padding and ICV bad for auth_failed), and decrypts refmodel's encapsulated output.
6. wireshark_keys.py --check accepts the reference lines and rejects broken ones; tshark rejects a
   ChaCha20 line (unsupported by 4.0) and "Any" as a protocol.
"""
from __future__ import annotations

import argparse
import filecmp
import glob
import hashlib
import hmac
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from espcommon import (  # noqa: E402
    LINKTYPE_RAW, esp_decrypt, l2_strip, load_config, read_capture, write_pcap)

PY = sys.executable
failures: list[str] = []


def run(*args, expect=0, quiet=True) -> subprocess.CompletedProcess:
    p = subprocess.run([PY, *args], capture_output=True, text=True)
    if p.returncode != expect:
        failures.append(f"{' '.join(os.path.basename(a) for a in args)}: exit {p.returncode}, expected {expect}\n"
                        f"{p.stdout}{p.stderr}")
    elif not quiet:
        print(p.stdout, end="")
    return p


def step(msg):
    print(f"== {msg}", flush=True)


def in_file(case: str) -> str:
    return glob.glob(os.path.join(case, "in.pcap*"))[0]


def corruptions(case: str, out_pcap: str, summary: str, tmp: str):
    """Yields (description, out_pcap, summary) variants that check.py must reject."""
    lt, frames = read_capture(out_pcap)
    with open(summary) as f:
        s = json.load(f)
    exp = json.load(open(os.path.join(case, "expected.json")))
    n = 0

    def variant(desc, frs=None, summ=None, linktype=LINKTYPE_RAW):
        nonlocal n
        n += 1
        p, j = os.path.join(tmp, f"c{n}.pcap"), os.path.join(tmp, f"c{n}.json")
        write_pcap(p, linktype, frames if frs is None else frs)
        with open(j, "w") as f:
            json.dump(s if summ is None else summ, f)
        return desc, p, j

    if frames:
        yield variant("last output packet missing", frames[:-1])
        yield variant("an extra output packet", frames + [frames[0]])
        yield variant("link type Ethernet instead of RAW", linktype=1)
        i = len(frames) // 2
        b = bytearray(frames[i])
        b[-1] ^= 0x01
        yield variant(f"last byte of output {i + 1} flipped", frames[:i] + [bytes(b)] + frames[i + 1:])
    if len(frames) >= 2 and frames[0] != frames[1]:
        yield variant("outputs 1 and 2 swapped", [frames[1], frames[0]] + frames[2:])
    for k in ("packets", "decapsulated", "encapsulated", "passed"):
        if s.get(k):
            yield variant(f"summary {k} off by one", summ=dict(s, **{k: s[k] + 1}))
            break
    yield variant("summary: an unexpected drop reason", summ=dict(s, drops=dict(s["drops"], crypto_failure=1)))
    if s["drops"]:
        r = next(iter(s["drops"]))
        d = dict(s["drops"])
        del d[r]
        yield variant(f"summary: drops.{r} missing", summ=dict(s, drops=d))
    # encap-specific: wrong port, wrong seq, corrupted ciphertext
    enc = [i for i, o in enumerate(exp["outputs"]) if o["kind"] == "encap"]
    if enc:
        i = enc[0]
        fr = bytearray(frames[i])
        ihl = 20 if fr[0] >> 4 == 4 else 40
        b = bytearray(fr)
        struct.pack_into("!H", b, ihl + 2, struct.unpack("!H", b[ihl + 2:ihl + 4])[0] ^ 1)
        b[ihl + 6:ihl + 8] = b"\0\0" if fr[0] >> 4 == 4 else b[ihl + 6:ihl + 8]
        yield variant("encap: wrong UDP destination port", frames[:i] + [bytes(b)] + frames[i + 1:])
        b = bytearray(fr)
        struct.pack_into("!I", b, ihl + 12, (struct.unpack("!I", b[ihl + 12:ihl + 16])[0] + 1) & 0xFFFFFFFF)
        yield variant("encap: sequence number + 1 (ICV then fails too)", frames[:i] + [bytes(b)] + frames[i + 1:])
        b = bytearray(fr)
        b[ihl + 8 + 8 + 20] ^= 0x40
        yield variant("encap: ciphertext bit flipped", frames[:i] + [bytes(b)] + frames[i + 1:])
        if len(enc) >= 2:
            j = enc[1]
            yield variant("encap: two outputs swapped", frames[:i] + [frames[j]] + frames[i + 1:j] + [frames[i]] + frames[j + 1:]) \
                if frames[i] != frames[j] else None
    dec = [i for i, o in enumerate(exp["outputs"]) if o["kind"] == "decap"]
    if dec:
        i = dec[0]
        b = bytearray(frames[i])
        b[8] = (b[8] - 1) & 0xFF if b[0] >> 4 == 4 else b[8]
        b[7] = (b[7] - 1) & 0xFF if b[0] >> 4 == 6 else b[7]
        if exp["outputs"][i].get("mode") == "tunnel":
            yield variant("decap: TTL/hop limit decremented", frames[:i] + [bytes(b)] + frames[i + 1:])
        b = bytearray(frames[i])
        b[-1] ^= 0xFF
        yield variant("decap: payload byte changed", frames[:i] + [bytes(b)] + frames[i + 1:])


def independent_esn_check(case: str) -> list[str]:
    """Re-verifies ESN packets of a decap case without scapy."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
    cfg = load_config(os.path.join(case, "config.json"))
    exp = json.load(open(os.path.join(case, "expected.json")))
    lt, frames = read_capture(in_file(case))
    problems = []
    for o in exp["outputs"]:
        ip = l2_strip(lt, frames[o["frame"] - 1])
        ihl = (ip[0] & 15) * 4 if ip[0] >> 4 == 4 else 40
        tot = struct.unpack("!H", ip[2:4])[0] if ip[0] >> 4 == 4 else 40 + struct.unpack("!H", ip[4:6])[0]
        esp = ip[ihl + 8:tot]
        spi, lo = struct.unpack("!II", esp[:8])
        _, sa = cfg.sa_by_spi(spi, "in")
        if not sa.esn:
            continue
        # the receiver's view: high word from the window (fixtures stay within 2^32 +/- window)
        hi = 1 if lo < 0x80000000 else 0
        a = sa.alg
        if a.aead:
            key, salt = sa.key[:-4], sa.key[-4:]
            iv, ct = esp[8:16], esp[16:]
            c = ChaCha20Poly1305(key) if a.name == "chacha20poly1305" else AESGCM(key)
            try:
                pt = c.decrypt(salt + iv, ct, struct.pack("!III", spi, hi, lo))
            except Exception:  # noqa: BLE001
                problems.append(f"{case}: frame {o['frame']}: AEAD with ESN AAD (hi={hi}) does not verify")
                continue
        else:
            n = a.icv_len
            icv = hmac.new(sa.auth_key, esp[:-n] + struct.pack("!I", hi), getattr(hashlib, a.hmac_hash)).digest()[:n]
            if icv != esp[-n:]:
                problems.append(f"{case}: frame {o['frame']}: HMAC over ...|seq_hi (hi={hi}) does not verify")
                continue
            pt = esp_decrypt(sa, esp, hi).data
        if a.aead and not pt.startswith(bytes.fromhex(o["hex"])):
            problems.append(f"{case}: frame {o['frame']}: independent decryption differs")
    return problems


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--keep", help="write everything into this directory and keep it")
    ap.add_argument("--no-tshark", action="store_true")
    a = ap.parse_args()
    tmp = a.keep or tempfile.mkdtemp(prefix="espd-replay-selftest-")
    os.makedirs(tmp, exist_ok=True)
    fx, fx2, work = os.path.join(tmp, "fixtures"), os.path.join(tmp, "fixtures2"), os.path.join(tmp, "work")
    for d in (fx, fx2, work):
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)

    step("1. make_fixtures.py is reproducible")
    run(os.path.join(HERE, "make_fixtures.py"), fx)
    run(os.path.join(HERE, "make_fixtures.py"), fx2)
    cmp = filecmp.dircmp(fx, fx2)
    diffs = []

    def walk(c, prefix=""):
        diffs.extend(prefix + x for x in c.diff_files + c.left_only + c.right_only)
        for name, sub in c.subdirs.items():
            walk(sub, prefix + name + "/")
    walk(cmp)
    if diffs:
        failures.append(f"fixtures differ between two runs: {diffs}")
    cases = sorted(glob.glob(os.path.join(fx, "*/")))
    print(f"   {len(cases)} cases")

    step("2. refmodel.py output passes check.py, per-packet verdicts match")
    for case in cases:
        name = os.path.basename(case.rstrip("/"))
        out, summ = os.path.join(work, f"{name}.ref.pcap"), os.path.join(work, f"{name}.ref.json")
        p = subprocess.run([PY, os.path.join(HERE, "refmodel.py"), "replay", "--config", case + "config.json", "--in",
                            in_file(case), "--out", out, "--json", "--verdicts"], capture_output=True, text=True)
        want_rc = json.load(open(case + "expected.json")).get("exit_code", 0)
        if p.returncode != want_rc:
            failures.append(f"refmodel {name}: exit {p.returncode}, expected {want_rc}: {p.stderr}")
            continue
        with open(summ, "w") as f:
            f.write(p.stdout)
        got = [line.split(": ", 1)[1] for line in p.stderr.splitlines() if line.startswith("# ")]
        want = [fr["verdict"] for fr in json.load(open(case + "expected.json"))["frames"]
                if fr["verdict"] != "damaged"]
        if got != want:
            failures.append(f"refmodel {name}: verdicts {got} != expected {want}")
        run(os.path.join(HERE, "check.py"), case, out, summ)
    print(f"   {len(cases)} cases checked")

    step("3. check.py: synthesized perfect output passes, corruptions fail")
    nvar = 0
    for case in cases:
        name = os.path.basename(case.rstrip("/"))
        out, summ = os.path.join(work, f"{name}.perfect.pcap"), os.path.join(work, f"{name}.perfect.json")
        run(os.path.join(HERE, "synth_perfect.py"), case, out, summ)
        run(os.path.join(HERE, "check.py"), case, out, summ)
        vt = os.path.join(work, f"{name}.variants")
        os.makedirs(vt, exist_ok=True)
        for v in corruptions(case, out, summ, vt):
            if v is None:
                continue
            desc, p_, j_ = v
            nvar += 1
            r = subprocess.run([PY, os.path.join(HERE, "check.py"), case, p_, j_], capture_output=True, text=True)
            if r.returncode != 1:
                failures.append(f"check.py accepted a corrupted output ({name}: {desc}):\n{r.stdout}")
    print(f"   {nvar} corrupted variants rejected" if not failures else "   (see failures)")

    step("4. ESN fixtures verify with an independent ESP implementation")
    for case in cases:
        if "-v6" in case and "decap-" in case:
            failures.extend(independent_esn_check(case))

    if not a.no_tshark and shutil.which("tshark"):
        step("5. tshark decrypts the fixtures (in.pcap) and refmodel's encapsulated output")
        for case in cases:
            name = os.path.basename(case.rstrip("/"))
            keys_in = os.path.join(work, f"{name}.keys.in")
            keys = os.path.join(work, f"{name}.keys")
            with open(keys_in, "w") as f:
                f.write(run(os.path.join(HERE, "wireshark_keys.py"), case + "config.json", "--direction", "in").stdout)
            with open(keys, "w") as f:
                f.write(run(os.path.join(HERE, "wireshark_keys.py"), case + "config.json").stdout)
            run(os.path.join(HERE, "tshark_decrypt.py"), case + "config.json", in_file(case), keys_in,
                "--casedir", case, "--wildcard-addresses")
            extra = ["--wildcard-addresses"] if name == "nat-rebinding" else []
            run(os.path.join(HERE, "tshark_decrypt.py"), case + "config.json",
                os.path.join(work, f"{name}.ref.pcap"), keys, "--casedir", case, *extra)
            run(os.path.join(HERE, "wireshark_keys.py"), case + "config.json", "--check", keys)
        step("6. wireshark_keys.py --check rejects broken lines; tshark rejects ChaCha20 and 'Any'")
        case = os.path.join(fx, "encap-tunnel") + "/"
        good = open(os.path.join(work, "encap-tunnel.keys")).read().splitlines()
        bad_variants = {
            "GCM key without salt": [good[0].replace(good[0].split('","')[5], good[0].split('","')[5][:-8])] + good[1:],
            "one line missing": good[1:],
            "protocol Any": [good[0].replace('"IPv4"', '"Any"', 1)] + good[1:],
            "wrong auth name": [line.replace("HMAC-SHA-256-128 [RFC4868]", "HMAC-SHA-256-96 [draft-ietf-ipsec-ciph-sha-256-00]") for line in good],
            "wrong address": [good[0].replace("203.0.113.10", "203.0.113.99")] + good[1:],
        }
        for desc, lines in bad_variants.items():
            kf = os.path.join(work, "badkeys")
            with open(kf, "w") as f:
                f.write("\n".join(lines) + "\n")
            r = subprocess.run([PY, os.path.join(HERE, "wireshark_keys.py"), case + "config.json", "--check", kf],
                               capture_output=True, text=True)
            if r.returncode != 1:
                failures.append(f"wireshark_keys.py --check accepted: {desc}")
        from tshark_decrypt import run_tshark
        errs = []
        for line in ['"IPv4","*","*","0x00000001","ChaCha20 with Poly1305 [RFC7634]","0x00","NULL",""',
                     '"Any","*","*","0x00000002","NULL","","NULL",""']:
            _, err = run_tshark(os.path.join(fx, "decap-chacha20poly1305-v4", "in.pcap"), [line])
            errs.append(err.strip())
        if "invalid value: ChaCha20 with Poly1305 [RFC7634]" not in errs[0] or "invalid value: Any" not in errs[1]:
            failures.append(f"tshark unexpectedly accepted ChaCha20 or Any (a newer tshark? update WIRESHARK.md): {errs!r}")
        else:
            print("   tshark 4.0 rejects them: " + " / ".join(errs))
    else:
        print("== 5./6. skipped (no tshark)")

    if failures:
        print(f"\nSELFTEST FAILED ({len(failures)}):")
        for f_ in failures:
            print(f"- {f_}")
        print(f"(files in {tmp})")
        return 1
    print(f"\nSELFTEST PASSED ({len(cases)} cases" + (f"; files in {tmp})" if a.keep else ")"))
    if not a.keep:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
