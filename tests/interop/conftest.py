"""Interop fixtures: per-session keys, a loopback DNS zone serving them, the peers."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from dnsserver import ZoneServer, make_zone

from mailseal.dkim.keys import SigningKey, load_key

from .peers import PEER_CLASSES, KeySet, Mailseal, OpenDkimTestmsg, Peer

DOMAIN = "interop.test"
RSA_SELECTOR = "rsa2048"
ED_SELECTOR = "ed25519"

# OpenDKIM resolves through libunbound, which will not query 127.0.0.1 by default and
# answers for the RFC 6761 test. zone itself (see peers.py).
UNBOUND_CONF = """server:
  do-not-query-localhost: no
  local-zone: "test." nodefault
"""


def write_private(path: Path, data: bytes) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    return path


def txt_strings(text: str) -> str:
    """A TXT record value as character-strings of at most 255 octets (RFC 1035 §3.3)."""
    return " ".join(f'"{text[i:i + 250]}"' for i in range(0, len(text), 250))


def key_record(key: SigningKey) -> str:
    p = base64.b64encode(key.public_data()).decode()
    return txt_strings(f"v=DKIM1; k={key.key_type}; p={p}")


@pytest.fixture(scope="session")
def key_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Fresh RSA-2048 and Ed25519 keys for this session, written mode 0600."""
    folder = tmp_path_factory.mktemp("interop-keys")
    folder.chmod(0o700)
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    write_private(folder / "rsa.pem", rsa_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption()))
    ed_key = ed25519.Ed25519PrivateKey.generate()
    write_private(folder / "ed25519.pem", ed_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    seed = ed_key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                serialization.NoEncryption())
    write_private(folder / "ed25519.seed", base64.b64encode(seed) + b"\n")
    (folder / "unbound.conf").write_text(UNBOUND_CONF)
    return folder


@pytest.fixture(scope="module")
def dns_server(key_dir: Path) -> Iterator[ZoneServer]:
    records = (f"{RSA_SELECTOR}._domainkey TXT {key_record(load_key(key_dir / 'rsa.pem'))}\n"
               f"{ED_SELECTOR}._domainkey TXT {key_record(load_key(key_dir / 'ed25519.pem'))}\n")
    with ZoneServer(make_zone(DOMAIN, records)) as server:
        yield server


@pytest.fixture(scope="module")
def keys(key_dir: Path, dns_server: ZoneServer) -> KeySet:
    return KeySet(
        domain=DOMAIN, dns_port=dns_server.port,
        rsa_selector=RSA_SELECTOR, ed_selector=ED_SELECTOR,
        rsa_pem=key_dir / "rsa.pem", ed_pem=key_dir / "ed25519.pem",
        ed_seed=key_dir / "ed25519.seed", unbound_conf=key_dir / "unbound.conf",
    )


@pytest.fixture(scope="module")
def peer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("interop-peers")


@pytest.fixture(scope="module")
def dkimpy(keys: KeySet, peer_dir: Path) -> Peer:
    return PEER_CLASSES["dkimpy"](keys, peer_dir)


@pytest.fixture(scope="module")
def maildkim(keys: KeySet, peer_dir: Path) -> Peer:
    return PEER_CLASSES["maildkim"](keys, peer_dir)


@pytest.fixture(scope="module")
def opendkim(keys: KeySet, peer_dir: Path) -> Peer:
    return PEER_CLASSES["opendkim"](keys, peer_dir)


@pytest.fixture(scope="module")
def opendkim_testmsg(keys: KeySet, peer_dir: Path) -> Peer:
    return OpenDkimTestmsg(keys, peer_dir)


@pytest.fixture(scope="module")
def mailseal(keys: KeySet) -> Mailseal:
    return Mailseal(keys)
