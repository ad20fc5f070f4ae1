# SPDX-License-Identifier: Apache-2.0
"""Shared helpers for the espd replay fixtures and checkers.

Everything ESP-related here is an *independent* implementation of what espd does: encryption and
decryption go through scapy's `scapy.layers.ipsec` (and pyca/cryptography for deliberately broken
packets), never through espd code. Capture files are read and written by hand (a few lines of
`struct`) so that the fixtures are byte-for-byte reproducible and every link type / file format is
under our control.
"""
from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
import struct
from dataclasses import dataclass, field
from typing import Optional

logging.getLogger("scapy.runtime").setLevel(logging.ERROR)
logging.getLogger("scapy.loading").setLevel(logging.ERROR)

from scapy.layers.inet import IP, UDP  # noqa: E402
from scapy.layers.inet6 import IPv6  # noqa: E402
from scapy.layers.ipsec import ESP, SecurityAssociation  # noqa: E402
from scapy.packet import Raw  # noqa: E402

# --------------------------------------------------------------------------------------------
# Algorithms
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Alg:
    name: str              # strongSwan keyword, as in the espd config
    scapy_crypt: str       # scapy CRYPT_ALGOS name
    scapy_auth: Optional[str]  # scapy AUTH_ALGOS name (None for AEAD)
    key_len: int           # bytes of `key` (cipher key + 4-byte salt for AEAD)
    auth_key_len: int      # bytes of `auth_key`
    iv_len: int
    block: int             # padding alignment (cipher block size, at least 4)
    aead: bool
    ws_encryption: str     # Wireshark esp_sa encryption name
    ws_authentication: str  # Wireshark esp_sa authentication name
    tshark40_ok: bool      # can tshark 4.0.x (Debian 12) decrypt it (see WIRESHARK.md)
    icv_len: int = 16      # bytes of ICV: 16 for the AEADs, the truncated HMAC otherwise
    hmac_hash: Optional[str] = None  # hashlib name of the HMAC (None for AEAD)


ALGS: dict[str, Alg] = {
    a.name: a
    for a in [
        Alg("aes128gcm16", "AES-GCM", None, 20, 0, 8, 4, True,
            "AES-GCM with 16 octet ICV [RFC4106]", "NULL", True),
        Alg("aes192gcm16", "AES-GCM", None, 28, 0, 8, 4, True,
            "AES-GCM with 16 octet ICV [RFC4106]", "NULL", True),
        Alg("aes256gcm16", "AES-GCM", None, 36, 0, 8, 4, True,
            "AES-GCM with 16 octet ICV [RFC4106]", "NULL", True),
        Alg("chacha20poly1305", "CHACHA20-POLY1305", None, 36, 0, 8, 4, True,
            "ChaCha20 with Poly1305 [RFC7634]", "NULL", False),
        Alg("aes128-sha256", "AES-CBC", "SHA2-256-128", 16, 32, 16, 16, False,
            "AES-CBC [RFC3602]", "HMAC-SHA-256-128 [RFC4868]", True, 16, "sha256"),
        Alg("aes256-sha256", "AES-CBC", "SHA2-256-128", 32, 32, 16, 16, False,
            "AES-CBC [RFC3602]", "HMAC-SHA-256-128 [RFC4868]", True, 16, "sha256"),
        Alg("null-sha256", "NULL", "SHA2-256-128", 0, 32, 0, 4, False,
            "NULL", "HMAC-SHA-256-128 [RFC4868]", True, 16, "sha256"),
        # HMAC-SHA-1-96 (RFC 2404: 20-byte key, 12-byte ICV), HMAC-SHA-384-192 and
        # HMAC-SHA-512-256 (RFC 4868: 48/64-byte keys, 24/32-byte ICVs).
        Alg("aes128-sha1", "AES-CBC", "HMAC-SHA1-96", 16, 20, 16, 16, False,
            "AES-CBC [RFC3602]", "HMAC-SHA-1-96 [RFC2404]", True, 12, "sha1"),
        Alg("aes256-sha1", "AES-CBC", "HMAC-SHA1-96", 32, 20, 16, 16, False,
            "AES-CBC [RFC3602]", "HMAC-SHA-1-96 [RFC2404]", True, 12, "sha1"),
        Alg("aes128-sha384", "AES-CBC", "SHA2-384-192", 16, 48, 16, 16, False,
            "AES-CBC [RFC3602]", "HMAC-SHA-384-192 [RFC4868]", True, 24, "sha384"),
        Alg("aes256-sha384", "AES-CBC", "SHA2-384-192", 32, 48, 16, 16, False,
            "AES-CBC [RFC3602]", "HMAC-SHA-384-192 [RFC4868]", True, 24, "sha384"),
        Alg("aes256-sha512", "AES-CBC", "SHA2-512-256", 32, 64, 16, 16, False,
            "AES-CBC [RFC3602]", "HMAC-SHA-512-256 [RFC4868]", True, 32, "sha512"),
    ]
}

