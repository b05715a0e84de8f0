"""Policy discovery: the RFC 9989 §4.10 tree walk and its bounds, §4.10.1 policy
selection, §4.10.2 Organizational Domains, and the RFC 7489 (PSL) mode."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from mailseal.dmarc.discover import (
    MAX_WALK_QUERIES,
    DiscoveryStatus,
    Outcome,
    PolicyDiscovery,
    TreeWalker,
    discover_policy,
    normalize_domain,
    psl_org_domain,
    walk_names,
)
from mailseal.dmarc.record import Mode, Policy
from mailseal.dns.types import Status

Table = Callable[[Mapping[str, Any]], Any]


def txt(*records: str) -> list[bytes]:
    return [r.encode() for r in records]


def discover(table: Table, zone: Mapping[str, Any], author: str,
             mode: Mode = Mode.RFC9989) -> tuple[PolicyDiscovery, list[str]]:
    resolver = table(zone)
    result = asyncio.run(discover_policy(author, TreeWalker(resolver, mode)))
    return result, resolver.asked


def org_domain(table: Table, zone: Mapping[str, Any], domain: str) -> str | None:
    walker = TreeWalker(table(zone))
    return asyncio.run(walker.org_domains([domain]))[domain]


# -- the walk and its bounds (§4.10) -----------------------------------------------------


def test_walk_names_rfc_example() -> None:
    # §4.10: the eight queries for a.b.c.d.e.f.g.h.i.j.mail.example.com.
    assert walk_names("a.b.c.d.e.f.g.h.i.j.mail.example.com") == [
        "a.b.c.d.e.f.g.h.i.j.mail.example.com", "g.h.i.j.mail.example.com",
        "h.i.j.mail.example.com", "i.j.mail.example.com", "j.mail.example.com",
        "mail.example.com", "example.com", "com"]


@pytest.mark.parametrize("labels", range(1, 40))
def test_walk_is_bounded(labels: int) -> None:
    domain = ".".join(f"l{i}" for i in range(labels))
    names = walk_names(domain)
    assert names[0] == domain and names[-1] == f"l{labels - 1}"
    assert len(names) == min(labels, MAX_WALK_QUERIES)
    assert all(b.endswith("." + a) or a == b for a, b in zip(names[1:], names[:-1],
                                                               strict=True))


def test_deep_author_queries_exactly_the_rfc_sequence(table: Table) -> None:
    # Appendix B.4.2; mailauth rfc9989-12 asserts the same sequence.
    zone = {"_dmarc.example.com": txt("v=DMARC1; p=none")}
    found, asked = discover(table, zone, "a.b.c.d.e.f.g.h.i.j.k.example.com")
    assert asked == ["_dmarc." + n for n in walk_names("a.b.c.d.e.f.g.h.i.j.k.example.com")]
    assert len(asked) == MAX_WALK_QUERIES
    assert (found.status, found.policy_domain, found.org_domain) == (
        DiscoveryStatus.FOUND, "example.com", "example.com")


def test_zone_cut_beyond_the_shortcut_is_never_seen(table: Table) -> None:
    # §5.1.8: a psd=n record at b.c.d.e.f.g.example.com is skipped by the shortcut.
    zone = {"_dmarc.example.com": txt("v=DMARC1; p=none"),
            "_dmarc.b.c.d.e.f.g.example.com": txt("v=DMARC1; p=reject; psd=n")}
    found, asked = discover(table, zone, "mail.a.b.c.d.e.f.g.example.com")
    assert "_dmarc.b.c.d.e.f.g.example.com" not in asked
    assert found.policy_domain == "example.com" and len(asked) == 8


def test_psd_n_stops_the_walk(table: Table) -> None:
    zone = {"_dmarc.b.example.com": txt("v=DMARC1; p=reject; psd=n"),
            "_dmarc.example.com": txt("v=DMARC1; p=none")}
    found, asked = discover(table, zone, "a.b.example.com")
    assert asked == ["_dmarc.a.b.example.com", "_dmarc.b.example.com"]
    assert (found.policy_domain, found.org_domain, found.requested) == (
        "b.example.com", "b.example.com", Policy.REJECT)


def test_psd_y_policy_applies_when_the_org_domain_has_none(table: Table) -> None:
    # §4.10.1: the PSD's record is the third choice; the author is a subdomain of it.
    zone = {"_dmarc.bank.example": txt("v=DMARC1; p=reject; sp=quarantine; psd=y")}
    found, _ = discover(table, {**zone, "giant.bank.example": Status.NODATA},
                        "giant.bank.example")
    assert (found.policy_domain, found.org_domain, found.psd) == (
        "bank.example", "giant.bank.example", True)
    assert (found.policy_tag, found.requested) == ("sp", Policy.QUARANTINE)


def test_psd_policy_is_not_used_when_the_org_domain_publishes(table: Table) -> None:
    zone = {"_dmarc.example": txt("v=DMARC1; p=reject; psd=y"),
            "_dmarc.foo.example": txt("v=DMARC1; p=none")}
    found, asked = discover(table, zone, "mail.foo.example")
    assert found.policy_domain == "foo.example" and not found.psd
    assert asked[:3] == ["_dmarc.mail.foo.example", "_dmarc.foo.example", "_dmarc.example"]


@pytest.mark.parametrize(("zone", "expected"), [
    # §4.10.2's three examples for a.mail.example.com.
    ({"_dmarc.mail.example.com": "v=DMARC1; p=none", "_dmarc.example.com": "v=DMARC1; p=none"},
     "example.com"),
    ({"_dmarc.mail.example.com": "v=DMARC1; p=none; psd=n",
      "_dmarc.example.com": "v=DMARC1; p=none"}, "mail.example.com"),
    ({"_dmarc.com": "v=DMARC1; p=none; psd=y"}, "example.com"),
    ({}, "a.mail.example.com"),  # no record at all: the start
    ({"_dmarc.a.mail.example.com": "v=DMARC1; p=none; psd=y"}, "a.mail.example.com"),
])
def test_org_domain_selection(table: Table, zone: dict[str, str], expected: str) -> None:
    assert org_domain(table, {k: txt(v) for k, v in zone.items()},
                      "a.mail.example.com") == expected


def test_multiple_records_are_discarded_and_the_walk_goes_on(table: Table) -> None:
    # §4.10 step 2: "If multiple DMARC Policy Records are returned for a single target,
    # they are all discarded" (then step 3 and on: the next target).
    zone = {"_dmarc.mail.example.com": txt("v=DMARC1; p=reject", "v=DMARC1; p=none"),
            "_dmarc.example.com": txt("v=DMARC1; p=quarantine")}
    found, _ = discover(table, zone, "mail.example.com")
    assert found.queries[0].outcome is Outcome.MULTIPLE
    assert (found.policy_domain, found.requested) == ("example.com", Policy.QUARANTINE)


def test_non_dmarc_txt_records_are_skipped(table: Table) -> None:
    zone = {"_dmarc.mail.example.com": txt("hello", "v=spf1 -all"),
            "_dmarc.example.com": txt("v=DMARC1; p=quarantine", "unrelated")}
    found, _ = discover(table, zone, "mail.example.com")
    assert found.policy_domain == "example.com"
    assert found.queries[0].other_txt and found.queries[1].outcome is Outcome.RECORD


@pytest.mark.parametrize("failing", ["_dmarc.mail.example.com", "_dmarc.example.com",
                                     "_dmarc.com"])
def test_dns_failure_during_discovery_is_temperror(table: Table, failing: str) -> None:
    zone = {"_dmarc.example.com": txt("v=DMARC1; p=reject"), failing: Status.TEMPFAIL}
    found, _ = discover(table, zone, "mail.example.com")
    assert found.status is DiscoveryStatus.TEMPERROR and failing in found.detail


def test_no_record_anywhere(table: Table) -> None:
    found, asked = discover(table, {}, "mail.example.com")
    assert found.status is DiscoveryStatus.NONE and len(asked) == 3


def test_record_without_policy_or_rua_means_none(table: Table) -> None:
    found, _ = discover(table, {"_dmarc.example.com": txt("v=DMARC1; adkim=s")}, "example.com")
    assert found.status is DiscoveryStatus.NONE and found.published is not None


# -- sp / np and the existence test (§4.10.1, §3.2.13, Appendix A.4) --------------------

NP_ZONE = {"_dmarc.example.com": txt("v=DMARC1; p=reject; sp=none; np=quarantine")}


@pytest.mark.parametrize(("author", "extra", "tag", "policy"), [
    ("example.com", {}, "p", Policy.REJECT),
    ("gone.example.com", {}, "np", Policy.QUARANTINE),  # NXDOMAIN: non-existent
    ("here.example.com", {"here.example.com": Status.NODATA}, "sp", Policy.NONE),
    ("here.example.com", {"here.example.com": txt("x")}, "sp", Policy.NONE),
    ("x.here.example.com", {"_dmarc.x.here.example.com": Status.NODATA}, "sp", Policy.NONE),
])
def test_policy_choice(table: Table, author: str, extra: dict[str, Any], tag: str,
                       policy: Policy) -> None:
    found, _ = discover(table, {**NP_ZONE, **extra}, author)
    assert (found.policy_tag, found.requested) == (tag, policy)


def test_existence_not_asked_when_sp_and_np_agree(table: Table) -> None:
    zone = {"_dmarc.example.com": txt("v=DMARC1; p=reject; sp=quarantine")}
    found, asked = discover(table, zone, "sub.example.com")
    assert "sub.example.com" not in asked and found.requested is Policy.QUARANTINE


def test_existence_test_failure_leaves_the_policy_open(table: Table) -> None:
    found, _ = discover(table, {**NP_ZONE, "gone.example.com": Status.TEMPFAIL},
                        "gone.example.com")
    assert found.status is DiscoveryStatus.FOUND and found.requested is None


def test_query_budget(table: Table) -> None:
    resolver = table({})
    walker = TreeWalker(resolver, max_queries=3)
    found = asyncio.run(discover_policy("a.b.c.d.e.example.com", walker))
    assert found.status is DiscoveryStatus.TEMPERROR and "more than 3" in found.detail
    assert len(resolver.asked) == 3


# -- RFC 7489 mode ------------------------------------------------------------------------


def test_7489_uses_the_psl_not_the_walk(table: Table) -> None:
    zone = {"_dmarc.example.co.uk": txt("v=DMARC1; p=reject; sp=quarantine; np=none")}
    found, asked = discover(table, zone, "a.b.example.co.uk", Mode.RFC7489)
    assert asked == ["_dmarc.a.b.example.co.uk", "_dmarc.example.co.uk"]
    assert (found.policy_tag, found.requested, found.org_domain) == (
        "sp", Policy.QUARANTINE, "example.co.uk")


def test_7489_multiple_records_at_the_author_end_discovery(table: Table) -> None:
    zone = {"_dmarc.mail.example.com": txt("v=DMARC1; p=reject", "v=DMARC1; p=none"),
            "_dmarc.example.com": txt("v=DMARC1; p=none")}
    found, asked = discover(table, zone, "mail.example.com", Mode.RFC7489)
    assert found.status is DiscoveryStatus.NONE and asked == ["_dmarc.mail.example.com"]


def test_psl_org_domain() -> None:
    assert psl_org_domain("a.b.c.bcx.com") == "bcx.com"
    assert psl_org_domain("com") == "com"
    assert psl_org_domain("x.example.co.uk") == "example.co.uk"


# -- names ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("Example.COM.", "example.com"), ("bücher.example", "xn--bcher-kva.example"),
    ("_dmarc.example.com", "_dmarc.example.com"), ("", None), ("a..b", None),
    (".example.com", None), ("exa mple.com", None), ("[192.0.2.1]", None),
    ("a" * 64 + ".com", None), (".".join(["a"] * 130), None),
])
def test_normalize_domain(text: str, expected: str | None) -> None:
    assert normalize_domain(text) == expected


def test_unusable_author_is_permerror(table: Table) -> None:
    found, asked = discover(table, {}, "not a domain")
    assert found.status is DiscoveryStatus.PERMERROR and asked == []
