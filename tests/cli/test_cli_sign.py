"""``mailseal sign``: the signed message on stdout (signature + the input unchanged, in the
input's line-ending convention), every option visible as its tag, and each user error
as one ``mailseal: error:`` line with exit status 2. Every signature made here is
checked by dkimpy and by mailseal, keys read from the loopback DNS server."""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from dnsserver import ZoneServer

import mailseal
from mailseal.message import unfold

Cli = Callable[..., Any]
Verifier = Callable[[bytes, ZoneServer], Any]


def split_signed(output: bytes, original: bytes) -> bytes:
    """The DKIM-Signature field the CLI put before ``original``."""
    assert output.endswith(original)
    field = output[: len(output) - len(original)]
    assert field.startswith(b"DKIM-Signature:")
    return field


def tags(field: bytes) -> dict[str, str]:
    """The tag=value list of a DKIM-Signature field (whitespace removed)."""
    value = re.sub(rb"\s+", b"", unfold(field.partition(b":")[2])).decode("ascii")
    return dict(item.split("=", 1) for item in value.split(";") if item)


@pytest.mark.parametrize("ending", ["crlf", "lf"])
@pytest.mark.parametrize("source", ["stdin", "file"])
def test_signed_message_is_signature_plus_input_in_its_line_endings(
        cli: Cli, keys: dict[str, Any], dns: ZoneServer, message: bytes, tmp_path: Path,
        dkimpy_verifies: Verifier, mailseal_verifies: Verifier, ending: str,
        source: str) -> None:
    data = message if ending == "crlf" else message.replace(b"\r\n", b"\n")
    args = ["sign", "-d", "example.com", "-s", "rsa", "-k", keys["rsa_file"]]
    if source == "file":
        path = tmp_path / "msg.eml"
        path.write_bytes(data)
        proc = cli(*args, path)
    else:
        proc = cli(*args, stdin=data)
    assert (proc.returncode, proc.stderr) == (0, b"")
    field = split_signed(proc.stdout, data)
    if ending == "crlf":
        assert field.endswith(b"\r\n") and field.count(b"\n") == field.count(b"\r\n")
    else:
        assert field.endswith(b"\n") and b"\r" not in field
    t = tags(field)
    assert (t["a"], t["c"], t["d"], t["s"]) == ("rsa-sha256", "relaxed/simple",
                                                 "example.com", "rsa")
    assert t["h"].split(":")[:2] == ["from", "from"]  # From signed and oversigned
    assert abs(int(t["t"]) - time.time()) < 60
    assert dkimpy_verifies(proc.stdout, dns)
    assert mailseal_verifies(proc.stdout, dns) == ["pass"]


def test_options_become_tags(cli: Cli, keys: dict[str, Any], dns: ZoneServer, message: bytes,
                             dkimpy_verifies: Verifier, mailseal_verifies: Verifier) -> None:
    now = int(time.time()) - 5
    proc = cli("sign", "-d", "example.com", "-s", "ed", "-k", keys["ed_file"],
               "-a", "ed25519-sha256", "-c", "relaxed/relaxed", "--headers", "Subject, to",
               "--expire", "3600", "--identity", "alice@example.com", "--body-length",
               "--time", now, stdin=message)
    assert (proc.returncode, proc.stderr) == (0, b"")
    field = split_signed(proc.stdout, message)
    t = tags(field)
    assert t["a"] == "ed25519-sha256"
    assert t["c"] == "relaxed/relaxed"
    assert t["h"] == "from:from:subject:to"  # From is always signed, and oversigned
    assert (t["t"], t["x"]) == (str(now), str(now + 3600))
    assert t["i"] == "alice@example.com"
    assert t["l"] == str(len(b"Hello Bob,\r\n\r\nshall we meet at noon?\r\n"))
    # Ed25519 with a fixed clock is deterministic: the CLI made exactly what the
    # library makes from the same options.
    assert field == mailseal.sign(message, domain="example.com", selector="ed",
                                  key=keys["ed"], canonicalization="relaxed/relaxed",
                                  headers=["subject", "to"], expire_after=3600,
                                  identity="alice@example.com", body_length=True, now=now)
    assert dkimpy_verifies(proc.stdout, dns)
    assert mailseal_verifies(proc.stdout, dns) == ["pass"]


