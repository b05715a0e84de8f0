"""The milter protocol (version 6), filter side, as a codec without I/O (h11's shape).

Feed the MTA's bytes with ``receive_data``; take events with ``next_event`` until it
returns ``NEED_DATA``; answer each event for which ``expects_reply`` is true with
``send(reply)``, which returns the bytes to write. The codec keeps the little state
the protocol has, and refuses what breaks it:

- the first command is the option negotiation, answered by an
  ``OptionNegotiateReply`` (see ``negotiate``); it happens once per socket, and its
  result (the actions and SMFIP_NR_* bits) decides which commands expect a reply;
- the MTA waits for each reply it expects, so a command that arrives while one is
  pending is out of place (except abort and quit, which cancel it);
- message edits (headers, quarantine) and progress go only at end of message, before
  the verdict, and only with the action negotiated for them;
- connection information comes once per SMTP connection; SMFIC_QUIT_NC starts the
  next one on the same socket; after SMFIC_QUIT nothing more may come.

Every way the MTA's bytes can be wrong raises ``MilterProtocolError``, and the codec
stays failed. Misuse by the caller (a reply nobody asked for) raises RuntimeError or
ValueError: those are bugs on our side.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from typing import Final

from mailseal.frontends.milter.events import (
    Abort,
    BodyChunk,
    Connect,
    Data,
    EndOfHeaders,
    EndOfMessage,
    Event,
    Header,
    Helo,
    Macros,
    MailFrom,
    OptionNegotiate,
    Quit,
    QuitNewConnection,
    RcptTo,
    Unknown,
    parse_command,
)
from mailseal.frontends.milter.protocol import (
    ALL_ACTIONS,
    DEFAULT_MAX_PACKET,
    NO_REPLY,
    NO_STEPS,
    OPTIONS,
    PROTOCOL_VERSION,
    PROTOCOL_VERSION_MIN,
    SMFIF,
    SMFIM,
    SMFIP,
    V1_ACTIONS,
    V1_PROTOCOL,
    MilterNegotiationError,
    MilterProtocolError,
    flag_names,
)
from mailseal.frontends.milter.replies import (
    AddHeader,
    ChangeHeader,
    Discard,
    InsertHeader,
    OptionNegotiateReply,
    Progress,
    Quarantine,
    Reply,
)


class NeedData(enum.Enum):
    """The sentinel type of ``NEED_DATA``."""

    NEED_DATA = "NEED_DATA"


#: ``next_event`` has no complete packet yet: call ``receive_data`` first.
NEED_DATA: Final = NeedData.NEED_DATA

# engine.c get_nr_bit: the SMFIP_NR_* bit that silences each command's reply.
# Macros, abort and the quits are never answered; option negotiation and end of
# message always are.
_NO_REPLY_BIT: Final[dict[type, SMFIP]] = {
    Connect: SMFIP.NR_CONN,
    Helo: SMFIP.NR_HELO,
    MailFrom: SMFIP.NR_MAIL,
    RcptTo: SMFIP.NR_RCPT,
    Data: SMFIP.NR_DATA,
    Unknown: SMFIP.NR_UNKN,
    Header: SMFIP.NR_HDR,
    EndOfHeaders: SMFIP.NR_EOH,
    BodyChunk: SMFIP.NR_BODY,
}
# The action each edit needs (mfapi.h, smfi_addheader and friends).
_EDIT_ACTION: Final[dict[type, SMFIF]] = {
    AddHeader: SMFIF.ADDHDRS,
    InsertHeader: SMFIF.ADDHDRS,
    ChangeHeader: SMFIF.CHGHDRS,
    Quarantine: SMFIF.QUARANTINE,
}
_MIN_PACKET: Final = 13  # the length of an SMFIC_OPTNEG packet


class MilterCodec:
    """One filter connection's protocol state. Not thread-safe; one per socket."""

    def __init__(self, *, max_packet: int = DEFAULT_MAX_PACKET) -> None:
        """``max_packet`` bounds a packet's length field (command byte + data); a
        longer packet is refused before any of its data is buffered."""
        if max_packet < _MIN_PACKET:
            raise ValueError(f"max_packet {max_packet} cannot hold option negotiation")
        self._buffer = bytearray()
        self._max_packet = max_packet
        self._offer: OptionNegotiate | None = None
        self._negotiated: OptionNegotiateReply | None = None
        self._pending: Event | None = None
        self._in_connection = False
        self._closed = False
        self._failure: MilterProtocolError | None = None

    # -- what was agreed -------------------------------------------------------------

    @property
    def offer(self) -> OptionNegotiate | None:
        """What the MTA offered, once its SMFIC_OPTNEG arrived."""
        return self._offer

    @property
    def negotiated(self) -> OptionNegotiateReply | None:
        """What the filter answered, once ``send`` carried the negotiation reply."""
        return self._negotiated

    @property
    def actions(self) -> int:
        """The negotiated SMFIF_* actions (0 before negotiation)."""
        return self._negotiated.actions if self._negotiated else 0

    @property
    def protocol(self) -> int:
        """The negotiated SMFIP_* bits (0 before negotiation)."""
        return self._negotiated.protocol if self._negotiated else 0

    @property
    def pending(self) -> Event | None:
        """The event whose reply the MTA is waiting for, if any."""
        return self._pending

    @property
    def closed(self) -> bool:
        """The MTA sent SMFIC_QUIT: the socket can be closed."""
        return self._closed

    def expects_reply(self, event: Event) -> bool:
        """Whether the MTA waits for a reply to ``event`` under the negotiated bits."""
        if isinstance(event, OptionNegotiate | EndOfMessage):
            return True
        bit = _NO_REPLY_BIT.get(type(event))
        return bit is not None and not self.protocol & bit

    # -- bytes in ----------------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        """Buffer bytes read from the MTA (an empty read means nothing here)."""
        self._buffer += data

    def next_event(self) -> Event | NeedData:
        """The next complete command as an event, or ``NEED_DATA``."""
        if self._failure is not None:
            raise MilterProtocolError(f"connection already failed: {self._failure}")
        try:
            return self._next_event()
        except MilterProtocolError as exc:
            self._failure = exc
            raise

    def _next_event(self) -> Event | NeedData:
        buffer = self._buffer
        if self._closed:
            if buffer:
                raise MilterProtocolError(f"{len(buffer)} bytes after SMFIC_QUIT")
            return NEED_DATA
        if len(buffer) < 4:
            return NEED_DATA
        length = int.from_bytes(buffer[:4], "big")
        if length == 0:
            raise MilterProtocolError("packet of length 0 has no command")
        if length > self._max_packet:
            raise MilterProtocolError(f"packet of {length} bytes is over the limit of "
                                      f"{self._max_packet}")
        if len(buffer) < 4 + length:
            return NEED_DATA
        command, data = buffer[4], bytes(buffer[5:4 + length])
        del buffer[:4 + length]
        event = parse_command(command, data)
        self._admit(event)
        return event

    def _admit(self, event: Event) -> None:
        """Check that ``event`` may come now, and record what it changes."""
        name = type(event).__name__
        if self._offer is None:
            if not isinstance(event, OptionNegotiate):
                raise MilterProtocolError(f"{name} before option negotiation")
            self._offer = self._pending = event
            return
        if isinstance(event, OptionNegotiate):
            raise MilterProtocolError("option negotiation repeated")
        if self._negotiated is None and not isinstance(event, Quit):
            raise MilterProtocolError(f"{name} before the option negotiation reply")
        if isinstance(event, Abort | Quit | QuitNewConnection):
            self._pending = None
            self._closed = isinstance(event, Quit)
            if isinstance(event, QuitNewConnection):
                self._in_connection = False
            return
        if self._pending is not None:
            raise MilterProtocolError(f"{name} while the reply to "
                                      f"{type(self._pending).__name__} is pending")
        if isinstance(event, Connect) and self._in_connection:
            raise MilterProtocolError("second Connect in one SMTP connection")
        if not isinstance(event, Macros):
            self._in_connection = True
        if self.expects_reply(event):
            self._pending = event

    # -- bytes out ---------------------------------------------------------------------

    def send(self, reply: Reply) -> bytes:
        """The bytes of ``reply`` to the pending event, after checking it fits."""
        if self._closed or self._failure is not None:
            raise RuntimeError("the milter connection is closed or failed")
        pending = self._pending
        kind = type(reply).__name__
        if pending is None:
            raise RuntimeError(f"no command awaits a reply; cannot send {kind}")
        if isinstance(pending, OptionNegotiate):
            if not isinstance(reply, OptionNegotiateReply):
                raise RuntimeError(f"option negotiation must be answered first, not {kind}")
            _check_answer(pending, reply)
            self._negotiated, self._pending = reply, None
        elif isinstance(reply, OptionNegotiateReply):
            raise RuntimeError("option negotiation reply outside option negotiation")
        elif isinstance(reply, AddHeader | InsertHeader | ChangeHeader | Quarantine
                        | Progress):
            if not isinstance(pending, EndOfMessage):
                raise RuntimeError(f"{kind} only at end of message, not after "
                                   f"{type(pending).__name__}")
            needed = _EDIT_ACTION.get(type(reply))
            if needed is not None and not self.actions & needed:
                raise ValueError(f"{kind} needs SMFIF_{needed.name}, not negotiated")
        else:
            if isinstance(reply, Discard) and isinstance(pending, Connect | Helo):
                raise ValueError("Discard is not allowed at connect or HELO")
            self._pending = None
        return reply.to_bytes()