# The HMAC an `ip xfrm` `cbc(aes)` SA uses, told by its auth_key's length (the digest size:
# RFC 2404 section 3, RFC 4868 section 2.1.1); any other length means SHA-256, as before.
_CBC_BY_AUTH_LEN = {20: "sha1", 48: "sha384", 64: "sha512"}


def alg_named(name: str, key_len: int, auth_key_len: Optional[int] = None) -> Alg:
    """The algorithm for a config `alg` (strongSwan keyword or `ip xfrm` alias)."""
    n = name.lower()
    if n in ALGS:
        return ALGS[n]
    if n == "rfc4106(gcm(aes))":
        return ALGS[{28: "aes192gcm16", 36: "aes256gcm16"}.get(key_len, "aes128gcm16")]
    if n == "rfc7539esp(chacha20,poly1305)":
        return ALGS["chacha20poly1305"]
    if n.startswith("cbc(aes)"):
        if n == "cbc(aes)":
            h = _CBC_BY_AUTH_LEN.get(auth_key_len, "sha256")
        elif n in ("cbc(aes)+hmac(sha1)", "cbc(aes)+hmac(sha256)", "cbc(aes)+hmac(sha384)",
                   "cbc(aes)+hmac(sha512)"):
            h = n[len("cbc(aes)+hmac("):-1]
        else:
            raise ValueError(f"unknown alg {name!r}")
        if h == "sha512":
            return ALGS["aes256-sha512"]  # the only AES-CBC + HMAC-SHA-512 transform espd has
        return ALGS[f"{'aes256' if key_len == 32 else 'aes128'}-{h}"]
    if n in ("ecb(cipher_null)", "null", "hmac(sha256)"):
        return ALGS["null-sha256"]
    raise ValueError(f"unknown alg {name!r}")


# --------------------------------------------------------------------------------------------
# Deterministic material
# --------------------------------------------------------------------------------------------


def det_bytes(label: str, n: int) -> bytes:
    """n deterministic pseudo-random bytes derived from label (SHA-256 in counter mode)."""
    out = b""
    i = 0
    while len(out) < n:
        out += hashlib.sha256(f"espd-fixture/{label}/{i}".encode()).digest()
        i += 1
    return out[:n]


# --------------------------------------------------------------------------------------------
# Config model
# --------------------------------------------------------------------------------------------


def parse_hex(s) -> bytes:
    if s is None:
        return b""
    s = str(s)
    if s.lower().startswith("0x"):
        s = s[2:]
    return bytes.fromhex(s)


def parse_spi(v) -> int:
    if isinstance(v, int):
        return v
    s = str(v)
    return int(s[2:] if s.lower().startswith("0x") else s, 16)


def parse_endpoint(s: str) -> tuple[str, int]:
    """'1.2.3.4:4500' or '[2001:db8::1]:4500' -> (addr, port)."""
    if s.startswith("["):
        host, _, port = s[1:].partition("]:")
    else:
        host, _, port = s.rpartition(":")
    return str(ipaddress.ip_address(host)), int(port)


@dataclass
class SAConf:
    spi: int
    alg: Alg
    key: bytes
    auth_key: bytes
    esn: bool = False
    replay_window: int = 1024
    seq: int = 0          # outbound: last used; inbound: replay_seq

    @staticmethod
    def from_json(j: dict, inbound: bool) -> "SAConf":
        key = parse_hex(j.get("key"))
        auth_key = j.get("auth_key")
        alg = alg_named(j["alg"], len(key), len(parse_hex(auth_key)) if auth_key is not None else None)
        seqv = j.get("replay_seq" if inbound else "seq", 0)
        return SAConf(
            spi=parse_spi(j["spi"]), alg=alg, key=key, auth_key=parse_hex(j.get("auth_key")),
            esn=bool(j.get("esn", False)), replay_window=int(j.get("replay_window", 1024)),
            seq=parse_seq(seqv))

    def scapy_sa(self, seq64: int = 1, tunnel: bool = True) -> SecurityAssociation:
        """A scapy SA positioned at the 64-bit sequence number seq64."""
        a = self.alg
        ck = self.key if a.key_len else None
        return SecurityAssociation(
            ESP, spi=self.spi, seq_num=seq64 & 0xFFFFFFFF,
            crypt_algo=a.scapy_crypt, crypt_key=ck,
            auth_algo=a.scapy_auth, auth_key=self.auth_key if a.scapy_auth else None,
            tunnel_header=IP(src="192.0.2.254", dst="192.0.2.253") if tunnel else None,
            esn_en=self.esn, esn=(seq64 >> 32) if self.esn else 0)


