"""Fixtures for the conformance suites, and a per-suite summary at the end of the run."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator

import pytest
from conformance.support import ServeZones
from dnsserver import ZoneServer


@pytest.fixture(scope="session")
def serve_zones() -> Iterator[ServeZones]:
    """``serve_zones(*zone_texts, servfail=(), drop=())`` → a running loopback
    :class:`ZoneServer`. Servers are shared by content: asking again for the same
    zones and hooks returns the same server. All are stopped at the end of the session."""
    servers: dict[tuple[tuple[str, ...], frozenset[str], frozenset[str]], ZoneServer] = {}

    def serve(*zones: str, servfail: Iterable[str] = (), drop: Iterable[str] = ()) -> ZoneServer:
        key = (zones, frozenset(n.lower().rstrip(".") for n in servfail),
               frozenset(n.lower().rstrip(".") for n in drop))
        if key not in servers:
            server = ZoneServer(*zones)
            server.servfail.update(key[1])
            server.drop.update(key[2])
            servers[key] = server.start()
        return servers[key]

    yield serve
    for server in servers.values():
        server.stop()


_outcomes: dict[str, Counter[str]] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    path = report.nodeid.split("::")[0]
    if "/conformance/" not in f"/{path}" and not path.startswith("conformance/"):
        return
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        _outcomes.setdefault(path.rsplit("/", 1)[-1], Counter())[report.outcome] += 1


def pytest_collectreport(report: pytest.CollectReport) -> None:
    # A suite whose data folder is absent skips as a whole module.
    if report.outcome == "skipped" and "conformance/" in report.nodeid:
        _outcomes.setdefault(report.nodeid.rsplit("/", 1)[-1], Counter())["skipped"] += 1


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _outcomes:
        return
    terminalreporter.section("conformance suites")
    for module, counts in sorted(_outcomes.items()):
        parts = ", ".join(f"{counts[k]} {k}" for k in ("passed", "failed", "skipped") if counts[k])
        terminalreporter.write_line(f"{module}: {parts}")
