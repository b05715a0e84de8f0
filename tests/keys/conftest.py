"""Fixtures for the key-lifecycle tests (``genkey``, ``dns-record``, ``testkey``,
``rotate``, ``keys list``).

Every command runs as a real subprocess (``python -m mailseal.frontends.cli.main``), so
exit statuses and output are what a shell sees. Records are served by the loopback DNS
server (``tests/dnsserver.py``) under the ``keys.test`` zone. Keys are made once per
run: by ``mailseal genkey`` itself (RSA-2048, Ed25519), and by ``openssl genrsa 512``
for a key too small to be made here.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from dnsserver import ZoneServer
from keys.support import GenKey, genkey, openssl_key, zone


@pytest.fixture(scope="session")
def key_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("lifecycle-keys")
    folder.chmod(0o700)
    return folder


@pytest.fixture(scope="session")
def rsa_key(key_dir: Path) -> GenKey:
    return genkey(key_dir, "rsa2048")


@pytest.fixture(scope="session")
def other_rsa_key(key_dir: Path) -> GenKey:
    return genkey(key_dir, "other")


@pytest.fixture(scope="session")
def rsa_options_key(key_dir: Path) -> GenKey:
    """With every record option: h=sha256, s=email, t=y."""
    return genkey(key_dir, "options", "--testing", "--hash", "sha256",
                  "--restrict-service", "email")


@pytest.fixture(scope="session")
def ed_key(key_dir: Path) -> GenKey:
    return genkey(key_dir, "ed", "--type", "ed25519")


@pytest.fixture(scope="session")
def openssl() -> str:
    program = shutil.which("openssl")
    if program is None:
        pytest.skip("openssl not installed (Debian: openssl)")
    return program


@pytest.fixture(scope="session")
def rsa512_file(openssl: str, key_dir: Path) -> Path:
    """A 512-bit RSA key: cryptography refuses to make one, OpenSSL still does."""
    return openssl_key(openssl, key_dir / "rsa512.pem", "genrsa", "512")


@pytest.fixture
def dns(zone_server: Callable[..., ZoneServer]) -> ZoneServer:
    """An empty keys.test zone on loopback; tests fill it with ``set_zone(zone(...))``."""
    return zone_server(zone())
