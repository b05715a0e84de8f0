"""The SMTP client side's reading half without I/O: a next hop's bytes in, ``Reply``
values out (RFC 5321 §4.2), and its EHLO keywords read into a table.

Bounds: a reply line longer than ``line_limit`` octets or a reply of more than
``max_lines`` lines is a protocol error (a broken or hostile next hop must not make
us buffer without end).
"""

from __future__ import annotations

import enum
from typing import Final

from mailseal.frontends.smtpproxy.replies import Reply, reply_line


class ReplyProtocolError(ValueError):
    """The next hop sent something that is not an SMTP reply."""


class _NeedData(enum.Enum):
    NEED_DATA = "NEED_DATA"


NEED_DATA: Final = _NeedData.NEED_DATA


class ReplyReader:
    def __init__(self, *, line_limit: int = 4096, max_lines: int = 200) -> None:
        self.line_limit = line_limit
        self.max_lines = max_lines
        self._buffer = bytearray()
        self._lines: list[str] = []

    def receive_data(self, data: bytes) -> None:
        self._buffer += data

    def next_reply(self) -> Reply | _NeedData:
        buf = self._buffer
        while True:
            end = buf.find(b"\n")
            if end < 0:
                if len(buf) > self.line_limit:
                    raise ReplyProtocolError("reply line too long")
                return NEED_DATA
            raw = bytes(buf[:end]).removesuffix(b"\r").replace(b"\r", b" ")
            del buf[:end + 1]
            if len(raw) > self.line_limit:
                raise ReplyProtocolError("reply line too long")
            line = raw.decode("utf-8", "surrogateescape")
            parsed = reply_line(line)
            if parsed is None:
                raise ReplyProtocolError(f"not an SMTP reply: {line[:60]!r}")
            code, last, _ = parsed
            if self._lines and int(self._lines[0][:3]) != code:
                raise ReplyProtocolError("reply lines with different codes")
            self._lines.append(line if len(line) > 3 else line + " ")
            if len(self._lines) > self.max_lines:
                raise ReplyProtocolError("reply too long")
            if last:
                lines, self._lines = self._lines, []
                return Reply.from_lines(lines)
