"""Fixtures shared by the DKIM and API unit tests: keys made once per run, and a
fixed-table resolver (the pure judge only needs ``async txt(name) -> Answer``)."""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping, Sequence

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from mailseal.dkim.keys import SigningKey
from mailseal.dns.types import Answer, Status

TableEntry = Sequence[bytes] | Status


class TableResolver:
    """TXT answers from a dict: a list of records, or a Status for a failure.
    Names not in the table are NXDOMAIN. Every query is recorded in ``asked``."""

    def __init__(self, table: Mapping[str, TableEntry]) -> None:
        self.table = {name.rstrip(".").lower(): entry for name, entry in table.items()}
        self.asked: list[str] = []

    async def txt(self, name: str) -> Answer[bytes]:
        self.asked.append(name)
        entry = self.table.get(name.rstrip(".").lower(), Status.NXDOMAIN)
        if isinstance(entry, Status):
            return Answer(entry, error="test failure" if entry is Status.TEMPFAIL else "")
        return Answer(Status.OK, tuple(entry))


def key_record(key: SigningKey, extra: str = "") -> bytes:
    """The TXT value publishing ``key`` (``extra``: more tags, e.g. "t=y; ")."""
    p = base64.b64encode(key.public_data()).decode("ascii")
    return f"v=DKIM1; k={key.key_type}; {extra}p={p}".encode("ascii")


@pytest.fixture(scope="session")
def rsa_key() -> SigningKey:
    return SigningKey(rsa.generate_private_key(public_exponent=65537, key_size=2048), "rsa2048")


@pytest.fixture(scope="session")
def rsa1024_key() -> SigningKey:
    return SigningKey(rsa.generate_private_key(public_exponent=65537, key_size=1024), "rsa1024")


@pytest.fixture(scope="session")
def ed_key() -> SigningKey:
    return SigningKey(ed25519.Ed25519PrivateKey.generate(), "ed25519")


@pytest.fixture(scope="session")
def table() -> type[TableResolver]:
    """The resolver class: ``table({"s._domainkey.example.com": [txt, ...]})``."""
    return TableResolver


@pytest.fixture(scope="session")
def record() -> Callable[..., bytes]:
    """``record(key, extra="")``: the key record TXT value for a signing key."""
    return key_record
