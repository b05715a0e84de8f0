"""The OpenSPF RFC 7208 test suite (``spf-openspf/rfc7208-tests.yml``, 203 cases).

Each scenario's ``zonedata`` becomes one zone served by a real loopback
:class:`ZoneServer`; check_host() reads it through the production
:class:`DnsResolver`. TIMEOUT entries are names (or types) the server never
answers, with a 0.3 s resolver timeout. One server and one resolver per scenario;
each case gets a fresh cache, so no case sees another's answers.

A case passes when the result is the expected one (or one of the listed ones) and,
where the suite gives an explanation, the exp= text equals it ("DEFAULT" standing for
"no exp= applied", as in the reference driver).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from conformance.spf_support import OpenSpfCase, Scenario, load_openspf
from conformance.support import suite_dir
from dnsserver import ZoneServer

from mailseal.dns.cache import DnsCache
from mailseal.dns.resolver import DnsResolver
from mailseal.spf import check_mail_from

pytestmark = pytest.mark.conformance

SUITE = suite_dir("spf-openspf")
SCENARIOS = load_openspf(SUITE / "rfc7208-tests.yml")
CASES = [case for scenario in SCENARIOS for case in scenario.cases]
TIMEOUT = 0.3
NOW = 1_400_000_000  # %{t}; no case depends on it


class Servers:
    """One running server and one resolver per scenario, started when first needed."""

    def __init__(self, scenarios: list[Scenario]) -> None:
        self.scenarios = {s.number: s for s in scenarios}
        self.running: dict[int, tuple[ZoneServer, DnsResolver]] = {}

    def resolver(self, number: int) -> DnsResolver:
        if number not in self.running:
            zone = self.scenarios[number].zone
            server = ZoneServer(zone.text())
            server.shuffle = False  # answers in the zone's order, as the suite's driver
            server.drop.update(zone.drop)
            server.drop_types.update(zone.drop_types)
            server.start()
            self.running[number] = (server, DnsResolver([server.address], timeout=TIMEOUT))
        resolver = self.running[number][1]
        resolver.cache = DnsCache()  # each case starts cold
        return resolver

    def stop(self) -> None:
        for server, _ in self.running.values():
            server.stop()


@pytest.fixture(scope="module")
def servers() -> Iterator[Servers]:
    running = Servers(SCENARIOS)
    yield running
    running.stop()


def test_suite_size() -> None:
    assert len(SCENARIOS) == 16
    assert len(CASES) == 203


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_openspf_rfc7208(case: OpenSpfCase, servers: Servers) -> None:
    resolver = servers.resolver(case.scenario)
    result = asyncio.run(check_mail_from(resolver, case.host, case.mailfrom, case.helo,
                                         now=NOW, receiver="receiver.example"))
    trace = "\n".join(result.trace)
    assert result.result in case.results, f"{case.spec}: {result.problem}\n{trace}"
    if case.explanation is not None:
        assert (result.explanation or "DEFAULT") == case.explanation, trace
