"""Fixtures for the command-line tests.

The CLI runs as a real subprocess (``python -m mailseal.frontends.cli.main``), so exit
statuses, stdout bytes and stderr lines are what a shell sees. Two keys (RSA-2048 and
Ed25519) are written once per run with mode 0600; their records are served under
``rsa._domainkey.example.com`` and ``ed._domainkey.example.com`` by the real loopback
DNS server (``tests/dnsserver.py``), or read offline from a zone file. dkimpy reads the
same server, as an independent verifier.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dkim
import pytest
from conformance.support import dkimpy_dnsfunc
from dnsserver import ZoneServer, make_zone

import mailseal
from mailseal.dkim.publish import bind_record, key_name, record_value
from mailseal.keystore import generate_key, write_private_key

CLI = (sys.executable, "-m", "mailseal.frontends.cli.main")
ERROR_PREFIX = "mailseal: error: "

#: A message with CRLF line endings (the wire form); tests derive the LF-only copy.
MESSAGE = (b"From: Alice <alice@example.com>\r\n"
           b"To: Bob <bob@example.org>\r\n"
           b"Subject: Lunch\r\n"
           b"Date: Mon, 23 Nov 2026 05:00:00 +0000\r\n"
           b"Message-ID: <cli-1@example.com>\r\n"
           b"\r\n"
           b"Hello Bob,\r\n"
           b"\r\n"
           b"shall we meet at noon?\r\n")


@pytest.fixture(scope="session")
def cli() -> Callable[..., subprocess.CompletedProcess[bytes]]:
    """``cli(*args, stdin=b"", cwd=None)``: run ``mailseal ARGS`` and return the
    completed process (stdout and stderr as bytes)."""
    env = {name: value for name, value in os.environ.items() if name != "MAILSEAL_CONFIG"}

    def run(*args: object, stdin: bytes = b"",
            cwd: Path | None = None) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run([*CLI, *map(str, args)], input=stdin, capture_output=True,
                              cwd=cwd, env=env, timeout=60, check=False)

    return run


@pytest.fixture(scope="session")
def error_of() -> Callable[[subprocess.CompletedProcess[bytes]], str]:
    """``error_of(proc)``: check the error contract (exit status 2, nothing on stdout,
    exactly one line on stderr starting ``mailseal: error:``) and return the text
    after the prefix."""

    def check(proc: subprocess.CompletedProcess[bytes]) -> str:
        err = proc.stderr.decode("utf-8")
        assert proc.returncode == 2, (proc.returncode, err)
        assert proc.stdout == b"", proc.stdout
        assert err.count("\n") == 1 and err.endswith("\n"), err
        assert err.startswith(ERROR_PREFIX), err
        return err.removeprefix(ERROR_PREFIX).rstrip("\n")

    return check


@pytest.fixture
def message() -> bytes:
    return MESSAGE


@pytest.fixture(scope="session")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """``{"rsa": SigningKey, "ed": SigningKey, "rsa_file": Path, "ed_file": Path}``;
    the files have mode 0600 (keystore.write_private_key)."""
    folder = tmp_path_factory.mktemp("keys")
    found: dict[str, Any] = {}
    for name, kind in (("rsa", "rsa"), ("ed", "ed25519")):
        key = generate_key(kind)
        found[name] = key
        found[f"{name}_file"] = write_private_key(folder / f"{name}.private", key)
    return found


@pytest.fixture(scope="session")
def zone_text(keys: dict[str, Any]) -> str:
    """example.com with both key records, written as ``mailseal config init`` prints
    them (the RSA one in several quoted strings)."""
    records = "\n".join(bind_record(key_name(selector, "example.com"),
                                    record_value(keys[selector]))
                        for selector in ("rsa", "ed"))
    return make_zone("example.com", records)


@pytest.fixture(scope="session")
def zone_file(zone_text: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("zone") / "example.com.zone"
    path.write_text(zone_text, encoding="ascii")
    return path


@pytest.fixture
def dns(zone_server: Callable[..., ZoneServer], zone_text: str) -> ZoneServer:
    """The key records on a loopback DNS server (stopped at teardown)."""
    return zone_server(zone_text)


@pytest.fixture(scope="session")
def sign(keys: dict[str, Any]) -> Callable[..., bytes]:
    """``sign(message, selector="rsa", **options)``: the message signed by the library
    (for the verify tests, which need signed input but not another subprocess)."""

    def signed(message: bytes, selector: str = "rsa", **options: Any) -> bytes:
        field = mailseal.sign(message, domain="example.com", selector=selector,
                              key=keys[selector], **options)
        if b"\r\n" not in message:
            field = field.replace(b"\r\n", b"\n")
        return field + message

    return signed


@pytest.fixture(scope="session")
def dkimpy_verifies() -> Callable[[bytes, ZoneServer], bool]:
    """``dkimpy_verifies(message, server)``: dkimpy's verdict on the first signature,
    its keys read from ``server`` over the wire."""

    def verdict(message: bytes, server: ZoneServer) -> bool:
        return bool(dkim.verify(message, dnsfunc=dkimpy_dnsfunc(server), minkey=1024))

    return verdict


@pytest.fixture(scope="session")
def mailseal_verifies() -> Callable[[bytes, ZoneServer], list[str]]:
    """``mailseal_verifies(message, server)``: the result word of every signature,
    judged by the library with the production resolver pointed at ``server``."""

    def results(message: bytes, server: ZoneServer) -> list[str]:
        found = mailseal.verify(message, dns=mailseal.DnsResolver([server.address], timeout=2))
        return [r.result.value for r in found]

    return results
