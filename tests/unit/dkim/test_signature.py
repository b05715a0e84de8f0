"""Parsing the DKIM-Signature field (RFC 6376 §3.5) and the checks of §6.1.1."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailseal.dkim.canonical import Canon
from mailseal.dkim.reasons import Reason
from mailseal.dkim.signature import (
    REQUIRED_TAGS,
    BadSignature,
    Signature,
    parse_signature,
)
from mailseal.message import HeaderField
from mailseal.results import Result

BASE = {"v": "1", "a": "rsa-sha256", "c": "relaxed/simple", "d": "example.com", "s": "sel",
        "h": "from:to", "bh": "YmgtZGF0YQ==", "b": "c2lnbmF0dXJl"}


def field(**changes: str | None) -> HeaderField:
    """BASE with tags changed (None deletes a tag); extra tags go before b=."""
    tags = {k: v for k, v in BASE.items() if k != "b"}
    tags.update({k: v for k, v in changes.items() if k != "b" and v is not None})
    for k, v in changes.items():
        if v is None:
            tags.pop(k, None)
    if "b" not in changes:
        tags["b"] = BASE["b"]
    elif changes["b"] is not None:
        tags["b"] = changes["b"]
    return HeaderField(b"DKIM-Signature", (" " + "; ".join(f"{k}={v}" for k, v in tags.items()))
                       .encode("ascii"))


def good(**changes: str | None) -> Signature:
    sig = parse_signature(field(**changes), 3)
    assert isinstance(sig, Signature), sig
    return sig


def bad(**changes: str | None) -> BadSignature:
    sig = parse_signature(field(**changes), 3)
    assert isinstance(sig, BadSignature), sig
    assert sig.index == 3
    return sig


def test_minimal_signature_and_defaults() -> None:
    sig = good(c=None)
    assert sig.v == "1" and sig.a == "rsa-sha256"
    assert sig.b == b"signature" and sig.bh == b"bh-data"
    assert sig.c == (Canon.SIMPLE, Canon.SIMPLE)  # §3.5: default simple/simple
    assert sig.d == "example.com" and sig.s == "sel"
    assert sig.h == ("from", "to")
    assert sig.i == "@example.com"  # §3.5: default i= is "@" + d=
    assert sig.q == ("dns/txt",)
    assert (sig.l, sig.t, sig.x, sig.z) == (None, None, None, None)
    assert sig.index == 3
    assert sig.key_name == "sel._domainkey.example.com"
    assert (sig.key_type, sig.hash_name) == ("rsa", "sha256")
    assert sig.auid_domain == "example.com"


def test_all_tags() -> None:
    sig = good(c="relaxed", i="joe@Mail.Example.com", l="123", t="100", x="200",
               q="dns/txt", z="From:a|To:b", h=" From : To\r\n\t: Subject ")
    assert sig.c == (Canon.RELAXED, Canon.SIMPLE)  # §3.5: body part missing = simple
    assert sig.i == "joe@Mail.Example.com" and sig.auid_domain == "mail.example.com"
    assert (sig.l, sig.t, sig.x) == (123, 100, 200)
    assert sig.z == "From:a|To:b"
    assert sig.h == ("From", "To", "Subject")


def test_d_is_lower_cased_and_values_are_unfolded_for_base64() -> None:
    sig = good(d="Example.COM", b="c2ln\r\n\tbmF0 dXJl", bh="YmgtZGF0\r\n YQ==")
    assert sig.d == "example.com"
    assert (sig.b, sig.bh) == (b"signature", b"bh-data")


@pytest.mark.parametrize(("algorithm", "key_type"), [
    ("rsa-sha256", "rsa"), ("ed25519-sha256", "ed25519"), ("rsa-sha1", "rsa"),
    ("RSA-SHA256", "rsa"),
])
def test_algorithms(algorithm: str, key_type: str) -> None:
    sig = good(a=algorithm)
    assert sig.a == algorithm.lower() and sig.key_type == key_type


def test_i_is_dkim_quoted_printable() -> None:
    """§2.11 and §3.5: i= is dkim-quoted-printable."""
    assert good(i="j=3Doe=40x@example.com").i == "j=oe@x@example.com"
    assert good(i="joe@sub.example.com").auid_domain == "sub.example.com"


def test_unknown_tags_and_query_methods_are_ignored() -> None:
    sig = good(xyz="whatever", q="foo/bar:dns/txt")
    assert sig.q == ("foo/bar", "dns/txt")


@pytest.mark.parametrize("tag", REQUIRED_TAGS)
def test_missing_required_tag(tag: str) -> None:
    sig = bad(**{tag: None})
    assert sig.reason is Reason.MISSING_TAG and f"{tag}=" in sig.detail


@pytest.mark.parametrize(("changes", "reason"), [
    # §6.1.1: "v= tag ... MUST be ... 1"
    ({"v": "2"}, Reason.BAD_VERSION),
    ({"v": "1.0"}, Reason.BAD_VERSION),
    ({"v": ""}, Reason.BAD_VERSION),
    # §3.5 a=; §6.1.1 unknown algorithm
    ({"a": "rsa-md5"}, Reason.BAD_ALGORITHM),
    ({"a": "ed448-sha256"}, Reason.BAD_ALGORITHM),
    ({"a": ""}, Reason.BAD_ALGORITHM),
    ({"c": "nofws/simple"}, Reason.BAD_CANONICALIZATION),
    ({"c": "relaxed/nofws"}, Reason.BAD_CANONICALIZATION),
    ({"c": ""}, Reason.BAD_CANONICALIZATION),
    # §6.1.1: "the domain of i= is not the same as, or a subdomain of, the d= domain"
    ({"i": "joe@example.org"}, Reason.DOMAIN_MISMATCH),
    ({"i": "joe@notexample.com"}, Reason.DOMAIN_MISMATCH),
    ({"i": "joe@com"}, Reason.DOMAIN_MISMATCH),
    ({"i": "no-at-sign"}, Reason.SYNTAX),
    # §5.4 and §6.1.1: the From field MUST be signed
    ({"h": "to:subject"}, Reason.FROM_NOT_SIGNED),
    ({"h": "from-x:to"}, Reason.FROM_NOT_SIGNED),
    ({"h": "from::to"}, Reason.SYNTAX),
    ({"h": "from:"}, Reason.SYNTAX),
    ({"h": ""}, Reason.SYNTAX),
    # §3.5 x=: MUST be greater than t=
    ({"t": "200", "x": "100"}, Reason.SYNTAX),
    ({"t": "-1"}, Reason.SYNTAX),
    ({"x": "1e9"}, Reason.SYNTAX),
    ({"l": "abc"}, Reason.SYNTAX),
    ({"l": "1" * 77}, Reason.SYNTAX),  # 1*76DIGIT
    ({"l": ""}, Reason.SYNTAX),
    # §3.5 q=: dns/txt is the only method; none supported → unusable
    ({"q": "dns/foo"}, Reason.BAD_QUERY_METHOD),
    ({"q": "http/well-known"}, Reason.BAD_QUERY_METHOD),
    ({"q": "dns"}, Reason.BAD_QUERY_METHOD),
    # base64 (§3.5 b=, bh=)
    ({"b": "!!!!"}, Reason.SYNTAX),
    ({"b": "abc"}, Reason.SYNTAX),
    ({"bh": "a=b="}, Reason.SYNTAX),
    ({"b": ""}, Reason.SYNTAX),
    ({"bh": ""}, Reason.SYNTAX),
    # d= and s= must be domain names
    ({"d": "exa mple.com"}, Reason.SYNTAX),
    ({"d": "example..com"}, Reason.SYNTAX),
    ({"d": "example.com."}, Reason.SYNTAX),
    ({"d": "-example.com"}, Reason.SYNTAX),
    ({"s": ""}, Reason.SYNTAX),
    ({"s": "a b"}, Reason.SYNTAX),
    ({"s": "a/b"}, Reason.SYNTAX),
])
def test_rejections(changes: dict[str, str], reason: Reason) -> None:
    sig = bad(**changes)
    assert sig.reason is reason, sig.detail
    assert sig.reason.result is Result.PERMERROR
    # what could be parsed is kept, for reporting d= and s=
    assert sig.tags["d"] == changes.get("d", BASE["d"])


@pytest.mark.parametrize("value", [
    b" v=1; v=1; a=rsa-sha256",  # §3.2: a duplicate tag invalidates the list
    b" v=1; junk",
    b" v=1; 1x=2",
    " v=1; n=caf\u00e9".encode(),
])
def test_tag_list_errors_are_syntax(value: bytes) -> None:
    sig = parse_signature(HeaderField(b"DKIM-Signature", value))
    assert isinstance(sig, BadSignature) and sig.reason is Reason.SYNTAX and sig.tags == {}


def test_selector_with_dots_and_underscores_is_fine() -> None:
    assert good(s="2026-11.mail_x").key_name == "2026-11.mail_x._domainkey.example.com"


@pytest.mark.parametrize(("value", "stripped"), [
    (b" v=1; b=abc; bh=x", b" v=1; b=; bh=x"),
    (b" v=1; bh=x; b=ab\r\n\tcd", b" v=1; bh=x; b="),
    (b" v=1; bh=x; b = ab cd ", b" v=1; bh=x; b ="),
    (b"b=abc;v=1", b"b=;v=1"),
    (b" v=1;\r\n b=abc", b" v=1;\r\n b="),
])
def test_b_stripped_field(value: bytes, stripped: bytes) -> None:
    """§3.7: the signature field is hashed with the value of b= deleted."""
    sig = Signature(v="1", a="rsa-sha256", b=b"x", bh=b"x", c=(Canon.SIMPLE, Canon.SIMPLE),
                    d="example.com", h=("from",), i="@example.com", l=None, q=("dns/txt",),
                    s="s", t=None, x=None, z=None,
                    field=HeaderField(b"DKIM-Signature", value), index=0)
    assert sig.b_stripped_field() == HeaderField(b"DKIM-Signature", stripped)


FRAGMENTS = st.sampled_from(
    ["\r", "\n", "\t", ":", ";", "=", " ", "a", "b", "v=1", "a=rsa-sha256", "a=ed25519-sha256",
     "d=example.com", "s=s", "h=from", "bh=AAAA", "b=AAAA", "i=@example.com", "l=5", "t=9",
     "x=1", "q=dns/txt", "c=relaxed", "=4", "@", "é"])


@given(st.lists(FRAGMENTS, max_size=40))
def test_parse_never_raises(parts: list[str]) -> None:
    """STYLE habit 11: a malformed signature is a value, never an exception."""
    value = "".join(parts).encode("utf-8")
    sig = parse_signature(HeaderField(b"DKIM-Signature", value))
    assert isinstance(sig, Signature | BadSignature)
    if isinstance(sig, BadSignature):
        assert sig.reason.result is Result.PERMERROR


@given(st.binary(max_size=200))
def test_parse_never_raises_on_bytes(value: bytes) -> None:
    assert isinstance(parse_signature(HeaderField(b"DKIM-Signature", value)),
                      Signature | BadSignature)
