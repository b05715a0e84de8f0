"""SMTP replies as values (RFC 5321 §4.2), rendered to wire bytes and read back from
a next hop's lines.

Grammar (RFC 5321 §4.2, RFC 3463 §2 enhanced status codes, RFC 2034 §4)::

    Reply-line = *( Reply-code "-" [ textstring ] CRLF )
                 Reply-code [ SP textstring ] CRLF
    Reply-code = %x32-35 %x30-35 %x30-39
    textstring = [ enhanced SP ] text      ; with ENHANCEDSTATUSCODES
    enhanced   = class "." subject "." detail

Text is kept as ``str``; bytes beyond ASCII (a next hop that answers in UTF-8) survive
a round trip through ``surrogateescape``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Final

from mailseal.pipeline import model

_ENHANCED: Final = re.compile(r"[245]\.[0-9]{1,3}\.[0-9]{1,3}")
_REPLY_LINE: Final = re.compile(r"([2-5][0-9][0-9])([ -]?)(.*)", re.DOTALL)


@dataclass(frozen=True, slots=True)
class Reply:
    """One SMTP reply: ``code``, the RFC 3463 ``enhanced`` code (``""`` when none, as
    for greetings and EHLO), the first line's ``text``, and ``more`` lines (EHLO
    keywords, a next hop's multi-line answer). On the wire every line carries the
    code, and the enhanced code when there is one."""

    code: int
    enhanced: str = ""
    text: str = ""
    more: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not 200 <= self.code <= 599:
            raise ValueError(f"SMTP reply code {self.code} is not 2xx-5xx")
        if self.enhanced and (not _ENHANCED.fullmatch(self.enhanced)
                              or self.enhanced[0] != str(self.code)[0]):
            raise ValueError(f"enhanced code {self.enhanced!r} does not fit {self.code}")
        for line in (self.text, *self.more):
            if "\r" in line or "\n" in line:
                raise ValueError("reply text must not contain CR or LF")

    @property
    def positive(self) -> bool:
        """2xx or 3xx: the command was accepted (RFC 5321 §4.2.1)."""
        return self.code < 400

    def lines(self) -> list[str]:
        prefix = f"{self.enhanced} " if self.enhanced else ""
        return [f"{prefix}{text}" if text or prefix else "" for text in (self.text, *self.more)]

    def to_bytes(self) -> bytes:
        lines = self.lines()
        out = [f"{self.code}-{line}" for line in lines[:-1]]
        last = lines[-1]
        out.append(f"{self.code} {last}" if last else str(self.code))
        return ("\r\n".join(out) + "\r\n").encode("utf-8", "surrogateescape")

    def __str__(self) -> str:
        return " ".join(p for p in (str(self.code), self.enhanced, self.text) if p)

    @classmethod
    def from_pipeline(cls, reply: model.Reply) -> Reply:
        return cls(reply.code, reply.enhanced, reply.text)

    @classmethod
    def from_lines(cls, lines: list[str]) -> Reply:
        """A reply from its lines as read (without CRLF); the caller checked that each
        line starts with the same code. The enhanced code is taken from the first line
        and removed from the others when they repeat it."""
        code = int(lines[0][:3])
        texts = [line[4:] for line in lines]
        enhanced = ""
        head, _, rest = texts[0].partition(" ")
        if _ENHANCED.fullmatch(head) and head[0] == lines[0][0]:
            enhanced = head
            texts[0] = rest
            texts[1:] = [t[len(head) + 1:] if t.startswith(head + " ") else t
                         for t in texts[1:]]
        return cls(code, enhanced, texts[0], tuple(texts[1:]))


def ehlo_keywords(reply: Reply) -> dict[str, str]:
    """RFC 5321 §4.1.1.1: the lines after the first of a 250 EHLO reply are
    ``keyword [SP parameters]``; keywords are case-insensitive."""
    out: dict[str, str] = {}
    for line in reply.more:
        keyword, _, params = line.strip().partition(" ")
        if keyword:
            out[keyword.upper()] = params.strip()
    return out


@lru_cache(maxsize=256)
def wire(reply: Reply) -> bytes:
    """``reply.to_bytes()``, remembered: most replies are the same few every time."""
    return reply.to_bytes()


def reply_line(line: str) -> tuple[int, bool, str] | None:
    """Split one reply line into (code, is-last, text); None when it is no reply line."""
    match = _REPLY_LINE.fullmatch(line)
    if match is None or (match.group(2) == "" and match.group(3)):
        return None
    return int(match.group(1)), match.group(2) != "-", match.group(3)


# -- the replies the proxy gives itself -------------------------------------------------

OK: Final = Reply(250, "2.0.0", "Ok")
BYE: Final = Reply(221, "2.0.0", "Bye")
START_DATA: Final = Reply(354, "", "End data with <CR><LF>.<CR><LF>")
START_TLS: Final = Reply(220, "2.0.0", "Ready to start TLS")
CANNOT_VRFY: Final = Reply(252, "2.0.0", "Cannot VRFY user, but will accept message")
LINE_TOO_LONG: Final = Reply(500, "5.5.2", "Error: line too long")
UNRECOGNIZED: Final = Reply(500, "5.5.2", "Error: command not recognized")
NOT_IMPLEMENTED: Final = Reply(502, "5.5.1", "Error: command not implemented")
BAD_CHARACTERS: Final = Reply(500, "5.5.2", "Error: bad characters in command")
NEED_HELO: Final = Reply(503, "5.5.1", "Error: send HELO/EHLO first")
NESTED_MAIL: Final = Reply(503, "5.5.1", "Error: nested MAIL command")
NEED_MAIL: Final = Reply(503, "5.5.1", "Error: need MAIL command")
NEED_RCPT: Final = Reply(503, "5.5.1", "Error: need RCPT command")
TOO_BIG: Final = Reply(552, "5.3.4", "Error: message file too big")
TIMEOUT: Final = Reply(421, "4.4.2", "Error: timeout exceeded")
SHUTTING_DOWN: Final = Reply(421, "4.3.2", "Service shutting down, try again later")
INTERNAL_ERROR: Final = Reply(421, "4.3.0", "Internal error, try again later")


def syntax(usage: str) -> Reply:
    return Reply(501, "5.5.4", f"Syntax: {usage}")


def unsupported(parameter: str) -> Reply:
    """RFC 5321 §4.1.1.11 / RFC 1869 §6: a MAIL or RCPT parameter we did not offer."""
    return Reply(555, "5.5.4", f"Unsupported option: {parameter}")
