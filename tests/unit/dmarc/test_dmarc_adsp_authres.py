"""ADSP (RFC 5617) and DomainKeys policy (RFC 4870 §3.6) verdicts, the
Authentication-Results entries, and ``mailseal dmarc check`` against a loopback
DNS server."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

import pytest
from dnsserver import ZoneServer, make_zone

from mailseal.authres import AuthenticationResults, format_value, parse_value
from mailseal.dmarc.adsp import (
    AdspResult,
    DkPolicyResult,
    Practice,
    check_adsp,
    check_dk_policy,
    parse_adsp,
)
from mailseal.dmarc.authres import adsp_method_result, dmarc_method_result
from mailseal.dmarc.check import check_dmarc, check_message
from mailseal.dns.types import Status
from mailseal.frontends.cli.main import main

Table = Callable[[Mapping[str, Any]], Any]


@pytest.mark.parametrize(("text", "practice"), [
    ("dkim=all", Practice.ALL), ("dkim=DISCARDABLE; x=y", Practice.DISCARDABLE),
    ("dkim=unknown", Practice.UNKNOWN), ("dkim=future-value", Practice.UNKNOWN),
    ("x=y", None), ("dkim=all; dkim=all", None), ("garbage", None), ("", None),
])
def test_parse_adsp(text: str, practice: Practice | None) -> None:
    assert parse_adsp(text) is practice


@pytest.mark.parametrize(("zone", "dkim", "result"), [
    ({}, ["example.com"], AdspResult.PASS),  # Author Domain Signature: no lookup needed
    ({"example.com": Status.NODATA}, ["example.net"], AdspResult.NONE),
    ({"example.com": Status.NODATA, "_adsp._domainkey.example.com": [b"dkim=all"]}, [],
     AdspResult.FAIL),
    ({"example.com": Status.NODATA, "_adsp._domainkey.example.com": [b"dkim=discardable"]},
     ["sub.example.com"], AdspResult.DISCARD),  # d= must equal the Author Domain (§2.7)
    ({"example.com": Status.NODATA, "_adsp._domainkey.example.com": [b"dkim=unknown"]}, [],
     AdspResult.UNKNOWN),
    ({}, [], AdspResult.NXDOMAIN),  # §4.3 step 1: the domain does not exist
    ({"example.com": Status.TEMPFAIL}, [], AdspResult.TEMPERROR),
    ({"example.com": Status.NODATA, "_adsp._domainkey.example.com": Status.TEMPFAIL}, [],
     AdspResult.TEMPERROR),
    ({"example.com": Status.NODATA,
      "_adsp._domainkey.example.com": [b"dkim=all", b"dkim=unknown"]}, [], AdspResult.PERMERROR),
])
def test_adsp(table: Table, zone: dict[str, Any], dkim: list[str], result: AdspResult) -> None:
    resolver = table(zone)
    verdict = asyncio.run(check_adsp("Example.COM", resolver, dkim_domains=dkim))
    assert (verdict.result, verdict.domain) == (result, "example.com")
    if result is AdspResult.PASS:
        assert resolver.asked == []


@pytest.mark.parametrize(("records", "signed", "result", "testing"), [
    ([], [], DkPolicyResult.NONE, False),
    ([b"o=-"], ["example.com"], DkPolicyResult.PASS, False),
    ([b"o=-; t=y; r=postmaster@example.com"], [], DkPolicyResult.FAIL, True),
    ([b"o=~"], [], DkPolicyResult.NEUTRAL, False),
    ([b"t=y"], [], DkPolicyResult.NEUTRAL, True),  # o= defaults to ~
    ([b"k=rsa; p=MIGf"], [], DkPolicyResult.NONE, False),  # a key record, not a policy
    ([b"o=-", b"o=~"], [], DkPolicyResult.NONE, False),
])
def test_domainkeys_policy(table: Table, records: list[bytes], signed: list[str],
                           result: DkPolicyResult, testing: bool) -> None:
    zone = {"_domainkey.example.com": records} if records else {}
    verdict = asyncio.run(check_dk_policy("example.com", table(zone), signed_domains=signed))
    assert (verdict.result, verdict.testing) == (result, testing)


def round_trip(entry: Any) -> str:
    ar = AuthenticationResults("mx.example.net", None, (entry,))
    text = format_value(ar)
    assert parse_value(text) == ar
    return text


def test_dmarc_entries(table: Table) -> None:
    zone = {"_dmarc.example.com": [b"v=DMARC1; p=reject; sp=quarantine; t=y"]}
    r = asyncio.run(check_dmarc("mail.example.com", table(zone)))
    text = round_trip(dmarc_method_result(r))
    assert text == ('mx.example.net; dmarc=fail (p=REJECT sp=QUARANTINE dis=NONE '
                    'policy-test-mode from example.com) reason="no authenticated identifier '
                    'is aligned" header.from=mail.example.com policy.dmarc=none')
    r = asyncio.run(check_dmarc("example.com", table(zone), dkim_domains=["example.com"]))
    assert round_trip(dmarc_method_result(r)) == (
        "mx.example.net; dmarc=pass (p=REJECT sp=QUARANTINE) header.from=example.com "
        "policy.dmarc=quarantine")


def test_dmarc_entries_without_policy(table: Table) -> None:
    r = asyncio.run(check_dmarc("example.com", table({})))
    assert round_trip(dmarc_method_result(r)) == (
        'mx.example.net; dmarc=none reason="no DMARC policy record" header.from=example.com')
    r = asyncio.run(check_dmarc("example.com", table({"_dmarc.example.com": Status.TEMPFAIL})))
    assert "dmarc=temperror" in round_trip(dmarc_method_result(r))
    (r,) = asyncio.run(check_message([b"Joe <joe@[192.0.2.1]>"], table({})))
    assert round_trip(dmarc_method_result(r)).startswith("mx.example.net; dmarc=permerror")


def test_hostile_detail_is_printable(table: Table) -> None:
    zone = {"_dmarc.example.com": Status.TEMPFAIL}
    r = asyncio.run(check_dmarc("example.com", table(zone)))
    from dataclasses import replace

    r = replace(r, detail="bad\r\nInjected: yes\x00" + "x" * 500)
    entry = dmarc_method_result(r)
    assert entry.reason is not None and "\r" not in entry.reason and len(entry.reason) <= 200


def test_adsp_entry(table: Table) -> None:
    zone = {"example.com": Status.NODATA, "_adsp._domainkey.example.com": [b"dkim=all"],
            "_domainkey.example.com": [b"o=-; t=y"]}
    adsp = asyncio.run(check_adsp("example.com", table(zone)))
    dk = asyncio.run(check_dk_policy("example.com", table(zone)))
    assert round_trip(adsp_method_result(adsp, dk)) == (
        'mx.example.net; dkim-adsp=fail (DomainKeys policy fail: o=-, t=y) '
        'reason="dkim=all" header.from=example.com')
    passing = asyncio.run(check_adsp("example.com", table(zone), dkim_domains=["example.com"]))
    assert round_trip(adsp_method_result(passing)) == (
        "mx.example.net; dkim-adsp=pass header.from=example.com")


# -- mailseal dmarc check, over a real loopback DNS server ---------------------------------


def test_cli_check(zone_server: Callable[..., ZoneServer],
                   capfd: pytest.CaptureFixture[str]) -> None:
    server = zone_server(make_zone(".", """
        _dmarc.example.com. IN TXT "v=DMARC1; p=reject; sp=quarantine; adkim=bogus; rua=mailto:d@example.com"
        mail.example.com. IN A 192.0.2.1
    """))
    assert main(["dmarc", "check", "mail.example.com", "--dns", server.address]) == 0
    out = capfd.readouterr().out
    assert "_dmarc.mail.example.com" in out and "policy domain:  example.com" in out
    assert "applies:        sp=quarantine" in out and "problem:        adkim=bogus" in out
    assert main(["dmarc", "check", "example.com", "--dns", server.address,
                 "--mode", "7489"]) == 0
    assert "Public Suffix List" in capfd.readouterr().out
    assert main(["dmarc", "check", "nothing.example.org", "--dns", server.address]) == 1
    assert main(["dmarc", "check", "not a domain", "--dns", server.address]) == 2