def _check_answer(offer: OptionNegotiate, reply: OptionNegotiateReply) -> None:
    """The reply may only pick from what the MTA offered (milter.c milter_negotiate
    drops a filter that asks for more)."""
    if reply.version > offer.version:
        raise ValueError(f"version {reply.version} is above the MTA's {offer.version}")
    extra = reply.actions & ~(offer.actions or V1_ACTIONS)
    if extra:
        raise ValueError(f"actions {flag_names(SMFIF, extra)} were not offered")
    extra = reply.protocol & ~(offer.protocol or V1_PROTOCOL)
    if extra:
        raise ValueError(f"protocol bits {flag_names(SMFIP, extra)} were not offered")


def negotiate(offer: OptionNegotiate, *, actions: int, skip_steps: int = 0,
              no_reply: int = 0, options: int = 0,
              macros: Mapping[SMFIM, Iterable[str]] | None = None) -> OptionNegotiateReply:
    """The reply to ``offer`` for a filter that needs ``actions`` (SMFIF_*).

    ``skip_steps`` (SMFIP_NO*), ``no_reply`` (SMFIP_NR_*) and ``options`` (SKIP,
    RCPT_REJ, HDR_LEADSPC, MDS_*) are wishes: each bit the MTA does not offer is
    dropped, and the filter then gets that step, must answer it, or goes without the
    option; the codec's ``protocol`` says what was agreed. Of MDS_1M and MDS_256K
    only the larger is kept. ``macros`` lists the macros wanted per stage; they are
    asked for only when the MTA offers SMFIF_SETSYMLIST, else its defaults apply.
    Needed actions are not optional: MilterNegotiationError if one is missing.
    """
    for value, allowed, what in ((actions, ALL_ACTIONS, "actions"),
                                 (skip_steps, NO_STEPS, "skip_steps"),
                                 (no_reply, NO_REPLY, "no_reply"),
                                 (options, OPTIONS, "options")):
        if int(value) & ~allowed:
            raise ValueError(f"{what} holds bits {int(value) & ~allowed:#x} that do not "
                             "belong there")
    if offer.version < PROTOCOL_VERSION_MIN:
        raise MilterNegotiationError(f"MTA protocol version {offer.version} is below "
                                     f"{PROTOCOL_VERSION_MIN}")
    offered_actions = offer.actions or V1_ACTIONS  # engine.c: 0 means version 1
    missing = actions & ~offered_actions
    if missing:
        raise MilterNegotiationError(f"MTA does not offer actions "
                                     f"{flag_names(SMFIF, missing)}")
    protocol = int(skip_steps | no_reply | options) & (offer.protocol or V1_PROTOCOL)
    if protocol & SMFIP.MDS_1M:
        protocol &= ~int(SMFIP.MDS_256K)
    lists: tuple[tuple[SMFIM, tuple[str, ...]], ...] = ()
    if macros and offered_actions & SMFIF.SETSYMLIST:
        actions |= SMFIF.SETSYMLIST
        lists = tuple((SMFIM(stage), tuple(names)) for stage, names in sorted(macros.items()))
    return OptionNegotiateReply(version=min(PROTOCOL_VERSION, offer.version),
                                actions=int(actions), protocol=int(protocol), macros=lists)
