"""Replies: what the filter answers, as frozen values that check themselves when made
and render their exact packet with ``to_bytes()``.

Grammar of each reply's data (``cstr`` NUL-terminated, ``u32`` big-endian)::

    'c' 'a' 'r' 't' 'd' 'p'  = (empty)
    'y' replycode  = cstr ( code [SP enhanced] [SP text] )   ; '%' doubled
    'h' addheader  = cstr name, cstr value
    'i' insheader  = u32 index, cstr name, cstr value        ; index 0 = top
    'm' chgheader  = u32 index, cstr name, cstr value        ; 1-based, "" = delete
    'q' quarantine = cstr reason
    'O' optneg     = u32 version, u32 actions, u32 protocol, *(u32 stage, cstr macros)

Header values follow the MTA's own conventions: fold lines with a bare LF followed
by a space or tab (``b"a;\\n\\tb"``), never CR. Unless SMFIP_HDR_LEADSPC was
negotiated, the MTA puts one space after the colon itself; with it, the value must
bring its own leading space.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar, Final, TypeAlias

from mailseal.frontends.milter.protocol import (
    PROTOCOL_VERSION,
    PROTOCOL_VERSION_MIN,
    SMFIF,
    SMFIM,
    SMFIR,
    packet,
    u32,
)

# RFC 5321 §4.2: textstring = 1*(%d09 / %d32-126); RFC 3463 §2 enhanced status codes.
_REPLY_TEXT: Final = re.compile(r"[\t\x20-\x7e]*")
_ENHANCED: Final = re.compile(r"[245]\.[0-9]{1,3}\.[0-9]{1,3}")
# RFC 5322 §3.6.8: field-name = 1*ftext, ftext = %d33-57 / %d59-126.
_FIELD_NAME: Final = re.compile(rb"[\x21-\x39\x3b-\x7e]+")
# No NUL (the wire delimiter), no CR, and an LF only as part of a fold.
_FIELD_VALUE: Final = re.compile(rb"(?:[^\x00\r\n]|\n[ \t])*")
_MACRO_NAME: Final = re.compile(r"[^\x00-\x20\x7f]+")


class _Bare:
    """A reply without data."""

    __slots__ = ()
    command: ClassVar[SMFIR]

    def to_bytes(self) -> bytes:
        return packet(self.command)


@dataclass(frozen=True, slots=True)
class Continue(_Bare):
    """SMFIR_CONTINUE: go on with the next step."""

    command: ClassVar[SMFIR] = SMFIR.CONTINUE


@dataclass(frozen=True, slots=True)
class Accept(_Bare):
    """SMFIR_ACCEPT: accept; no more events for this message (or connection, when
    given at connect or HELO)."""

    command: ClassVar[SMFIR] = SMFIR.ACCEPT


@dataclass(frozen=True, slots=True)
class Reject(_Bare):
    """SMFIR_REJECT: the MTA answers 5xx with its own text."""

    command: ClassVar[SMFIR] = SMFIR.REJECT


@dataclass(frozen=True, slots=True)
class TempFail(_Bare):
    """SMFIR_TEMPFAIL: the MTA answers 4xx with its own text."""

    command: ClassVar[SMFIR] = SMFIR.TEMPFAIL


@dataclass(frozen=True, slots=True)
class Discard(_Bare):
    """SMFIR_DISCARD: accept the message and drop it silently (not at connect/HELO)."""

    command: ClassVar[SMFIR] = SMFIR.DISCARD


@dataclass(frozen=True, slots=True)
class Progress(_Bare):
    """SMFIR_PROGRESS: still working; resets the MTA's timeout at end of message."""

    command: ClassVar[SMFIR] = SMFIR.PROGRESS


def _check_field(name: bytes, value: bytes) -> None:
    if not _FIELD_NAME.fullmatch(name):
        raise ValueError(f"header name {name!r} is not an RFC 5322 field name")
    if not _FIELD_VALUE.fullmatch(value):
        raise ValueError(f"header value {value!r} holds NUL, CR, or an LF that does "
                         "not start a folded line")


def _field(name: bytes, value: bytes) -> bytes:
    return name + b"\0" + value + b"\0"


