"""Private signing keys: loading, permission checks, and the public half for DNS.

Accepted formats: PEM PKCS#1 (``BEGIN RSA PRIVATE KEY``, what opendkim-genkey
writes), PEM PKCS#8 (RSA or Ed25519, what openssl genpkey writes), and for Ed25519
also the base64 of the raw 32-byte seed (dkimpy's and Exim's format).
"""

from __future__ import annotations

import base64
import binascii
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

PrivateKey = rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey


class KeyFileError(ValueError):
    """A key file cannot be used; the message names the file and the fix."""


@dataclass(frozen=True, slots=True)
class SigningKey:
    private: PrivateKey
    source: str = ""  # where it came from, for messages

    @property
    def key_type(self) -> str:
        """The k= value (RFC 6376 §3.6.1, RFC 8463 §4.2)."""
        return "rsa" if isinstance(self.private, rsa.RSAPrivateKey) else "ed25519"

    @property
    def bits(self) -> int:
        if isinstance(self.private, rsa.RSAPrivateKey):
            return self.private.key_size
        return 256

    def public_data(self) -> bytes:
        """The p= data: SubjectPublicKeyInfo DER for RSA, raw 32 bytes for Ed25519."""
        return public_key_data(self.private.public_key())


def public_key_data(pub: rsa.RSAPublicKey | ed25519.Ed25519PublicKey) -> bytes:
    """A public key as p= carries it: SubjectPublicKeyInfo DER for RSA, raw 32 bytes
    for Ed25519 (whichever form a record's p= used, this is the one to compare)."""
    if isinstance(pub, ed25519.Ed25519PublicKey):
        return pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return pub.public_bytes(serialization.Encoding.DER,
                            serialization.PublicFormat.SubjectPublicKeyInfo)


def check_permissions(path: Path, mode: int) -> None:
    """Refuse a key readable or writable by group or others (like OpenDKIM's
    RequireSafeKeys): a leaked key lets anyone sign as the domain."""
    if mode & 0o077:
        raise KeyFileError(
            f"{path}: private key is accessible by group or others "
            f"(mode {stat.S_IMODE(mode):04o}); run: chmod 600 {path}")


def load_key(path: str | os.PathLike[str], *, check_mode: bool = True) -> SigningKey:
    """Load a private key file, refusing group- or world-accessible files."""
    p = Path(path)
    try:
        with open(p, "rb") as fh:
            if check_mode:
                check_permissions(p, os.fstat(fh.fileno()).st_mode)
            data = fh.read(1 << 20)
    except OSError as exc:
        raise KeyFileError(f"{p}: cannot read private key: {exc.strerror}") from None
    try:
        return parse_private_key(data, source=str(p))
    except KeyFileError as exc:
        raise KeyFileError(f"{p}: {exc}") from None


def parse_private_key(data: bytes, *, source: str = "") -> SigningKey:
    """Parse key bytes (PEM, or base64 Ed25519 seed)."""
    text = data.strip()
    if b"-----BEGIN" in text:
        try:
            key = serialization.load_pem_private_key(text, password=None)
        except TypeError:
            raise KeyFileError("private key is encrypted; mailseal needs it unencrypted") from None
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise KeyFileError(f"not a valid PEM private key ({exc})") from None
        if not isinstance(key, rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey):
            raise KeyFileError(f"unsupported key type {type(key).__name__}; use RSA or Ed25519")
        return SigningKey(key, source)
    try:
        seed = base64.b64decode(b"".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise KeyFileError("neither PEM nor a base64 Ed25519 seed") from None
    if len(seed) != 32:
        raise KeyFileError(f"base64 data is {len(seed)} bytes; an Ed25519 seed is 32")
    return SigningKey(ed25519.Ed25519PrivateKey.from_private_bytes(seed), source)
