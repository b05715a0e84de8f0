"""Private keys on disk: generated, written atomically with mode 0600, never
overwritten (the I/O side of dkim/keys.py)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from mailseal.dkim.keys import KeyFileError, SigningKey


def generate_key(key_type: str = "rsa", bits: int = 2048) -> SigningKey:
    if key_type == "ed25519":
        return SigningKey(ed25519.Ed25519PrivateKey.generate())
    if key_type != "rsa":
        raise KeyFileError(f"unknown key type {key_type!r}; use rsa or ed25519")
    if bits < 1024:
        raise KeyFileError(f"{bits}-bit RSA keys are not valid for DKIM (RFC 8301 §3.2: ≥ 1024)")
    return SigningKey(rsa.generate_private_key(public_exponent=65537, key_size=bits))


def private_pem(key: SigningKey) -> bytes:
    """PKCS#1 for RSA (what opendkim-genkey writes, read by every peer), PKCS#8 for
    Ed25519 (the only PEM form it has)."""
    fmt = (serialization.PrivateFormat.TraditionalOpenSSL if key.key_type == "rsa"
           else serialization.PrivateFormat.PKCS8)
    return key.private.private_bytes(serialization.Encoding.PEM, fmt,
                                     serialization.NoEncryption())


def write_private_key(path: str | os.PathLike[str], key: SigningKey) -> Path:
    """Write atomically (temp file in the same folder, fsync, link into place) with
    mode 0600; refuse to replace an existing file."""
    target = Path(path)
    if target.exists():
        raise KeyFileError(f"{target}: exists; refusing to overwrite a private key")
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = write_temp(target.parent, private_pem(key), 0o600)
    try:
        os.link(tmp, target)  # fails if target appeared meanwhile: no overwrite race
    except FileExistsError:
        raise KeyFileError(f"{target}: exists; refusing to overwrite a private key") from None
    finally:
        os.unlink(tmp)
    return target


def write_text_atomic(path: str | os.PathLike[str], text: str, mode: int = 0o644) -> Path:
    """Replace ``path`` with ``text`` atomically (temp file beside it, fsync, rename)."""
    target = Path(path)
    tmp = write_temp(target.parent, text.encode("utf-8"), mode)
    try:
        os.replace(tmp, target)
    except BaseException:
        os.unlink(tmp)
        raise
    return target


def write_temp(folder: Path, data: bytes, mode: int, suffix: str = "") -> str:
    """``data`` in a new temp file in ``folder`` with ``mode`` (set before anything is
    written), flushed to disk; its path. The caller links or renames it into place
    and removes it on failure; a failure here leaves nothing behind."""
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=folder)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        os.unlink(tmp)
        raise
    return tmp
