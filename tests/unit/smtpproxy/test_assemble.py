"""The message while it is judged: the header block split from the stream at every
offset, edits applied by (name, index) as the pipeline counts them, everything else
kept byte for byte; and the spool: memory, then an anonymous 0600 file."""

from __future__ import annotations

import itertools
import os
import stat
from pathlib import Path

import pytest

from mailseal.frontends.smtpproxy.assemble import HeaderSplitter, edited_header, header_fields
from mailseal.frontends.smtpproxy.spool import Spool
from mailseal.pipeline.model import HeaderEdit

MESSAGE = (b"From mbox-line\r\nReceived: a\r\n\tfolded\r\nAuthentication-Results: mx; x\r\n"
           b"Subject: s\r\nauthentication-results : mx; y\r\n\r\nbody\r\n\r\nmore\r\n")


def split(pieces: list[bytes]) -> tuple[bytes, bool, bytes]:
    splitter = HeaderSplitter()
    body = b"".join(splitter.feed(p) for p in pieces)
    splitter.finish()
    return splitter.header, splitter.separator, body


@pytest.mark.parametrize(("message", "header", "separator", "body"), [
    (MESSAGE, MESSAGE[:MESSAGE.index(b"\r\n\r\n") + 2], True, b"body\r\n\r\nmore\r\n"),
    (b"\r\nonly body\r\n", b"", True, b"only body\r\n"),
    (b"Subject: no body\r\n", b"Subject: no body\r\n", False, b""),
    (b"Subject: no body, no CRLF", b"Subject: no body, no CRLF", False, b""),
    (b"", b"", False, b""),
])
def test_splitter_however_split(message: bytes, header: bytes, separator: bool,
                                body: bytes) -> None:
    ways = [[message], [bytes([b]) for b in message],
            *([message[:i], message[i:]] for i in range(len(message)))]
    for pieces in ways:
        assert split(pieces) == (header, separator, body), pieces


def test_splitter_header_over_the_limit_becomes_body() -> None:
    splitter = HeaderSplitter(limit=100)
    data = b"X-Long: " + b"a" * 50 + b"\r\n" + b"Y: " + b"b" * 80
    body = splitter.feed(data)
    assert splitter.done and not splitter.separator
    assert splitter.header == data[:data.index(b"\r\n") + 2]
    assert body == b"Y: " + b"b" * 80


def test_fields_are_the_pipelines_fields() -> None:
    """The mbox line is no field; folding stays in its field; names as written."""
    head = MESSAGE[:MESSAGE.index(b"\r\n\r\n")]
    assert [(f.name, f.value, f.lname) for f in header_fields(head + b"\r\n")] == [
        (b"Received", b" a\r\n\tfolded", b"received"),
        (b"Authentication-Results", b" mx; x", b"authentication-results"),
        (b"Subject", b" s", b"subject"),
        (b"authentication-results ", b" mx; y", b"authentication-results"),
    ]


def test_edits_by_name_and_index_others_untouched() -> None:
    header = MESSAGE[:MESSAGE.index(b"\r\n\r\n") + 2]
    edits = [HeaderEdit("Authentication-Results", remove=True, index=2),
             HeaderEdit("DKIM-Signature", b" v=1;\r\n\tb=x"), HeaderEdit("X-Second", b" 2")]
    assert edited_header(header, edits) == (
        b"DKIM-Signature: v=1;\r\n\tb=x\r\nX-Second: 2\r\n"
        b"From mbox-line\r\nReceived: a\r\n\tfolded\r\nAuthentication-Results: mx; x\r\n"
        b"Subject: s\r\n")
    assert edited_header(header, []) == header
    assert edited_header(b"", [HeaderEdit("A", b" 1")]) == b"A: 1\r\n"


@pytest.mark.parametrize("header", [b"", b"A: 1\r\n", b"A: 1", b"From x\r\nA: 1\r\n\tf\r\n",
                                    b"A: 1\r\nno colon"])
@pytest.mark.parametrize("remove", [False, True])
def test_insertions_alone_keep_the_block_as_removals_would(header: bytes, remove: bool) -> None:
    """Without removals the block is copied whole; with a removal that matches nothing
    it is split and joined again: the same bytes either way."""
    edits = [HeaderEdit("X-New", b" 1")]
    if remove:
        edits.append(HeaderEdit("Nothing-Like-It", remove=True, index=1))
    out = edited_header(header, edits)
    assert out.startswith(b"X-New: 1\r\n") and out.endswith(b"\r\n")
    assert out == edited_header(header, [*edits, HeaderEdit("Nothing-Else", remove=True, index=1)])


def test_spool_memory_then_private_anonymous_file(tmp_path: Path) -> None:
    with Spool(threshold=10, directory=str(tmp_path)) as spool:
        spool.write(b"12345")
        spool.write(b"")
        assert not spool.on_disk and list(spool.chunks()) == [b"12345"]
        spool.write(b"678901")
        assert spool.on_disk and spool.size == 11
        assert list(tmp_path.iterdir()) == []  # no name, ever
        fd = spool._file.fileno()  # type: ignore[union-attr]
        assert stat.S_IMODE(os.fstat(fd).st_mode) == 0o600
        spool.write(b"x" * 100_000)
        assert b"".join(spool.chunks(4096)) == b"12345678901" + b"x" * 100_000
    assert spool._file is None
    spool.close()  # twice is fine


@pytest.mark.parametrize("chunking", [False, True])
@pytest.mark.parametrize("message", [
    b"A: 1\r\nB: 2\r\n\r\nbody\nwith bare\nLF\r\n",
    b"A: 1\nB: 2\n\nbody\n",
    b"A: 1\r\n\nbody\r\n",
    b"\r\nno header\r\n",
    b"\nno header\n",
    b"A: only header\r\n",
    b"A: 1\n\nbody\r\n\r\nmore\n",  # the first empty line counts, whichever its end
    b"A: 1\r\n\r\nbody\n\nmore\r\n",
    b"A: 1\n\n\r\nbody\r\n",
])
def test_in_flight_sees_the_same_message_however_split(message: bytes, chunking: bool,
                                                       tmp_path: Path) -> None:
    """The pipeline gets the same fields and body, and the header the same edits, for
    every split into three; with BDAT the body is kept as it came."""
    from mailseal.config.load import build_config
    from mailseal.frontends.smtpproxy.inflight import InFlight
    from mailseal.pipeline.model import Envelope
    from mailseal.pipeline.session import MessageSession

    config = build_config({"server": {"authserv_id": "mx.test"}})
    seen = set()
    n = len(message)
    for i, j in itertools.combinations_with_replacement(range(n + 1), 2):
        session = MessageSession(config, Envelope(), resolver=None)  # type: ignore[arg-type]
        flight = InFlight(session, Spool(threshold=1 << 20), chunking=chunking)
        for piece in (message[:i], message[i:j], message[j:]):
            flight.feed(piece)
        flight.end(0)
        header = flight.header([])
        seen.add((tuple(session.fields), header, b"".join(flight.spool.chunks())))
    assert len(seen) == 1, seen
