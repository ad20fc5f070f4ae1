# SPDX-License-Identifier: Apache-2.0
"""Generate Tests/ESPTests/Vectors/scapy-cbc-hmac.json: tunnel-mode ESP packets built by scapy's SecurityAssociation with fixed keys and IVs."""

# Usage: python3 scripts/vectors/make_scapy_vectors.py
# Needs: pip install scapy cryptography
#
# scapy (scapy.layers.ipsec) is used as the independent ESP implementation
# that builds the packets; every packet is then (a) decrypted again by scapy
# and compared with the inner packet, and (b) rebuilt and checked from
# scratch with pyca/cryptography by verify_vectors.py, which follows the RFCs
# rather than scapy (RFC 4303 sections 2.2.1/3.3.2.1 for the ESN high half in
# the HMAC ICV, RFC 4106 section 5 / RFC 7634 section 2.1 for the AEAD AAD).
# The file is written only if every check passes.  All keys, IVs, addresses
# and payloads are fixed below, so the output is reproducible byte for byte.

import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
OUT = os.path.join(ROOT, "Tests", "ESPTests", "Vectors", "scapy-cbc-hmac.json")
sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, HERE)
import verify_vectors  # noqa: E402

import scapy  # noqa: E402
from scapy.all import IP, IPv6, UDP, Raw, raw  # noqa: E402
from scapy.layers.ipsec import ESP, SecurityAssociation  # noqa: E402

# Fixed key material (patterns chosen to be recognisable in a hex dump).
AES128_KEY = bytes(range(0x10, 0x20))
AES256_KEY = bytes(range(0x40, 0x60))
AUTH_KEY = bytes(range(0x80, 0xA0))  # 32 octets for HMAC-SHA-256-128 (RFC 4868)
SHA1_KEY = bytes(range(0xC0, 0xD4))  # 20 octets for HMAC-SHA-1-96 (RFC 2404 section 3)
SHA384_KEY = bytes(range(0xD0, 0x100))  # 48 octets for HMAC-SHA-384-192 (RFC 4868)
SHA512_KEY = bytes(range(0x30, 0x70))  # 64 octets for HMAC-SHA-512-256 (RFC 4868)
GCM128_KEYMAT = bytes(range(0x00, 0x10)) + bytes.fromhex("cafebabe")  # key || salt
GCM256_KEYMAT = bytes(range(0x20, 0x40)) + bytes.fromhex("dec0de01")
CHACHA_KEYMAT = bytes(range(0x60, 0x80)) + bytes.fromhex("5a17c0de")

ALGS = {
    # name: (scapy crypt_algo, encryption key material, scapy auth_algo, auth key)
    "aes128-sha256": ("AES-CBC", AES128_KEY, "SHA2-256-128", AUTH_KEY),
    "aes256-sha256": ("AES-CBC", AES256_KEY, "SHA2-256-128", AUTH_KEY),
    "null-sha256": ("NULL", b"", "SHA2-256-128", AUTH_KEY),
    "aes128-sha1": ("AES-CBC", AES128_KEY, "HMAC-SHA1-96", SHA1_KEY),
    "aes256-sha1": ("AES-CBC", AES256_KEY, "HMAC-SHA1-96", SHA1_KEY),
    "aes128-sha384": ("AES-CBC", AES128_KEY, "SHA2-384-192", SHA384_KEY),
    "aes256-sha384": ("AES-CBC", AES256_KEY, "SHA2-384-192", SHA384_KEY),
    "aes256-sha512": ("AES-CBC", AES256_KEY, "SHA2-512-256", SHA512_KEY),
    "aes128gcm16": ("AES-GCM", GCM128_KEYMAT, None, None),
    "aes256gcm16": ("AES-GCM", GCM256_KEYMAT, None, None),
    "chacha20poly1305": ("CHACHA20-POLY1305", CHACHA_KEYMAT, None, None),
}

OUTER4 = dict(src="192.0.2.1", dst="192.0.2.2")
OUTER6 = dict(src="2001:db8:0:1::1", dst="2001:db8:0:2::1")


