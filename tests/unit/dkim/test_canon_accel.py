"""The relaxed body whitespace transform: the C accelerator (``mailseal.dkim._canon``)
against the pure-Python ``relax_py`` — hand vectors, every offset around the C
code's block and window edges, Hypothesis buffers, megabyte runs — and whole bodies
through ``BodyCanonicalizer`` with either transform (STYLE habit 1: whole, at every
split point, byte by byte)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailseal.dkim import canonical
from mailseal.dkim.canonical import BodyCanonicalizer, Canon, Relax, relax_py


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