def parse_seq(v) -> int:
    if isinstance(v, int):
        return v
    s = str(v)
    return int(s, 16) if s.lower().startswith("0x") else int(s)


@dataclass
class TunnelConf:
    name: str
    mode: str
    peer: Optional[tuple[str, int]]
    local: Optional[str]
    remote_ts: list
    alias: Optional[str]
    inbound: list
    outbound: SAConf


@dataclass
class Config:
    raw: dict
    listen: list                       # [(addr, port)]
    tun_addresses: list                # [ip_interface]
    tunnels: list = field(default_factory=list)

    def sa_by_spi(self, spi: int, direction: str):
        for t in self.tunnels:
            sas = t.inbound if direction == "in" else [t.outbound]
            for sa in sas:
                if sa.spi == spi:
                    return t, sa
        return None, None


def load_config(path: str) -> Config:
    with open(path) as f:
        j = json.load(f)
    listen = [parse_endpoint(e) for e in j.get("listen", [])]
    tun = [ipaddress.ip_interface(a) for a in j.get("tun", {}).get("addresses", [])]
    tunnels = []
    for t in j.get("tunnels", []):
        tunnels.append(TunnelConf(
            name=t["name"], mode=t.get("mode", "tunnel"),
            peer=parse_endpoint(t["peer"]) if t.get("peer") else None,
            local=t.get("local"),
            remote_ts=[ipaddress.ip_network(p, strict=False) for p in t.get("remote_ts", [])],
            alias=t.get("alias"),
            inbound=[SAConf.from_json(s, True) for s in t.get("inbound", [])],
            outbound=SAConf.from_json(t["outbound"], False)))
    return Config(raw=j, listen=listen, tun_addresses=tun, tunnels=tunnels)


# --------------------------------------------------------------------------------------------
# ESP with scapy
# --------------------------------------------------------------------------------------------


def esp_encrypt(sa: SAConf, payload_pkt, seq64: int, iv: bytes, tunnel: bool = True) -> bytes:
    """ESP bytes (SPI..ICV) carrying payload_pkt.

    tunnel=True: payload_pkt is the whole inner IP packet (next header 4 or 41).
    tunnel=False (transport): payload_pkt is an IP/IPv6 packet whose *payload* (e.g. the UDP
    segment, checksum as given) is carried; its IP header is discarded.
    """
    s = sa.scapy_sa(seq64, tunnel=tunnel)
    out = s.encrypt(payload_pkt, iv=iv if sa.alg.iv_len else None)
    return bytes(out[ESP])


class ESPDecryptError(Exception):
    pass


@dataclass
class ESPPlain:
    spi: int
    seq_lo: int
    iv: bytes
    data: bytes      # payload (inner packet in tunnel mode, upper-layer segment in transport)
    padding: bytes
    padlen: int
    nh: int
    icv: bytes
    ct_len: int      # bytes between IV and ICV


def esp_decrypt(sa: SAConf, esp_bytes: bytes, seq_hi: int = 0) -> ESPPlain:
    """Verifies and decrypts ESP bytes with scapy's ESP implementation."""
    from scapy.layers.ipsec import IPSecIntegrityError
    a = sa.alg
    if len(esp_bytes) < 8 + a.iv_len + a.icv_len + 2:
        raise ESPDecryptError(f"ESP too short ({len(esp_bytes)} bytes)")
    s = sa.scapy_sa(1, tunnel=True)
    esp = ESP(esp_bytes)
    esn_en = sa.esn
    try:
        s.auth_algo.verify(esp, s.auth_key, esn_en=esn_en, esn=seq_hi)
        icv_size = s.crypt_algo.icv_size or s.auth_algo.icv_size
        plain = s.crypt_algo.decrypt(s, esp, s.crypt_key, icv_size, esn_en=esn_en, esn=seq_hi)
    except IPSecIntegrityError as e:
        raise ESPDecryptError(f"ICV check failed ({e.__class__.__name__})") from None
    except Exception as e:  # e.g. CBC ciphertext not a block multiple
        raise ESPDecryptError(f"decryption failed: {e}") from None
    ct_len = len(esp_bytes) - 8 - a.iv_len - a.icv_len
    return ESPPlain(spi=esp.spi, seq_lo=esp.seq, iv=bytes(plain.iv), data=bytes(plain.data),
                    padding=bytes(plain.padding), padlen=plain.padlen, nh=plain.nh,
                    icv=bytes(plain.icv), ct_len=ct_len)


