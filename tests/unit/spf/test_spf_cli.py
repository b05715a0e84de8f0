"""``mailseal spf``: output and exit status, against a loopback DNS server."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from dnsserver import ZoneServer, make_zone

from mailseal.frontends.cli.main import main

ZONE = make_zone("example.com", """
    @ IN TXT "v=spf1 ip4:192.0.2.0/24 include:_spf.example.com -all exp=why.example.com"
    _spf IN TXT "v=spf1 ip6:2001:db8::/32 ~all"
    why IN TXT "%{i} is not one of %{d}'s senders"
    broken IN TXT "v=spf1 a:"
""")


@pytest.fixture
def server(zone_server: Callable[..., ZoneServer]) -> ZoneServer:
    return zone_server(ZONE)


def spf(server: ZoneServer, *args: str) -> int:
    return main(["spf", "--dns", server.address, "--receiver", "mx.test", "--time", "0", *args])


def test_pass_prints_fields(server: ZoneServer, capsys: pytest.CaptureFixture[str]) -> None:
    assert spf(server, "192.0.2.7", "a@example.com", "mail.example.com") == 0
    out = capsys.readouterr().out
    assert out.startswith("spf=pass identity=mailfrom domain=example.com ip=192.0.2.7\n")
    assert "Received-SPF: pass (mx.test: domain of a@example.com designates" in out
    assert "Authentication-Results: mx.test; spf=pass smtp.mailfrom=a@example.com" in out
    assert "trace" not in out


def test_fail_with_trace(server: ZoneServer, capsys: pytest.CaptureFixture[str]) -> None:
    assert spf(server, "-v", "203.0.113.1", "a@example.com") == 1
    out = capsys.readouterr().out
    assert "explanation: 203.0.113.1 is not one of example.com's senders" in out
    assert "trace (1 of 10 DNS-querying terms, 0 of 2 void lookups):" in out
    assert "  include:_spf.example.com gave softfail: no match" in out


def test_null_sender_helo_and_errors(server: ZoneServer,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert spf(server, "203.0.113.1", "<>", "example.com") == 1
    assert "postmaster@example.com" in capsys.readouterr().out
    assert spf(server, "--helo-identity", "2001:db8::1", "", "example.com") == 0  # include
    assert "identity=helo" in capsys.readouterr().out
    assert spf(server, "192.0.2.1", "a@broken.example.com") == 1  # permerror
    assert "problem: syntax error" in capsys.readouterr().out
    assert spf(server, "192.0.2.1", "a@nowhere.example.com") == 1  # none


def test_temperror_and_usage(server: ZoneServer, capsys: pytest.CaptureFixture[str]) -> None:
    server.drop.add("example.com")
    assert spf(server, "--timeout", "0.2", "192.0.2.1", "a@example.com") == 2
    assert "spf=temperror" in capsys.readouterr().out
    assert spf(server, "not-an-ip", "a@example.com") == 2
    assert spf(server, "192.0.2.1", "<>") == 2
    assert main(["spf", "--dns", "nonsense", "192.0.2.1", "a@example.com"]) == 2
    assert "error" in capsys.readouterr().err
