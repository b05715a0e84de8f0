"""The DATA section as a stream (RFC 5321 §4.1.1.4, §4.5.2), both directions, without
I/O and without looking at every line: a 30 MB message costs a few ``bytes.find`` and
``bytes.replace`` calls, not a Python loop per line.

Reading (``Unstuffer``): lines end with CRLF; a line that starts with "." loses that
dot; the line "." alone ends the data. Only CRLF ends a line: a bare LF or CR is
content (a lenient end-of-data such as ``LF . LF`` is what SMTP smuggling exploits).

Writing (``Stuffer``): the content goes out with bare LFs made CRLF first (what the
pipeline hashed is what the next hop receives, and no lone LF is left for a next hop
to read as a line end), then every line that starts with "." gets one more, and the
data ends with ``CRLF . CRLF`` (a missing final CRLF is added, RFC 5321 §4.1.1.4).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from mailseal.message import CrlfStream

_END: Final = b"\r\n.\r\n"


def find_dot_line_py(data: bytes, start: int) -> int:
    """Where the next line starting with a dot begins (its CRLF), from ``start``; -1
    when there is none. The reference for the C version, which looks only at the
    dots: ``bytes.find`` for this pattern costs more than SHA-256 over mail text."""
    return data.find(b"\r\n.", start)


def _accelerated() -> Callable[[bytes, int], int]:
    try:
        from mailseal.dkim._canon import find_dot_line
    except ImportError:
        return find_dot_line_py
    return find_dot_line


find_dot_line: Final = _accelerated()


class Unstuffer:
    """Incremental reader of DATA content. ``feed(data)`` returns the content it could
    release and whether the end was seen; after the end, ``rest`` holds the bytes that
    followed the lone dot (pipelined commands)."""

    __slots__ = ("_held", "_skip", "done", "dot_lines", "rest")

    def __init__(self) -> None:
        # Bytes kept for the next feed. The first ``_skip`` of them were released
        # already (or never were content): they are context, for finding a line start.
        # The data begins at a line start, as if after a CRLF.
        self._held = b"\r\n"
        self._skip = 2
        self.done = False
        self.dot_lines = 0  # lines that began with a dot (one was removed from each)
        self.rest = b""

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        if self.done:
            self.rest += data
            return b"", True
        buf = self._held + data if self._held else data
        out: list[bytes] = []
        pos = self._skip
        n = len(buf)
        while True:
            i = find_dot_line(buf, max(pos - 2, 0))
            if i < 0:
                # Keep a trailing CR or CRLF: the next feed may bring the ".".
                keep = 2 if buf.endswith(b"\r\n") else 1 if buf.endswith(b"\r") else 0
                self._hold(buf, out, pos, n - keep)
                break
            dot = i + 2
            if n - dot >= 3 and buf[dot + 1:dot + 3] == b"\r\n":  # the line "."
                if dot > pos:
                    out.append(buf[pos:dot])
                self.done = True
                self.rest = buf[dot + 3:]
                self._held, self._skip = b"", 0
                break
            if (n - dot >= 2 and buf[dot + 1] != 0x0D) or n - dot >= 3:
                # A line starting with "." and something else: drop the dot.
                if dot > pos:
                    out.append(buf[pos:dot])
                pos = dot + 1
                self.dot_lines += 1
                continue
            self._hold(buf, out, pos, i)  # too few bytes to decide yet
            break
        return b"".join(out), self.done

    def _hold(self, buf: bytes, out: list[bytes], pos: int, stop: int) -> None:
        """Release ``buf[pos:stop]``; keep ``buf[stop:]`` (or from ``pos`` when the
        bytes before it were released already) for the next feed."""
        if stop > pos:
            out.append(buf[pos:stop])
            self._held, self._skip = buf[stop:], 0
        else:
            self._held, self._skip = buf[stop:], pos - stop


class Stuffer:
    """Incremental writer of DATA content: ``feed(chunk)`` returns the bytes to send,
    ``end()`` the final bytes including the terminating dot.

    ``normalize=False`` when the content has CRLF line ends already (the proxy makes
    them so as the message comes in). ``feed(chunk, clean=True)`` skips the scan for
    dot lines when the caller knows there is none inside ``chunk`` (the message came
    in without any: ``Unstuffer.dot_lines`` is 0, and no bare LF was turned into a
    line end); the chunk's first byte is still checked."""

    __slots__ = ("_after_cr", "_at_line_start", "_crlf")

    def __init__(self, *, normalize: bool = True) -> None:
        self._crlf = CrlfStream() if normalize else None
        self._at_line_start = True  # the data begins at a line start
        self._after_cr = False  # the last byte sent was a CR (its LF may follow)

    def feed(self, chunk: bytes, *, clean: bool = False) -> bytes:
        data = self._crlf.feed(chunk) if self._crlf is not None else chunk
        if not data:
            return b""
        if self._at_line_start and data[0] == 0x2E:
            data = b"." + data
        elif self._after_cr and data.startswith(b"\n."):
            data = b"\n." + data[1:]
        if not clean and b"\r\n." in data:
            data = data.replace(b"\r\n.", b"\r\n..")
        # Made CRLF, every LF ends a line (its CR may be the previous chunk's last byte).
        self._at_line_start = data.endswith(b"\n")
        self._after_cr = data.endswith(b"\r")
        return data

    def end(self) -> bytes:
        return b".\r\n" if self._at_line_start else _END


def stuff(content: bytes) -> bytes:
    """A whole message as DATA content, terminating dot included."""
    writer = Stuffer()
    return writer.feed(content) + writer.end()
