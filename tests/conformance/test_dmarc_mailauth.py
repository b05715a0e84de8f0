"""mailauth's DMARC vectors (``mailauth/dmarc-vectors.json``, 62 cases): zones served
by the loopback DNS server, each check run through ``check_message``.

The ``rfc9989-*`` cases run in RFC 9989 mode (the pending ones included: mailseal
implements the tree walk, np, psd and t they describe). The ``verify-*`` cases, written
against mailauth's PSL-based implementation, run in both modes.

Where mailseal follows the RFC differently from mailauth, ``DISAGREE`` holds
mailseal's expectation and the reason (also listed in docs/conformance.md); the test
asserts mailseal's side. mailauth assertions about its own API with no mailseal
counterpart (``NOT_APPLICABLE``) are skipped.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from conformance.dmarc_vectors import (
    Inputs,
    evaluate,
    expectation_checks,
    inputs,
    translate,
    verdict,
    zone,
)
from conformance.support import load_json, suite_dir
from dnsserver import ZoneServer

from mailseal.dmarc.record import Mode

CASES: list[dict[str, Any]] = load_json(suite_dir("mailauth") / "dmarc-vectors.json")

#: mailauth API features mailseal does not mirror (assertion text → why).
NOT_APPLICABLE = {
    "error to.equal('DNS timeout')": "mailauth's error text",
    "status.comment to.include('arc=pass')": "ARC is reported by the ARC component",
    "alignment.dkim.underSized to.equal(100)": "l= handling belongs to DKIM verification",
}

#: case id → (what mailseal expects instead, why). See docs/conformance.md.
DISAGREE: dict[str, tuple[dict[str, str], str]] = {
    "rfc9989-05": ({"dmarc": "fail", "policy": "none", "policy_domain": "example.com"},
                   "RFC 9989 §4.10 step 2 discards a multi-record set for that target and the "
                   "walk goes on (steps 3-7); mailauth stops discovery as RFC 7489 §6.6.3 "
                   "step 5 did"),
    "verify-25": ({"dmarc": "none"},
                  "RFC 9989 §5.3.1 counts Author Domains, not addresses: two addresses in "
                  "one domain are one Author Domain, evaluated (no record: none)"),
}

#: (case id, mode) → assertion → why mailseal checks something else in that mode.
MODE_DIFFERS: dict[tuple[str, Mode], dict[str, str]] = {
    ("verify-06", Mode.RFC9989): {
        "pct to.equal(50)": "RFC 9989 §9.3 makes pct historic: ignored in RFC 9989 mode "
                            "(RFC 7489 mode reads 50)"},
}


def modes(case: dict[str, Any]) -> list[Mode]:
    return [Mode.RFC9989] if case["id"].startswith("rfc9989") else [Mode.RFC9989, Mode.RFC7489]


def params() -> Iterator[Any]:
    for case in CASES:
        for mode in modes(case):
            for index, _ in enumerate(case["checks"]):
                yield pytest.param(case, mode, index,
                                   id=f"{case['id']}-{index}-{mode.value}")


@pytest.fixture(scope="module")
def server() -> Iterator[ZoneServer]:
    with ZoneServer(zone({})) as srv:
        yield srv


def serve(server: ZoneServer, case: dict[str, Any]) -> None:
    server.set_zone(zone(case["dns"]["records"]))
    server.servfail.clear()
    if case["dns"]["unlisted"].startswith("every query times out"):
        # verify-05: the first query fails (SERVFAIL: a temporary failure, at once).
        server.servfail.add("_dmarc.example.com")


@pytest.mark.parametrize(("case", "mode", "index"), list(params()))
def test_vector(server: ZoneServer, case: dict[str, Any], mode: Mode, index: int) -> None:
    check = case["checks"][index]
    serve(server, case)
    given: Inputs = inputs(check["input"])
    result = verdict(evaluate(server, given, mode))
    expect = check["expect"]
    if case["id"] in DISAGREE:
        # The list cannot go stale: mailauth's own expectation must really fail here.
        theirs = expectation_checks(expect).values()
        assertions = [translate(a) for a in check.get("mailauth_assertions", [])]
        assert not all(ok(result) for ok in [*theirs, *filter(None, assertions)])
        expect, _why = DISAGREE[case["id"]]
    failures = [label for label, ok in expectation_checks(expect).items() if not ok(result)]
    skipped = []
    for assertion in check.get("mailauth_assertions", []):
        if assertion in NOT_APPLICABLE or case["id"] in DISAGREE:
            skipped.append(assertion)
            continue
        if assertion in MODE_DIFFERS.get((case["id"], mode), {}):
            assertion = "(result) to.not.have.property('pct')"
        translated = translate(assertion)
        assert translated is not None, f"untranslated mailauth assertion {assertion!r}"
        if not translated(result):
            failures.append(assertion)
    assert not failures, (f"{case['id']} ({case['name']}): {failures}; got {result.result.value} "
                          f"policy={result.policy} domain={result.policy_domain} "
                          f"{result.detail}")
    if not expectation_checks(expect) and skipped and len(skipped) == len(
            check.get("mailauth_assertions", [])):
        pytest.skip(f"mailauth API only: {skipped}")


def test_all_cases_are_run() -> None:
    assert len(CASES) == 62
