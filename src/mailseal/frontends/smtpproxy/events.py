"""What an SMTP client's commands mean, one frozen value per command, and the parsers
that read a command line into them.

Command lines are decoded as UTF-8 with ``surrogateescape`` (SMTPUTF8 addresses, and
any other byte, survive a round trip through ``str.encode("utf-8",
"surrogateescape")``). Grammar (RFC 5321 §4.1.1, §4.1.2; RFC 1869 §4.1; Postfix
XFORWARD_README)::

    ehlo     = "EHLO" SP Domain CRLF              ; HELO likewise
    mail     = "MAIL FROM:" Reverse-path [SP Mail-parameters] CRLF
    rcpt     = "RCPT TO:" Forward-path [SP Rcpt-parameters] CRLF
    parameters  = esmtp-param *(SP esmtp-param)
    esmtp-param = esmtp-keyword ["=" esmtp-value]
    esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-")
    esmtp-value = 1*(%d33-60 / %d62-126)          ; UTF-8 allowed with SMTPUTF8
    xforward = "XFORWARD" 1*(SP attribute-name "=" xtext) CRLF

A space after the colon (``MAIL FROM: <a@b>``) and a path without angle brackets
are tolerated, as Postfix's smtpd tolerates them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, TypeAlias

from mailseal.frontends.smtpproxy.replies import Reply

Parameters: TypeAlias = tuple[tuple[str, str | None], ...]

_KEYWORD: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*")
_VALUE: Final = re.compile(r"[^\x00-\x20=\x7f]+")
_XTEXT_HEX: Final = re.compile(r"\+([0-9A-F]{2})")
#: XFORWARD attributes Postfix defines (XFORWARD_README).
XFORWARD_ATTRIBUTES: Final = ("NAME", "ADDR", "PORT", "PROTO", "HELO", "IDENT", "SOURCE")


@dataclass(frozen=True, slots=True)
class Helo:
    name: str
    extended: bool  # EHLO (True) or HELO


@dataclass(frozen=True, slots=True)
class Mail:
    address: str  # without angle brackets; "" for the null reverse-path
    parameters: Parameters = ()

    def line(self, keep: frozenset[str] | None = None) -> str:
        """The command as it goes to the next hop (parameters named in ``keep`` only,
        when given)."""
        return f"MAIL FROM:<{self.address}>{render_parameters(self.parameters, keep)}"


@dataclass(frozen=True, slots=True)
class Rcpt:
    address: str
    parameters: Parameters = ()

    def line(self, keep: frozenset[str] | None = None) -> str:
        return f"RCPT TO:<{self.address}>{render_parameters(self.parameters, keep)}"


@dataclass(frozen=True, slots=True)
class Data:
    pass


@dataclass(frozen=True, slots=True)
class Rset:
    pass


@dataclass(frozen=True, slots=True)
class Noop:
    pass


@dataclass(frozen=True, slots=True)
class Quit:
    pass


@dataclass(frozen=True, slots=True)
class Vrfy:
    argument: str


@dataclass(frozen=True, slots=True)
class StartTls:
    pass


@dataclass(frozen=True, slots=True)
class Xforward:
    """XFORWARD: attribute names upper-cased, values as sent (xtext); ``decoded()``
    gives the values."""

    attributes: tuple[tuple[str, str], ...]

    def decoded(self) -> dict[str, str]:
        return {name: xtext_decode(value) for name, value in self.attributes}


@dataclass(frozen=True, slots=True)
class Refused:
    """A command the codec answers itself (syntax, sequence, size, line length): send
    ``reply``; ``command`` names what was refused, for logs."""

    reply: Reply
    command: str = ""


@dataclass(frozen=True, slots=True)
class Content:
    """Message content after DATA, dot-unstuffed (RFC 5321 §4.5.2), exactly as sent
    otherwise; chunk boundaries fall anywhere."""

    data: bytes


@dataclass(frozen=True, slots=True)
class EndOfData:
    """The lone dot. ``size`` counts the content octets; ``too_big`` says it passed the
    SIZE limit (the content beyond was read and dropped, RFC 1870 §6.3); ``dot_lines``
    counts the lines that began with a dot (0: the content needs no stuffing when it
    goes on unchanged)."""

    size: int
    too_big: bool = False
    dot_lines: int = 0


Command: TypeAlias = Helo | Mail | Rcpt | Data | Rset | Noop | Quit | Vrfy | StartTls | Xforward
Event: TypeAlias = Command | Refused | Content | EndOfData


# -- parsing ------------------------------------------------------------------------------


class CommandSyntaxError(ValueError):
    """The command line does not parse; the message says the usage."""


def split_path(argument: str) -> tuple[str, str]:
    """``<path> rest`` → (path without brackets, rest). Quoted local parts may hold
    ``>`` and spaces (RFC 5321 §4.1.2 Quoted-string)."""
    argument = argument.lstrip(" ")
    if not argument.startswith("<"):
        path, _, rest = argument.partition(" ")
        if not path:
            raise CommandSyntaxError("missing address")
        return path, rest
    quoted = escaped = False
    for index in range(1, len(argument)):
        char = argument[index]
        if escaped:
            escaped = False
        elif char == "\\" and quoted:
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == ">" and not quoted:
            rest = argument[index + 1:]
            if rest and not rest.startswith(" "):
                raise CommandSyntaxError("garbage after the address")
            return argument[1:index], rest.lstrip(" ")
    raise CommandSyntaxError("unterminated address")


def parse_parameters(text: str) -> Parameters:
    out: list[tuple[str, str | None]] = []
    for item in text.split():
        key, sep, value = item.partition("=")
        if not _KEYWORD.fullmatch(key) or (sep and not _VALUE.fullmatch(value)):
            raise CommandSyntaxError(f"bad parameter {item!r}")
        out.append((key, value if sep else None))
    return tuple(out)


def render_parameters(parameters: Parameters, keep: frozenset[str] | None = None) -> str:
    return "".join(f" {k}={v}" if v is not None else f" {k}" for k, v in parameters
                   if keep is None or k.upper() in keep)


def parse_envelope(argument: str, prefix: str) -> tuple[str, Parameters]:
    """``FROM:<a> SIZE=1`` (prefix ``FROM:``) → address and parameters."""
    if argument[:len(prefix)].upper() != prefix:
        raise CommandSyntaxError(prefix)
    path, rest = split_path(argument[len(prefix):])
    return path, parse_parameters(rest)


def parse_xforward(argument: str) -> Xforward:
    attributes: list[tuple[str, str]] = []
    for item in argument.split():
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise CommandSyntaxError(f"bad attribute {item!r}")
        attributes.append((name.upper(), value))
    if not attributes:
        raise CommandSyntaxError("no attributes")
    return Xforward(tuple(attributes))


def xtext_decode(value: str) -> str:
    """RFC 3461 §4: ``+XX`` is the octet with hex value XX."""
    if "+" not in value:
        return value
    raw = _XTEXT_HEX.sub(lambda m: chr(int(m.group(1), 16)), value)
    return raw.encode("latin-1", "replace").decode("utf-8", "replace")