def aead_seal_raw(sa: SAConf, seq64: int, iv: bytes, plaintext_with_trailer: bytes) -> bytes:
    """ESP bytes for an arbitrary plaintext (trailer included, so it can be wrong on purpose).

    Uses pyca/cryptography directly (RFC 4106 / RFC 7634: nonce = salt | IV, AAD = SPI | seq,
    or SPI | seq_hi | seq_lo with ESN)."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
    a = sa.alg
    assert a.aead
    key, salt = sa.key[:-4], sa.key[-4:]
    lo, hi = seq64 & 0xFFFFFFFF, seq64 >> 32
    aad = struct.pack("!III", sa.spi, hi, lo) if sa.esn else struct.pack("!II", sa.spi, lo)
    c = ChaCha20Poly1305(key) if a.name == "chacha20poly1305" else AESGCM(key)
    ct = c.encrypt(salt + iv, plaintext_with_trailer, aad)
    return struct.pack("!II", sa.spi, lo) + iv + ct


# --------------------------------------------------------------------------------------------
# Checksums, IP building
# --------------------------------------------------------------------------------------------


def inet_checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def pseudo_header(src: str, dst: str, proto: int, length: int) -> bytes:
    s, d = ipaddress.ip_address(src), ipaddress.ip_address(dst)
    if s.version == 4:
        return s.packed + d.packed + struct.pack("!BBH", 0, proto, length)
    return s.packed + d.packed + struct.pack("!IxxxB", length, proto)


def l4_checksum(src: str, dst: str, proto: int, segment: bytes, csum_offset: int) -> int:
    """Checksum of a TCP/UDP segment (its checksum field treated as zero)."""
    seg = segment[:csum_offset] + b"\0\0" + segment[csum_offset + 2:]
    c = inet_checksum(pseudo_header(src, dst, proto, len(seg)) + seg)
    if proto == 17 and c == 0:
        c = 0xFFFF
    return c


def l4_checksum_valid(src: str, dst: str, proto: int, segment: bytes) -> bool:
    off = {17: 6, 6: 16}[proto]
    return struct.unpack("!H", segment[off:off + 2])[0] == l4_checksum(src, dst, proto, segment, off)


def ipv4_header(src: str, dst: str, proto: int, payload_len: int, ttl=64, ident=0, tos=0,
                flags=0) -> bytes:
    h = struct.pack("!BBHHHBBH4s4s", 0x45, tos, 20 + payload_len, ident, flags << 13, ttl, proto,
                    0, ipaddress.ip_address(src).packed, ipaddress.ip_address(dst).packed)
    c = inet_checksum(h)
    return h[:10] + struct.pack("!H", c) + h[12:]


def ipv6_header(src: str, dst: str, nh: int, payload_len: int, hlim=64, tc=0, flow=0) -> bytes:
    return struct.pack("!IHBB16s16s", (6 << 28) | (tc << 20) | flow, payload_len, nh, hlim,
                       ipaddress.ip_address(src).packed, ipaddress.ip_address(dst).packed)


def udp_segment(src: str, dst: str, sport: int, dport: int, payload: bytes,
                checksum: Optional[int] = None) -> bytes:
    """UDP header+payload; checksum computed over (src,dst) unless given explicitly (0 = none)."""
    seg = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    c = l4_checksum(src, dst, 17, seg, 6) if checksum is None else checksum
    return seg[:6] + struct.pack("!H", c) + seg[8:]


def ip_packet(src: str, dst: str, proto: int, payload: bytes, **kw) -> bytes:
    if ipaddress.ip_address(src).version == 4:
        return ipv4_header(src, dst, proto, len(payload), **kw) + payload
    kw6 = {}
    if "ttl" in kw:
        kw6["hlim"] = kw["ttl"]
    return ipv6_header(src, dst, proto, len(payload), **kw6) + payload


def udp_packet(src, dst, sport, dport, payload, udp_checksum=None, **kw) -> bytes:
    """A whole IP/UDP packet. udp_checksum None: computed (IPv4 ESP-in-UDP callers pass 0)."""
    return ip_packet(src, dst, 17, udp_segment(src, dst, sport, dport, payload, udp_checksum), **kw)


def esp_in_udp(src, dst, sport, dport, esp_bytes, **kw) -> bytes:
    """RFC 3948 ESP-in-UDP: IPv4 UDP checksum 0 (as Linux sends it), IPv6 a real one."""
    v4 = ipaddress.ip_address(src).version == 4
    return udp_packet(src, dst, sport, dport, esp_bytes, udp_checksum=0 if v4 else None, **kw)


@dataclass
class ParsedIP:
    version: int
    src: str
    dst: str
    proto: int          # IPv4 protocol / IPv6 next header (no extension header walking)
    header: bytes
    payload: bytes
    ttl: int
    total_len_ok: bool
    header_checksum_ok: bool


def parse_ip(pkt: bytes) -> ParsedIP:
    if not pkt:
        raise ValueError("empty packet")
    v = pkt[0] >> 4
    if v == 4:
        ihl = (pkt[0] & 15) * 4
        if ihl < 20 or len(pkt) < ihl:
            raise ValueError("bad IPv4 header length")
        tot = struct.unpack("!H", pkt[2:4])[0]
        return ParsedIP(4, str(ipaddress.ip_address(pkt[12:16])), str(ipaddress.ip_address(pkt[16:20])),
                        pkt[9], pkt[:ihl], pkt[ihl:tot], pkt[8], tot == len(pkt),
                        inet_checksum(pkt[:ihl]) == 0)
    if v == 6:
        if len(pkt) < 40:
            raise ValueError("short IPv6 header")
        plen = struct.unpack("!H", pkt[4:6])[0]
        return ParsedIP(6, str(ipaddress.ip_address(pkt[8:24])), str(ipaddress.ip_address(pkt[24:40])),
                        pkt[6], pkt[:40], pkt[40:40 + plen], pkt[7], 40 + plen == len(pkt), True)
    raise ValueError(f"IP version {v}")


# --------------------------------------------------------------------------------------------
# Link layers and capture files
# --------------------------------------------------------------------------------------------

LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LINUX_SLL = 113
LINKTYPE_LINUX_SLL2 = 276

MAC_LOCAL = bytes.fromhex("020000000001")
MAC_ROUTER = bytes.fromhex("0200000000fe")


def ethertype_of(ip: bytes) -> int:
    if not ip:
        return 0x0800
    return 0x86DD if ip[0] >> 4 == 6 else 0x0800


def l2_wrap(linktype: int, ip: bytes, ethertype: Optional[int] = None) -> bytes:
    et = ethertype if ethertype is not None else ethertype_of(ip)
    if linktype == LINKTYPE_RAW:
        return ip
    if linktype == LINKTYPE_ETHERNET:
        return MAC_LOCAL + MAC_ROUTER + struct.pack("!H", et) + ip
    if linktype == LINKTYPE_LINUX_SLL:
        # packet type 0 (to us), ARPHRD_ETHER, 6-byte address padded to 8, protocol
        return struct.pack("!HHH8sH", 0, 1, 6, MAC_ROUTER, et) + ip
    if linktype == LINKTYPE_LINUX_SLL2:
        # protocol, reserved, ifindex, ARPHRD_ETHER, packet type, addr len, addr[8]
        return struct.pack("!HHIHBB8s", et, 0, 2, 1, 0, 6, MAC_ROUTER) + ip
    raise ValueError(f"linktype {linktype}")


TS_BASE = 1_700_000_000


def write_pcap(path: str, linktype: int, frames: list, nanosec=False, big_endian=False,
               snaplen=262144):
    e = ">" if big_endian else "<"
    magic = 0xA1B23C4D if nanosec else 0xA1B2C3D4
    with open(path, "wb") as f:
        f.write(struct.pack(e + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype))
        for i, fr in enumerate(frames):
            frac = (i + 1) * (1_000_000 if nanosec else 1000)
            f.write(struct.pack(e + "IIII", TS_BASE + i // 1000, frac % (10**9 if nanosec else 10**6),
                                len(fr), len(fr)))
            f.write(fr)


def write_pcapng(path: str, linktype: int, frames: list):
    def block(btype: int, body: bytes) -> bytes:
        body += b"\0" * (-len(body) % 4)
        n = 12 + len(body)
        return struct.pack("<II", btype, n) + body + struct.pack("<I", n)

    with open(path, "wb") as f:
        # Section Header Block, Interface Description Block (if_tsresol default = microseconds)
        f.write(block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)))
        f.write(block(0x00000001, struct.pack("<HHI", linktype, 0, 262144)))
        for i, fr in enumerate(frames):
            ts = TS_BASE * 1_000_000 + (i + 1) * 1000
            f.write(block(0x00000006, struct.pack("<IIIII", 0, ts >> 32, ts & 0xFFFFFFFF,
                                                  len(fr), len(fr)) + fr))


def read_capture(path: str) -> tuple[int, list]:
    """(linktype, [frame bytes]) of a pcap (any byte order, us/ns) or pcapng file; raises
    ValueError on a damaged file."""
    linktype, frames, err = read_capture_partial(path)
    if err:
        raise ValueError(err)
    return linktype, frames


def read_capture_partial(path: str) -> tuple[int, list, str | None]:
    """(linktype, frames before any damage, description of the damage or None)."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 24:
        return LINKTYPE_RAW, [], f"{path}: too short for a capture file ({len(data)} bytes)"
    m = data[:4]
    if m == b"\x0a\x0d\x0d\x0a":
        try:
            lt, frames = _read_pcapng(data, path)
            return lt, frames, None
        except (ValueError, struct.error, IndexError) as e:
            return LINKTYPE_RAW, [], f"{path}: {e}"
    for e in "<>":
        magic = struct.unpack(e + "I", m)[0]
        if magic in (0xA1B2C3D4, 0xA1B23C4D):
            break
    else:
        return LINKTYPE_RAW, [], f"{path}: not a pcap/pcapng file (magic {m.hex()})"
    linktype = struct.unpack(e + "I", data[20:24])[0] & 0x0FFFFFFF
    frames, off = [], 24
    while off < len(data):
        if off + 16 > len(data):
            return linktype, frames, f"{path}: truncated record header at offset {off} (after packet {len(frames)})"
        _, _, incl, _orig = struct.unpack(e + "IIII", data[off:off + 16])
        if off + 16 + incl > len(data):
            return linktype, frames, (f"{path}: packet {len(frames) + 1} at offset {off} truncated "
                                      f"({len(data) - off - 16} of {incl} bytes)")
        off += 16
        frames.append(data[off:off + incl])
        off += incl
    return linktype, frames, None


