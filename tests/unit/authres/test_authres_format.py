"""Formatting Authentication-Results: exact strings written by hand from the
RFC 8601 §2.2 grammar, the quoting rules, and folding (RFC 5322 §2.2.3)."""

from __future__ import annotations

import pytest

from mailseal.authres import (
    AuthenticationResults,
    MethodResult,
    Property,
    format_field,
    format_value,
    parse_field,
    parse_value,
)

P = Property


def _ar(*results: MethodResult, authserv_id: str = "mx.example.com") -> AuthenticationResults:
    return AuthenticationResults(authserv_id, None, results)


DKIM = MethodResult(
    "dkim",
    "pass",
    comment="2048-bit key",
    properties=(
        P("header", "d", "example.com"),
        P("header", "i", "@example.com"),
        P("header", "s", "sel"),
        P("header", "a", "rsa-sha256"),
        P("header", "b", "abcdEFGH"),
    ),
)


def test_dkim_pass() -> None:
    assert format_value(_ar(DKIM)) == (
        "mx.example.com; dkim=pass (2048-bit key) header.d=example.com"
        ' header.i=@example.com header.s=sel header.a=rsa-sha256 header.b="abcdEFGH"'
    )


def test_dkim_fail_with_reason_and_base64_b() -> None:
    result = MethodResult(
        "dkim",
        "fail",
        reason="signature did not verify",
        properties=(P("header", "d", "example.net"), P("header", "b", "mj+deT/Q")),
    )
    assert format_value(_ar(result)) == (
        'mx.example.com; dkim=fail reason="signature did not verify"'
        ' header.d=example.net header.b="mj+deT/Q"'
    )


def test_spf_softfail_with_address_in_atext() -> None:
    # "+" and "=" are atext (RFC 5322 §3.2.3): the addr-spec form needs no quotes.
    result = MethodResult(
        "spf",
        "softfail",
        comment="domain of example.net does not designate 192.0.2.1",
        properties=(
            P("smtp", "mailfrom", "bounce+x=y@example.net"),
            P("smtp", "helo", "mail.example.net"),
        ),
    )
    assert format_value(_ar(result)) == (
        "mx.example.com; spf=softfail (domain of example.net does not designate 192.0.2.1)"
        " smtp.mailfrom=bounce+x=y@example.net smtp.helo=mail.example.net"
    )


def test_dmarc_fail() -> None:
    result = MethodResult(
        "dmarc",
        "fail",
        comment="p=reject dis=none",
        properties=(P("header", "from", "example.com"),),
    )
    assert format_value(_ar(result)) == (
        "mx.example.com; dmarc=fail (p=reject dis=none) header.from=example.com"
    )


def test_several_results_with_versions() -> None:
    ar = AuthenticationResults(
        "mx.example.com",
        1,
        (
            MethodResult("spf", "pass", properties=(P("smtp", "mailfrom", "example.net"),)),
            MethodResult("dkim", "fail", version=1, properties=(P("header", "d", "example.net"),)),
            MethodResult("dmarc", "fail", properties=(P("header", "from", "example.net"),)),
        ),
    )
    assert format_value(ar) == (
        "mx.example.com 1; spf=pass smtp.mailfrom=example.net;"
        " dkim/1=fail header.d=example.net; dmarc=fail header.from=example.net"
    )


def test_no_result_is_none() -> None:
    # RFC 8601 §2.2 no-result: "authserv-id; none"
    assert format_value(AuthenticationResults("example.org", 1, ())) == "example.org 1; none"
    assert format_field(AuthenticationResults("example.org", None, ())) == (
        b"Authentication-Results: example.org; none\r\n"
    )


@pytest.mark.parametrize(
    ("value", "rendered"),
    [
        ("192.0.2.200", "192.0.2.200"),  # a token
        ("2001:db8::1", '"2001:db8::1"'),  # ":" is a tspecial
        ("@example.com", "@example.com"),  # "@" domain-name
        ("user@example.com", "user@example.com"),
        ("@localhost", '"@localhost"'),  # RFC 6376 domain-name has two labels or more
        ("a..b@example.com", '"a..b@example.com"'),  # not a dot-atom
        ("john doe@example.com", '"john doe@example.com"'),
        ("a/b", '"a/b"'),  # "/" is a tspecial and there is no "@"
        ("a=b", '"a=b"'),
        ('say "hi"\\', '"say \\"hi\\"\\\\"'),
        ("", '""'),
        ("caf\u00e9", '"caf\u00e9"'),  # RFC 6532: UTF-8 only inside quotes
    ],
)
def test_property_value_quoting(value: str, rendered: str) -> None:
    ar = _ar(MethodResult("x-test", "pass", properties=(P("policy", "v", value),)))
    assert format_value(ar) == f"mx.example.com; x-test=pass policy.v={rendered}"


