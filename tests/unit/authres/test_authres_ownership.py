"""carries_authserv_id: the RFC 8601 §5 check that finds fields claiming to be
ours, so the border MTA can remove forgeries before adding its own."""

from __future__ import annotations

import pytest

from mailseal.authres import carries_authserv_id

OURS = "mx.example.com"


@pytest.mark.parametrize(
    "value",
    [
        b" mx.example.com; dkim=pass header.d=example.com",
        b"mx.example.com; none",
        b" MX.Example.COM; spf=pass",  # domain names compare case-insensitively
        b" mx.example.com.; spf=pass",  # the absolute form names the same host
        b' "mx.example.com"; spf=pass',
        b' "mx.exa\\mple.com"; spf=pass',  # quoted-pair
        b" (comment (nested)) mx.example.com 1; spf=pass",
        b"\r\n\t(c)\r\n mx.example.com; spf=pass\r\n",
        b" mx.example.com",
        # a syntax error after the id must not let a forgery survive
        b" mx.example.com; dkim=pass (unterminated",
        b' mx.example.com; dkim=="',
        b" mx.example.com; dkim=pass header.d=\xff\xfe",
        b" mx.example.com/evil; dkim=pass",
        b" mx.example.com\x00; dkim=pass",
        b" mx.example.com; " + b"x" * 70_000,  # over the parser's 64 KiB limit
        b" " + b"(" * 500 + b")" * 500 + b" mx.example.com; spf=pass",  # deeper than 50
        b" (\x00\xff odd bytes in a comment) mx.example.com; spf=pass",
        b' "mx.example.com; dkim=pass',  # unterminated quoted id
        b"Authentication-Results: mx.example.com; spf=pass\r\n",  # the whole field, by mistake
    ],
)
def test_ours(value: bytes) -> None:
    assert carries_authserv_id(value, OURS)


@pytest.mark.parametrize(
    "value",
    [
        b" example.com; spf=pass",
        b" mx.example.com.evil.example; spf=pass",
        b" evil-mx.example.com; spf=pass",
        b" mx.example.co; spf=pass",
        b' "mx.example.com "; spf=pass',
        b" (mx.example.com) other.example; spf=pass",
        b" (unterminated mx.example.com; spf=pass",
        b" ; spf=pass",
        b"",
        b"   ",
        b" spf=pass (sender IP is 192.0.2.1) smtp.mailfrom=example.com; dkim=none",
    ],
)
def test_not_ours(value: bytes) -> None:
    assert not carries_authserv_id(value, OURS)


def test_our_id_with_trailing_dot_and_case() -> None:
    assert carries_authserv_id(b"mx.example.com; none", "MX.EXAMPLE.COM.")


def test_empty_id_matches_nothing() -> None:
    assert not carries_authserv_id(b'""; none', "")
    assert not carries_authserv_id(b"; none", "")


def test_non_ascii_id_compares_as_utf8() -> None:
    value = "mx.b\u00fccher.example; none".encode()
    assert carries_authserv_id(value, "MX.b\u00fccher.example")
    assert not carries_authserv_id(value, "mx.bucher.example")
