"""The relaxed body whitespace transform: the C accelerator (``mailseal.dkim._canon``)
against the pure-Python ``relax_py`` — hand vectors, every offset around the C
code's block and window edges, Hypothesis buffers, megabyte runs — and whole bodies
through ``BodyCanonicalizer`` with either transform (STYLE habit 1: whole, at every
split point, byte by byte). Then the header-side accelerators against their Python
references: ``relaxed_headers`` (relaxed header canonicalization of a field list),
``to_crlf`` and ``parse_fields`` (header parsing, message.py), and the signer's
one-pass header selection against ``signed_header_names`` + ``select_headers``."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailseal import message
from mailseal.dkim import canonical
from mailseal.dkim.canonical import BodyCanonicalizer, Canon, Relax, relax_py
from mailseal.dkim.headers import index_fields, select_headers
from mailseal.dkim.sign import _signed_headers, signed_header_names
from mailseal.message import HeaderField


def _built() -> Relax | None:
    try:
        from mailseal.dkim._canon import relax
    except ImportError:
        return None
    return relax


RELAX_C = _built()
needs_c = pytest.mark.skipif(
    RELAX_C is None,
    reason="the C accelerator mailseal.dkim._canon is not built (no C compiler when the "
           "package was installed; `pip install -e .` builds it): only relax_py is tested")


def relax_c(data: bytes) -> bytes:
    assert RELAX_C is not None
    return RELAX_C(data)


# --- the transform on one buffer --------------------------------------------------

HAND = [
    (b"", b""),
    (b"abc", b"abc"),
    (b" ", b" "),
    (b"  ", b" "),
    (b"\t", b" "),
    (b"a  b", b"a b"),
    (b"a\tb", b"a b"),
    (b"a \t \t b", b"a b"),
    (b"\t\ta", b" a"),
    (b"a \r\n", b"a\r\n"),  # §3.4.4 a: WSP at the end of a line goes
    (b"a \t \r\n", b"a\r\n"),
    (b" \r\n \r\n\t\r\n", b"\r\n\r\n\r\n"),
    (b"\r \r\n", b"\r\r\n"),  # a bare CR is content; the SP before CRLF still goes
    (b"a \r\r\n", b"a \r\r\n"),  # the SP is before a bare CR, not before CRLF
    (b"a \rb", b"a \rb"),
    (b"a  \rb", b"a \rb"),
    (b"a \n", b"a \n"),  # a bare LF ends no line
    (b"a\t\t\n", b"a \n"),
    (b"a\r \n", b"a\r \n"),
    (b"a \r", b"a \r"),  # the CRLF may come in the next chunk: the caller holds these
    (b"a  ", b"a "),
    (b"\x00  \xe9\t\x00", b"\x00 \xe9 \x00"),
    ("café  été \r\n".encode(), "café été\r\n".encode()),
    (b"\xff\t\xfe \r\n", b"\xff \xfe\r\n"),
]


@pytest.mark.parametrize(("data", "expected"), HAND)
def test_relax_py_hand_vectors(data: bytes, expected: bytes) -> None:
    assert relax_py(data) == expected


@needs_c
@pytest.mark.parametrize(("data", "expected"), HAND)
def test_relax_c_hand_vectors(data: bytes, expected: bytes) -> None:
    assert relax_c(data) == expected


@needs_c
def test_default_is_the_accelerator() -> None:
    assert canonical.relax is RELAX_C


PATTERNS = [b"  ", b"\t", b" \t", b"\t ", b" \r\n", b"\t\r\n", b" \r", b" \n", b"\r\n", b" ",
            b" " * 40 + b"\r\n", b" \t" * 150]


@needs_c
@pytest.mark.parametrize("pattern", PATTERNS, ids=repr)
def test_every_offset(pattern: bytes) -> None:
    """A pattern at every offset, ending the buffer or not: the C scan works in blocks
    of 32 bytes with 2 of lookahead and rewrites at least 256 bytes after a change."""
    for before in range(0, 300):
        for after in (b"", b"x", b"\r", b"\r\n", b"y" * 40, b"y " * 150):
            data = b"x" * before + pattern + after
            assert relax_c(data) == relax_py(data), (before, after)
            assert relax_c(data + pattern + data) == relax_py(data + pattern + data)


@needs_c
@pytest.mark.parametrize("data", [
    b" " * (1 << 20),
    b"\t" * (1 << 20),
    b" \t" * (1 << 19),
    b" " * (1 << 20) + b"\r\n",
    b"a" + b" " * (1 << 20) + b"b",
    (b"w" + b" " * 1000 + b"\r\n") * 1000,
    (b"one  two\tthree \r\n" * 60_000),
], ids=lambda d: f"{len(d)}B")
def test_long_runs(data: bytes) -> None:
    assert relax_c(data) == relax_py(data)


@needs_c
def test_unchanged_input_is_returned_itself() -> None:
    for data in (b"", b"a", b"a b\r\nc d\r\n" * 10_000, b"a \r", b"\r\n \n"):
        assert relax_c(data) is data


@needs_c
def test_bytes_subclass_gives_bytes() -> None:
    class Sub(bytes):
        pass

    for data in (Sub(b"a b"), Sub(b"a  b")):
        out = relax_c(data)
        assert type(out) is bytes
        assert out == relax_py(bytes(data))


@needs_c
@pytest.mark.parametrize("data", [bytearray(b"a  b"), memoryview(b"a"), "a  b", None])
def test_only_bytes(data: object) -> None:
    with pytest.raises(TypeError, match="must be bytes"):
        relax_c(data)  # type: ignore[arg-type]


ALPHABET = [b" ", b"\t", b"\r", b"\n", b"\r\n", b"a", "é".encode(), b"\x00", b"\xff"]
BUFFERS = st.lists(st.sampled_from(ALPHABET), max_size=700).map(b"".join)
RUNS = st.lists(st.tuples(st.sampled_from(ALPHABET), st.integers(1, 300)),
                max_size=30).map(lambda parts: b"".join(t * n for t, n in parts))


@needs_c
@settings(max_examples=500)
@given(BUFFERS)
def test_agrees_with_relax_py(data: bytes) -> None:
    assert relax_c(data) == relax_py(data)


@needs_c
@settings(max_examples=300)
@given(RUNS)
def test_agrees_with_relax_py_on_runs(data: bytes) -> None:
    assert relax_c(data) == relax_py(data)


# --- whole bodies through BodyCanonicalizer -----------------------------------------


def digest(relax: Relax, chunks: Iterable[bytes]) -> bytes:
    h = hashlib.sha256()
    c = BodyCanonicalizer(Canon.RELAXED, [h.update], relax=relax)
    for chunk in chunks:
        c.feed(chunk)
    c.finish()
    return h.digest()


def chunked(body: bytes, cuts: Sequence[int]) -> list[bytes]:
    points = sorted({min(c, len(body)) for c in cuts})
    return [body[a:b] for a, b in zip([0, *points], [*points, len(body)], strict=True)]


def splits(data: bytes) -> Iterable[tuple[int, list[bytes]]]:
    """The data whole, cut at every offset, and byte by byte."""
    yield -1, [data]
    for i in range(len(data) + 1):
        yield i, [data[:i], data[i:]]
    yield -2, [data[i : i + 1] for i in range(len(data))]


def body_vectors() -> list[Any]:
    folder = Path(__file__).parent / "vectors" / "body"
    cases = [pytest.param(json.loads(p.read_text("utf-8")), id=p.stem)
             for p in sorted(folder.glob("*.json"))]
    assert cases, f"no body vectors in {folder}"
    return cases


@pytest.mark.parametrize("case", body_vectors())
def test_body_vectors_with_the_fallback(case: dict[str, str]) -> None:
    body, expected = case["body"].encode(), case["relaxed"].encode()
    for where, chunks in splits(body):
        assert digest(relax_py, chunks) == hashlib.sha256(expected).digest(), where


@needs_c
@pytest.mark.parametrize("case", body_vectors())
def test_body_vectors_with_the_accelerator(case: dict[str, str]) -> None:
    body, expected = case["body"].encode(), case["relaxed"].encode()
    for where, chunks in splits(body):
        assert digest(relax_c, chunks) == hashlib.sha256(expected).digest(), where


@needs_c
@settings(max_examples=300)
@given(st.one_of(BUFFERS, RUNS), st.lists(st.integers(0, 700), max_size=8))
def test_same_digest_either_way(body: bytes, cuts: list[int]) -> None:
    chunks = chunked(body, cuts)
    assert digest(relax_c, chunks) == digest(relax_py, chunks) == digest(relax_py, [body])


@needs_c
def test_same_digest_for_a_large_body_in_engine_chunks() -> None:
    """Runs and CRLFs cut by 64 KiB chunk edges, as api.iter_chunks feeds them."""
    line = b"w \t x" + b" " * 997 + b"\r\n" + b"\t" * 300 + b"\r\n\r\n" + b"ok  \r\r\n"
    body = line * 4000 + b" \r\n" * 3
    chunks = [body[i : i + (1 << 16)] for i in range(0, len(body), 1 << 16)]
    assert digest(relax_c, chunks) == digest(relax_py, chunks) == digest(relax_py, [body])


# --- header fields: relaxed_headers, to_crlf, parse_fields ---------------------------


def _built_headers() -> Any:
    try:
        from mailseal.dkim import _canon
    except ImportError:
        return None
    return _canon


CANON_C = _built_headers()

# (name, value, the relaxed canonical form by RFC 6376 §3.4.2, worked out by hand)
VECTORS = [
    (b"Subject", b" hello  world ", b"subject:hello world"),
    (b" SubJect \t", b"\t a \r\n\t b  c\t\r\n", b"subject:a b c"),
    (b"X", b"", b"x:"),
    (b"X-Empty", b" \t ", b"x-empty:"),
    # bare CR, VT, FF are content; bare LF goes (CRLF first, in one pass)
    (b"A", b"\r\r\n\n x\x0b \x0c\r", b"a:\r x\x0b \x0c\r"),
    (b"Fold", b"a\r\nb", b"fold:ab"),  # unfolding joins without a space
    (b"Fold2", b"a \r\n b", b"fold2:a b"),
    (b"8bit", b" caf\xc3\xa9 \xff\t", b"8bit:caf\xc3\xa9 \xff"),
    (b"\tNAME-\xc4", b"v", b"name-\xc4:v"),  # only A-Z are lower-cased
    (b"", b":colon: ", b"::colon:"),
]
FIELDS = [(n, v) for n, v, _ in VECTORS]


def relaxed_reference(fields: Sequence[tuple[bytes, bytes]]) -> bytes:
    """Field by field with ``relaxed_header`` (itself checked by the hand vectors)."""
    return b"\r\n".join(canonical.relaxed_header(n, v) for n, v in fields)


def hand_worked(count: int) -> bytes:
    return b"\r\n".join(expected for _, _, expected in VECTORS[:count])


@pytest.mark.parametrize(("name", "value", "expected"), VECTORS)
def test_relaxed_header_hand_vectors(name: bytes, value: bytes, expected: bytes) -> None:
    assert canonical.relaxed_header(name, value) == expected


@pytest.mark.parametrize("count", range(len(FIELDS) + 1))
def test_relaxed_headers_py_hand_vectors(count: int) -> None:
    fields = [HeaderField(n, v) for n, v in FIELDS[:count]]
    assert canonical.relaxed_headers_py(fields) == hand_worked(count)


@needs_c
@pytest.mark.parametrize("count", range(len(FIELDS) + 1))
def test_relaxed_headers_c_hand_vectors(count: int) -> None:
    fields = [HeaderField(n, v) for n, v in FIELDS[:count]]
    assert CANON_C.relaxed_headers(fields) == hand_worked(count)
    assert CANON_C.relaxed_headers(tuple(fields)) == hand_worked(count)
    assert canonical.relaxed_headers is CANON_C.relaxed_headers


@needs_c
@pytest.mark.parametrize("bad", [[b"x"], [(b"a",)], [(b"a", "v")], [("a", b"v")], None, [[b"a", b"v"]]])
def test_relaxed_headers_c_rejects(bad: object) -> None:
    with pytest.raises(TypeError):
        CANON_C.relaxed_headers(bad)


HEADER_BYTES = st.lists(
    st.sampled_from([b" ", b"\t", b"\r", b"\n", b"\r\n", b"\r\n ", b"\x0b", b"\x0c", b":",
                     b"a", b"Z", b"\xc3", b"-"]) | st.binary(max_size=3),
    max_size=20).map(b"".join)


@needs_c
@settings(max_examples=500)
@given(st.lists(st.tuples(HEADER_BYTES, HEADER_BYTES), max_size=6))
def test_relaxed_headers_agree(fields: list[tuple[bytes, bytes]]) -> None:
    made = [HeaderField(n, v) for n, v in fields]
    assert CANON_C.relaxed_headers(made) == canonical.relaxed_headers_py(made) \
        == relaxed_reference(fields)


LINES = [
    b"", b"\n", b"\r\n", b"\r", b"a\nb", b"a\r\nb", b"\r\r\n", b"\n\n", b"\r\n\n",
    b"x\r", b"\nx", b"a\n\rb\n",
]


@pytest.mark.parametrize("data", LINES)
def test_to_crlf_hand_vectors(data: bytes) -> None:
    expected = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    assert message.to_crlf_py(data) == expected
    assert message.to_crlf(data) == expected
    assert message.to_crlf(bytearray(data)) == expected  # bytes-like: the Python path


@needs_c
@settings(max_examples=500)
@given(HEADER_BYTES)
def test_to_crlf_agrees(data: bytes) -> None:
    assert CANON_C.to_crlf(data) == message.to_crlf_py(data)
    if b"\n" not in data.replace(b"\r\n", b""):
        assert CANON_C.to_crlf(data) is data  # no bare LF: no copy


HEADS = [
    b"",
    b"From: a\r\nTo: b",
    b"From: a\r\nTo: b\r\n",  # a final CRLF ends the last field
    b"Subject: one\r\n two\r\n\tthree\r\nX: y",
    b"no colon\r\nA:1\r\n:no name\r\n \t:blank name\r\nB :2",
    b"A:1\r\n\r\nB:2",
    b"A:1\rB:2\nC:3",  # bare CR and LF do not end a field
    b"\r\n A: folded first line",
    b" Lead-Space : v\r\nTR\x0b: v\r\nX-\xc4Y:z",
]


@pytest.mark.parametrize("head", HEADS)
def test_parse_fields_hand_vectors(head: bytes) -> None:
    fields = message.parse_header_block(head)
    assert fields == message.parse_fields_py(head)
    assert message.parse_header_block(bytearray(head)) == fields
    assert all(type(f) is HeaderField and f.lname == f.name.strip().lower() for f in fields)


@needs_c
@pytest.mark.parametrize("head", HEADS)
def test_parse_fields_c_hand_vectors(head: bytes) -> None:
    fields = CANON_C.parse_fields(head, HeaderField)
    assert fields == message.parse_fields_py(head)
    assert all(type(f) is HeaderField for f in fields)


@needs_c
@pytest.mark.parametrize("cls", [bytes, int, object, "HeaderField"])
def test_parse_fields_c_rejects(cls: object) -> None:
    with pytest.raises(TypeError):
        CANON_C.parse_fields(b"A: b", cls)


@needs_c
@settings(max_examples=500)
@given(HEADER_BYTES)
def test_parse_fields_agree(head: bytes) -> None:
    fields = CANON_C.parse_fields(head, HeaderField)
    assert fields == message.parse_fields_py(head)
    assert all(type(f) is HeaderField for f in fields)


# --- the signer's header selection ----------------------------------------------------

SELECT_HEAD = (b"From: a\r\nSubject: x\r\nsubject : y\r\nTo: z\r\nX-A: 1\r\n"
               b"Date: d\r\nTO: w\r\n\xc4: odd\r\n")
NAMES = ["from", "subject", "to", "x-a", " subject", "\u0130", "cc", "date", "TO", "nope",
         "Subject "]


@settings(max_examples=300)
@given(st.none() | st.lists(st.sampled_from(NAMES), max_size=6).map(tuple),
       st.lists(st.sampled_from(NAMES), max_size=3).map(tuple))
def test_signed_headers_in_one_pass(wanted: tuple[str, ...] | None,
                                    oversign: tuple[str, ...]) -> None:
    fields = message.parse_header_block(SELECT_HEAD)
    index = index_fields(fields)
    names = signed_header_names(fields, wanted, oversign, index)
    assert _signed_headers(index, wanted, oversign) == (
        names, select_headers(fields, names, index))


# --- the proxy's dot-line scan ----------------------------------------------------


@needs_c
@pytest.mark.parametrize("data", [b"", b".", b"\r\n", b"\r\n.", b"..\r\n.", b"\n.\r\n.",
                                  b"a.b.\r\r\n.\r\n", b"\r\n\r\n..", b"x" * 100 + b"\r\n."])
def test_find_dot_line_matches_bytes_find_at_every_start(data: bytes) -> None:
    from mailseal.dkim._canon import find_dot_line
    from mailseal.frontends.smtpproxy.dotstuff import find_dot_line_py

    for start in range(len(data) + 3):
        assert find_dot_line(data, start) == find_dot_line_py(data, start), (data, start)


@needs_c
@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300).map(lambda b: b.replace(b"a", b"\r").replace(b"b", b"\n")
                                   .replace(b"c", b".")), st.integers(0, 310))
def test_find_dot_line_any_buffer(data: bytes, start: int) -> None:
    from mailseal.dkim._canon import find_dot_line
    from mailseal.frontends.smtpproxy.dotstuff import find_dot_line_py

    assert find_dot_line(data, start) == find_dot_line_py(data, start)


@needs_c
def test_find_dot_line_refuses_what_bytes_find_would_read_otherwise() -> None:
    from mailseal.dkim._canon import find_dot_line

    with pytest.raises(ValueError):
        find_dot_line(b"\r\n.", -1)
    with pytest.raises(TypeError):
        find_dot_line(bytearray(b"\r\n."), 0)  # type: ignore[arg-type]