def inner_packet(family, n, ident):
    """A UDP datagram carrying n octets of data (0x00, 0x01, ...)."""
    data = bytes(i & 0xFF for i in range(n))
    if family == "ipv4":
        pkt = IP(src="198.51.100.10", dst="203.0.113.20", id=ident, ttl=64) / UDP(sport=4000 + ident, dport=5000)
    else:
        pkt = IPv6(src="2001:db8:a::10", dst="2001:db8:b::20", hlim=64) / UDP(sport=4000 + ident, dport=5000)
    if n:
        pkt = pkt / Raw(data)
    # Freeze lengths and checksums.
    return pkt.__class__(raw(pkt))


# (alg, inner family, esn, seq (full 64-bit), payload data length)
CASES = [
    ("aes128-sha256", "ipv4", False, 1, 0),
    ("aes128-sha256", "ipv6", False, 0x2A, 13),
    ("aes128-sha256", "ipv4", True, (1 << 32) | 5, 40),
    ("aes128-sha256", "ipv6", True, (0xDEADBEEF << 32) | 0xFFFFFFFE, 7),
    ("aes256-sha256", "ipv4", False, 0xFFFFFFFE, 16),
    ("aes256-sha256", "ipv6", False, 3, 1),
    ("aes256-sha256", "ipv4", True, (2 << 32) | 1, 31),
    ("aes256-sha256", "ipv6", True, (0x7FFFFFFF << 32) | 0x80000000, 24),
    ("null-sha256", "ipv4", False, 7, 2),
    ("null-sha256", "ipv6", False, 0x10000, 40),
    ("null-sha256", "ipv4", True, (1 << 32) | 9, 5),
    ("null-sha256", "ipv6", True, (0xFFFFFFFF << 32) | 0xFFFFFFFF, 0),
    ("aes128gcm16", "ipv4", False, 1, 11),
    ("aes128gcm16", "ipv6", True, (1 << 32) | 2, 20),
    ("aes256gcm16", "ipv4", True, (0x01020304 << 32) | 0x05060708, 33),
    ("aes256gcm16", "ipv6", False, 0x64, 0),
    ("chacha20poly1305", "ipv4", False, 5, 17),
    ("chacha20poly1305", "ipv6", True, (3 << 32) | 0xFFFFFFF0, 40),
    # Added with the SHA-1/384/512 transforms (appended: the cases above keep their SPIs and bytes).
    ("aes128-sha1", "ipv4", False, 1, 0),
    ("aes128-sha1", "ipv6", True, (1 << 32) | 7, 21),
    ("aes256-sha1", "ipv4", True, (0xDEADBEEF << 32) | 0xFFFFFFFE, 16),
    ("aes256-sha1", "ipv6", False, 0x31337, 3),
    ("aes128-sha384", "ipv4", False, 9, 33),
    ("aes128-sha384", "ipv6", True, (2 << 32) | 1, 0),
    ("aes256-sha384", "ipv4", True, (1 << 32) | 0x80000000, 7),
    ("aes256-sha384", "ipv6", False, 0xFFFFFFFF, 40),
    ("aes256-sha512", "ipv4", False, 2, 12),
    ("aes256-sha512", "ipv6", True, (0x7FFFFFFF << 32) | 3, 29),
    ("aes256-sha512", "ipv4", True, (5 << 32) | 0xFFFFFFF0, 1),
]

SPI_BASE = 0x5CA70000


