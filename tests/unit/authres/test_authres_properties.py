"""Property tests: round trips over generated values, and a parser that never
fails with anything but AuthResParseError (STYLE.md habit 11)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mailseal.authres import (
    DEFAULT_FOLD,
    AuthenticationResults,
    AuthResParseError,
    MethodResult,
    Property,
    carries_authserv_id,
    format_field,
    format_value,
    parse_field,
    parse_value,
)
from mailseal.authres.model import MAX_VERSION
from mailseal.results import Result

SETTINGS = settings(max_examples=300, deadline=None)
FUZZ = settings(max_examples=2000, deadline=None)

keywords = st.from_regex(r"[A-Za-z0-9-]{0,8}[A-Za-z0-9]", fullmatch=True)
text_chars = st.one_of(
    st.characters(min_codepoint=0x20, max_codepoint=0x7E),
    st.sampled_from('\t()\\";=@./ \u00e9\u2603'),
)


def texts(min_size: int = 0, max_size: int = 20) -> st.SearchStrategy[str]:
    return st.text(alphabet=text_chars, min_size=min_size, max_size=max_size)


pvalues = st.one_of(
    texts(),
    st.from_regex(r"[a-z0-9.+=/]{0,6}@[a-z]{1,5}(\.[a-z]{1,3}){1,2}", fullmatch=True),
    st.from_regex(r"[a-zA-Z0-9.:_-]{1,12}", fullmatch=True),
)
versions = st.none() | st.integers(min_value=0, max_value=MAX_VERSION)
properties = st.builds(
    Property,
    ptype=st.sampled_from(["smtp", "header", "body", "policy"]) | keywords,
    name=st.sampled_from(["mailfrom", "d", "i", "b", "from"]) | keywords,
    value=pvalues,
)
method_results = st.builds(
    MethodResult,
    method=st.sampled_from(["dkim", "spf", "dmarc", "arc", "none", "reason"]) | keywords,
    result=st.sampled_from(list(Result)) | keywords,
    version=versions,
    reason=st.none() | texts(),
    properties=st.lists(properties, max_size=4).map(tuple),
    comment=st.none() | texts(),
)
authres = st.builds(
    AuthenticationResults,
    authserv_id=texts(min_size=1),
    version=versions,
    results=st.lists(method_results, max_size=4).map(tuple),
)


@SETTINGS
@given(authres)
def test_value_round_trip(ar: AuthenticationResults) -> None:
    assert parse_value(format_value(ar)) == ar
    assert parse_value(format_value(ar).encode()) == ar


@SETTINGS
@given(authres, st.none() | st.integers(min_value=1, max_value=200))
def test_field_round_trip(ar: AuthenticationResults, fold: int | None) -> None:
    field = format_field(ar, fold=fold)
    assert field.endswith(b"\r\n")
    assert parse_field(field) == ar


@SETTINGS
@given(authres)
def test_lines_fit_when_every_unit_fits(ar: AuthenticationResults) -> None:
    # Generated pieces are short (text <= 20 characters, escaped <= 42 octets
    # plus keywords), so every unit fits a continuation line.
    for line in format_field(ar)[:-2].split(b"\r\n"):
        assert len(line) <= DEFAULT_FOLD


@SETTINGS
@given(authres)
def test_formatted_value_is_ours(ar: AuthenticationResults) -> None:
    assert carries_authserv_id(format_value(ar).encode(), ar.authserv_id)
    assert carries_authserv_id(format_field(ar), ar.authserv_id)


def _parse_or_none(value: str | bytes) -> AuthenticationResults | None:
    try:
        return parse_value(value)
    except AuthResParseError:
        return None


def _check_parser(value: str | bytes) -> None:
    parsed = _parse_or_none(value)
    if parsed is not None:  # whatever we read, we can write and read back
        assert parse_value(format_value(parsed)) == parsed
    carries_authserv_id(value if isinstance(value, bytes) else value.encode(), "mx.example.com")


@FUZZ
@given(st.text(alphabet='()"\\;=.@/ \r\n\ta', max_size=40))
def test_tiny_alphabet_only_parse_errors(value: str) -> None:
    _check_parser(value)


@FUZZ
@given(st.text(max_size=60))
def test_any_text_only_parse_errors(value: str) -> None:
    _check_parser(value)


@FUZZ
@given(st.binary(max_size=60))
def test_any_bytes_only_parse_errors(value: bytes) -> None:
    _check_parser(value)
    try:
        from_field = parse_field(b"Authentication-Results:" + value)
    except AuthResParseError:
        return
    assert from_field == parse_value(value)


@FUZZ
@given(
    st.lists(
        st.sampled_from(
            [
                "mx.example.com",
                " ",
                ";",
                "=",
                ".",
                "/",
                "1",
                "(",
                ")",
                '"',
                "\\",
                "\r\n ",
                "dkim",
                "pass",
                "none",
                "reason",
                "header",
                "d",
                "@",
                "example.com",
                "\n",
            ]
        ),
        max_size=30,
    ).map("".join)
)
def test_grammar_shaped_noise_only_parse_errors(value: str) -> None:
    _check_parser(value)
