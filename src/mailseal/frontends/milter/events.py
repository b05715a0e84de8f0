"""Events: what the MTA's commands mean, one frozen value per packet, and the parsers
that turn a packet's data into them.

Text fields (host names, addresses, HELO, envelope arguments, macros) are decoded as
UTF-8 with ``surrogateescape``, so any byte the MTA sent survives a round trip through
``str.encode("utf-8", "surrogateescape")``. Header fields and body chunks stay bytes.

Grammar of each command's data, as libmilter's engine.c reads it (``cstr`` is a
NUL-terminated string, ``u16``/``u32`` big-endian integers)::

    'O' optneg   = u32 version, u32 actions, u32 protocol   ; longer data is ignored
    'D' macro    = command-byte *(cstr name, cstr value)
    'C' connect  = cstr hostname, family ( 'U' / ('4' / '6' / 'L') u16 port cstr address )
    'H' helo     = cstr name
    'M' mail     = 1*cstr args                              ; args[0] is "<address>"
    'R' rcpt     = 1*cstr args
    'L' header   = cstr name, cstr value
    'B' body     = 1*byte
    'E' body-eob = *byte                                    ; a last chunk, if any
    'U' unknown  = cstr command-line
    'T' 'N' 'A' 'Q' 'K' = (empty)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, TypeAlias

from mailseal.frontends.milter.protocol import SMFIC, MilterProtocolError


@dataclass(frozen=True, slots=True)
class OptionNegotiate:
    """SMFIC_OPTNEG: what the MTA offers. Flags are raw 32-bit words (SMFIF, SMFIP)."""

    version: int  # the MTA's protocol version
    actions: int  # SMFIF_* actions the MTA allows
    protocol: int  # SMFIP_* steps and extensions the MTA can do


@dataclass(frozen=True, slots=True)
class Macros:
    """SMFIC_MACRO: macro values for the command that follows. Names are as the MTA
    sent them: one letter (``j``, ``i``) or in braces (``{daemon_name}``)."""

    for_command: str  # the SMFIC_* letter they belong to, e.g. "C"
    macros: dict[str, str]


@dataclass(frozen=True, slots=True)
class Connect:
    """SMFIC_CONNECT. ``family`` is SMFIA_*: '4', '6', 'L' (unix socket) or 'U'
    (unknown: then there is no port and no address)."""

    hostname: str  # the client's name, or "[address]" when it has none
    family: str
    port: int | None
    address: str | None  # textual IP address or socket path


@dataclass(frozen=True, slots=True)
class Helo:
    """SMFIC_HELO: the HELO/EHLO argument."""

    name: str


@dataclass(frozen=True, slots=True)
class MailFrom:
    """SMFIC_MAIL: ``args[0]`` is the address in angle brackets, then ESMTP parameters."""

    args: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RcptTo:
    """SMFIC_RCPT: ``args[0]`` is the address in angle brackets, then ESMTP parameters."""

    args: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Data:
    """SMFIC_DATA: the client sent DATA."""


@dataclass(frozen=True, slots=True)
class Header:
    """SMFIC_HEADER: one header field, exactly as the MTA sent it.

    The MTA splits the field at the colon. Postfix and Sendmail drop one space after
    the colon unless SMFIP_HDR_LEADSPC was negotiated (then the value keeps all of
    its leading white space); the codec keeps what the MTA sent. Folded fields come
    with their lines separated by a bare LF (not CRLF), the final line end removed;
    rebuilding the field for canonicalization is the reader's job.
    """

    name: bytes
    value: bytes


@dataclass(frozen=True, slots=True)
class EndOfHeaders:
    """SMFIC_EOH: no more header fields."""


@dataclass(frozen=True, slots=True)
class BodyChunk:
    """SMFIC_BODY: a piece of the body, CRLF line ends, any length up to the limit."""

    data: bytes


@dataclass(frozen=True, slots=True)
class EndOfMessage:
    """SMFIC_BODYEOB: the message is complete; the final verdict is due now.

    ``data`` is a last body piece carried by this very packet. Postfix and Sendmail
    always send it empty (the body comes in SMFIC_BODY), but libmilter accepts it
    and treats it as one more body chunk before the end, and so must a reader.
    """

    data: bytes = b""


@dataclass(frozen=True, slots=True)
class Abort:
    """SMFIC_ABORT: forget the current message; the connection stays."""


@dataclass(frozen=True, slots=True)
class Quit:
    """SMFIC_QUIT: the MTA closes this filter connection."""


@dataclass(frozen=True, slots=True)
class QuitNewConnection:
    """SMFIC_QUIT_NC: this SMTP connection is over, another one follows on the same
    filter connection (with the negotiated options kept)."""


@dataclass(frozen=True, slots=True)
class Unknown:
    """SMFIC_UNKNOWN: an SMTP command the MTA did not recognize, as the client sent it."""

    command: bytes


Event: TypeAlias = (
    OptionNegotiate | Macros | Connect | Helo | MailFrom | RcptTo | Data | Header
    | EndOfHeaders | BodyChunk | EndOfMessage | Abort | Quit | QuitNewConnection | Unknown
)

_FAMILIES: Final = frozenset("46L")


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def _cstrings(data: bytes, what: str) -> list[bytes]:
    """NUL-terminated strings filling ``data`` exactly (none when it is empty)."""
    if not data:
        return []
    if data[-1] != 0:
        raise MilterProtocolError(f"{what}: last string is not NUL-terminated")
    return data[:-1].split(b"\0")


def _one_cstring(data: bytes, what: str) -> bytes:
    strings = _cstrings(data, what)
    if len(strings) != 1:
        raise MilterProtocolError(f"{what}: expected one NUL-terminated string, "
                                  f"got {len(strings)}")
    return strings[0]


def _optneg(data: bytes) -> Event:
    # engine.c st_optionneg: at least MILTER_OPTLEN (12) bytes; it ignores the rest,
    # which mfapi reserves for future words (f2, f3).
    if len(data) < 12:
        raise MilterProtocolError(f"option negotiation: {len(data)} bytes, need 12")
    return OptionNegotiate(version=int.from_bytes(data[0:4], "big"),
                           actions=int.from_bytes(data[4:8], "big"),
                           protocol=int.from_bytes(data[8:12], "big"))


def _macro(data: bytes) -> Event:
    if not data:
        raise MilterProtocolError("macro: no command letter")
    strings = _cstrings(data[1:], "macro")
    if len(strings) % 2:
        raise MilterProtocolError(f"macro: name {strings[-1]!r} has no value")
    pairs = zip(strings[0::2], strings[1::2], strict=True)
    return Macros(for_command=chr(data[0]),
                  macros={_text(name): _text(value) for name, value in pairs})


def _connect(data: bytes) -> Event:
    nul = data.find(b"\0")
    if nul < 0:
        raise MilterProtocolError("connect: hostname is not NUL-terminated")
    hostname, rest = _text(data[:nul]), data[nul + 1:]
    if not rest:
        raise MilterProtocolError("connect: address family missing")
    family = chr(rest[0])
    if family == "U":
        # milter.c milter_connect: an unknown family carries no port and no address.
        if len(rest) != 1:
            raise MilterProtocolError("connect: data after the unknown family")
        return Connect(hostname=hostname, family=family, port=None, address=None)
    if family not in _FAMILIES:
        raise MilterProtocolError(f"connect: unknown address family {rest[:1]!r}")
    if len(rest) < 3:
        raise MilterProtocolError("connect: port truncated")
    address = _one_cstring(rest[3:], "connect address")
    return Connect(hostname=hostname, family=family,
                   port=int.from_bytes(rest[1:3], "big"), address=_text(address))


def _helo(data: bytes) -> Event:
    return Helo(name=_text(_one_cstring(data, "helo")))


def _args(data: bytes, what: str) -> tuple[str, ...]:
    strings = _cstrings(data, what)
    if not strings:
        raise MilterProtocolError(f"{what}: no address")
    return tuple(_text(s) for s in strings)


def _mail(data: bytes) -> Event:
    return MailFrom(args=_args(data, "mail"))


def _rcpt(data: bytes) -> Event:
    return RcptTo(args=_args(data, "rcpt"))


def _header(data: bytes) -> Event:
    strings = _cstrings(data, "header")
    if len(strings) != 2:
        raise MilterProtocolError(f"header: expected name and value, got {len(strings)} "
                                  "strings")
    name, value = strings
    if not name:
        raise MilterProtocolError("header: empty name")
    return Header(name=name, value=value)


def _body(data: bytes) -> Event:
    # engine.c: SMFIC_BODY needs a buffer (CM_BUF); an empty chunk is an error there.
    if not data:
        raise MilterProtocolError("body: empty chunk")
    return BodyChunk(data=data)


def _eob(data: bytes) -> Event:
    return EndOfMessage(data=data)


def _unknown(data: bytes) -> Event:
    return Unknown(command=_one_cstring(data, "unknown"))


def _bare(event: Event) -> Callable[[bytes], Event]:
    def parse(data: bytes) -> Event:
        if data:
            raise MilterProtocolError(f"{type(event).__name__}: unexpected {len(data)} "
                                      "data bytes")
        return event

    return parse


#: The parser of each command's data; a command byte not in here is not milter.
PARSERS: Final[dict[int, Callable[[bytes], Event]]] = {
    SMFIC.OPTNEG: _optneg,
    SMFIC.MACRO: _macro,
    SMFIC.CONNECT: _connect,
    SMFIC.HELO: _helo,
    SMFIC.MAIL: _mail,
    SMFIC.RCPT: _rcpt,
    SMFIC.DATA: _bare(Data()),
    SMFIC.HEADER: _header,
    SMFIC.EOH: _bare(EndOfHeaders()),
    SMFIC.BODY: _body,
    SMFIC.BODYEOB: _eob,
    SMFIC.ABORT: _bare(Abort()),
    SMFIC.QUIT: _bare(Quit()),
    SMFIC.QUIT_NC: _bare(QuitNewConnection()),
    SMFIC.UNKNOWN: _unknown,
}


def parse_command(command: int, data: bytes) -> Event:
    """The event for one packet; MilterProtocolError for anything else."""
    parser = PARSERS.get(command)
    if parser is None:
        raise MilterProtocolError(f"unknown milter command {bytes((command,))!r}")
    return parser(data)
