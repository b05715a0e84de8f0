"""Hostile and malformed Authentication-Results values: every failure is an
AuthResParseError with an offset, never another exception, and the 64 KiB and
nesting-depth limits hold."""

from __future__ import annotations

import pytest

from mailseal.authres import (
    MAX_COMMENT_DEPTH,
    MAX_VALUE_LENGTH,
    AuthResParseError,
    parse_field,
    parse_value,
)


def test_error_offsets_count_octets_of_the_field() -> None:
    with pytest.raises(AuthResParseError) as info:
        parse_field(b"Authentication-Results: x; dkim=pass (\xc3\xa9) header")
    assert info.value.offset == len(b"Authentication-Results: x; dkim=pass (\xc3\xa9) header")
    assert info.value.reason == "expected '.' after property type, or 'reason='"
    assert "at offset" in str(info.value)


MALFORMED = [
    "",
    "   ",
    "(",
    "(unterminated comment; spf=pass",
    "x; dkim=pass (unbalanced",
    "x; dkim=pass (a (b)",
    "x; dkim=pass)",
    'x; dkim=pass reason="unterminated',
    '"',
    '""; none',
    'x"; none',
    "\\",
    "x; dkim=pass header.d=\\",
    "x; dkim=pass (\\",
    ";",
    "; none",
    "x",
    "x none",
    "x; none; spf=pass",
    "x; =pass",
    "x; dkim=",
    "x; dkim pass",
    "x; dkim=pass header",
    "x; dkim=pass header.",
    "x; dkim=pass header.d",
    "x; dkim=pass header.d=",
    "x; dkim=pass header.d=(c)",
    "x; dkim=pass action=none",
    "x; dkim=pass reason=a reason=b",
    "x; dkim=pass reason=",
    "x; dkim-=pass",
    "x; dkim/=pass",
    "x; dkim/1234567890=pass",
    "x 1234567890; none",
    "x; dk_im=pass",
    "x/y; none",
    "x; spf=pass\r\nX-Injected: yes",
    "x; spf=pass\r\n\r\n",
    "x; spf=pass\rfoo",
    "x;\x00none",
    "x; dkim=pass (nul\x00)",
    'x; dkim=pass header.d="nul\x00"',
    'x; dkim=pass header.d="a\\\r\n b"',
    "x; dkim=pass (\ud800)",
    "x; dkim=pass \u00e9.d=1",
]


@pytest.mark.parametrize("value", MALFORMED)
def test_malformed_raises_parse_error(value: str) -> None:
    with pytest.raises(AuthResParseError):
        parse_value(value)
    with pytest.raises(AuthResParseError):
        parse_value(value.encode("utf-8", "surrogatepass"))


def test_comment_nesting_limit() -> None:
    ok = "x; dkim=pass " + "(" * MAX_COMMENT_DEPTH + ")" * MAX_COMMENT_DEPTH
    assert parse_value(ok).results[0].comment == "(" * 49 + ")" * 49
    deep = "x; dkim=pass " + "(" * (MAX_COMMENT_DEPTH + 1) + ")" * (MAX_COMMENT_DEPTH + 1)
    with pytest.raises(AuthResParseError, match="nested deeper than 50"):
        parse_value(deep)
    very_deep = "(" * 100_000 + ")" * 100_000 + " x; none"
    with pytest.raises(AuthResParseError):
        parse_value(very_deep)


def test_length_limit() -> None:
    head = "x; dkim=pass ("
    fits = head + "a" * (MAX_VALUE_LENGTH - len(head) - 1) + ")"
    assert len(fits) == MAX_VALUE_LENGTH
    assert parse_value(fits).results[0].method == "dkim"
    assert parse_value(fits.encode()).results[0].method == "dkim"
    too_long = fits + " "
    with pytest.raises(AuthResParseError, match="64 KiB"):
        parse_value(too_long)
    with pytest.raises(AuthResParseError, match="64 KiB"):
        parse_value(too_long.encode())
    with pytest.raises(AuthResParseError, match="64 KiB"):
        parse_field(b"Authentication-Results:" + too_long.encode())


def test_huge_version_number_is_an_error_not_a_crash() -> None:
    # int() of a 5000-digit string raises a plain ValueError in Python 3.11+.
    with pytest.raises(AuthResParseError):
        parse_value("x " + "9" * 5000 + "; none")


@pytest.mark.parametrize(
    ("value", "offset", "reason"),
    [
        ("x; dkim=pass (unbalanced", 13, "unterminated comment"),
        ('x; dkim=fail reason="open', 20, "unterminated quoted-string"),
        ("x; spf=pass\r\nX-Injected: yes", 11, "line break not followed by white space"),
        ("x; dkim/12345678901=pass", 8, "version number too long"),
        ("", 0, "expected authserv-id"),
        ("x; dkim=pass header.d=", 22, "expected a property value"),
    ],
)
def test_error_reports_where_and_why(value: str, offset: int, reason: str) -> None:
    with pytest.raises(AuthResParseError) as info:
        parse_value(value)
    assert (info.value.offset, info.value.reason) == (offset, reason)
