"""Parsing Authentication-Results: the RFC 8601 Appendix B examples, CFWS in
every place the grammar allows it, the leniencies, and hostile input."""

from __future__ import annotations

import pytest

from mailseal.authres import (
    AuthenticationResults,
    AuthResParseError,
    MethodResult,
    Property,
    parse_field,
    parse_value,
)
from mailseal.results import Result

P = Property
AR = AuthenticationResults


# -- RFC 8601 Appendix B, as complete fields ------------------------------------

APPENDIX_B = [
    pytest.param(
        b"Authentication-Results: example.org 1; none\r\n",
        AR("example.org", 1, ()),
        id="B.2-none",
    ),
    pytest.param(
        b"Authentication-Results: example.com;\r\n          spf=pass smtp.mailfrom=example.net\r\n",
        AR(
            "example.com",
            None,
            (MethodResult("spf", "pass", properties=(P("smtp", "mailfrom", "example.net"),)),),
        ),
        id="B.3-spf",
    ),
    pytest.param(
        b"Authentication-Results: example.com;\r\n"
        b"          auth=pass (cram-md5) smtp.auth=sender@example.net;\r\n"
        b"          spf=pass smtp.mailfrom=example.net\r\n",
        AR(
            "example.com",
            None,
            (
                MethodResult(
                    "auth",
                    "pass",
                    comment="cram-md5",
                    properties=(P("smtp", "auth", "sender@example.net"),),
                ),
                MethodResult("spf", "pass", properties=(P("smtp", "mailfrom", "example.net"),)),
            ),
        ),
        id="B.4-auth-spf",
    ),
    pytest.param(
        b"Authentication-Results: example.com; iprev=pass\r\n"
        b"          policy.iprev=192.0.2.200\r\n",
        AR(
            "example.com",
            None,
            (MethodResult("iprev", "pass", properties=(P("policy", "iprev", "192.0.2.200"),)),),
        ),
        id="B.4-iprev",
    ),
    pytest.param(
        b"Authentication-Results: example.com;\r\n"
        b"          dkim=pass (good signature) header.d=example.com\r\n",
        AR(
            "example.com",
            None,
            (
                MethodResult(
                    "dkim",
                    "pass",
                    comment="good signature",
                    properties=(P("header", "d", "example.com"),),
                ),
            ),
        ),
        id="B.5-dkim",
    ),
    pytest.param(
        b"Authentication-Results: example.com;\r\n"
        b"          auth=pass (cram-md5) smtp.auth=sender@example.com;\r\n"
        b"          spf=fail smtp.mailfrom=example.com\r\n",
        AR(
            "example.com",
            None,
            (
                MethodResult(
                    "auth",
                    "pass",
                    comment="cram-md5",
                    properties=(P("smtp", "auth", "sender@example.com"),),
                ),
                MethodResult("spf", "fail", properties=(P("smtp", "mailfrom", "example.com"),)),
            ),
        ),
        id="B.5-auth-spf-fail",
    ),
    pytest.param(
        b"Authentication-Results: example.com;\r\n"
        b'      dkim=pass reason="good signature"\r\n'
        b"        header.i=@mail-router.example.net;\r\n"
        b'      dkim=fail reason="bad signature"\r\n'
        b"        header.i=@newyork.example.com\r\n",
        AR(
            "example.com",
            None,
            (
                MethodResult(
                    "dkim",
                    "pass",
                    reason="good signature",
                    properties=(P("header", "i", "@mail-router.example.net"),),
                ),
                MethodResult(
                    "dkim",
                    "fail",
                    reason="bad signature",
                    properties=(P("header", "i", "@newyork.example.com"),),
                ),
            ),
        ),
        id="B.6-two-dkim",
    ),
    pytest.param(
        b"Authentication-Results: example.net;\r\n"
        b"      dkim=pass (good signature) header.i=@newyork.example.com\r\n",
        AR(
            "example.net",
            None,
            (
                MethodResult(
                    "dkim",
                    "pass",
                    comment="good signature",
                    properties=(P("header", "i", "@newyork.example.com"),),
                ),
            ),
        ),
        id="B.6-relay",
    ),
    pytest.param(
        b"Authentication-Results: foo.example.net (foobar) 1 (baz);\r\n"
        b"    dkim (Because I like it) / 1 (One yay) = (wait for it) fail\r\n"
        b"      policy (A dot can go here) . (like that) expired\r\n"
        b"      (this surprised me) = (as I wasn't expecting it) 1362471462\r\n",
        AR(
            "foo.example.net",
            1,
            (
                MethodResult(
                    "dkim", "fail", version=1, properties=(P("policy", "expired", "1362471462"),)
                ),
            ),
        ),
        id="B.7-comment-heavy",
    ),
]


@pytest.mark.parametrize(("field", "expected"), APPENDIX_B)
def test_rfc8601_appendix_b(field: bytes, expected: AuthenticationResults) -> None:
    assert parse_field(field) == expected
    value = field.split(b":", 1)[1]
    assert parse_value(value) == expected
    assert parse_value(value.decode()) == expected


def test_known_result_words_become_result() -> None:
    ar = parse_value("x; spf=SoftFail; dmarc=PermError; x-new=maybe")
    assert [r.result for r in ar.results] == [Result.SOFTFAIL, Result.PERMERROR, "maybe"]
    assert isinstance(ar.results[0].result, Result)
    assert type(ar.results[2].result) is str


