# SPDX-License-Identifier: Apache-2.0
"""Re-verify every ESP known-answer vector file in Tests/ESPTests/Vectors with pyca/cryptography and exit non-zero on any mismatch."""

# Usage: python3 scripts/vectors/verify_vectors.py [file.json ...]
# With no arguments every *.json file in Tests/ESPTests/Vectors is checked.
#
# Checks, per ESP packet vector (schema with "packet"):
#   * SPI and the low 32 bits of seq are the first 8 octets of the packet;
#     without ESN seq must fit in 32 bits;
#   * the packet is rebuilt independently from key/iv/payload/padding/
#     next_header (AEAD encryption with nonce = salt || IV and
#     AAD = SPI || [seq_high ||] seq_low per RFC 4106 section 5 / RFC 7634
#     section 2.1; AES-CBC encryption followed by HMAC-SHA-1-96 (RFC 2404),
#     HMAC-SHA-256-128, HMAC-SHA-384-192 or HMAC-SHA-512-256 (RFC 4868) over
#     SPI | seq_low | IV | ciphertext [| seq_high] per RFC 4303 sections
#     2.2.1 and 3.3.2.1) and must equal "packet" byte for byte;
#   * the packet is also decrypted/authenticated in the receive direction and
#     the ESP trailer parsed back into payload, padding and next header;
#   * optional "nonce" and "aad" fields must equal the derived values.
# Per raw AES-CBC vector (schema with "plaintext"/"ciphertext"): encryption
# and decryption must both match; an optional "esp" object must be
# consistent with the raw fields.

import glob
import hashlib
import hmac as std_hmac
import json
import os
import struct
import sys

try:
    from cryptography.hazmat.primitives import hashes, hmac
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
    from cryptography.exceptions import InvalidTag
except ImportError:  # pragma: no cover
    sys.stderr.write("verify_vectors.py needs pyca/cryptography: pip install cryptography\n")
    sys.exit(2)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
VECTOR_DIR = os.path.join(ROOT, "Tests", "ESPTests", "Vectors")

AEAD_ALGS = {
    # name: (constructor, key length without salt)
    "aes128gcm16": (AESGCM, 16),
    "aes192gcm16": (AESGCM, 24),
    "aes256gcm16": (AESGCM, 32),
    "chacha20poly1305": (ChaCha20Poly1305, 32),
}
HMAC_ALGS = {
    # name: (AES key length or 0 for NULL encryption, hash)
    "aes128-sha1": (16, "sha1"),
    "aes256-sha1": (32, "sha1"),
    "aes128-sha256": (16, "sha256"),
    "aes192-sha256": (24, "sha256"),
    "aes256-sha256": (32, "sha256"),
    "aes128-sha384": (16, "sha384"),
    "aes256-sha384": (32, "sha384"),
    "aes256-sha512": (32, "sha512"),
    "null-sha256": (0, "sha256"),
}
HASHES = {
    # hash: (pyca algorithm, key length, ICV length): RFC 2404 sections 2-3, RFC 4868 section 2.1
    "sha1": (hashes.SHA1, 20, 12),
    "sha256": (hashes.SHA256, 32, 16),
    "sha384": (hashes.SHA384, 48, 24),
    "sha512": (hashes.SHA512, 64, 32),
}
SALT_LEN = 4
AEAD_IV_LEN = 8
AEAD_ICV_LEN = 16
CBC_IV_LEN = 16


