"""mailseal.tagvalue: tag=value lists (RFC 6376 §3.2)."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailseal.tagvalue import TagListError, parse_tag_list, strip_whitespace


@pytest.mark.parametrize(("text", "expected"), [
    ("v=1; a=rsa-sha256", {"v": "1", "a": "rsa-sha256"}),
    # §3.2: "Whitespace ... is ignored" around names, "=" and values (FWS incl. folding).
    (" v = 1 ;\r\n\ta =\trsa-sha256 ", {"v": "1", "a": "rsa-sha256"}),
    ("v=1;", {"v": "1"}),  # the optional trailing ";"
    ("v=1; ", {"v": "1"}),
    ("v=1;\r\n ", {"v": "1"}),
    ("", {}),
    (" \t", {}),
    ("n=", {"n": ""}),  # an empty value is allowed (tag-value may be empty)
    ("n= ;p=", {"n": "", "p": ""}),
    # whitespace inside a value (between tvals) is kept as written
    ("h=from : to\r\n\t:subject", {"h": "from : to\r\n\t:subject"}),
    ("b=abc\r\n def", {"b": "abc\r\n def"}),
    # names are case-sensitive: these are two different tags
    ("a=1; A=2", {"a": "1", "A": "2"}),
    # unknown tags are kept (callers ignore them); underscores and digits in names
    ("x_y9=z; v=1", {"x_y9": "z", "v": "1"}),
    # "=" is a VALCHAR: only the first one separates name and value
    ("bh=abc==; b=x=", {"bh": "abc==", "b": "x="}),
    # an empty tag-spec between two ";" is tolerated, as deployed verifiers do
    ("a=1;;b=2", {"a": "1", "b": "2"}),
])
def test_parse(text: str, expected: dict[str, str]) -> None:
    assert parse_tag_list(text) == expected
    assert list(parse_tag_list(text)) == list(expected)  # insertion order kept
    assert parse_tag_list(text.encode("ascii")) == expected


@pytest.mark.parametrize(("text", "match"), [
    ("a=1; a=2", "duplicate tag 'a'"),
    ("a=1; b=2; a=1", "duplicate"),
    ("v", "without '='"),
    ("v=1; junk", "without '='"),
    ("=1", "invalid tag name"),
    ("1a=1", "invalid tag name"),
    ("_a=1", "invalid tag name"),
    ("a-b=1", "invalid tag name"),
    ("a b=1", "invalid tag name"),
    ("é=1", "invalid tag name"),
    ("a=x\x00y", "invalid character"),
    ("a=x\x7fy", "invalid character"),
    ("a=caf\u00e9", "invalid character"),
])
def test_parse_rejects(text: str, match: str) -> None:
    with pytest.raises(TagListError, match=match):
        parse_tag_list(text)


def test_non_ascii_bytes_rejected_unless_8bit_allowed() -> None:
    with pytest.raises(TagListError):
        parse_tag_list("n=café".encode())
    assert parse_tag_list("n=café".encode(), allow_8bit=True) == {"n": "café"}
    assert parse_tag_list(b"n=caf\xe9", allow_8bit=True) == {"n": "caf\udce9"}


def test_tag_list_error_is_a_value_error() -> None:
    assert issubclass(TagListError, ValueError)


def test_strip_whitespace() -> None:
    assert strip_whitespace(" ab\r\n\tc d ") == "abcd"


TINY = st.text(alphabet=st.sampled_from(list("\r\n\t:;= ab")), max_size=80)


@given(TINY)
def test_parse_tiny_alphabet_raises_only_tag_list_error(text: str) -> None:
    """STYLE habit 11: arbitrary text from \\r \\n \\t : ; = SP a b."""
    try:
        tags = parse_tag_list(text)
    except TagListError:
        return
    for name, value in tags.items():
        assert name and name == name.strip(" \t\r\n")
        assert value == value.strip(" \t\r\n") and ";" not in value


@given(st.binary(max_size=120), st.booleans())
def test_parse_bytes_raises_only_tag_list_error(data: bytes, allow_8bit: bool) -> None:
    with contextlib.suppress(TagListError):
        parse_tag_list(data, allow_8bit=allow_8bit)


NAMES = st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,5}", fullmatch=True)
VALUES = st.from_regex(r"([!-:<-~]+([ \t]+[!-:<-~]+)*)?", fullmatch=True)


@given(st.dictionaries(NAMES, VALUES, max_size=6), st.sampled_from(["", " ", "\r\n\t"]),
       st.booleans())
def test_layout_round_trip(tags: dict[str, str], ws: str, trailing: bool) -> None:
    text = ";".join(f"{ws}{k}{ws}={ws}{v}{ws}" for k, v in tags.items()) + (";" if trailing else "")
    assert parse_tag_list(text) == tags
