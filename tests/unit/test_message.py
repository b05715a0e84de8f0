"""mailseal.message: raw header fields and body, exactly as received."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailseal.message import (
    CrlfStream,
    HeaderField,
    MessageError,
    find_fields,
    iter_chunks,
    parse_header_block,
    split_message,
    to_crlf,
    unfold,
)

# --- split_message -----------------------------------------------------------


def test_split_crlf_message() -> None:
    fields, body = split_message(b"From: a@example.com\r\nSubject: hi\r\n\r\nline 1\r\nline 2\r\n")
    assert fields == [HeaderField(b"From", b" a@example.com"), HeaderField(b"Subject", b" hi")]
    assert body == b"line 1\r\nline 2\r\n"


def test_split_lf_only_input_becomes_crlf() -> None:
    fields, body = split_message(b"From: a@example.com\nSubject: hi\n there\n\nline 1\nline 2\n")
    assert fields == [HeaderField(b"From", b" a@example.com"),
                      HeaderField(b"Subject", b" hi\r\n there")]
    assert body == b"line 1\r\nline 2\r\n"


def test_split_mixed_line_endings() -> None:
    fields, body = split_message(b"From: a\r\nTo: b\n\r\nx\ny\r\n")
    assert [f.raw for f in fields] == [b"From: a", b"To: b"]
    assert body == b"x\r\ny\r\n"


def test_split_keeps_bare_cr() -> None:
    _, body = split_message(b"From: a\r\n\r\nx\ry\r\n")
    assert body == b"x\ry\r\n"


def test_split_keeps_folding_and_exact_bytes() -> None:
    raw = b"Subject:  two\r\n\t words \r\n  and more  \r\nfrom :x\r\n\r\n"
    fields, body = split_message(raw)
    assert fields == [HeaderField(b"Subject", b"  two\r\n\t words \r\n  and more  "),
                      HeaderField(b"from ", b"x")]
    assert fields[1].lname == b"from"
    assert body == b""


def test_split_no_body_separator_means_all_header() -> None:
    assert split_message(b"From: a\r\nTo: b\r\n") == (
        [HeaderField(b"From", b" a"), HeaderField(b"To", b" b")], b"")
    assert split_message(b"From: a\r\nTo: b") == (
        [HeaderField(b"From", b" a"), HeaderField(b"To", b" b")], b"")


def test_split_header_only_with_separator_has_empty_body() -> None:
    assert split_message(b"From: a\r\n\r\n") == ([HeaderField(b"From", b" a")], b"")


def test_split_empty_message() -> None:
    assert split_message(b"") == ([], b"")


def test_split_message_starting_with_empty_line_is_all_body() -> None:
    assert split_message(b"\r\nFrom: a\r\n") == ([], b"From: a\r\n")
    assert split_message(b"\nFrom: a\n") == ([], b"From: a\r\n")


def test_split_body_keeps_trailing_empty_lines() -> None:
    _, body = split_message(b"From: a\r\n\r\n\r\n\r\nx\r\n\r\n\r\n")
    assert body == b"\r\n\r\nx\r\n\r\n\r\n"


def test_split_drops_lines_without_colon() -> None:
    fields, _ = split_message(b"From: a\r\nnot a field\r\n: no name\r\nTo: b\r\n\r\n")
    assert [f.raw for f in fields] == [b"From: a", b"To: b"]


def test_split_leading_continuation_line_is_not_lost_silently() -> None:
    # A first line that starts with WSP has nothing to continue; it is read as a line
    # of its own (and here it has a colon, so it is a field with a padded name).
    fields, _ = split_message(b" X: 1\r\nFrom: a\r\n\r\n")
    assert [f.lname for f in fields] == [b"x", b"from"]


def test_split_field_limit() -> None:
    head = b"".join(b"X-%d: v\r\n" % i for i in range(10))
    fields, _ = split_message(head + b"\r\nbody", max_fields=10)
    assert len(fields) == 10
    with pytest.raises(MessageError, match="more than 9 header fields"):
        split_message(head + b"\r\nbody", max_fields=9)


def test_split_field_limit_default_is_1000() -> None:
    head = b"".join(b"X-%d: v\r\n" % i for i in range(1000))
    assert len(split_message(head + b"\r\n")[0]) == 1000
    with pytest.raises(MessageError):
        split_message(head + b"X-last: v\r\n\r\n")


def test_split_header_bytes_limit() -> None:
    head = b"X: " + b"a" * 97  # 100 bytes, the separator not counted
    assert len(split_message(head + b"\r\n\r\nbody", max_header_bytes=100)[0]) == 1
    with pytest.raises(MessageError, match="limit 99"):
        split_message(head + b"\r\n\r\nbody", max_header_bytes=99)
    with pytest.raises(MessageError):  # no body: the whole input is header
        split_message(head, max_header_bytes=99)


def test_split_header_bytes_limit_does_not_count_body() -> None:
    fields, body = split_message(b"From: a\r\n\r\n" + b"x" * 1000, max_header_bytes=10)
    assert len(fields) == 1 and len(body) == 1000


# --- the pieces --------------------------------------------------------------


def test_header_field_properties() -> None:
    f = HeaderField(b" SubJect \t", b"  hello\r\n\tworld  ")
    assert f.raw == b" SubJect \t:  hello\r\n\tworld  "
    assert f.lname == b"subject"
    assert f.text() == "hello\tworld"


def test_header_field_text_keeps_undecodable_bytes() -> None:
    assert HeaderField(b"X", b" caf\xe9").text() == "caf\udce9"


def test_unfold() -> None:
    assert unfold(b"a\r\n b\n\tc") == b"a b\tc"


@pytest.mark.parametrize(("data", "expected"), [
    (b"", b""),
    (b"abc", b"abc"),
    (b"a\nb\n", b"a\r\nb\r\n"),
    (b"a\r\nb\r\n", b"a\r\nb\r\n"),
    (b"a\r\nb\n", b"a\r\nb\r\n"),
    (b"\n\n", b"\r\n\r\n"),
    (b"a\rb\n", b"a\rb\r\n"),
    (b"\r\r\n\n", b"\r\r\n\r\n"),
])
def test_to_crlf(data: bytes, expected: bytes) -> None:
    assert to_crlf(data) == expected


@given(st.lists(st.sampled_from([b"\r", b"\n", b"\r\n", b"a", b"\r\r", b"\n\n"]),
                max_size=40).map(b"".join))
def test_to_crlf_matches_reference(data: bytes) -> None:
    """Every LF not preceded by CR becomes CRLF; nothing else changes."""
    assert to_crlf(data) == re.sub(rb"(?<!\r)\n", b"\r\n", data)


def stream_crlf(chunks: list[bytes]) -> bytes:
    s = CrlfStream()
    return b"".join(s.feed(c) for c in chunks)


@pytest.mark.parametrize("data", [
    b"a\nb\r\nc\rd\n\n", b"\r\n\r\n", b"\n", b"\r", b"x\r\r\n\n\r", b"a\r\nb\n\r\n\r",
])
def test_crlf_stream_any_split_equals_whole(data: bytes) -> None:
    whole = to_crlf(data)
    for i in range(len(data) + 1):
        assert stream_crlf([data[:i], data[i:]]) == whole, i
    assert stream_crlf([data[i : i + 1] for i in range(len(data))]) == whole


@given(st.lists(st.sampled_from([b"\r", b"\n", b"\r\n", b"a", b" "]), max_size=30),
       st.lists(st.integers(0, 30), max_size=5))
def test_crlf_stream_property(parts: list[bytes], cuts: list[int]) -> None:
    data = b"".join(parts)
    points = sorted({min(c, len(data)) for c in cuts})
    chunks = [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]
    assert stream_crlf(chunks) == to_crlf(data)


def test_parse_header_block_empty() -> None:
    assert parse_header_block(b"") == []


def reference_fields(head: bytes) -> list[HeaderField]:
    """RFC 5322 §2.2.3 read line by line: a line starting with WSP continues the
    field above it; a field is kept if it has a colon after a non-blank name."""
    groups: list[list[bytes]] = []
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t") and groups:
            groups[-1].append(line)
        else:
            groups.append([line])
    fields = []
    for group in groups:
        name, sep, value = b"\r\n".join(group).partition(b":")
        if sep and name.strip():
            fields.append(HeaderField(name, value))
    return fields


@given(st.lists(st.sampled_from([b"\r\n", b" ", b"\t", b":", b"a", b"B", b"\r", b"\n"]),
                max_size=50).map(b"".join))
def test_parse_header_block_matches_reference(head: bytes) -> None:
    assert parse_header_block(head) == reference_fields(head)


def test_header_field_is_immutable_and_hashable() -> None:
    f = HeaderField(b"From", b" a")
    with pytest.raises(AttributeError):
        f.name = b"To"  # type: ignore[misc]
    assert {f: 1}[HeaderField(b"From", b" a")] == 1
    assert f != HeaderField(b"from", b" a") and f.lname == HeaderField(b"from", b" a").lname


def test_find_fields_is_case_insensitive() -> None:
    fields = [HeaderField(b"FROM", b" a"), HeaderField(b"To", b" b"), HeaderField(b"from", b" c")]
    assert find_fields(fields, b"From") == [fields[0], fields[2]]


def test_iter_chunks() -> None:
    assert list(iter_chunks(b"abcdefg", 3)) == [b"abc", b"def", b"g"]
    assert list(iter_chunks(b"", 3)) == []


@given(st.binary(max_size=300))
def test_split_message_never_raises_on_bytes(data: bytes) -> None:
    fields, body = split_message(data)
    assert all(f.name.strip() and b"\r\n\r\n" not in f.value for f in fields)
    assert b"\n" not in body.replace(b"\r\n", b"")


@given(st.lists(st.sampled_from([b"\r", b"\n", b"\t", b":", b";", b"=", b" ", b"a", b"b"]),
                max_size=60))
def test_split_message_tiny_alphabet(parts: list[bytes]) -> None:
    fields, _ = split_message(b"".join(parts))
    for f in fields:
        assert b":" not in f.name