def make_vector(index, alg, family, esn, seq, n):
    crypt_algo, keymat, auth_algo, auth_key = ALGS[alg]
    spi = SPI_BASE + index
    seq_hi, seq_lo = seq >> 32, seq & 0xFFFFFFFF
    assert seq_lo != 0  # scapy treats seq_num=0 as "use the SA counter"
    assert esn or seq_hi == 0
    if crypt_algo == "AES-CBC":
        iv = bytes((0xA0 + index + j) & 0xFF for j in range(16))
    elif crypt_algo == "NULL":
        iv = b""
    else:
        iv = bytes((0xB0 + index + j) & 0xFF for j in range(8))
    tunnel = IP(**OUTER4) if family == "ipv4" else IPv6(**OUTER6)
    kwargs = dict(spi=spi, crypt_algo=crypt_algo, tunnel_header=tunnel, esn_en=esn, esn=seq_hi)
    if keymat:
        kwargs["crypt_key"] = keymat
    if auth_algo:
        kwargs["auth_algo"] = auth_algo
        kwargs["auth_key"] = auth_key
    sa = SecurityAssociation(ESP, **kwargs)
    inner = inner_packet(family, n, index + 1)
    payload = raw(inner)
    enc = sa.encrypt(inner, seq_num=seq_lo, iv=iv)
    esp = enc[ESP]
    packet = raw(esp)

    # Scapy round trip (verifies its own ICV, then decrypts).
    dec = sa.decrypt(enc)
    assert raw(dec) == payload, "scapy round trip changed the inner packet"

    # Recover padding / next header with scapy's own decryption primitive.
    clone = esp.copy()
    icv_len = sa.auth_algo.icv_size if auth_algo else 0
    if icv_len:
        clone.data = clone.data[:-icv_len]
    plain = sa.crypt_algo.decrypt(sa, clone, sa.crypt_key, sa.crypt_icv_size, esn_en=esn, esn=seq_hi)
    assert raw(plain.data) == payload
    assert plain.padlen == len(plain.padding)
    expected_nh = 4 if family == "ipv4" else 41
    assert plain.nh == expected_nh, (plain.nh, expected_nh)

    v = {
        "name": "%d: %s, tunnel mode, inner %s/UDP with %d data octets, %s seq 0x%x" % (
            index + 1, alg, "IPv4" if family == "ipv4" else "IPv6", n,
            "ESN" if esn else "32-bit", seq),
        "alg": alg,
        "key": keymat.hex(),
    }
    if auth_algo:
        v["auth_key"] = auth_key.hex()
    v.update({
        "spi": "%08x" % spi,
        "seq": seq,
        "esn": esn,
        "iv": iv.hex(),
        "payload": payload.hex(),
        "padding": bytes(plain.padding).hex(),
        "next_header": plain.nh,
        "packet": packet.hex(),
        "mode": "tunnel",
        "inner": family,
    })
    return v


def main():
    vectors = [make_vector(i, *c) for i, c in enumerate(CASES)]
    obj = {
        "source": "Generated with scapy %s (scapy.layers.ipsec.SecurityAssociation, tunnel mode) by "
                  "scripts/vectors/make_scapy_vectors.py; independently re-verified with pyca/cryptography "
                  "by scripts/vectors/verify_vectors.py" % scapy.VERSION,
        "notes": (
            "Not published test vectors: these are packets produced by an independent ESP implementation "
            "(scapy) from fixed keys/IVs, each cross-checked against an RFC-based recomputation with "
            "pyca/cryptography. Algorithms: AES-CBC (RFC 3602) or NULL (RFC 2410) with HMAC-SHA-256-128 "
            "(RFC 4868, 32-octet key, 16-octet ICV); AES-CBC with HMAC-SHA-1-96 (RFC 2404, 20-octet "
            "key, 12-octet ICV), HMAC-SHA-384-192 (RFC 4868, 48-octet key, 24-octet ICV) or "
            "HMAC-SHA-512-256 (RFC 4868, 64-octet key, 32-octet ICV); AES-GCM with 16-octet ICV (RFC 4106) and "
            "ChaCha20-Poly1305 (RFC 7634), whose 'key' is key || 4-octet salt. ESN handling checked: "
            "for HMAC scapy computes the ICV over SPI | seq_low | IV | ciphertext followed by seq_high "
            "(RFC 4303 2.2.1/3.3.2.1; seq_high is not transmitted); for AEAD it uses "
            "AAD = SPI || seq_high || seq_low (RFC 4106 section 5, RFC 7634 section 2.1). No deviation "
            "from the RFCs was found. Padding is scapy's default 01 02 03 ..., aligned to the cipher "
            "block (16 for AES-CBC) or to 4 octets (NULL, GCM, ChaCha20). Tunnel mode: next_header is 4 "
            "(IPv4 inner) or 41 (IPv6 inner); outer headers (not part of 'packet') were "
            "192.0.2.1 -> 192.0.2.2 and 2001:db8:0:1::1 -> 2001:db8:0:2::1. 'mode' and 'inner' are "
            "informational. IVs are fixed test patterns, not random: never reuse them in production."),
        "vectors": vectors,
    }
    failures = verify_vectors.verify_object(os.path.basename(OUT), obj)
    if failures:
        print("refusing to write %s: %d failure(s)" % (OUT, failures))
        return 1
    with open(OUT, "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")
    print("wrote %s (%d vectors)" % (os.path.relpath(OUT, ROOT), len(vectors)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
