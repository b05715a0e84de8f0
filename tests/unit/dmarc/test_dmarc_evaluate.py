"""Identifier alignment and the DMARC result with its policy (RFC 9989 §4.4, §5.3;
RFC 7489 pct), several or no Author Domains (§5.3.1, §11.5)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pytest

from mailseal.dmarc.check import check_dmarc, check_message
from mailseal.dmarc.discover import DiscoveryStatus, PolicyDiscovery
from mailseal.dmarc.evaluate import (
    DmarcResult,
    Identifiers,
    Override,
    Reason,
    author_domains,
    decisive,
    evaluate,
)
from mailseal.dmarc.record import AlignmentMode, DmarcRecord, Mode, Policy, parse_record
from mailseal.dns.types import Status
from mailseal.results import Result

Table = Callable[[Mapping[str, Any]], Any]


def run(table: Table, zone: Mapping[str, Any], author: str, dkim: Sequence[str] = (),
        spf: str | None = None, mode: Mode = Mode.RFC9989,
        sample: float | None = None) -> DmarcResult:
    zone = {k: [v.encode()] if isinstance(v, str) else v for k, v in zone.items()}
    return asyncio.run(check_dmarc(author, table(zone), dkim_domains=dkim, spf_domain=spf,
                                   mode=mode, sample=sample))


ORG = {"_dmarc.example.com": "v=DMARC1; p=reject"}
STRICT = {"_dmarc.example.com": "v=DMARC1; p=reject; adkim=s; aspf=s"}


@pytest.mark.parametrize(("author", "dkim", "spf", "zone", "result"), [
    ("example.com", ["example.com"], None, ORG, Result.PASS),
    ("mail.example.com", ["example.com"], None, ORG, Result.PASS),  # relaxed, parent
    ("example.com", [], "bounce.example.com", ORG, Result.PASS),  # relaxed, child
    ("news.example.com", ["foo.example.com"], None, ORG, Result.PASS),  # siblings
    ("example.com", ["example.net"], "example.org", ORG, Result.FAIL),
    ("example.com", ["EXAMPLE.COM."], None, STRICT, Result.PASS),  # case, trailing dot
    ("mail.example.com", ["example.com"], "example.com", STRICT, Result.FAIL),
    ("mail.example.com", ["mail.example.com"], None, STRICT, Result.PASS),
    ("example.com", ["evil-example.com"], None, ORG, Result.FAIL),  # no suffix trick
    ("example.com", ["com"], None, ORG, Result.FAIL),
])
def test_alignment(table: Table, author: str, dkim: list[str], spf: str | None,
                   zone: dict[str, str], result: Result) -> None:
    assert run(table, zone, author, dkim, spf).result is result


def test_dkim_strict_spf_relaxed(table: Table) -> None:
    zone = {"_dmarc.example.com": "v=DMARC1; p=reject; adkim=s; aspf=r"}
    r = run(table, zone, "mail.example.com", ["example.com"], "example.com")
    assert r.result is Result.PASS and not r.dkim_aligned and r.spf_aligned
    assert {(a.method, a.mode, a.aligned) for a in r.alignments} == {
        ("dkim", AlignmentMode.STRICT, False), ("spf", AlignmentMode.RELAXED, True)}


def test_relaxed_alignment_follows_the_tree_walk(table: Table) -> None:
    # §4.10.2: psd=n makes mail.example.com its own Organizational Domain, so
    # example.com no longer aligns with it (relaxed).
    zone = {"_dmarc.mail.example.com": "v=DMARC1; p=reject; psd=n",
            "_dmarc.example.com": "v=DMARC1; p=none"}
    assert run(table, zone, "a.mail.example.com", ["example.com"]).result is Result.FAIL
    assert run(table, zone, "a.mail.example.com", ["b.mail.example.com"]).result is Result.PASS


def test_only_related_identifiers_are_walked(table: Table) -> None:
    resolver = table({"_dmarc.example.com": [b"v=DMARC1; p=reject"]})
    r = asyncio.run(check_dmarc("example.com", resolver,
                                dkim_domains=["a.example.net", "b.example.org", "x.example.com"]))
    assert r.result is Result.PASS
    assert not any("example.net" in n or "example.org" in n for n in resolver.asked)


@pytest.mark.parametrize(("t", "p", "applied", "override"), [
    ("y", "reject", Policy.QUARANTINE, Override.POLICY_TEST_MODE),
    ("y", "quarantine", Policy.NONE, Override.POLICY_TEST_MODE),
    ("y", "none", Policy.NONE, None),  # §4.7: no effect on p=none
    ("n", "reject", Policy.REJECT, None),
])
def test_testing_mode(table: Table, t: str, p: str, applied: Policy,
                      override: Override | None) -> None:
    r = run(table, {"_dmarc.example.com": f"v=DMARC1; p={p}; t={t}"}, "example.com")
    assert (r.result, r.requested, r.policy, r.override) == (Result.FAIL, Policy(p), applied,
                                                            override)


def test_t_is_ignored_in_7489_mode_and_pct_in_9989_mode(table: Table) -> None:
    zone = {"_dmarc.example.com": "v=DMARC1; p=reject; t=y; pct=0"}
    assert run(table, zone, "example.com", mode=Mode.RFC7489, sample=0.99).policy is (
        Policy.QUARANTINE)  # pct=0: every message is sampled out
    assert run(table, zone, "example.com", mode=Mode.RFC7489, sample=None).policy is (
        Policy.REJECT)
    assert run(table, zone, "example.com", mode=Mode.RFC9989, sample=0.99).override is (
        Override.POLICY_TEST_MODE)


@pytest.mark.parametrize(("sample", "policy"), [(0.0, Policy.REJECT), (0.2499, Policy.REJECT),
                                                (0.25, Policy.QUARANTINE)])
def test_pct_sampling(table: Table, sample: float, policy: Policy) -> None:
    # RFC 7489 §6.6.4: not selected, reject is treated as quarantine.
    zone = {"_dmarc.example.com": "v=DMARC1; p=reject; pct=25"}
    r = run(table, zone, "example.com", mode=Mode.RFC7489, sample=sample)
    assert r.policy is policy
    assert (r.override is Override.SAMPLED_OUT) == (policy is Policy.QUARANTINE)


def test_pct_never_changes_pass_or_fail(table: Table) -> None:
    zone = {"_dmarc.example.com": "v=DMARC1; p=reject; pct=0"}
    assert run(table, zone, "example.com", ["example.com"]).result is Result.PASS
    assert run(table, zone, "example.com", ["other.example"]).result is Result.FAIL


def test_dns_error_while_walking_an_identifier(table: Table) -> None:
    zone = {"_dmarc.example.com": [b"v=DMARC1; p=reject"],
            "_dmarc.mail.example.com": Status.TEMPFAIL}
    r = run(table, zone, "example.com", ["mail.example.com"])
    assert (r.result, r.reason) == (Result.TEMPERROR, Reason.ALIGNMENT_DNS_ERROR)
    # Another identifier already aligned: the failing walk does not matter.
    assert run(table, zone, "example.com", ["mail.example.com", "example.com"]).result is (
        Result.PASS)


def test_unknown_existence_only_matters_for_failing_mail(table: Table) -> None:
    zone = {"_dmarc.example.com": "v=DMARC1; p=reject; np=quarantine",
            "gone.example.com": Status.TEMPFAIL}
    assert run(table, zone, "gone.example.com", ["example.com"]).result is Result.PASS
    r = run(table, zone, "gone.example.com")
    assert (r.result, r.reason) == (Result.TEMPERROR, Reason.EXISTENCE_UNKNOWN)


def test_disposition() -> None:
    record = parse_record("v=DMARC1; p=reject")
    assert isinstance(record, DmarcRecord)
    found = PolicyDiscovery("example.com", Mode.RFC9989, DiscoveryStatus.FOUND, record,
                            record, "example.com", policy_tag="p", requested=Policy.REJECT)
    assert evaluate(found, Identifiers.of(["example.com"])).disposition == "pass"
    assert evaluate(found, Identifiers.of()).disposition == "reject"
    none = PolicyDiscovery("example.com", Mode.RFC9989, DiscoveryStatus.NONE)
    assert evaluate(none, Identifiers.of()).disposition == "none"


def test_identifiers_are_normalized() -> None:
    ids = Identifiers.of(["Example.COM", "example.com.", "bad domain", "bücher.example"],
                         "MAIL.example.com")
    assert ids == Identifiers(("example.com", "xn--bcher-kva.example"), "mail.example.com")


# -- Author Domains (§5.3.1, §11.5) ---------------------------------------------------------


def test_author_domains() -> None:
    assert author_domains([b"Joe <joe@Example.COM>"]) == ["example.com"]
    assert author_domains([b"a@x.example, b@X.example, c@y.example"]) == ["x.example",
                                                                           "y.example"]
    assert author_domains([b"a@x.example", b"b@y.example"]) == ["x.example", "y.example"]
    assert author_domains([b"undisclosed-recipients:;", b""]) == []


def check(table: Table, zone: Mapping[str, str], values: list[bytes],
          dkim: Sequence[str] = (), **kw: Any) -> tuple[DmarcResult, ...]:
    resolver = table({k: [v.encode()] for k, v in zone.items()})
    return asyncio.run(check_message(values, resolver, dkim_domains=dkim, **kw))


def test_no_author_domain_is_permerror(table: Table) -> None:
    (r,) = check(table, {}, [b"undisclosed-recipients:;"])
    assert (r.result, r.reason, r.header_from) == (Result.PERMERROR, Reason.NO_AUTHOR, "")


def test_several_author_domains_most_strict_failing_policy(table: Table) -> None:
    zone = {"_dmarc.a.example": "v=DMARC1; p=quarantine",
            "_dmarc.b.example": "v=DMARC1; p=reject", "_dmarc.c.example": "v=DMARC1; p=none"}
    results = check(table, zone, [b"x@a.example, y@b.example, z@c.example"], ["c.example"])
    assert [r.result for r in results] == [Result.FAIL, Result.FAIL, Result.PASS]
    chosen = decisive(results)
    assert (chosen.header_from, chosen.policy) == ("b.example", Policy.REJECT)


def test_too_many_author_domains(table: Table) -> None:
    values = [", ".join(f"u@d{i}.example" for i in range(6)).encode()]
    (r,) = check(table, {}, values)
    assert r.reason is Reason.TOO_MANY_AUTHORS
    (r,) = check(table, {}, [b"a@x.example, b@y.example"], max_authors=1)
    assert r.result is Result.PERMERROR


def test_decisive_order() -> None:
    def res(word: Result, policy: Policy | None = None) -> DmarcResult:
        return DmarcResult(word, Reason.NO_RECORD, "x.example", Mode.RFC9989, policy=policy)

    assert decisive([res(Result.PASS), res(Result.TEMPERROR)]).result is Result.TEMPERROR
    assert decisive([res(Result.NONE), res(Result.PASS)]).result is Result.PASS
    assert decisive([res(Result.FAIL, Policy.NONE), res(Result.FAIL, Policy.QUARANTINE)]
                    ).policy is Policy.QUARANTINE
    with pytest.raises(ValueError):
        decisive([])