@dataclass(frozen=True, slots=True)
class ReplyCode:
    """SMFIR_REPLYCODE: reject (5xx) or tempfail (4xx) with this SMTP reply.

    ``text`` is one line of printable ASCII; a '%' in it is sent doubled, because
    Sendmail uses the reply as a format string and Postfix undoes the doubling.
    """

    code: int  # 400-599
    enhanced: str | None  # RFC 3463 "5.7.1", same class as code
    text: str

    def __post_init__(self) -> None:
        if not 400 <= self.code <= 599:
            raise ValueError(f"reply code {self.code} is not 4xx or 5xx")
        if self.enhanced is not None:
            if not _ENHANCED.fullmatch(self.enhanced):
                raise ValueError(f"enhanced status {self.enhanced!r} is not class.subject"
                                 ".detail")
            if self.enhanced[0] != str(self.code)[0]:
                raise ValueError(f"enhanced status {self.enhanced} does not match reply "
                                 f"code {self.code}")
        if not _REPLY_TEXT.fullmatch(self.text):
            raise ValueError(f"reply text {self.text!r} is not one line of printable "
                             "ASCII")

    def to_bytes(self) -> bytes:
        parts = [str(self.code)]
        if self.enhanced is not None:
            parts.append(self.enhanced)
        if self.text:
            parts.append(self.text.replace("%", "%%"))
        return packet(SMFIR.REPLYCODE, " ".join(parts).encode("ascii") + b"\0")


@dataclass(frozen=True, slots=True)
class AddHeader:
    """SMFIR_ADDHEADER: append a header field (needs SMFIF_ADDHDRS)."""

    name: bytes
    value: bytes

    def __post_init__(self) -> None:
        _check_field(self.name, self.value)

    def to_bytes(self) -> bytes:
        return packet(SMFIR.ADDHEADER, _field(self.name, self.value))


@dataclass(frozen=True, slots=True)
class InsertHeader:
    """SMFIR_INSHEADER: insert a header field at ``index`` among all fields, 0 being
    the top (needs SMFIF_ADDHDRS). Postfix counts its own Received field here."""

    index: int
    name: bytes
    value: bytes

    def __post_init__(self) -> None:
        u32(self.index)
        _check_field(self.name, self.value)

    def to_bytes(self) -> bytes:
        return packet(SMFIR.INSHEADER, u32(self.index) + _field(self.name, self.value))


@dataclass(frozen=True, slots=True)
class ChangeHeader:
    """SMFIR_CHGHEADER: replace the ``index``-th field called ``name`` (1-based, counted
    per name, case-insensitively); an empty value deletes it (needs SMFIF_CHGHDRS)."""

    index: int
    name: bytes
    value: bytes

    def __post_init__(self) -> None:
        if self.index < 1:
            raise ValueError(f"header index {self.index} is not 1-based")
        u32(self.index)
        _check_field(self.name, self.value)

    def to_bytes(self) -> bytes:
        return packet(SMFIR.CHGHEADER, u32(self.index) + _field(self.name, self.value))


@dataclass(frozen=True, slots=True)
class Quarantine:
    """SMFIR_QUARANTINE: hold the message with this reason (needs SMFIF_QUARANTINE).
    It is not a verdict: a final reply still follows."""

    reason: str

    def __post_init__(self) -> None:
        # smfi_quarantine refuses an empty reason.
        if not self.reason or any(c in self.reason for c in "\0\r\n"):
            raise ValueError(f"quarantine reason {self.reason!r} is empty or not one line")

    def to_bytes(self) -> bytes:
        return packet(SMFIR.QUARANTINE, self.reason.encode("utf-8") + b"\0")


MacroLists: TypeAlias = tuple[tuple[SMFIM, tuple[str, ...]], ...]


@dataclass(frozen=True, slots=True)
class OptionNegotiateReply:
    """The filter's side of SMFIC_OPTNEG: version, actions it will use, protocol bits.

    ``macros`` asks for exactly these macros at each listed stage (an empty tuple asks
    for none); it needs SMFIF_SETSYMLIST in ``actions``. Unlisted stages keep the
    MTA's defaults.
    """

    version: int
    actions: int
    protocol: int
    macros: MacroLists = ()

    def __post_init__(self) -> None:
        if not PROTOCOL_VERSION_MIN <= self.version <= PROTOCOL_VERSION:
            raise ValueError(f"protocol version {self.version} is not "
                             f"{PROTOCOL_VERSION_MIN}-{PROTOCOL_VERSION}")
        u32(self.actions)
        u32(self.protocol)
        if self.macros and not self.actions & SMFIF.SETSYMLIST:
            raise ValueError("macro lists need SMFIF_SETSYMLIST in the actions")
        stages = [SMFIM(stage) for stage, _ in self.macros]
        if len(set(stages)) != len(stages):
            raise ValueError(f"macro stages repeat: {stages}")
        for _, names in self.macros:
            for name in names:
                if not _MACRO_NAME.fullmatch(name):
                    raise ValueError(f"macro name {name!r} is empty or holds white space")

    def to_bytes(self) -> bytes:
        data = u32(self.version) + u32(self.actions) + u32(self.protocol)
        for stage, names in self.macros:
            data += u32(stage) + " ".join(names).encode("utf-8") + b"\0"
        return packet(SMFIR.OPTNEG, data)


Reply: TypeAlias = (
    Continue | Accept | Reject | TempFail | Discard | Progress | ReplyCode | AddHeader
    | InsertHeader | ChangeHeader | Quarantine | OptionNegotiateReply
)
