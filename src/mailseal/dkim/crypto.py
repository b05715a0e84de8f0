"""The two DKIM signature primitives over a prepared header hash.

RFC 6376 §3.3.1: rsa-sha256 is RSASSA-PKCS1-v1_5 over SHA-256 of the header data.
RFC 8463 §3: ed25519-sha256 signs the SHA-256 *hash* of the header data with
PureEdDSA (Ed25519), not the data itself.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa, utils

from mailseal.dkim.keys import PrivateKey
from mailseal.dkim.record import PublicKey

_HASHES: dict[str, hashes.HashAlgorithm] = {"sha256": hashes.SHA256(), "sha1": hashes.SHA1()}


def sign_digest(key: PrivateKey, hash_name: str, digest: bytes) -> bytes:
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(digest)
    return key.sign(digest, padding.PKCS1v15(), utils.Prehashed(_HASHES[hash_name]))


def verify_digest(key: PublicKey, hash_name: str, digest: bytes, signature: bytes) -> bool:
    try:
        if isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, digest)
        elif isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, digest, padding.PKCS1v15(), utils.Prehashed(_HASHES[hash_name]))
        else:  # pragma: no cover - PublicKey is a closed union
            return False
    except (InvalidSignature, ValueError):
        return False
    return True