def test_header_b_is_always_quoted() -> None:
    ar = _ar(MethodResult("dkim", "pass", properties=(P("header", "b", "abc"),)))
    assert format_value(ar) == 'mx.example.com; dkim=pass header.b="abc"'


def test_reason_always_quoted_and_escaped() -> None:
    ar = _ar(MethodResult("dkim", "fail", reason='bad "sig"'))
    assert format_value(ar) == 'mx.example.com; dkim=fail reason="bad \\"sig\\""'
    ar = _ar(MethodResult("dkim", "fail", reason="plain"))
    assert format_value(ar) == 'mx.example.com; dkim=fail reason="plain"'


def test_comment_escapes_parentheses_and_backslash() -> None:
    ar = _ar(MethodResult("dkim", "pass", comment="a (b) \\ c"))
    assert format_value(ar) == "mx.example.com; dkim=pass (a \\(b\\) \\\\ c)"
    assert parse_value(format_value(ar)) == ar


def test_authserv_id_quoted_when_not_a_token() -> None:
    ar = AuthenticationResults("mail server", None, ())
    assert format_value(ar) == '"mail server"; none'


def test_short_field_stays_on_one_line() -> None:
    ar = _ar(MethodResult("spf", "pass", properties=(P("smtp", "mailfrom", "example.net"),)))
    assert format_field(ar) == (
        b"Authentication-Results: mx.example.com; spf=pass smtp.mailfrom=example.net\r\n"
    )


def test_long_field_folds_at_clauses_and_between_properties() -> None:
    ar = _ar(
        DKIM,
        MethodResult("spf", "pass", properties=(P("smtp", "mailfrom", "example.com"),)),
    )
    assert format_field(ar) == (
        b"Authentication-Results: mx.example.com;\r\n"
        b"\tdkim=pass (2048-bit key) header.d=example.com header.i=@example.com\r\n"
        b'\theader.s=sel header.a=rsa-sha256 header.b="abcdEFGH";\r\n'
        b"\tspf=pass smtp.mailfrom=example.com\r\n"
    )
    assert parse_field(format_field(ar)) == ar


def _lines(field: bytes) -> list[bytes]:
    assert field.endswith(b"\r\n")
    body = field[:-2]
    assert b"\n" not in body.replace(b"\r\n", b"")
    assert b"\r" not in body.replace(b"\r\n", b"")
    return body.split(b"\r\n")


def test_no_line_longer_than_78_when_units_fit() -> None:
    props = tuple(P("header", f"p{i}", f"value-number-{i}.example.com") for i in range(12))
    ar = _ar(MethodResult("x-many", "pass", comment="a comment " * 5, properties=props), DKIM)
    lines = _lines(format_field(ar))
    assert len(lines) > 3
    assert all(len(line) <= 78 for line in lines)
    assert all(line.startswith(b"\t") for line in lines[1:])
    assert all(not line.endswith((b" ", b"\t")) for line in lines)
    assert parse_field(format_field(ar)) == ar


def test_overlong_unit_gets_its_own_line() -> None:
    long_b = "A" * 100
    ar = _ar(
        MethodResult(
            "dkim",
            "pass",
            properties=(
                P("header", "d", "example.com"),
                P("header", "b", long_b),
                P("header", "s", "s"),
            ),
        )
    )
    lines = _lines(format_field(ar))
    assert lines == [
        b"Authentication-Results: mx.example.com;",
        b"\tdkim=pass header.d=example.com",
        b'\theader.b="' + long_b.encode() + b'"',
        b"\theader.s=s",
    ]


def test_fold_none_writes_one_line() -> None:
    ar = _ar(DKIM, DKIM)
    field = format_field(ar, fold=None)
    assert field == b"Authentication-Results: " + format_value(ar).encode() + b"\r\n"


def test_non_ascii_is_utf8() -> None:
    ar = _ar(MethodResult("dkim", "pass", comment="cl\u00e9 de 2048 bits"))
    assert (
        format_field(ar)
        == (
            "Authentication-Results: mx.example.com; dkim=pass (cl\u00e9 de 2048 bits)\r\n"
        ).encode()
    )
    assert parse_field(format_field(ar)) == ar
