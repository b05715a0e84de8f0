"""check_host() over a fixed table (StaticResolver): results, limits, errors, macros."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from mailseal.dns.static import StaticResolver
from mailseal.dns.types import Answer, MxRecord
from mailseal.results import Result
from mailseal.spf import (
    Identity,
    RecordCache,
    SpfChecker,
    SpfResult,
    check_helo,
    check_host,
    check_mail_from,
)
from mailseal.spf.evaluate import split_sender, valid_domain

NOW = 1_700_000_000


class Recording:
    """A FullResolver that remembers every question asked of the table."""

    def __init__(self, table: dict[str, Any]) -> None:
        self.inner = StaticResolver.from_records(table)
        self.asked: list[tuple[str, str]] = []

    async def txt(self, name: str) -> Answer[bytes]:
        self.asked.append(("TXT", name))
        return await self.inner.txt(name)

    async def addresses(self, name: str, family: int) -> Answer[str]:
        self.asked.append(("A" if family == 4 else "AAAA", name))
        return await self.inner.addresses(name, family)

    async def mx(self, name: str) -> Answer[MxRecord]:
        self.asked.append(("MX", name))
        return await self.inner.mx(name)

    async def ptr(self, ip: str) -> Answer[str]:
        self.asked.append(("PTR", ip))
        return await self.inner.ptr(ip)


def mail_from(table: dict[str, Any] | Recording, ip: str, sender: str = "a@example.com",
              helo: str = "mail.example.org", **kw: Any) -> SpfResult:
    resolver = table if isinstance(table, Recording) else Recording(table)
    return asyncio.run(check_mail_from(resolver, ip, sender, helo, now=NOW, **kw))


BASIC = {
    "example.com": {"TXT": "v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 a mx "
                           "include:_spf.example.net -all",
                    "A": "198.51.100.1", "MX": [(10, "mx.example.com")]},
    "mx.example.com": {"A": "198.51.100.25", "AAAA": "2001:db8:25::1"},
    "_spf.example.net": "v=spf1 ip4:203.0.113.0/28 ?all",
}


@pytest.mark.parametrize(("ip", "result", "mechanism"), [
    ("192.0.2.9", Result.PASS, "ip4:192.0.2.0/24"),
    ("::ffff:192.0.2.9", Result.PASS, "ip4:192.0.2.0/24"),
    ("2001:db8::7", Result.PASS, "ip6:2001:db8::/32"),
    ("198.51.100.1", Result.PASS, "a"),
    ("198.51.100.25", Result.PASS, "mx"),
    ("2001:db8:25::1", Result.PASS, "ip6:2001:db8::/32"),
    ("203.0.113.5", Result.PASS, "include:_spf.example.net"),
    ("203.0.113.50", Result.FAIL, "-all"),
])
def test_mechanisms(ip: str, result: Result, mechanism: str) -> None:
    got = mail_from(BASIC, ip)
    assert (got.result, got.mechanism) == (result, mechanism)
    assert got.identity is Identity.MAILFROM and got.domain == "example.com"


def test_ipv4_mapped_is_ipv4() -> None:
    got = mail_from(BASIC, "::ffff:203.0.113.50")
    assert got.ip == "203.0.113.50" and got.result is Result.FAIL


@pytest.mark.parametrize(("record", "result"), [
    ("v=spf1 -all", Result.FAIL), ("v=spf1 ~all", Result.SOFTFAIL), ("v=spf1 ?all", Result.NEUTRAL),
    ("v=spf1 +all", Result.PASS), ("v=spf1", Result.NEUTRAL), ("V=SPF1 -ALL", Result.FAIL),
    ("v=spf1 ip4:1.2.3.4 -all moo", Result.PERMERROR),
])
def test_qualifiers_and_default(record: str, result: Result) -> None:
    assert mail_from({"example.com": record}, "192.0.2.1").result is result


def test_no_record_is_none() -> None:
    assert mail_from({}, "192.0.2.1").result is Result.NONE  # NXDOMAIN
    assert mail_from({"example.com": "not spf"}, "192.0.2.1").result is Result.NONE
    got = mail_from({"example.com": ["v=spf1 -all", "V=spf1 +all"]}, "192.0.2.1")
    assert got.result is Result.PERMERROR and "2 v=spf1 records" in (got.problem or "")


@pytest.mark.parametrize("domain", [
    "", "com", "a..example.com", "[192.0.2.1]", "192.0.2.1", "x" * 64 + ".example",
    ".".join(["abcdefghi"] * 26), "caf\u00e9.example",
])
def test_invalid_domains_are_none_without_a_query(domain: str) -> None:
    resolver = Recording({})
    got = mail_from(resolver, "192.0.2.1", sender=f"a@{domain}")
    assert got.result is Result.NONE and resolver.asked == []
    assert not valid_domain(domain)


def test_temporary_failures_are_never_downgraded() -> None:
    for table in (
        {"example.com": "TEMPFAIL"},
        {"example.com": "v=spf1 include:x.example -all", "x.example": "TEMPFAIL"},
        {"example.com": "v=spf1 a:x.example -all", "x.example": {"A": "TEMPFAIL"}},
        {"example.com": "v=spf1 mx -all", "example.com.": {"MX": "TEMPFAIL"}},
        {"example.com": {"TXT": "v=spf1 mx -all", "MX": [(1, "m.example")]},
         "m.example": "TEMPFAIL"},
        {"example.com": "v=spf1 exists:x.example -all", "x.example": "TEMPFAIL"},
        {"example.com": "v=spf1 redirect=x.example", "x.example": "TEMPFAIL"},
    ):
        got = mail_from(table, "192.0.2.1")
        assert got.result is Result.TEMPERROR, table
        assert got.problem


def test_ptr_errors_only_skip() -> None:
    # RFC 7208 §5.5: a PTR or address lookup error makes ptr not match; no temperror.
    table = {"example.com": "v=spf1 ptr -all", "192.0.2.1": "TEMPFAIL"}
    assert mail_from(table, "192.0.2.1").result is Result.FAIL
    table = {"example.com": "v=spf1 ptr -all", "192.0.2.1": {"PTR": "h.example.com"},
             "h.example.com": "TEMPFAIL"}
    assert mail_from(table, "192.0.2.1").result is Result.FAIL


def test_ptr_validation_and_first_ten_names() -> None:
    names = [f"h{i}.example.com" for i in range(1, 12)]
    table: dict[str, Any] = {"example.com": "v=spf1 ptr -all", "192.0.2.1": {"PTR": names},
                             "other.example.com": {"A": "192.0.2.2"}}
    table["h11.example.com"] = {"A": "192.0.2.1"}  # the 11th name is ignored (§4.6.4)
    assert mail_from(table, "192.0.2.1").result is Result.FAIL
    table["h3.example.com"] = {"A": "192.0.2.1"}
    got = mail_from(table, "192.0.2.1")
    assert got.result is Result.PASS and got.mechanism == "ptr"
    # A name outside the target is not even looked up.
    table["example.com"] = "v=spf1 ptr:example.org -all"
    resolver = Recording(table)
    assert mail_from(resolver, "192.0.2.1").result is Result.FAIL
    assert not [q for q in resolver.asked if q[0] == "A"]


def test_dns_term_limit() -> None:
    ten = " ".join(f"a:h{i}.example" for i in range(9))
    table: dict[str, Any] = {f"h{i}.example": {"A": "10.0.0.1"} for i in range(11)}
    table["example.com"] = f"v=spf1 {ten} -exists:h9.example +all"
    got = mail_from(table, "192.0.2.1")
    assert got.result is Result.FAIL and got.lookups == 10
    table["example.com"] = f"v=spf1 {ten} a:h9.example a:h10.example -all"
    got = mail_from(table, "192.0.2.1")
    assert got.result is Result.PERMERROR and got.lookups == 11


def test_include_loop_is_permerror() -> None:
    table = {"example.com": "v=spf1 include:example.com -all"}
    assert mail_from(table, "192.0.2.1").result is Result.PERMERROR


def test_void_lookup_limit() -> None:
    table = {"example.com": "v=spf1 a:n1.example a:n2.example ?all"}
    got = mail_from(table, "192.0.2.1")
    assert (got.result, got.void_lookups) == (Result.NEUTRAL, 2)
    table = {"example.com": "v=spf1 a:n1.example mx:n2.example exists:n3.example ?all"}
    assert mail_from(table, "192.0.2.1").result is Result.PERMERROR
    # exp= never counts (OpenSPF exp-void).
    table = {"example.com": "v=spf1 a:n1.example a:n2.example -all exp=n3.example"}
    got = mail_from(table, "192.0.2.1")
    assert got.result is Result.FAIL and got.explanation is None


def test_mx_limit_and_null_mx() -> None:
    hosts = [(i, f"m{i}.example") for i in range(11)]
    table: dict[str, Any] = {"example.com": {"TXT": "v=spf1 mx -all", "MX": hosts}}
    table.update({f"m{i}.example": {"A": f"10.0.0.{i}"} for i in range(11)})
    assert mail_from(table, "10.0.0.4").result is Result.PASS  # found among the first 10
    got = mail_from(table, "10.0.0.10")
    assert got.result is Result.PERMERROR and "MX" in (got.problem or "")
    table = {"example.com": {"TXT": "v=spf1 mx ?all", "MX": (0, ".")}}
    assert mail_from(table, "10.0.0.1").result is Result.NEUTRAL


def test_include_results() -> None:
    base = {"example.com": "v=spf1 include:i.example ~all"}
    for inner, result in (("v=spf1 +all", Result.PASS), ("v=spf1 -all", Result.SOFTFAIL),
                          ("v=spf1 ?all", Result.SOFTFAIL), ("v=spf1 a:", Result.PERMERROR)):
        assert mail_from({**base, "i.example": inner}, "192.0.2.1").result is result
    assert mail_from(base, "192.0.2.1").result is Result.PERMERROR  # include of "none"


def test_redirect() -> None:
    table = {"example.com": "v=spf1 redirect=r.example", "r.example": {"TXT": "v=spf1 a -all",
                                                                        "A": "192.0.2.1"}}
    got = mail_from(table, "192.0.2.1")
    assert got.result is Result.PASS and got.lookups == 2
    assert mail_from({"example.com": "v=spf1 redirect=r.example"}, "192.0.2.1").result is (
        Result.PERMERROR)
    table["example.com"] = "v=spf1 ?all redirect=r.example"  # all wins
    assert mail_from(table, "192.0.2.1").result is Result.NEUTRAL


def test_explanation() -> None:
    table = {
        "example.com": "v=spf1 -all exp=why.%{d}",
        "why.example.com": "%{i} may not send for %{d} as %{l} (%{c}, %{r}, %{t}, %{p})",
        "192.0.2.1": {"PTR": "mail.example.com"}, "mail.example.com": {"A": "192.0.2.1"},
    }
    got = mail_from(table, "192.0.2.1", receiver="mx.receiver.example")
    assert got.explanation == ("192.0.2.1 may not send for example.com as a "
                               "(192.0.2.1, mx.receiver.example, 1700000000, mail.example.com)")
    for broken in ("%{x}", ["one", "two"], "TEMPFAIL", b"caf\xc3\xa9"):
        got = mail_from({**table, "why.example.com": broken}, "192.0.2.1")
        assert got.result is Result.FAIL and got.explanation is None
    # exp= only on fail
    table["example.com"] = "v=spf1 ~all exp=why.%{d}"
    assert mail_from(table, "192.0.2.1").explanation is None


def test_p_macro_prefers_the_domain() -> None:
    table = {
        "example.com": "v=spf1 exists:%{p}.ok.example -all",
        "192.0.2.1": {"PTR": ["other.example.net", "mx.example.com", "bad.example.com"]},
        "other.example.net": {"A": "192.0.2.1"}, "mx.example.com": {"A": "192.0.2.1"},
        "mx.example.com.ok.example": {"A": "127.0.0.2"},
    }
    got = mail_from(table, "192.0.2.1")
    assert got.result is Result.PASS and got.lookups == 1  # %{p}'s lookups are not counted


def test_identities() -> None:
    table = {"example.com": "v=spf1 -all exp=e.example.com", "e.example.com": "%{s}",
             "mail.example.com": "v=spf1 +all"}
    got = mail_from(table, "192.0.2.1", sender="<>", helo="example.com")
    assert got.sender == "postmaster@example.com" and got.explanation == got.sender
    assert got.identity is Identity.MAILFROM
    got = mail_from(table, "192.0.2.1", sender="@example.com")
    assert got.explanation == "postmaster@example.com"
    helo = asyncio.run(check_helo(Recording(table), "192.0.2.1", "mail.example.com", now=NOW))
    assert helo.identity is Identity.HELO and helo.result is Result.PASS
    assert helo.sender == "postmaster@mail.example.com"
    assert split_sender("user", "d.example") == ("postmaster@user", "postmaster", "user")


def test_check_host_direct_and_bad_ip() -> None:
    resolver = Recording(BASIC)
    got = asyncio.run(check_host(resolver, "192.0.2.9", "example.com.", "a@example.com",
                                 now=NOW))
    assert got.result is Result.PASS and got.domain == "example.com"
    with pytest.raises(ValueError):
        asyncio.run(check_host(resolver, "not-an-ip", "example.com", "a@example.com", now=NOW))


def test_trace_tells_the_story() -> None:
    got = mail_from(BASIC, "203.0.113.50")
    text = "\n".join(got.trace)
    assert "include:_spf.example.net gave neutral: no match" in text
    assert text.splitlines()[-1].endswith("-all: match → fail")


def test_checker_keeps_parsed_records() -> None:
    records = RecordCache()
    checker = SpfChecker(Recording(BASIC), receiver="mx.example", records=records)
    first = asyncio.run(checker.mail_from("203.0.113.50", "a@example.com", "h.example", now=NOW))
    assert first.result is Result.FAIL and len(records) == 2
    again = asyncio.run(checker.helo("192.0.2.9", "example.com", now=NOW))
    assert again.result is Result.PASS and len(records) == 2