def test_case_insensitive_keywords_case_kept_in_values() -> None:
    ar = parse_value("MX.Example.COM; DKIM=PASS Header.D=Example.COM")
    assert ar == AR(
        "MX.Example.COM",
        None,
        (MethodResult("dkim", "pass", properties=(P("header", "d", "Example.COM"),)),),
    )


def test_unknown_ptypes_and_methods_are_kept() -> None:
    ar = parse_value("x; x-frob=weird x-ptype.some-prop=v1 body.hash=abc")
    assert ar.results[0] == MethodResult(
        "x-frob", "weird", properties=(P("x-ptype", "some-prop", "v1"), P("body", "hash", "abc"))
    )


# -- CFWS, versions, values ----------------------------------------------------


def test_cfws_everywhere() -> None:
    value = (
        " (a (nested (deeper)) comment)\r\n\t mx.example.com (c) 1 (c) ; (c)\r\n"
        ' dkim (c) / (c) 1 (c) = (c) pass (first) (second) reason (c) = (c) "why" (c)\r\n'
        "\theader (c) . (c) d (c) = (c) example.com (c) ; (c) spf=none (c)"
    )
    assert parse_value(value) == AR(
        "mx.example.com",
        1,
        (
            MethodResult("dkim", "pass", 1, "why", (P("header", "d", "example.com"),), "first"),
            MethodResult("spf", "none", comment="c"),
        ),
    )


def test_comment_contents_are_decoded() -> None:
    ar = parse_value("x; dkim=pass (1024-bit \\(weak\\) key (nested \\\\ one)\r\n folded)")
    assert ar.results[0].comment == "1024-bit (weak) key (nested \\ one) folded"


@pytest.mark.parametrize(
    ("value", "comment"),
    [
        ("x; dkim=pass", None),
        ("x; dkim=pass ()", ""),
        ('x; dkim=fail reason="r" (2048-bit key) header.d=a.example', "2048-bit key"),
        ("x; dkim=fail header.d=a.example (after property)", "after property"),
        ("x; dkim=fail (c1) header.d=a.example (c2)", "c1"),
        ("x; dkim (before) = (before) fail", None),
        ("x; dkim=fail header (inside) . d = (inside) a.example", None),
    ],
)
def test_which_comment_is_kept(value: str, comment: str | None) -> None:
    assert parse_value(value).results[0].comment == comment


@pytest.mark.parametrize(
    ("pvalue", "expected"),
    [
        ("example.com", "example.com"),
        ("@example.com", "@example.com"),
        ("user@example.com", "user@example.com"),
        ("bounce+x=y@example.com", "bounce+x=y@example.com"),
        ('"quoted value"', "quoted value"),
        ('"esc\\"aped\\\\"', 'esc"aped\\'),
        ('"john doe"@example.com', "john doe@example.com"),
        ('""', ""),
        # leniencies: what deployed producers write unquoted
        ("2001:db8::1", "2001:db8::1"),
        ("mj+deT/Q==", "mj+deT/Q=="),
        ("[192.0.2.1]", "[192.0.2.1]"),
        ("caf\u00e9@example.com", "caf\u00e9@example.com"),
    ],
)
def test_property_values(pvalue: str, expected: str) -> None:
    ar = parse_value(f"x; dkim=pass header.v={pvalue} header.w=next")
    assert ar.results[0].properties == (P("header", "v", expected), P("header", "w", "next"))


def test_reason_forms() -> None:
    assert parse_value("x; compauth=pass reason=100").results[0].reason == "100"
    lenient = parse_value('x; dkim=fail header.d=a.example reason="late"').results[0]
    assert lenient.reason == "late"
    assert lenient.properties == (P("header", "d", "a.example"),)
    ptype_reason = parse_value("x; dkim=fail reason.code=7").results[0]
    assert ptype_reason.reason is None
    assert ptype_reason.properties == (P("reason", "code", "7"),)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("x; none", AR("x", None, ())),
        ("x;none", AR("x", None, ())),
        ("x; NONE (nothing done)\r\n", AR("x", None, ())),
        ("x;", AR("x", None, ())),  # lenient: empty last clause
        ("x; spf=pass;", AR("x", None, (MethodResult("spf", "pass"),))),
        ("x; none=pass", AR("x", None, (MethodResult("none", "pass"),))),
        ('"mx example"; none', AR("mx example", None, ())),
        ("x 007; none", AR("x", 7, ())),
        ("x;\n spf=pass;\n none=fail", None),  # LF folding is read too
    ],
)
def test_no_result_and_edges(value: str, expected: AuthenticationResults | None) -> None:
    if expected is None:
        assert parse_value(value).results == (
            MethodResult("spf", "pass"),
            MethodResult("none", "fail"),
        )
    else:
        assert parse_value(value) == expected


def test_bytes_and_utf8() -> None:
    ar = parse_value("x; dkim=pass (cl\u00e9)".encode())
    assert ar.results[0].comment == "cl\u00e9"
    with pytest.raises(AuthResParseError) as info:
        parse_value(b"x; dkim=pass (\xff)")
    assert info.value.offset == 14


def test_parse_field_name_handling() -> None:
    assert parse_field(b"authentication-RESULTS : x; none\r\n") == AR("x", None, ())
    with pytest.raises(AuthResParseError):
        parse_field(b"Received: x; none\r\n")
    with pytest.raises(AuthResParseError):
        parse_field(b"x; none")