def test_no_timestamp_leaves_out_t(cli: Cli, keys: dict[str, Any], dns: ZoneServer,
                                   message: bytes, dkimpy_verifies: Verifier,
                                   mailseal_verifies: Verifier) -> None:
    proc = cli("sign", "-d", "example.com", "-s", "rsa", "-k", keys["rsa_file"],
               "-c", "simple/simple", "--no-timestamp", stdin=message)
    assert (proc.returncode, proc.stderr) == (0, b"")
    t = tags(split_signed(proc.stdout, message))
    assert t["c"] == "simple/simple"
    assert "t" not in t and "x" not in t and "l" not in t and "i" not in t
    assert dkimpy_verifies(proc.stdout, dns)
    assert mailseal_verifies(proc.stdout, dns) == ["pass"]


ONE_FROM = b"From: alice@example.com\r\n\r\nbody\r\n"


@pytest.mark.parametrize(("key", "options", "stdin", "expected"), [
    pytest.param("open", [], ONE_FROM,
                 ["{key}: private key is accessible by group or others (mode 0644)",
                  "run: chmod 600 {key}"], id="key-mode-0644"),
    pytest.param("missing", [], ONE_FROM,
                 ["{key}: cannot read private key: No such file or directory"],
                 id="missing-key-file"),
    pytest.param("rsa", [], b"To: bob@example.org\r\n\r\nbody\r\n",
                 ["message has no From field"], id="no-from"),
    pytest.param("rsa", [], b"From: a@example.com\r\nFrom: b@example.com\r\n\r\nbody\r\n",
                 ["message has 2 From fields"], id="two-from"),
    pytest.param("rsa", ["-a", "rsa-sha1"], ONE_FROM,
                 ["rsa-sha1 is not allowed for signing (RFC 8301)"],
                 id="rsa-sha1-without-legacy-switch"),
    pytest.param("rsa", ["-c", "bogus/simple"], ONE_FROM,
                 ["unknown canonicalization 'bogus/simple'"], id="bad-canonicalization"),
    pytest.param("rsa", ["-d", "bad_domain..com"], ONE_FROM,
                 ["invalid signing domain 'bad_domain..com'"], id="invalid-domain"),
    pytest.param("rsa", ["-i", "alice@example.org"], ONE_FROM,
                 ["identity 'alice@example.org' is not within example.com"],
                 id="identity-outside-domain"),
    pytest.param("rsa", ["-a", "ed25519-sha256"], ONE_FROM,
                 ["algorithm ed25519-sha256 needs a ed25519 key, got rsa"],
                 id="algorithm-does-not-fit-key"),
])
def test_user_errors_are_one_line_with_status_2(cli: Cli, error_of: Callable[[Any], str],
                                                keys: dict[str, Any], tmp_path: Path, key: str,
                                                options: list[str], stdin: bytes,
                                                expected: list[str]) -> None:
    keyfile = tmp_path / f"{key}.private"
    if key != "missing":
        shutil.copy2(keys["rsa_file"], keyfile)
    if key == "open":
        keyfile.chmod(0o644)
    # A later -d overrides the first (click keeps the last value of an option).
    proc = cli("sign", "-d", "example.com", "-s", "rsa", "-k", keyfile, *options, stdin=stdin)
    text = error_of(proc)
    for part in expected:
        assert part.format(key=keyfile) in text


def test_legacy_sha1_switch_allows_rsa_sha1(cli: Cli, keys: dict[str, Any],
                                            message: bytes) -> None:
    proc = cli("sign", "-d", "example.com", "-s", "rsa", "-k", keys["rsa_file"],
               "-a", "rsa-sha1", "--legacy-sha1", stdin=message)
    assert (proc.returncode, proc.stderr) == (0, b"")
    assert tags(split_signed(proc.stdout, message))["a"] == "rsa-sha1"


def test_missing_message_file_is_one_error_line(cli: Cli, error_of: Callable[[Any], str],
                                                keys: dict[str, Any], tmp_path: Path) -> None:
    missing = tmp_path / "absent.eml"
    proc = cli("sign", "-d", "example.com", "-s", "rsa", "-k", keys["rsa_file"], missing)
    assert str(missing) in error_of(proc)


def test_negative_time_is_refused(cli: Cli, error_of: Callable[[Any], str],
                                  keys: dict[str, Any], message: bytes) -> None:
    proc = cli("sign", "-d", "example.com", "-s", "rsa", "-k", keys["rsa_file"],
               "--time", "-5", stdin=message)
    assert "-5" in error_of(proc)
