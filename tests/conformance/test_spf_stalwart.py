"""Stalwart mail-auth's SPF files (``stalwart-mail-auth/spf/*.yml``, 163 expectations).

The files are read line by line (they are not YAML; see the suite's README and
``spf_support.load_stalwart``). The DNS data accumulates over a file, so each
expectation carries a snapshot of it; one loopback server per file is given the
snapshot before each case.

An ``expect:`` line checks what Stalwart's test checks: the HELO identity first
(<domain> = the ``domain:`` line, <sender> = postmaster@domain) and, only when that
passes, the MAIL FROM identity (``sender:``, or postmaster@domain when empty), with
``localdomain.org`` as the receiving host (%{r}). Names containing ``_dns_error.``
are answered SERVFAIL.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from conformance.spf_support import StalwartCase, load_stalwart
from conformance.support import suite_dir
from dnsserver import ZoneServer

from mailseal.dns.cache import DnsCache
from mailseal.dns.resolver import DnsResolver
from mailseal.dns.types import FullResolver
from mailseal.results import Result
from mailseal.spf import SpfResult, check_helo, check_mail_from

pytestmark = pytest.mark.conformance

SUITE = suite_dir("stalwart-mail-auth") / "spf"
FILES = sorted(SUITE.glob("*.yml"))
CASES = [case for path in FILES for case in load_stalwart(path)]
NOW = 1_700_000_000
RECEIVER = "localdomain.org"

#: Where mailseal's result differs from the file's: (mailseal's result, why). A test
#: checks that each entry still differs, so the list cannot go stale.
DISAGREEMENTS: dict[str, tuple[str, str]] = {
    "all-1-1": ("permerror", "'v=spf1 -all ip:10.0.0.1': 'ip' is no mechanism. RFC 7208 §4.6: "
                "any syntax error anywhere in the record is a permerror, before evaluation; "
                "§5.1's 'mechanisms after all MUST be ignored' is about evaluation. The "
                "OpenSPF case detect-errors-anywhere ('-all moo') agrees."),
    "basic-5-1": ("permerror", "ten a: mechanisms on names that do not exist: the third "
                  "void lookup exceeds RFC 7208 §4.6.4's limit of two (OpenSPF "
                  "void-over-limit); Stalwart has no void-lookup limit."),
    "exists-1-2": ("fail", "exists:ip6.test.org, which has only AAAA records. RFC 7208 §5.7: "
                   "the name 'is used for a DNS A RR lookup (even when the connection type "
                   "is IPv6)' (OpenSPF exists-ip6only); Stalwart also accepts AAAA."),
    "ip-2-4": ("fail", "client 10.1.2.3 and 'ip6:::ffff:10.1.2.3'. RFC 7208 §5: an "
               "IPv4-mapped address is IPv4, and IPv4 clients match ip4 only (OpenSPF "
               "cidr6-ip4, cidr6-0-ip4); Stalwart matches IPv4 inside ip6 networks."),
    "macro-2-2": ("fail", "IPv6 client, exists:%{ir}.%{v}._spf.%{d2} where only an AAAA "
                  "record exists: the A lookup of RFC 7208 §5.7 finds nothing (as exists-1-2)."),
}


@pytest.fixture(scope="module")
def server() -> Iterator[ZoneServer]:
    with ZoneServer() as running:
        yield running


def test_suite_size() -> None:
    assert len(FILES) == 12
    assert len(CASES) == 163


def test_disagreements_differ_from_the_suite() -> None:
    by_id = {case.id: case for case in CASES}
    for case_id, (ours, _why) in DISAGREEMENTS.items():
        assert by_id[case_id].result != ours, case_id


async def _verify(resolver: FullResolver, case: StalwartCase) -> SpfResult:
    helo = await check_helo(resolver, case.ip, case.domain, now=NOW, receiver=RECEIVER)
    if helo.result is not Result.PASS:
        return helo
    return await check_mail_from(resolver, case.ip, case.sender, case.domain, now=NOW,
                                 receiver=RECEIVER)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_stalwart_spf(case: StalwartCase, server: ZoneServer) -> None:
    server.shuffle = False  # PTR order decides basic-5-8 (only the first 10 count)
    server.set_zone(case.zone_text)
    server.servfail.clear()
    server.servfail.update(case.servfail)
    resolver = DnsResolver([server.address], timeout=2.0, cache=DnsCache())
    result = asyncio.run(_verify(resolver, case))
    trace = "\n".join(result.trace)
    expected = DISAGREEMENTS[case.id][0] if case.id in DISAGREEMENTS else case.result
    assert result.result == expected, f"{case.name}: {result.problem}\n{trace}"
    if case.explanation:
        assert result.explanation == case.explanation, trace
