"""SPF records (RFC 7208 §4.5, §4.6, §5, §6): selection, parsing, syntax errors."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailseal.results import Result
from mailseal.spf.record import (
    BadRecord,
    Kind,
    Qualifier,
    Record,
    RecordCache,
    is_spf,
    parse_record,
    select_records,
)


def parsed(text: str) -> Record:
    record = parse_record(text)
    assert isinstance(record, Record), record
    return record


def test_version_selection() -> None:
    assert is_spf(b"v=spf1") and is_spf(b"V=SpF1 -all") and is_spf(b"v=spf1 ")
    assert not is_spf(b"v=spf10") and not is_spf(b"v=spf1mx") and not is_spf(b" v=spf1")
    assert not is_spf(b"spf2.0/pra ~all")
    assert select_records([b"google-site-verification=x", b"v=spf1 -all", b"\x96"]) == [
        b"v=spf1 -all"]


def test_every_mechanism_and_modifier() -> None:
    record = parsed("v=spf1 +a -a:example.com/24 ~mx:mx.example.com//64 ?mx/24//48 ptr "
                    "ptr:example.net ip4:192.0.2.0/24 ip6:2001:db8::/32 exists:%{i}.bl.example "
                    "include:_spf.example.org all redirect=other.example exp=exp.%{d} "
                    "x-custom=%{l}")
    kinds = [d.kind for d in record.directives]
    assert kinds == [Kind.A, Kind.A, Kind.MX, Kind.MX, Kind.PTR, Kind.PTR, Kind.IP4, Kind.IP6,
                     Kind.EXISTS, Kind.INCLUDE, Kind.ALL]
    a2, mx1, mx2 = record.directives[1], record.directives[2], record.directives[3]
    assert a2.qualifier is Qualifier.FAIL and a2.cidr4 == 24 and a2.cidr6 == 128
    assert mx1.qualifier.result is Result.SOFTFAIL and mx1.cidr4 == 32 and mx1.cidr6 == 64
    assert mx2.target is None and (mx2.cidr4, mx2.cidr6) == (24, 48)
    assert record.directives[6].network == ipaddress.ip_network("192.0.2.0/24")
    assert record.directives[7].network == ipaddress.ip_network("2001:db8::/32")
    assert record.redirect is not None and record.redirect.text == "other.example"
    assert record.exp is not None and record.exp.uses_p is False
    assert record.unknown == (("x-custom", "%{l}"),)


def test_case_insensitive_names_and_host_bits() -> None:
    record = parsed("V=SPF1 INCLUDE:example.com A:Example.COM IP4:192.0.2.7/24 Redirect=x.example")
    assert [d.kind for d in record.directives] == [Kind.INCLUDE, Kind.A, Kind.IP4]
    assert record.directives[2].network == ipaddress.ip_network("192.0.2.0/24")
    assert record.redirect is not None


def test_empty_record_and_spacing() -> None:
    assert parsed("v=spf1").directives == ()
    assert len(parsed("v=spf1  a   -all ").directives) == 2


@pytest.mark.parametrize("text", [
    "v=spf1 ip4:1.2.3.4 -all moo",          # an error after all still counts (§4.6)
    "v=spf1 moo.cow/far_out=man:dog/cat",   # not a modifier name: unknown mechanism
    "v=spf1 1up=foo", "v=spf1 =all",
    "v=spf1 -all.", "v=spf1 -all:foo", "v=spf1 -all/8", "v=spf1 redirect:x.example",
    "v=spf1 a/33", "v=spf1 a//129", "v=spf1 a/24/64", "v=spf1 a/032", "v=spf1 a:",
    "v=spf1 a:foo-bar", "v=spf1 a:museum.", "v=spf1 a:example.com:8080",
    "v=spf1 mx:abc.123", "v=spf1 ptr/0", "v=spf1 ptr:", "v=spf1 exists",
    "v=spf1 exists:", "v=spf1 exists:mail.example.com/24", "v=spf1 include",
    "v=spf1 include:ip5.example.com/24",
    "v=spf1 ip4", "v=spf1 ip4:1.2.3", "v=spf1 ip4:1.2.3.4:8080", "v=spf1 ip4:1.2.3.4//32",
    "v=spf1 ip4:1.2.3.4/33", "v=spf1 ip4:01.2.3.4", "v=spf1 ip4:1.2.3.4/",
    "v=spf1 ip6", "v=spf1 ip6::CAFE::BABE", "v=spf1 ip6:::1/129", "v=spf1 ip6:::1//33",
    "v=spf1 ip6:fe80::1%eth0", "v=spf1 ip6:1.2.3.4",
    "v=spf1 exp=", "v=spf1 exp=-all", "v=spf1 redirect=", "v=spf1 redirect=-all",
    "v=spf1 exp=a.example exp=b.example", "v=spf1 redirect=a.example redirect=a.example",
    "v=spf1 -all exp=%{r}.example.com", "v=spf1 a:%{a}.example.com", "v=spf1 foo=%abc",
    "v=spf1 a:ctrl.example.com\rptr", "v=spf1 ip4:192.0.2.5\n", "v=spf1 a:foo.example.com\x00",
    "v=spf1\ta", "v=spf1 a:caf\u00e9.example",
])
def test_syntax_errors(text: str) -> None:
    bad = parse_record(text)
    assert isinstance(bad, BadRecord), text
    assert bad.reason


def test_non_ascii_octets_and_non_spf() -> None:
    bad = parse_record(b"v=spf1 a:\xef\xbb\xbfgarbage.example.net -all")
    assert isinstance(bad, BadRecord) and "ASCII" in bad.reason
    assert isinstance(parse_record(b"v=spf10 -all"), BadRecord)


def test_unknown_modifiers_are_kept_and_ignored() -> None:
    record = parsed("v=spf1 default=pass moo.cow-far_out=man:dog/cat ?all")
    assert [name for name, _ in record.unknown] == ["default", "moo.cow-far_out"]


def test_record_cache_shares_and_bounds() -> None:
    cache = RecordCache(max_entries=2)
    first = cache.parse(b"v=spf1 a -all")
    assert cache.parse(b"v=spf1 a -all") is first
    cache.parse(b"v=spf1 mx -all")
    cache.parse(b"v=spf1 a -all")  # now most recently used
    cache.parse(b"v=spf1 ptr -all")  # drops "mx"
    assert len(cache) == 2 and cache.parse(b"v=spf1 a -all") is first
    assert RecordCache(max_entries=0).parse(b"v=spf1 -all") is not None


@given(st.binary(max_size=80))
def test_any_octets_give_a_value(data: bytes) -> None:
    assert isinstance(parse_record(b"v=spf1 " + data), Record | BadRecord)


@given(st.text(alphabet=" \r\n\t:;=/.%{}-+~?aipxm46ldr0123", max_size=40))
def test_tiny_alphabet(text: str) -> None:
    assert isinstance(parse_record("v=spf1 " + text), Record | BadRecord)