class Mismatch(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Mismatch(msg)


def unhex(v, field):
    check(isinstance(v, str), "%s must be a hex string" % field)
    check(v == v.lower() and not v.startswith("0x"), "%s must be lowercase hex without 0x" % field)
    try:
        return bytes.fromhex(v)
    except ValueError:
        raise Mismatch("%s is not valid hex" % field)


def aes_cbc(key, iv, data, encrypt):
    c = Cipher(algorithms.AES(key), modes.CBC(iv))
    op = c.encryptor() if encrypt else c.decryptor()
    return op.update(data) + op.finalize()


def hmac_digest(name, key, data):
    h = hmac.HMAC(key, HASHES[name][0]())
    h.update(data)
    out = h.finalize()
    # Belt and braces: the standard library must agree with pyca.
    check(out == std_hmac.new(key, data, getattr(hashlib, name)).digest(), "pyca and hashlib HMAC disagree")
    return out


def parse_trailer(plaintext):
    check(len(plaintext) >= 2, "decrypted payload shorter than the ESP trailer")
    nh = plaintext[-1]
    padlen = plaintext[-2]
    check(padlen <= len(plaintext) - 2, "pad length %d exceeds payload" % padlen)
    body = plaintext[:-2]
    return body[:len(body) - padlen], body[len(body) - padlen:], nh


def verify_esp(v):
    alg = v["alg"]
    key = unhex(v["key"], "key")
    spi = unhex(v["spi"], "spi")
    check(len(spi) == 4, "spi must be 4 octets")
    seq = v["seq"]
    esn = v["esn"]
    check(isinstance(seq, int) and 0 <= seq < 1 << 64, "seq must be a 64-bit integer")
    check(isinstance(esn, bool), "esn must be a boolean")
    if not esn:
        check(seq < 1 << 32, "seq %d does not fit in 32 bits but esn is false" % seq)
    seq_hi, seq_lo = seq >> 32, seq & 0xFFFFFFFF
    iv = unhex(v["iv"], "iv")
    payload = unhex(v["payload"], "payload")
    padding = unhex(v["padding"], "padding")
    nh = v["next_header"]
    check(isinstance(nh, int) and 0 <= nh <= 255, "next_header must be 0..255")
    check(len(padding) <= 255, "padding longer than 255 octets")
    packet = unhex(v["packet"], "packet")
    check(packet[:4] == spi, "packet does not start with the SPI")
    check(packet[4:8] == struct.pack("!I", seq_lo), "packet sequence number != low 32 bits of seq")
    plaintext = payload + padding + bytes([len(padding), nh])
    header = spi + struct.pack("!I", seq_lo)

    if alg in AEAD_ALGS:
        ctor, klen = AEAD_ALGS[alg]
        check(len(key) == klen + SALT_LEN, "%s key must be %d octets (key || salt), got %d" % (alg, klen + SALT_LEN, len(key)))
        check(len(iv) == AEAD_IV_LEN, "AEAD IV must be 8 octets")
        check("auth_key" not in v or v["auth_key"] == "", "AEAD vector must not have an auth_key")
        enc_key, salt = key[:klen], key[klen:]
        nonce = salt + iv
        aad = spi + (struct.pack("!II", seq_hi, seq_lo) if esn else struct.pack("!I", seq_lo))
        if "nonce" in v:
            check(unhex(v["nonce"], "nonce") == nonce, "nonce field != salt || iv")
        if "aad" in v:
            check(unhex(v["aad"], "aad") == aad, "aad field != SPI || seq (RFC 4106 section 5)")
        aead = ctor(enc_key)
        built = header + iv + aead.encrypt(nonce, plaintext, aad)
        check(built == packet, "re-encrypted packet differs:\n  got  %s\n  want %s" % (built.hex(), packet.hex()))
        check(packet[8:16] == iv, "packet IV != iv")
        try:
            dec = aead.decrypt(nonce, packet[16:], aad)
        except InvalidTag:
            raise Mismatch("ICV does not verify")
        check(parse_trailer(dec) == (payload, padding, nh), "decrypted trailer does not match payload/padding/next_header")
        check((8 + len(iv) + len(dec)) % 4 == 0, "ESP payload not 4-octet aligned (RFC 4303 section 2.4)")
        return

    check(alg in HMAC_ALGS, "unknown alg %r" % alg)
    klen, hash_name = HMAC_ALGS[alg]
    _, hmac_key_len, icv_len = HASHES[hash_name]
    auth_key = unhex(v.get("auth_key", ""), "auth_key")
    check(len(auth_key) == hmac_key_len, "auth_key must be %d octets" % hmac_key_len)
    check(len(key) == klen, "%s key must be %d octets, got %d" % (alg, klen, len(key)))
    if klen:
        check(len(iv) == CBC_IV_LEN, "CBC IV must be 16 octets")
        check(len(plaintext) % 16 == 0, "CBC plaintext not a multiple of the block size")
        body = iv + aes_cbc(key, iv, plaintext, True)
    else:
        check(iv == b"", "NULL encryption has no IV")
        body = plaintext
    check((8 + len(body)) % 4 == 0, "ESP payload not 4-octet aligned (RFC 4303 section 2.4)")
    signed = header + body
    icv = hmac_digest(hash_name, auth_key, signed + (struct.pack("!I", seq_hi) if esn else b""))[:icv_len]
    built = signed + icv
    check(built == packet, "rebuilt packet differs:\n  got  %s\n  want %s" % (built.hex(), packet.hex()))
    # Receive direction.
    rx_icv = packet[-icv_len:]
    rx_signed = packet[:-icv_len]
    want = hmac_digest(hash_name, auth_key, rx_signed + (struct.pack("!I", seq_hi) if esn else b""))[:icv_len]
    check(std_hmac.compare_digest(rx_icv, want), "ICV does not verify")
    if esn and seq_hi:
        # The high half must really be covered: without it the ICV must differ.
        check(hmac_digest(hash_name, auth_key, rx_signed)[:icv_len] != rx_icv, "ICV verifies without seq_high")
    rx_body = rx_signed[8:]
    if klen:
        dec = aes_cbc(key, rx_body[:16], rx_body[16:], False)
    else:
        dec = rx_body
    check(parse_trailer(dec) == (payload, padding, nh), "decrypted trailer does not match payload/padding/next_header")


def verify_cbc(v):
    key = unhex(v["key"], "key")
    iv = unhex(v["iv"], "iv")
    pt = unhex(v["plaintext"], "plaintext")
    ct = unhex(v["ciphertext"], "ciphertext")
    check(len(key) in (16, 24, 32), "AES key length")
    check(len(iv) == 16, "IV length")
    check(len(pt) == len(ct) and len(pt) % 16 == 0, "lengths")
    check(aes_cbc(key, iv, pt, True) == ct, "encryption mismatch")
    check(aes_cbc(key, iv, ct, False) == pt, "decryption mismatch")
    esp = v.get("esp")
    if esp:
        spi = unhex(esp["spi"], "esp.spi")
        payload = unhex(esp["payload"], "esp.payload")
        padding = unhex(esp["padding"], "esp.padding")
        check(pt == payload + padding + bytes([len(padding), esp["next_header"]]), "esp fields != plaintext")
        check(unhex(esp["packet"], "esp.packet") == spi + struct.pack("!I", esp["seq"]) + iv + ct, "esp.packet != SPI|seq|IV|ciphertext")


def verify_object(name, obj):
    """Verify one parsed vector file; print a line per failure and a summary; return the failure count."""
    vectors = obj.get("vectors") if isinstance(obj, dict) else None
    if not isinstance(vectors, list) or not vectors:
        print("SKIP %s: no 'vectors' list (unknown schema)" % name)
        return 0
    if not obj.get("source"):
        print("FAIL %s: missing 'source'" % name)
        return 1
    failures = 0
    for i, v in enumerate(vectors):
        label = "%s[%d] %s" % (name, i, v.get("name", "?"))
        try:
            if "packet" in v:
                verify_esp(v)
            elif "ciphertext" in v:
                verify_cbc(v)
            else:
                raise Mismatch("vector has neither 'packet' nor 'ciphertext'")
        except (Mismatch, KeyError, TypeError, ValueError) as e:
            failures += 1
            print("FAIL %s: %s: %s" % (label, type(e).__name__, e))
    status = "ok  " if not failures else "FAIL"
    print("%s %s: %d/%d vectors verified" % (status, name, len(vectors) - failures, len(vectors)))
    return failures


def main(argv):
    files = argv[1:] or sorted(glob.glob(os.path.join(VECTOR_DIR, "*.json")))
    if not files:
        print("no vector files found in %s" % VECTOR_DIR)
        return 1
    failures = 0
    total = 0
    for path in files:
        name = os.path.basename(path)
        try:
            with open(path) as f:
                obj = json.load(f)
        except (OSError, ValueError) as e:
            print("FAIL %s: cannot load: %s" % (name, e))
            failures += 1
            continue
        total += len(obj.get("vectors", [])) if isinstance(obj, dict) else 0
        failures += verify_object(name, obj)
    print("%d file(s), %d vector(s), %d failure(s)" % (len(files), total, failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
