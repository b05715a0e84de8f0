"""The DATA stream both ways (RFC 5321 §4.5.2): ``Unstuffer`` against a line-by-line
reference, fed whole, split at every offset and one byte at a time; ``Stuffer`` output
read back gives the content (line ends made CRLF), and never holds the end mark."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailseal.frontends.smtpproxy.dotstuff import Stuffer, Unstuffer, stuff
from mailseal.message import to_crlf


def reference_unstuff(wire: bytes) -> tuple[bytes, bytes] | None:
    """(content, rest) the slow way: split into CRLF lines; None when no end mark."""
    out = []
    pos = 0
    while True:
        end = wire.find(b"\r\n", pos)
        if end < 0:
            return None
        line = wire[pos:end]
        pos = end + 2
        if line == b".":
            return b"".join(out), wire[pos:]
        out.append((line[1:] if line.startswith(b".") else line) + b"\r\n")


def feed_all(pieces: list[bytes]) -> tuple[bytes, bool, bytes]:
    reader = Unstuffer()
    content = b""
    done = False
    for piece in pieces:
        got, done = reader.feed(piece)
        content += got
    return content, done, reader.rest


def splits(wire: bytes) -> list[list[bytes]]:
    ways = [[wire], [bytes([b]) for b in wire]]
    ways += [[wire[:i], wire[i:]] for i in range(1, len(wire))]
    return ways


CASES = [
    b".\r\n",
    b"hello\r\n.\r\n",
    b"..\r\n.\r\n",  # a line holding one dot
    b"...x\r\n.x\r\n.\r\n",
    b"a\r\n\r\n.\r\n",
    b"bare\nlf\n.\nstill content\r\n.\r\n",  # LF . LF is no end mark
    b"cr\r.\r\n.\r\n",  # CR . CRLF neither
    b".\rx\r\n.\r\n",
    b"no final crlf.\r\n.\r\nQUIT\r\n",
    b"x\r\n.\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n",
    b"\x00nul\r\n.\r\n",
    b"x" * 3000 + b"\r\n.\r\n",
]


@pytest.mark.parametrize("wire", CASES)
def test_unstuffer_matches_the_reference_however_split(wire: bytes) -> None:
    expected = reference_unstuff(wire)
    assert expected is not None
    for pieces in splits(wire):
        content, done, rest = feed_all(pieces)
        assert (content, rest) == expected and done, pieces


def test_unstuffer_holds_no_more_than_the_end_mark() -> None:
    reader = Unstuffer()
    content, done = reader.feed(b"abc\r\n.")
    assert (content, done) == (b"abc", False)
    content, done = reader.feed(b"\r")
    assert (content, done) == (b"", False)
    content, done = reader.feed(b"\n")
    assert (content, done, reader.rest) == (b"\r\n", True, b"")


def test_unstuffer_after_the_end_keeps_what_follows() -> None:
    reader = Unstuffer()
    reader.feed(b".\r\nNOOP")
    assert reader.feed(b"\r\n") == (b"", True)
    assert reader.rest == b"NOOP\r\n"


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=60) | st.lists(st.sampled_from([b"\r", b"\n", b".", b"x", b"\r\n"]),
                                          max_size=40).map(b"".join),
       st.data())
def test_unstuffer_any_input_any_split(body: bytes, data: st.DataObject) -> None:
    wire = body + b"\r\n.\r\n"
    expected = reference_unstuff(wire)
    assert expected is not None
    cuts = sorted(data.draw(st.lists(st.integers(0, len(wire)), max_size=6)))
    pieces = [wire[a:b] for a, b in zip([0, *cuts], [*cuts, len(wire)], strict=True)]
    content, done, rest = feed_all(pieces)
    assert done and (content, rest) == expected


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from([b"\r", b"\n", b".", b"x", b"\r\n", b"\x00"]),
                max_size=40).map(b"".join), st.data())
def test_stuffer_round_trip(content: bytes, data: st.DataObject) -> None:
    cuts = sorted(data.draw(st.lists(st.integers(0, len(content)), max_size=5)))
    pieces = [content[a:b] for a, b in zip([0, *cuts], [*cuts, len(content)], strict=True)]
    writer = Stuffer()
    wire = b"".join(writer.feed(p) for p in pieces) + writer.end()
    assert wire == stuff(content)
    expected = to_crlf(content)
    if expected and not expected.endswith(b"\r\n"):
        expected += b"\r\n"  # RFC 5321 §4.1.1.4: the data ends with a line end
    got = reference_unstuff(wire)
    assert got == (expected, b"")
    # Nothing a next hop could take for an end mark before the end: no lone LF, and
    # every line that starts with a dot has two.
    assert b"\n" not in wire.replace(b"\r\n", b"")
    lines = wire.split(b"\r\n")[:-2]
    assert all(not line.startswith(b".") or line.startswith(b"..") for line in lines)


@pytest.mark.parametrize(("content", "wire"), [
    (b"", b".\r\n"),
    (b"abc", b"abc\r\n.\r\n"),
    (b".\r\n", b"..\r\n.\r\n"),
    (b"a\n.\nb\n", b"a\r\n..\r\nb\r\n.\r\n"),
    (b"a\r", b"a\r\r\n.\r\n"),
])
def test_stuff_examples(content: bytes, wire: bytes) -> None:
    assert stuff(content) == wire


def test_stuffer_keeps_state_across_a_split_crlf() -> None:
    writer = Stuffer()
    assert writer.feed(b"a\r") == b"a\r"
    assert writer.feed(b"\n.b") == b"\n..b"
    assert writer.end() == b"\r\n.\r\n"
