"""``mailseal explain`` (the decision trail for a saved message and envelope) and the
built-in help (``--help`` of the program and of every command, each with an example)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from dnsserver import ZoneServer

Cli = Callable[..., Any]
Verifier = Callable[[bytes, ZoneServer], Any]


@pytest.fixture
def config(tmp_path: Path, keys: dict[str, Any], dns: ZoneServer) -> Path:
    """One key and one rule for example.com; loopback clients are internal; keys are
    looked up on the loopback DNS server."""
    path = tmp_path / "mailseal.toml"
    path.write_text(f"""\
[server]
authserv_id = "mx.test"

[dns]
nameservers = ["{dns.address}"]
timeout = 2.0

[[keys]]
name = "ex"
domain = "example.com"
selector = "rsa"
file = "{keys["rsa_file"]}"

[signing]
internal_hosts = ["127.0.0.0/8"]
rules = [{{ match = "example.com", keys = ["ex"] }}]
""")
    return path


def added_signature(out: str) -> bytes:
    """The DKIM-Signature field explain would add (its last edit), in wire form."""
    _, found, value = out.partition("add: DKIM-Signature:")
    assert found, out
    return b"DKIM-Signature:" + value.rstrip("\n").replace("\n", "\r\n").encode() + b"\r\n"


@pytest.mark.parametrize(("envelope", "why"), [
    pytest.param(["--client-ip", "127.0.0.1"], "- client 127.0.0.1 is an internal host",
                 id="internal-client"),
    pytest.param(["--client-ip", "192.0.2.10", "--auth-user", "alice"],
                 "- client authenticated as 'alice'", id="outside-but-authenticated"),
])
def test_our_mail_is_signed(cli: Cli, config: Path, dns: ZoneServer, message: bytes,
                            dkimpy_verifies: Verifier, mailseal_verifies: Verifier,
                            envelope: list[str], why: str) -> None:
    proc = cli("explain", "-c", config, *envelope, stdin=message)
    out = proc.stdout.decode()
    assert (proc.returncode, proc.stderr) == (0, b""), out
    assert out.splitlines()[:4] == [
        why,
        "- sign: alice@example.com matches rule 'example.com' → keys ex (d=example.com s=rsa)",
        "- signed: d=example.com s=rsa a=rsa-sha256",
        "action: accept",
    ]
    signed = added_signature(out) + message
    assert mailseal_verifies(signed, dns) == ["pass"]
    assert dkimpy_verifies(signed, dns)


def test_outside_mail_is_verified(cli: Cli, config: Path, sign: Callable[..., bytes],
                                  message: bytes) -> None:
    proc = cli("explain", "-c", config, "--client-ip", "192.0.2.10", stdin=sign(message))
    out = proc.stdout.decode()
    assert (proc.returncode, proc.stderr) == (0, b""), out
    lines = out.splitlines()
    assert lines[0] == ("- verify: client 192.0.2.10 is not internal, not authenticated, "
                        "not on a signing daemon")
    assert lines[1].startswith("- dkim=pass d=example.com s=rsa a=rsa-sha256: good signature")
    # Then SPF (no MAIL FROM given: postmaster@HELO) and DMARC, the outcome, the action.
    assert lines[2].startswith("- spf=")
    assert lines[3].startswith("- dmarc=")
    assert lines[4].startswith("- outcome: ")
    assert lines[5] == "action: accept"
    assert lines[6] == "add: Authentication-Results: mx.test;"
    assert "dkim=pass" in out and "header.d=example.com header.s=rsa" in out
    assert "DKIM-Signature" not in out


@pytest.mark.parametrize(("stdin", "reason"), [
    pytest.param(b"From: alice@example.com\r\nFrom: eve@example.com\r\n\r\nhi\r\n",
                 "- not signed: message has 2 From fields (RFC 5322 wants one)",
                 id="two-from-fields"),
    pytest.param(b"From: carol@example.net\r\n\r\nhi\r\n",
                 "- not signed: From domain example.net has no signing rule", id="no-rule"),
])
def test_internal_mail_that_is_not_signed(cli: Cli, config: Path, stdin: bytes,
                                          reason: str) -> None:
    proc = cli("explain", "-c", config, "--client-ip", "127.0.0.1", stdin=stdin)
    assert (proc.returncode, proc.stderr) == (0, b"")
    assert proc.stdout.decode().splitlines() == [
        "- client 127.0.0.1 is an internal host", reason, "action: accept"]


def test_bad_configuration_is_one_error_line(cli: Cli, error_of: Callable[[Any], str],
                                             tmp_path: Path, message: bytes) -> None:
    path = tmp_path / "mailseal.toml"
    path.write_text("[signing]\ninternal_hosts = [\"10.0.0.300/8\"]\n")
    text = error_of(cli("explain", "-c", path, "--client-ip", "127.0.0.1", stdin=message))
    assert text == (f"{path}: signing.internal_hosts: "
                    "'10.0.0.300/8' is not an IP address or CIDR network")


@pytest.mark.parametrize("command", [
    pytest.param([], id="mailseal"),
    pytest.param(["sign"], id="sign"),
    pytest.param(["verify"], id="verify"),
    pytest.param(["config", "init"], id="config-init"),
    pytest.param(["config", "check"], id="config-check"),
    pytest.param(["explain"], id="explain"),
    pytest.param(["postfix-config"], id="postfix-config"),
    pytest.param(["milter"], id="milter"),
    pytest.param(["config"], id="config"),
])
def test_help_has_an_example(cli: Cli, command: list[str]) -> None:
    proc = cli(*command, "--help")
    out = proc.stdout.decode()
    assert (proc.returncode, proc.stderr) == (0, b"")
    assert out.startswith(f"Usage: {' '.join(['mailseal', *command])} ")
    assert "\n  Example" in out