def _read_pcapng(data: bytes, path: str) -> tuple[int, list]:
    off, e, linktypes, frames = 0, "<", [], []
    linktype = None
    while off + 12 <= len(data):
        btype = struct.unpack(e + "I", data[off:off + 4])[0]
        if btype == 0x0A0D0D0A:
            bom = data[off + 8:off + 12]
            e = "<" if bom == b"\x4d\x3c\x2b\x1a" else ">"
            linktypes = []
        blen = struct.unpack(e + "I", data[off + 4:off + 8])[0]
        body = data[off + 8:off + blen - 4]
        if btype == 1:
            linktypes.append(struct.unpack(e + "H", body[:2])[0])
        elif btype == 6:
            iface, _, _, cap, _ = struct.unpack(e + "IIIII", body[:20])
            lt = linktypes[iface]
            if linktype is None:
                linktype = lt
            elif lt != linktype:
                raise ValueError(f"{path}: mixed link types {linktype} and {lt}")
            frames.append(body[20:20 + cap])
        elif btype == 3:
            orig = struct.unpack(e + "I", body[:4])[0]
            frames.append(body[4:4 + orig])
            linktype = linktype if linktype is not None else linktypes[0]
        off += blen
    return (linktype if linktype is not None else (linktypes[0] if linktypes else LINKTYPE_RAW)), frames


def l2_strip(linktype: int, frame: bytes) -> bytes:
    """The IP packet inside a frame (raises ValueError if it is not IP)."""
    if linktype in (LINKTYPE_RAW, 12, 14):
        return frame
    if linktype == LINKTYPE_ETHERNET:
        et, off = struct.unpack("!H", frame[12:14])[0], 14
    elif linktype == LINKTYPE_LINUX_SLL:
        et, off = struct.unpack("!H", frame[14:16])[0], 16
    elif linktype == LINKTYPE_LINUX_SLL2:
        et, off = struct.unpack("!H", frame[0:2])[0], 20
    else:
        raise ValueError(f"unsupported link type {linktype}")
    if et not in (0x0800, 0x86DD):
        raise ValueError(f"ethertype 0x{et:04x} is not IP")
    return frame[off:]
