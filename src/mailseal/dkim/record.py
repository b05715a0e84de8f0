"""DKIM key records (RFC 6376 §3.6.1) as values.

Grammar (RFC 6376 §3.6.1), a tag=value list::

    v= "DKIM1" (optional, MUST be first when present)
    h= hash algorithms allowed, colon-separated (default: all)
    k= key type (default "rsa"; "ed25519" per RFC 8463 §4.2)
    n= notes; p= base64 public key data (empty: revoked)
    s= service types, colon-separated (default "*")
    t= flags, colon-separated: "y" testing, "s" strict i=/d= match
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from cryptography.hazmat.primitives.serialization import (
    load_der_public_key,
)

from mailseal.tagvalue import TagListError, parse_tag_list, strip_whitespace

PublicKey = rsa.RSAPublicKey | ed25519.Ed25519PublicKey


class KeyRecordError(ValueError):
    """The record is not a usable DKIM key record."""

    def __init__(self, message: str, *, revoked: bool = False) -> None:
        super().__init__(message)
        self.revoked = revoked


@dataclass(frozen=True, slots=True)
class KeyRecord:
    v: str | None  # §3.6.1 version
    h: tuple[str, ...] | None  # §3.6.1 acceptable hashes; None = any
    k: str  # §3.6.1 key type
    n: str | None  # §3.6.1 notes
    p: bytes  # §3.6.1 public-key data (decoded)
    s: tuple[str, ...]  # §3.6.1 service types
    t: tuple[str, ...]  # §3.6.1 flags
    key: PublicKey

    @property
    def testing(self) -> bool:
        return "y" in self.t

    @property
    def strict(self) -> bool:
        return "s" in self.t

    @property
    def bits(self) -> int:
        if isinstance(self.key, rsa.RSAPublicKey):
            return self.key.key_size
        return 256

    def allows_hash(self, hash_name: str) -> bool:
        return self.h is None or hash_name in self.h

    def allows_email(self) -> bool:
        return "*" in self.s or "email" in self.s


def parse_key_record(text: bytes | str) -> KeyRecord:
    """Parse a TXT value into a key record. Raises KeyRecordError with the reason."""
    try:
        tags = parse_tag_list(text)
    except TagListError as exc:
        raise KeyRecordError(str(exc)) from None
    # RFC 6376 §3.6.1: v= MUST be the first tag if present, and "DKIM1".
    if "v" in tags and (next(iter(tags)) != "v" or tags["v"] != "DKIM1"):
        raise KeyRecordError(f"invalid v={tags['v'][:20]!r}")
    if "p" not in tags:
        raise KeyRecordError("no p= tag")
    k = tags.get("k", "rsa").lower()
    hashes = _colon_list(tags["h"]) if "h" in tags else None
    services = _colon_list(tags.get("s", "*"))
    flags = _colon_list(tags.get("t", ""))
    p_text = strip_whitespace(tags["p"])
    if not p_text:
        raise KeyRecordError("key revoked (empty p=)", revoked=True)
    try:
        p = base64.b64decode(p_text, validate=True)
    except (binascii.Error, ValueError):
        raise KeyRecordError("p= is not valid base64") from None
    key = decode_public_key(k, p)
    return KeyRecord(v=tags.get("v"), h=hashes, k=k, n=tags.get("n"), p=p,
                     s=services, t=flags, key=key)


def decode_public_key(k: str, p: bytes) -> PublicKey:
    """Public-key data of type ``k`` → key object.

    RSA: SubjectPublicKeyInfo (RFC 6376 §3.6.1) or a bare RSAPublicKey (erratum 3017,
    published by some signers). Ed25519: the raw 32-byte key (RFC 8463 §4.2), not
    wrapped in SubjectPublicKeyInfo.
    """
    if k == "rsa":
        try:
            key = load_der_public_key(p)
        except (ValueError, UnsupportedAlgorithm):
            key = _load_pkcs1_rsa(p)
        if not isinstance(key, rsa.RSAPublicKey):
            raise KeyRecordError("k=rsa but p= is not an RSA key")
        return key
    if k == "ed25519":
        if len(p) != 32:
            raise KeyRecordError(f"ed25519 key is {len(p)} bytes, expected 32")
        return ed25519.Ed25519PublicKey.from_public_bytes(p)
    raise KeyRecordError(f"unknown key type k={k[:20]}")


def _load_pkcs1_rsa(der: bytes) -> rsa.RSAPublicKey:
    # Wrap the bare RSAPublicKey in a SubjectPublicKeyInfo and load that.
    algorithm = bytes.fromhex("300d06092a864886f70d0101010500")
    bitstring = b"\x03" + _der_len(len(der) + 1) + b"\x00" + der
    body = algorithm + bitstring
    spki = b"\x30" + _der_len(len(body)) + body
    try:
        key = load_der_public_key(spki)
    except (ValueError, UnsupportedAlgorithm):
        raise KeyRecordError("p= is not a valid public key") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise KeyRecordError("p= is not an RSA key")
    return key


def _der_len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def _colon_list(value: str) -> tuple[str, ...]:
    return tuple(x.strip(" \t\r\n").lower() for x in value.split(":") if x.strip(" \t\r\n"))
