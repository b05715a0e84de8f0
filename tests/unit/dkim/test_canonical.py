"""DKIM canonicalization (RFC 6376 §3.4): vectors from files, fed whole, split at every
offset and byte by byte (STYLE habit 1); properties against a reference written
from the RFC text."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailseal.dkim.bodyhash import body_hash
from mailseal.dkim.canonical import (
    BodyCanonicalizer,
    Canon,
    HashSink,
    canon_header,
    parse_canonicalization,
    relaxed_header,
)
from mailseal.message import HeaderField, split_message

VECTORS = Path(__file__).parent / "vectors"
RFC_EXAMPLES = Path("/work/shared/conformance/rfc-examples")


def load(kind: str) -> list[Any]:
    cases = []
    for path in sorted((VECTORS / kind).glob("*.json")):
        data = {k: v.encode("utf-8") if k != "source" else v
                for k, v in json.loads(path.read_text("utf-8")).items()}
        cases.append(pytest.param(data, id=path.stem))
    assert cases, f"no {kind} vectors in {VECTORS}"
    return cases


BODY = load("body")
HEADER = load("header")


def canonical(canon: Canon, chunks: Iterable[bytes]) -> bytes:
    out: list[bytes] = []
    c = BodyCanonicalizer(canon, [out.append])
    for chunk in chunks:
        c.feed(chunk)
    c.finish()
    return b"".join(out)


def splits(data: bytes) -> Iterable[tuple[int, list[bytes]]]:
    """The data whole, cut at every offset, and byte by byte."""
    yield -1, [data]
    for i in range(len(data) + 1):
        yield i, [data[:i], data[i:]]
    yield -2, [data[i : i + 1] for i in range(len(data))]


# --- vectors -----------------------------------------------------------------


@pytest.mark.parametrize("canon", list(Canon))
@pytest.mark.parametrize("case", BODY)
def test_body_vector(case: dict[str, bytes], canon: Canon) -> None:
    expected = case[canon.value]
    for where, chunks in splits(case["body"]):
        assert canonical(canon, chunks) == expected, f"split {where}"


@pytest.mark.parametrize("canon", list(Canon))
@pytest.mark.parametrize("case", BODY)
def test_body_vector_hash_and_length_limit(case: dict[str, bytes], canon: Canon) -> None:
    """The l= tag (RFC 6376 §3.5): only the first l canonical bytes are hashed, the
    length seen counts all of them."""
    expected = case[canon.value]
    n = len(expected)
    for limit in sorted({None, 0, 1, max(n - 1, 0), n, n + 5}, key=lambda x: -1 if x is None else x):
        covered = expected if limit is None else expected[:limit]
        for where, chunks in splits(case["body"]):
            sink = HashSink(hashlib.sha256(), limit)
            c = BodyCanonicalizer(canon, [sink])
            for chunk in chunks:
                c.feed(chunk)
            c.finish()
            assert sink.digest() == hashlib.sha256(covered).digest(), (limit, where)
            assert (sink.length, sink.hashed) == (n, len(covered)), (limit, where)


@pytest.mark.parametrize("case", HEADER)
def test_header_vector(case: dict[str, bytes]) -> None:
    field = HeaderField(case["name"], case["value"])
    assert canon_header(field, Canon.SIMPLE) == case["simple"]
    assert canon_header(field, Canon.RELAXED) == case["relaxed"]
    assert relaxed_header(case["name"], case["value"]) + b"\r\n" == case["relaxed"]


def test_rfc6376_3_4_5_whole_message() -> None:
    """RFC 6376 §3.4.5, the example message as typed from the RFC:

        A: <SP> X <CRLF>
        B <SP> : <SP> Y <HTAB><CRLF>
                        <HTAB> Z <SP><SP><CRLF>
        <CRLF>
        <SP> C <SP><CRLF>
        D <SP><HTAB><SP> E <CRLF>
        <CRLF>
        <CRLF>
    """
    message = b"A: X\r\nB : Y\t\r\n\tZ  \r\n\r\n C \r\nD \t E\r\n\r\n\r\n"
    fields, body = split_message(message)
    assert b"".join(canon_header(f, Canon.RELAXED) for f in fields) == b"a:X\r\nb:Y Z\r\n"
    assert canonical(Canon.RELAXED, [body]) == b" C\r\nD E\r\n"
    assert b"".join(canon_header(f, Canon.SIMPLE) for f in fields) == (
        b"A: X\r\nB : Y\t\r\n\tZ  \r\n")
    assert canonical(Canon.SIMPLE, [body]) == b" C \r\nD \t E\r\n"


A1_HASHES = {Canon.SIMPLE: "4bLNXImK9drULnmePzZNEBleUanJCX5PIsDIFoH4KTQ=",
             Canon.RELAXED: "2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8="}


@pytest.mark.parametrize("canon", list(Canon))
def test_rfc6376_a1_body_hash(canon: Canon) -> None:
    path = RFC_EXAMPLES / "rfc6376-A.1-unsigned.eml"
    if not path.exists():
        pytest.skip(f"{path} not present")
    _, body = split_message(path.read_bytes())
    for where, chunks in splits(body):
        out = canonical(canon, chunks)
        assert base64.b64encode(hashlib.sha256(out).digest()).decode() == A1_HASHES[canon], where
    assert base64.b64encode(body_hash(body, canon)).decode() == A1_HASHES[canon]


@pytest.mark.parametrize(("canon", "hash_name", "expected"), [
    # §3.4.3: "a completely empty or missing body is canonicalized as a single CRLF"
    (Canon.SIMPLE, "sha256", "frcCV1k9oG9oKj3dpUqdJg1PxRT2RSN/XKdLCPjaYaY="),
    (Canon.SIMPLE, "sha1", "uoq1oCgLlTqpdDX/iUbLy7J1Wic="),
    # §3.4.4 and erratum 1384: relaxed, the empty body hashes as the null input
    (Canon.RELAXED, "sha256", "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="),
    (Canon.RELAXED, "sha1", "2jmj7l5rSw0yVb/vlWAYkK/YBwk="),
])
@pytest.mark.parametrize("body", [b"", b"\r\n", b"\r\n\r\n\r\n"])
def test_empty_body_hashes(canon: Canon, hash_name: str, expected: str, body: bytes) -> None:
    assert base64.b64encode(body_hash(body, canon, hash_name)).decode() == expected


@pytest.mark.parametrize(("value", "expected"), [
    ("simple/simple", (Canon.SIMPLE, Canon.SIMPLE)),
    ("relaxed/relaxed", (Canon.RELAXED, Canon.RELAXED)),
    ("relaxed/simple", (Canon.RELAXED, Canon.SIMPLE)),
    ("simple/relaxed", (Canon.SIMPLE, Canon.RELAXED)),
    ("relaxed", (Canon.RELAXED, Canon.SIMPLE)),  # §3.5: body part missing = simple
    ("simple", (Canon.SIMPLE, Canon.SIMPLE)),
    (" Relaxed/SIMPLE ", (Canon.RELAXED, Canon.SIMPLE)),
])
def test_parse_canonicalization(value: str, expected: tuple[Canon, Canon]) -> None:
    assert parse_canonicalization(value) == expected


@pytest.mark.parametrize("value", ["", "nofws", "relaxed/nofws", "/relaxed", "relaxed/relaxed/x"])
def test_parse_canonicalization_rejects(value: str) -> None:
    with pytest.raises(ValueError):
        parse_canonicalization(value)


# --- the streaming object ----------------------------------------------------


def test_every_sink_gets_the_same_bytes() -> None:
    a: list[bytes] = []
    b: list[bytes] = []
    c = BodyCanonicalizer(Canon.RELAXED, [a.append, b.append])
    c.feed(b"x  y \r\n\r\n")
    c.finish()
    assert b"".join(a) == b"".join(b) == b"x y\r\n"


def test_finish_twice_writes_once() -> None:
    out: list[bytes] = []
    c = BodyCanonicalizer(Canon.SIMPLE, [out.append])
    c.feed(b"x")
    c.finish()
    c.finish()
    assert b"".join(out) == b"x\r\n"


@pytest.mark.parametrize(("canon", "expected"), [(Canon.SIMPLE, b"a \r\n"),
                                                  (Canon.RELAXED, b"a\r\n")])
def test_empty_chunks_change_nothing(canon: Canon, expected: bytes) -> None:
    assert canonical(canon, [b"", b"a \r", b"", b"\n", b"", b"\r\n", b""]) == expected


def test_held_empty_lines_are_written_when_content_follows() -> None:
    for canon in Canon:
        assert canonical(canon, [b"a\r\n", b"\r\n" * 1000, b"b"]) == b"a\r\n" + b"\r\n" * 1000 + b"b\r\n"


def test_million_empty_lines_stream_without_being_held() -> None:
    written: list[int] = []
    c = BodyCanonicalizer(Canon.SIMPLE, [lambda data: written.append(len(data))])
    for _ in range(100):
        c.feed(b"\r\n" * 10_000)
    assert written == []  # all held as a count
    c.feed(b"x")
    c.finish()
    assert sum(written) == 2_000_000 + 3
    assert max(written) <= 1 << 17  # written in pieces, not one 2 MB string


# --- properties --------------------------------------------------------------


def reference(canon: Canon, body: bytes) -> bytes:
    """RFC 6376 §3.4.3 and §3.4.4, written as regular expressions on the whole body.

    A line ends at CRLF; a bare CR or LF is an ordinary character.
    simple: convert "*CRLF" at the end of the body to a single CRLF.
    relaxed: reduce every WSP run to one SP; ignore WSP at the end of lines (the
    last, unterminated line too); ignore empty lines at the end; a non-empty body
    not ending in CRLF gets one (an empty body stays empty: erratum 1384).
    """
    if canon is Canon.SIMPLE:
        return re.sub(rb"(?:\r\n)*\Z", b"", body) + b"\r\n"
    body = re.sub(rb"[ \t]+", b" ", body)
    body = re.sub(rb" (?=\r\n)| \Z", b"", body)
    body = re.sub(rb"(?:\r\n)*\Z", b"", body)
    return body + b"\r\n" if body else b""


ALPHABET = [b" ", b"\t", b"\r", b"\n", b"\r\n", b"a", "é".encode()]
BODIES = st.lists(st.sampled_from(ALPHABET), max_size=40).map(b"".join)


def chunked(body: bytes, cuts: Sequence[int]) -> list[bytes]:
    points = sorted({min(c, len(body)) for c in cuts})
    return [body[a:b] for a, b in zip([0, *points], [*points, len(body)], strict=True)]


@settings(max_examples=300)
@given(BODIES, st.lists(st.integers(0, 40), max_size=6), st.sampled_from(list(Canon)))
def test_agrees_with_reference(body: bytes, cuts: list[int], canon: Canon) -> None:
    assert canonical(canon, chunked(body, cuts)) == reference(canon, body)


@given(BODIES, st.lists(st.integers(0, 40), max_size=8), st.sampled_from(list(Canon)),
       st.sampled_from([None, 0, 3, 10]))
def test_any_chunking_gives_the_same_digest(body: bytes, cuts: list[int], canon: Canon,
                                            limit: int | None) -> None:
    whole = HashSink(hashlib.sha256(), limit)
    parts = HashSink(hashlib.sha256(), limit)
    for sink, chunks in ((whole, [body]), (parts, chunked(body, cuts))):
        c = BodyCanonicalizer(canon, [sink])
        for chunk in chunks:
            c.feed(chunk)
        c.finish()
    assert (whole.digest(), whole.length, whole.hashed) == (parts.digest(), parts.length,
                                                             parts.hashed)


@given(BODIES, st.lists(st.integers(0, 40), max_size=4))
def test_relaxed_is_idempotent(body: bytes, cuts: list[int]) -> None:
    once = canonical(Canon.RELAXED, chunked(body, cuts))
    assert canonical(Canon.RELAXED, [once]) == once


@given(BODIES)
def test_simple_is_idempotent(body: bytes) -> None:
    once = canonical(Canon.SIMPLE, [body])
    assert canonical(Canon.SIMPLE, [once]) == once


HEADER_VALUES = st.lists(st.sampled_from([b" ", b"\t", b"\r\n ", b"\r\n\t", b"a", b"B", b":",
                                          "é".encode()]), max_size=20).map(b"".join)


@given(st.sampled_from([b"Subject", b"X-A ", b"FROM\t"]), HEADER_VALUES)
def test_relaxed_header_matches_reference(name: bytes, value: bytes) -> None:
    """§3.4.2 as regular expressions: unfold, WSP runs → SP, no WSP at the end or
    around the colon, name lower-cased."""
    v = re.sub(rb"\r\n(?=[ \t])", b"", value)
    v = re.sub(rb"[ \t]+", b" ", v).strip(b" ")
    expected = name.rstrip(b" \t").lower() + b":" + v + b"\r\n"
    got = canon_header(HeaderField(name, value), Canon.RELAXED)
    assert got == expected
    assert canon_header(HeaderField(name.strip().lower(), got[len(name.strip()) + 1 : -2]),
                        Canon.RELAXED) == got  # idempotent
