"""SPF macros (RFC 7208 §7): the §7.4 examples, syntax errors, escaping, truncation."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailseal.spf.macro import (
    MacroContext,
    MacroError,
    dotted_ip,
    expand,
    expand_domain,
    parse_domain_spec,
    parse_macro_string,
    truncate_domain,
)


def context(ip: str = "192.0.2.3", sender: str = "strong-bad@email.example.com") -> MacroContext:
    local, _, domain = sender.rpartition("@")
    return MacroContext(sender, local, domain, ipaddress.ip_address(ip), "mx.example.org",
                        "mx.receiver.example", 1_700_000_000)


# RFC 7208 §7.4: <sender> strong-bad@email.example.com, <ip> 192.0.2.3.
RFC_EXAMPLES = [
    ("%{s}", "strong-bad@email.example.com"),
    ("%{o}", "email.example.com"),
    ("%{d}", "email.example.com"),
    ("%{d4}", "email.example.com"),
    ("%{d3}", "email.example.com"),
    ("%{d2}", "example.com"),
    ("%{d1}", "com"),
    ("%{dr}", "com.example.email"),
    ("%{d2r}", "example.email"),
    ("%{l}", "strong-bad"),
    ("%{l-}", "strong.bad"),
    ("%{lr}", "strong-bad"),
    ("%{lr-}", "bad.strong"),
    ("%{l1r-}", "strong"),
    ("%{ir}.%{v}._spf.%{d2}", "3.2.0.192.in-addr._spf.example.com"),
    ("%{lr-}.lp._spf.%{d2}", "bad.strong.lp._spf.example.com"),
    ("%{lr-}.lp.%{ir}.%{v}._spf.%{d2}", "bad.strong.lp.3.2.0.192.in-addr._spf.example.com"),
    ("%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}", "3.2.0.192.in-addr.strong.lp._spf.example.com"),
    ("%{d2}.trusted-domains.example.net", "example.com.trusted-domains.example.net"),
]


@pytest.mark.parametrize(("text", "expected"), RFC_EXAMPLES)
def test_rfc7208_examples(text: str, expected: str) -> None:
    spec = parse_macro_string(text)
    assert expand(spec, context(), "email.example.com") == expected


def test_rfc7208_ipv6_example() -> None:
    spec = parse_macro_string("%{ir}.%{v}._spf.%{d2}")
    got = expand(spec, context("2001:db8::cb01"), "email.example.com")
    # The RFC prints lower-case nibbles; ours are upper-case (the OpenSPF suite's
    # explanations expect that), and DNS names compare case-insensitively.
    assert got.lower() == ("1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2"
                           ".ip6._spf.example.com")
    assert dotted_ip(ipaddress.IPv6Address("::1")).endswith("0.0.1")


def test_escapes_and_explanation_letters() -> None:
    spec = parse_macro_string("%%%_%-", explanation=True)
    assert expand(spec, context(), "d.example") == "% %20"
    spec = parse_macro_string("%{c} via %{r} at %{t}", explanation=True)
    assert expand(spec, context("2001:db8::1"), "d.example") == (
        "2001:db8::1 via mx.receiver.example at 1700000000")
    assert expand(parse_macro_string("%{p}"), context(), "x.example", "mx.example.com") == (
        "mx.example.com")
    assert expand(parse_macro_string("%{h}"), context(), "x.example") == "mx.example.org"


def test_upper_case_macros_are_url_escaped() -> None:
    # RFC 7208 §7.3; the OpenSPF upper-macro case.
    ctx = context(sender="~jack&jill=up-a_b3.c@e8.example.com")
    assert expand(parse_macro_string("%{L}"), ctx, "e8.example.com") == "~jack%26jill%3Dup-a_b3.c"
    assert expand(parse_macro_string("%{S}"), context(sender="a b/c@x.example"), "x") == (
        "a%20b%2Fc%40x.example")


def test_multiple_delimiters() -> None:
    ctx = context(sender="foo-bar+zip+quux@e12.example.com")
    assert expand(parse_macro_string("%{l2r+-}"), ctx, "e12.example.com") == "bar.foo"
    assert expand(parse_macro_string("%{l=}"), context(sender="a=b@x.example"), "x") == "a.b"


@pytest.mark.parametrize("text", [
    "%", "%x", "foo%", "%(ir)", "%{", "%{d", "%{z}", "%{d0}", "%{dr2}", "%{d2r.x}",
    "%{c}", "%{r}", "%{t}", "caf\u00e9", "a b", "\x00",
])
def test_syntax_errors(text: str) -> None:
    with pytest.raises(MacroError):
        parse_macro_string(text)


def test_explanation_allows_space_and_crt_only_there() -> None:
    parse_macro_string("%{c} is %{r} at %{t}", explanation=True)
    with pytest.raises(MacroError):
        parse_macro_string("%{w}", explanation=True)


@pytest.mark.parametrize(("text", "valid"), [
    ("example.com", True),
    ("example.com.", True),
    ("%{d}", True),
    ("%{d}.com", True),
    ("%{ir}.%{v}._spf.%{d2}", True),
    ("foo.example.xn--zckzah", True),
    ("foo:bar/baz.example.com", True),
    ("macro%%percent%_%_space%-url-space.example.com", True),
    ("x.%-", True),
    ("", False),
    ("museum", False),
    ("museum.", False),
    ("foo-bar", False),
    ("abc.123", False),
    ("111.222.33.44", False),
    ("example.-com", False),
    ("example.com:8080", False),
    ("example.com/24", False),
    ("%{d}com", False),
    ("x.%%_", False),
])
def test_domain_spec_endings(text: str, valid: bool) -> None:
    if valid:
        parse_domain_spec(text)
    else:
        with pytest.raises(MacroError):
            parse_domain_spec(text)


def test_truncation_and_trailing_dot() -> None:
    assert truncate_domain("example.com.") == "example.com"
    long = ".".join(["a" * 60] * 5)  # 304 characters
    cut = truncate_domain("x." + long)
    assert len(cut) <= 253 and long.endswith(cut) and not cut.startswith(".")
    spec = parse_domain_spec("%{d}.%{d}.%{d}.%{d}.%{d}.example.com")
    name = expand_domain(spec, context(), "a" * 60 + ".example")
    assert len(name) <= 253 and name.endswith(".example.com")


@given(st.text(max_size=40))
def test_parser_raises_only_macro_error(text: str) -> None:
    try:
        spec = parse_macro_string(text, explanation=True)
    except MacroError:
        return
    expand(spec, context(), "example.com")  # anything that parses, expands


@given(st.text(alphabet="%{}dlr0123.-+_= Ab", max_size=20))
def test_tiny_alphabet(text: str) -> None:
    try:
        spec = parse_domain_spec(text)
    except MacroError:
        return
    assert isinstance(expand_domain(spec, context(), "example.com"), str)
