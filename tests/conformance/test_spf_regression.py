"""Regression suites beside the RFC 7208 one, run the same way (see
``test_spf_openspf.py``): the older RFC 4408 suite (``rfc4408-tests.yml``, 191 cases)
and pyspf's own cases (``pyspf-test.yml``, 16 cases; only the results are compared,
its ``header`` texts are pyspf's own layout of Received-SPF).

Nothing here is required by RFC 7208; the cases where mailseal's result differs are
listed with the reason, and a test keeps that list exact.
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
FILES = {"rfc4408": "rfc4408-tests.yml", "pyspf": "pyspf-test.yml"}
SCENARIOS = {name: load_openspf(SUITE / file) for name, file in FILES.items()}
CASES = [(name, case) for name, scenarios in SCENARIOS.items()
         for scenario in scenarios for case in scenario.cases]
NOW = 1_400_000_000

#: (file, case id) → (mailseal's result, why it differs).
DISAGREEMENTS: dict[tuple[str, str], tuple[str, str]] = {
    ("pyspf", "04-default-modifier"): (
        "neutral", "'v=spf1 default=-': default= is a modifier of pre-RFC 4408 drafts that "
        "pyspf honours in its lax mode. RFC 7208 §6 (and the RFC 7208 suite's "
        "default-modifier-obsolete cases): unknown modifiers MUST be ignored, so no "
        "mechanism matches and the result is neutral (§4.7)."),
    ("pyspf", "04-default-modifier-harsh"): (
        "neutral", "the same record; 'ambiguous' is a pyspf-only result of its strict=2 "
        "mode, not an RFC 7208 result."),
}


class Servers:
    def __init__(self) -> None:
        self.running: dict[tuple[str, int], tuple[ZoneServer, DnsResolver]] = {}

    def resolver(self, name: str, scenario: Scenario) -> DnsResolver:
        key = (name, scenario.number)
        if key not in self.running:
            server = ZoneServer(scenario.zone.text())
            server.shuffle = False
            server.drop.update(scenario.zone.drop)
            server.drop_types.update(scenario.zone.drop_types)
            server.start()
            self.running[key] = (server, DnsResolver([server.address], timeout=0.3))
        resolver = self.running[key][1]
        resolver.cache = DnsCache()
        return resolver


@pytest.fixture(scope="module")
def servers() -> Iterator[Servers]:
    running = Servers()
    yield running
    for server, _ in running.running.values():
        server.stop()


def test_suite_sizes() -> None:
    assert [len([c for n, c in CASES if n == name]) for name in FILES] == [191, 16]


def test_disagreements_differ_from_the_suite() -> None:
    by_id = {(name, case.id): case for name, case in CASES}
    for key, (ours, _why) in DISAGREEMENTS.items():
        assert ours not in by_id[key].results, key


@pytest.mark.parametrize(("name", "case"), CASES, ids=[f"{n}-{c.id}" for n, c in CASES])
def test_openspf_regression(name: str, case: OpenSpfCase, servers: Servers) -> None:
    scenario = SCENARIOS[name][case.scenario - 1]
    resolver = servers.resolver(name, scenario)
    result = asyncio.run(check_mail_from(resolver, case.host, case.mailfrom, case.helo,
                                         now=NOW, receiver="receiver.example"))
    trace = "\n".join(result.trace)
    if (name, case.id) in DISAGREEMENTS:
        assert result.result == DISAGREEMENTS[(name, case.id)][0], trace
        return
    assert result.result in case.results, f"{case.spec}: {result.problem}\n{trace}"
    if case.explanation is not None:
        assert (result.explanation or "DEFAULT") == case.explanation, trace
