"""A message on its way through the proxy: fed to the pipeline as it streams in,
kept in a spool, and written out again with the pipeline's edits.

Line ends: the header is made CRLF (to find its end and edit it); the body too when
it will go on with DATA, so that what the pipeline hashed is what is sent and no bare
LF is left for the next hop to read as a line end. With BDAT (RFC 3030: no end mark,
nothing to smuggle) the body goes on as it came, one scan less: the pipeline hashes
it as CRLF, and so does Postfix store it.

Dot-stuffing on the way out scans the body only when it came in with lines starting
with a dot (or with bare LFs, now line ends): most mail has none, and not scanning
180 KiB again is a good part of what the proxy saves.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from mailseal.frontends.smtpproxy.assemble import HeaderSplitter, edited_header, header_fields
from mailseal.frontends.smtpproxy.dotstuff import Stuffer
from mailseal.frontends.smtpproxy.spool import Spool
from mailseal.message import CrlfStream
from mailseal.pipeline.model import HeaderEdit
from mailseal.pipeline.session import MessageSession


class InFlight:
    def __init__(self, session: MessageSession, spool: Spool, *, chunking: bool) -> None:
        self.session = session
        self.spool = spool
        self.chunking = chunking  # the next hop takes BDAT
        self.splitter = HeaderSplitter()
        self.started = time.perf_counter()
        self.reshaped = False  # a bare LF became CRLF (a line may start anew)
        self.dot_lines = 0  # lines that came in starting with a dot (set at the end)
        self._crlf = CrlfStream()
        self._tail = b"\n"  # the header's last two octets so far (as if after a line end)

    def feed(self, data: bytes) -> None:
        """Message content as it arrives, dot-unstuffed."""
        if not self.splitter.done:
            body = b""
            if self.chunking:  # make only the header CRLF: cut after its empty line
                data, body = _cut_after_empty_line(data, self._tail)
                self._tail = (self._tail + data[-2:])[-2:]
            data = self.splitter.feed(self._normal(data))
            if not self.splitter.done:
                return
            self._header_done()
            data += body
        elif not self.chunking:
            data = self._normal(data)
        if data:
            self.session.body(data)
            self.spool.write(data)

    def _normal(self, data: bytes) -> bytes:
        size = len(data)
        data = self._crlf.feed(data)
        if len(data) != size:
            self.reshaped = True
        return data

    def end(self, dot_lines: int) -> None:
        self.dot_lines = dot_lines
        if not self.splitter.done:  # no empty line: all header, no body
            self.splitter.finish()
            self._header_done()

    def _header_done(self) -> None:
        self.session.header_fields(header_fields(self.splitter.header))
        self.session.end_of_headers()

    def header(self, edits: list[HeaderEdit]) -> bytes:
        """The header block with ``edits`` applied, and the empty line after it."""
        out = edited_header(self.splitter.header, edits)
        return out + b"\r\n" if self.splitter.separator else out

    def size(self, header: bytes) -> int:
        return len(header) + self.spool.size

    def content(self, header: bytes) -> Iterator[bytes]:
        """The message as it is: for BDAT."""
        yield header
        yield from self.spool.chunks()

    def stuffed(self, header: bytes) -> Iterator[bytes]:
        """The message as DATA content, dot-stuffed, with the final dot."""
        stuffer = Stuffer(normalize=False)
        yield stuffer.feed(header)
        clean = self.dot_lines == 0 and not self.reshaped
        for chunk in self.spool.chunks():
            yield stuffer.feed(chunk, clean=clean)
        yield stuffer.end()

    def close(self) -> None:
        self.spool.close()


def _cut_after_empty_line(data: bytes, tail: bytes) -> tuple[bytes, bytes]:
    """``data`` cut after the first empty line (LF or CRLF line ends, as they come);
    all of it first when there is none (the header goes on). ``tail``: the last two
    octets before ``data``, for an empty line split between the two."""
    if tail.endswith(b"\n\r") and data.startswith(b"\n"):
        return data[:1], data[1:]
    if tail.endswith(b"\n") and data.startswith((b"\r\n", b"\n")):
        cut = 2 if data[0] == 0x0D else 1
        return data[:cut], data[cut:]
    end = data.find(b"\n\r\n")
    # A bare-LF empty line counts only before the first CRLF one: do not scan the
    # whole body for one.
    lf = data.find(b"\n\n", 0, len(data) if end < 0 else end + 1)
    if lf >= 0:
        end = lf
    if end < 0:
        return data, b""
    cut = end + (3 if data[end + 1] == 0x0D else 2)
    return data[:cut], data[cut:]
