"""mailauth's RFC 8463 fixture (``mailauth/dkim-ed25519-rfc8463/``): Appendix A.3 as
mailauth stores it (LF line endings; the RSA key record split into several strings).
The DMARC vectors of the same folder are out of scope here."""

from __future__ import annotations

import pytest
from conformance.support import (
    ServeZones,
    dkimpy_verify,
    load_json,
    resolver,
    root_zone,
    suite_dir,
    verdicts,
)
from dnsserver import ZoneServer

import mailseal
from mailseal.dkim.keys import load_key
from mailseal.message import to_crlf

SUITE = suite_dir("mailauth") / "dkim-ed25519-rfc8463"
DNS = load_json(SUITE / "dns.json")
CLOCK = 1528637909  # mailauth's test pins the clock to the signatures' t=
PASS = ("pass", "PASS")


@pytest.fixture(scope="module")
def server(serve_zones: ServeZones) -> ZoneServer:
    # Each TXT RR is a list of character-strings: served as such, joined by the client.
    return serve_zones(root_zone({name: rr["TXT"] for name, rr in DNS.items()}))


def test_multi_string_record_is_joined(server: ZoneServer) -> None:
    import asyncio

    answer = asyncio.run(resolver(server).txt("test._domainkey.football.example.com"))
    assert answer.records == ("".join(DNS["test._domainkey.football.example.com"]["TXT"][0])
                              .encode(),)


@pytest.mark.parametrize("now", [CLOCK, None], ids=["mailauth-clock", "today"])
def test_verify(now: int | None, server: ZoneServer) -> None:
    """Both signatures pass (Ed25519 first, RSA second), at any time: no x=."""
    message = to_crlf((SUITE / "signed.eml").read_bytes())
    results = mailseal.verify(message, dns=resolver(server), now=now)
    assert verdicts(results) == [PASS, PASS]
    assert [r.algorithm for r in results] == ["ed25519-sha256", "rsa-sha256"]
    assert dkimpy_verify(message, server, 2) == [True, True]


@pytest.mark.parametrize(("key", "selector"), [("private-ec.key", "brisbane"),
                                               ("private-rsa.key", "test")])
def test_sign_then_verify(key: str, selector: str, server: ZoneServer) -> None:
    """The fixture's private keys sign the message body again; mailseal and dkimpy
    verify against the published A.2 records."""
    message = to_crlf((SUITE / "signed.eml").read_bytes())
    signed = mailseal.sign(message, domain="football.example.com", selector=selector,
                           key=load_key(SUITE / key, check_mode=False),
                           canonicalization="relaxed/relaxed") + message
    results = mailseal.verify(signed, dns=resolver(server))
    assert verdicts(results) == [PASS, PASS, PASS]
    assert dkimpy_verify(signed, server, 1) == [True]
