"""Private signing keys: formats, permission checks, errors that name the file."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

import mailseal
from mailseal.dkim.keys import KeyFileError, SigningKey, load_key, parse_private_key
from mailseal.dkim.record import decode_public_key

RFC_EXAMPLES = Path("/work/shared/conformance/rfc-examples")
PEM = serialization.Encoding.PEM
NOENC = serialization.NoEncryption()


def write(path: Path, data: bytes, mode: int = 0o600) -> Path:
    path.write_bytes(data)
    os.chmod(path, mode)
    return path


def rsa_pem(key: SigningKey, fmt: serialization.PrivateFormat,
            enc: serialization.KeySerializationEncryption = NOENC) -> bytes:
    return key.private.private_bytes(PEM, fmt, enc)


def test_pkcs1_pem(tmp_path: Path, rsa1024_key: SigningKey) -> None:
    data = rsa_pem(rsa1024_key, serialization.PrivateFormat.TraditionalOpenSSL)
    assert data.startswith(b"-----BEGIN RSA PRIVATE KEY-----")
    key = load_key(write(tmp_path / "k.private", data))
    assert key.key_type == "rsa" and key.bits == 1024
    assert key.source == str(tmp_path / "k.private")
    assert key.public_data() == rsa1024_key.public_data()


def test_pkcs8_rsa_pem(tmp_path: Path, rsa1024_key: SigningKey) -> None:
    data = rsa_pem(rsa1024_key, serialization.PrivateFormat.PKCS8)
    assert data.startswith(b"-----BEGIN PRIVATE KEY-----")
    assert load_key(write(tmp_path / "k.pem", data)).public_data() == rsa1024_key.public_data()


def test_pkcs8_ed25519_pem(tmp_path: Path, ed_key: SigningKey) -> None:
    data = ed_key.private.private_bytes(PEM, serialization.PrivateFormat.PKCS8, NOENC)
    key = load_key(write(tmp_path / "ed.pem", data))
    assert key.key_type == "ed25519" and key.bits == 256
    assert key.public_data() == ed_key.public_data() and len(key.public_data()) == 32


@pytest.mark.parametrize("layout", ["{b}", "{b}\n", "  {b}\r\n", "{h}\n{t}\n"])
def test_base64_ed25519_seed(tmp_path: Path, ed_key: SigningKey, layout: str) -> None:
    """dkimpy's and Exim's format: the base64 of the 32-byte seed."""
    assert isinstance(ed_key.private, ed25519.Ed25519PrivateKey)
    b = base64.b64encode(ed_key.private.private_bytes_raw()).decode()
    text = layout.format(b=b, h=b[:20], t=b[20:])
    key = load_key(write(tmp_path / "ed.seed", text.encode()))
    assert key.public_data() == ed_key.public_data()


def test_rfc8463_seed_file() -> None:
    path = RFC_EXAMPLES / "rfc8463-A.1-ed25519.seed.b64"
    if not path.exists():
        pytest.skip(f"{path} not present")
    key = parse_private_key(path.read_bytes())
    assert base64.b64encode(key.public_data()) == b"11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="


def test_public_data_is_what_a_record_publishes(rsa1024_key: SigningKey,
                                                ed_key: SigningKey) -> None:
    rsa_pub = decode_public_key("rsa", rsa1024_key.public_data())
    assert isinstance(rsa_pub, rsa.RSAPublicKey) and rsa_pub.key_size == 1024
    assert isinstance(decode_public_key("ed25519", ed_key.public_data()),
                      ed25519.Ed25519PublicKey)


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660, 0o602, 0o620, 0o601, 0o777])
def test_refuses_group_or_world_access(tmp_path: Path, ed_key: SigningKey, mode: int) -> None:
    path = write(tmp_path / "k.pem",
                 ed_key.private.private_bytes(PEM, serialization.PrivateFormat.PKCS8, NOENC), mode)
    with pytest.raises(KeyFileError) as err:
        load_key(path)
    text = str(err.value)
    assert str(path) in text and f"chmod 600 {path}" in text and f"{mode:04o}" in text
    assert load_key(path, check_mode=False).key_type == "ed25519"


@pytest.mark.parametrize("mode", [0o600, 0o400])
def test_accepts_owner_only(tmp_path: Path, ed_key: SigningKey, mode: int) -> None:
    path = write(tmp_path / "k.pem",
                 ed_key.private.private_bytes(PEM, serialization.PrivateFormat.PKCS8, NOENC), mode)
    assert load_key(str(path)).key_type == "ed25519"


def test_encrypted_key(tmp_path: Path, rsa1024_key: SigningKey) -> None:
    data = rsa_pem(rsa1024_key, serialization.PrivateFormat.PKCS8,
                   serialization.BestAvailableEncryption(b"secret"))
    path = write(tmp_path / "enc.pem", data)
    with pytest.raises(KeyFileError, match="encrypted") as err:
        load_key(path)
    assert str(path) in str(err.value)


@pytest.mark.parametrize(("data", "match"), [
    (b"", "0 bytes"),  # an empty file
    (b"hello world, not a key", "neither PEM nor"),
    (b"\x00\xff\x10binary", "neither PEM nor"),
    (base64.b64encode(b"x" * 31), "31 bytes; an Ed25519 seed is 32"),
    (base64.b64encode(b"x" * 64), "64 bytes"),
    (b"-----BEGIN RSA PRIVATE KEY-----\nnot base64\n-----END RSA PRIVATE KEY-----\n",
     "not a valid PEM private key"),
    (b"-----BEGIN garbage", "not a valid PEM private key"),
])
def test_garbage(tmp_path: Path, data: bytes, match: str) -> None:
    path = write(tmp_path / "bad.key", data)
    with pytest.raises(KeyFileError, match=match) as err:
        load_key(path)
    assert str(err.value).startswith(f"{path}: ")


def test_public_key_pem_is_not_a_private_key(tmp_path: Path, rsa1024_key: SigningKey) -> None:
    data = rsa1024_key.private.public_key().public_bytes(
        PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    with pytest.raises(KeyFileError, match="not a valid PEM private key"):
        load_key(write(tmp_path / "pub.pem", data))


def test_unsupported_key_type(tmp_path: Path) -> None:
    data = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        PEM, serialization.PrivateFormat.PKCS8, NOENC)
    with pytest.raises(KeyFileError, match="unsupported key type"):
        load_key(write(tmp_path / "ec.pem", data))


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.private"
    with pytest.raises(KeyFileError, match="cannot read private key") as err:
        load_key(path)
    assert str(path) in str(err.value)


def test_package_exports() -> None:
    assert mailseal.load_key is load_key and mailseal.KeyFileError is KeyFileError
    assert issubclass(KeyFileError, ValueError)
