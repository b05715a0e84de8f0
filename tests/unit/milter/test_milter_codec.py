"""MilterCodec against a Postfix-like MTA wired in memory: a whole session fed at
once, split at every offset, and one byte at a time gives the same events and the
same reply bytes (STYLE habit 1, h11's tests); and the protocol's state rules."""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable

import pytest

from mailseal.frontends.milter import (
    NEED_DATA,
    SMFIF,
    SMFIM,
    SMFIP,
    Abort,
    Accept,
    AddHeader,
    BodyChunk,
    ChangeHeader,
    Connect,
    Continue,
    Data,
    Discard,
    EndOfHeaders,
    EndOfMessage,
    Event,
    Header,
    Helo,
    InsertHeader,
    Macros,
    MailFrom,
    MilterCodec,
    MilterProtocolError,
    OptionNegotiate,
    OptionNegotiateReply,
    Progress,
    Quarantine,
    Quit,
    QuitNewConnection,
    RcptTo,
    Reject,
    Reply,
    ReplyCode,
    Unknown,
    negotiate,
)


def pkt(command: bytes, data: bytes = b"") -> bytes:
    """An MTA packet, framed by hand: u32 length (command + data), command, data."""
    return struct.pack(">I", 1 + len(data)) + command + data


# What Postfix 3.x offers: all version 6 actions and protocol bits (milter8.c).
OFFER = pkt(b"O", struct.pack(">III", 6, 0x1FF, 0x1FFFFF))
CONNECT = pkt(b"C", b"client.example.net\x004\xc3\x50192.0.2.7\x00")
HELO = pkt(b"H", b"client.example.net\x00")

SESSION = b"".join([
    OFFER,
    pkt(b"D", b"Cj\x00mx.example.com\x00{daemon_name}\x00mx\x00"),
    CONNECT,
    pkt(b"D", b"H"),
    HELO,
    pkt(b"D", b"Mi\x00ABC123\x00{auth_authen}\x00alice\x00"),
    pkt(b"M", b"<alice@example.org>\x00SIZE=420\x00"),
    pkt(b"D", b"R{rcpt_addr}\x00bob@example.com\x00"),
    pkt(b"R", b"<bob@example.com>\x00"),
    pkt(b"D", b"Ti\x00ABC123\x00"),
    pkt(b"T"),
    pkt(b"D", b"L"), pkt(b"L", b"From\x00Alice <alice@example.org>\x00"),
    pkt(b"D", b"L"), pkt(b"L", b"Subject\x00hi\x00"),
    pkt(b"D", b"L"), pkt(b"L", b"DKIM-Signature\x00v=1; a=ed25519-sha256;\n\tb=abc\x00"),
    pkt(b"D", b"N"), pkt(b"N"),
    pkt(b"D", b"B"), pkt(b"B", b"Hello Bob.\r\n"),
    pkt(b"D", b"E{msg_id}\x00<1@example.org>\x00"), pkt(b"E"),
    pkt(b"A"),
    pkt(b"Q"),
])

SESSION_EVENTS: list[Event] = [
    OptionNegotiate(6, 0x1FF, 0x1FFFFF),
    Macros("C", {"j": "mx.example.com", "{daemon_name}": "mx"}),
    Connect("client.example.net", "4", 50000, "192.0.2.7"),
    Macros("H", {}),
    Helo("client.example.net"),
    Macros("M", {"i": "ABC123", "{auth_authen}": "alice"}),
    MailFrom(("<alice@example.org>", "SIZE=420")),
    Macros("R", {"{rcpt_addr}": "bob@example.com"}),
    RcptTo(("<bob@example.com>",)),
    Macros("T", {"i": "ABC123"}),
    Data(),
    Macros("L", {}), Header(b"From", b"Alice <alice@example.org>"),
    Macros("L", {}), Header(b"Subject", b"hi"),
    Macros("L", {}), Header(b"DKIM-Signature", b"v=1; a=ed25519-sha256;\n\tb=abc"),
    Macros("N", {}), EndOfHeaders(),
    Macros("B", {}), BodyChunk(b"Hello Bob.\r\n"),
    Macros("E", {"{msg_id}": "<1@example.org>"}), EndOfMessage(),
    Abort(),
    Quit(),
]

CONTINUE = b"\x00\x00\x00\x01c"
SESSION_REPLIES = b"".join([
    # 12 + (4 + "j {daemon_name}\0") + (4 + "i {auth_authen}\0") = 52, + 'O' = 0x35.
    b"\x00\x00\x00\x35O\x00\x00\x00\x06\x00\x00\x01\x11\x00\x00\x00\x80",
    b"\x00\x00\x00\x00j {daemon_name}\x00\x00\x00\x00\x02i {auth_authen}\x00",
    CONTINUE * 7,  # connect, helo, mail, rcpt, data, eoh, body; headers are NR_HDR
    b"\x00\x00\x00\x36i\x00\x00\x00\x00Authentication-Results\x00"
    b"mx.example.com; dkim=pass\x00",
    b"\x00\x00\x00\x0fm\x00\x00\x00\x01X-Forged\x00\x00",
    b"\x00\x00\x00\x01a",
])

NR_ALL = (SMFIP.NR_CONN | SMFIP.NR_HELO | SMFIP.NR_MAIL | SMFIP.NR_RCPT | SMFIP.NR_DATA
          | SMFIP.NR_HDR | SMFIP.NR_EOH | SMFIP.NR_BODY | SMFIP.NR_UNKN)

Responder = Callable[[MilterCodec, Event], list[Reply]]


def filter_replies(codec: MilterCodec, event: Event) -> list[Reply]:
    """A signing filter: headers unanswered, a result inserted on top, one removed."""
    if isinstance(event, OptionNegotiate):
        return [negotiate(event, actions=SMFIF.ADDHDRS | SMFIF.CHGHDRS,
                          no_reply=SMFIP.NR_HDR,
                          macros={SMFIM.ENVFROM: ["i", "{auth_authen}"],
                                  SMFIM.CONNECT: ["j", "{daemon_name}"]})]
    if isinstance(event, EndOfMessage):
        return [InsertHeader(0, b"Authentication-Results", b"mx.example.com; dkim=pass"),
                ChangeHeader(1, b"X-Forged", b""), Accept()]
    return [Continue()]


def drive(chunks: Iterable[bytes], respond: Responder = filter_replies,
          codec: MilterCodec | None = None) -> tuple[list[Event], bytes]:
    """Feed ``chunks`` as reads; answer every event that expects a reply."""
    codec = codec or MilterCodec()
    events: list[Event] = []
    out = bytearray()
    for chunk in chunks:
        codec.receive_data(chunk)
        while (event := codec.next_event()) is not NEED_DATA:
            events.append(event)
            if codec.expects_reply(event):
                for reply in respond(codec, event):
                    out += codec.send(reply)
            assert codec.pending is None
    return events, bytes(out)


def test_session_whole() -> None:
    codec = MilterCodec()
    events, out = drive([SESSION], codec=codec)
    assert events == SESSION_EVENTS
    assert out == SESSION_REPLIES
    assert codec.closed
    assert codec.actions == SMFIF.ADDHDRS | SMFIF.CHGHDRS | SMFIF.SETSYMLIST
    assert codec.protocol == SMFIP.NR_HDR
    assert codec.offer == OptionNegotiate(6, 0x1FF, 0x1FFFFF)


@pytest.mark.parametrize("offset", range(len(SESSION) + 1))
def test_session_split_at_every_offset(offset: int) -> None:
    assert drive([SESSION[:offset], SESSION[offset:]]) == (SESSION_EVENTS, SESSION_REPLIES)


def test_session_byte_by_byte() -> None:
    chunks = [SESSION[i:i + 1] for i in range(len(SESSION))]
    assert drive(chunks) == (SESSION_EVENTS, SESSION_REPLIES)


def test_empty_reads_change_nothing() -> None:
    chunks = [b""] + [c for i in range(len(SESSION)) for c in (SESSION[i:i + 1], b"")]
    assert drive(chunks) == (SESSION_EVENTS, SESSION_REPLIES)


def negotiated(protocol: int = 0, actions: int = SMFIF.ADDHDRS | SMFIF.CHGHDRS) -> MilterCodec:
    codec = MilterCodec()
    codec.receive_data(OFFER)
    event = codec.next_event()
    assert isinstance(event, OptionNegotiate)
    codec.send(OptionNegotiateReply(6, actions, protocol))
    return codec


def take(codec: MilterCodec, data: bytes) -> Event:
    codec.receive_data(data)
    event = codec.next_event()
    assert event is not NEED_DATA
    return event


def at_end_of_message(actions: int = SMFIF.ADDHDRS | SMFIF.CHGHDRS) -> MilterCodec:
    codec = negotiated(protocol=SMFIP.NOCONNECT | SMFIP.NOHELO | SMFIP.NOMAIL | SMFIP.NORCPT
                       | SMFIP.NODATA | SMFIP.NOHDRS | SMFIP.NOEOH | SMFIP.NOBODY,
                       actions=actions)
    assert take(codec, pkt(b"E")) == EndOfMessage()
    return codec


# -- quit and new connection ---------------------------------------------------------------

def test_quit_new_connection_starts_the_next_connection() -> None:
    stream = OFFER + CONNECT + HELO + pkt(b"K") + pkt(b"D", b"Cj\x00mx\x00") + CONNECT + HELO
    events, out = drive([stream])
    assert events == [OptionNegotiate(6, 0x1FF, 0x1FFFFF),
                      SESSION_EVENTS[2], SESSION_EVENTS[4], QuitNewConnection(),
                      Macros("C", {"j": "mx"}), SESSION_EVENTS[2], SESSION_EVENTS[4]]
    assert out.endswith(CONTINUE * 4)


def test_second_connect_without_quit_new_connection_is_refused() -> None:
    with pytest.raises(MilterProtocolError, match="second Connect"):
        drive([OFFER + CONNECT + HELO + CONNECT])


def test_connect_after_other_commands_is_refused() -> None:
    with pytest.raises(MilterProtocolError, match="second Connect"):
        drive([OFFER + HELO + CONNECT])


def test_macros_before_connect_are_fine() -> None:
    events, _ = drive([OFFER + pkt(b"D", b"C") + pkt(b"D", b"C") + CONNECT])
    assert events[-1] == SESSION_EVENTS[2]


def test_negotiation_survives_quit_new_connection() -> None:
    codec = negotiated(protocol=SMFIP.NR_CONN)
    drive([CONNECT + pkt(b"K") + CONNECT], codec=codec)
    assert codec.protocol == SMFIP.NR_CONN
    assert codec.pending is None


def test_quit_closes() -> None:
    codec = negotiated()
    assert take(codec, pkt(b"Q")) == Quit()
    assert codec.closed
    assert codec.next_event() is NEED_DATA
    with pytest.raises(RuntimeError, match="closed"):
        codec.send(Continue())


def test_data_after_quit_is_refused() -> None:
    codec = negotiated()
    codec.receive_data(pkt(b"Q") + pkt(b"A"))
    assert codec.next_event() == Quit()
    with pytest.raises(MilterProtocolError, match="after SMFIC_QUIT"):
        codec.next_event()


# -- negotiation first, once -------------------------------------------------------------

@pytest.mark.parametrize("first", [CONNECT, HELO, pkt(b"D", b"C"), pkt(b"Q"), pkt(b"A")])
def test_option_negotiation_comes_first(first: bytes) -> None:
    with pytest.raises(MilterProtocolError, match="before option negotiation"):
        drive([first])


def test_option_negotiation_only_once() -> None:
    with pytest.raises(MilterProtocolError, match="repeated"):
        drive([OFFER + OFFER])


@pytest.mark.parametrize("early", [CONNECT, pkt(b"D", b"C"), pkt(b"A"), pkt(b"K")])
def test_commands_wait_for_the_negotiation_reply(early: bytes) -> None:
    codec = MilterCodec()
    assert take(codec, OFFER) == OptionNegotiate(6, 0x1FF, 0x1FFFFF)
    with pytest.raises(MilterProtocolError, match="before the option negotiation reply"):
        take(codec, early)


def test_quit_during_negotiation_is_fine() -> None:
    codec = MilterCodec()
    take(codec, OFFER)
    assert take(codec, pkt(b"Q")) == Quit()
    assert codec.closed
    assert codec.negotiated is None


def test_negotiation_needs_the_negotiation_reply() -> None:
    codec = MilterCodec()
    take(codec, OFFER)
    with pytest.raises(RuntimeError, match="answered first"):
        codec.send(Continue())


@pytest.mark.parametrize(("reply", "reason"), [
    (OptionNegotiateReply(6, SMFIF.ADDHDRS, SMFIP.NR_HDR), "version 6 is above"),
    (OptionNegotiateReply(2, SMFIF.CHGHDRS, 0), "actions CHGHDRS were not offered"),
    (OptionNegotiateReply(2, 0, SMFIP.NR_HDR), "protocol bits NR_HDR were not offered"),
    (OptionNegotiateReply(2, 0, SMFIP.NOHELO | 0x40000000),
     "protocol bits 0x40000000 were not offered"),
])
def test_negotiation_reply_must_fit_the_offer(reply: OptionNegotiateReply,
                                              reason: str) -> None:
    codec = MilterCodec()
    take(codec, pkt(b"O", struct.pack(">III", 2, 0x01, 0x7F)))
    with pytest.raises(ValueError, match=reason):
        codec.send(reply)
    assert codec.negotiated is None


def test_zero_offer_means_version_1_sets() -> None:
    codec = MilterCodec()
    take(codec, pkt(b"O", struct.pack(">III", 6, 0, 0)))
    with pytest.raises(ValueError, match="CHGHDRS"):
        codec.send(OptionNegotiateReply(6, 0x1F, 0))
    with pytest.raises(ValueError, match="NR_HDR"):
        codec.send(OptionNegotiateReply(6, 0x0F, 0xFF))
    with pytest.raises(ValueError, match="actions 0x200 were not offered"):
        codec.send(OptionNegotiateReply(6, 0x200, 0))
    with pytest.raises(ValueError, match="bits 0x40000000 were not offered"):
        codec.send(OptionNegotiateReply(6, 0, 0x40000000))
    codec.send(OptionNegotiateReply(6, 0x0F, 0x3F))
    assert codec.actions == 0x0F


# -- one reply at a time -------------------------------------------------------------------

def test_command_while_a_reply_is_pending_is_refused() -> None:
    codec = negotiated()
    assert take(codec, CONNECT) == SESSION_EVENTS[2]
    assert codec.pending == SESSION_EVENTS[2]
    with pytest.raises(MilterProtocolError, match="while the reply to Connect is pending"):
        take(codec, HELO)


@pytest.mark.parametrize("cancel", [pkt(b"A"), pkt(b"Q"), pkt(b"K")])
def test_abort_and_quit_cancel_the_pending_reply(cancel: bytes) -> None:
    codec = negotiated()
    take(codec, CONNECT)
    take(codec, cancel)
    assert codec.pending is None
    with pytest.raises(RuntimeError):
        codec.send(Continue())


def test_no_reply_steps_flow_without_replies() -> None:
    codec = negotiated(protocol=NR_ALL)
    stream = (CONNECT + HELO + pkt(b"U", b"XYZZY\x00") + pkt(b"M", b"<a@b>\x00")
              + pkt(b"R", b"<c@d>\x00") + pkt(b"T") + pkt(b"L", b"A\x00b\x00") + pkt(b"N")
              + pkt(b"B", b"x") + pkt(b"B", b"y") + pkt(b"E"))
    events, out = drive([stream], codec=codec, respond=lambda c, e: [Accept()])
    assert len(events) == 11
    assert events[2] == Unknown(b"XYZZY")
    assert out == b"\x00\x00\x00\x01a"  # only end of message was answered


def test_reply_without_pending_command_is_refused() -> None:
    codec = negotiated()
    with pytest.raises(RuntimeError, match="no command awaits a reply"):
        codec.send(Continue())
    take(codec, pkt(b"D", b"C"))
    with pytest.raises(RuntimeError, match="no command awaits a reply"):
        codec.send(Continue())


def test_option_reply_outside_negotiation_is_refused() -> None:
    codec = negotiated()
    take(codec, CONNECT)
    with pytest.raises(RuntimeError, match="outside option negotiation"):
        codec.send(OptionNegotiateReply(6, 0, 0))


@pytest.mark.parametrize("verdict", [Continue(), Accept(), Reject(), ReplyCode(550, None, "no")])
def test_verdict_ends_the_wait(verdict: Reply) -> None:
    codec = negotiated()
    take(codec, CONNECT)
    assert codec.send(verdict) == verdict.to_bytes()
    assert codec.pending is None


@pytest.mark.parametrize("command", [CONNECT, HELO])
def test_discard_is_not_a_connection_verdict(command: bytes) -> None:
    codec = negotiated()
    take(codec, command)
    with pytest.raises(ValueError, match="Discard"):
        codec.send(Discard())


def test_discard_at_end_of_message() -> None:
    assert at_end_of_message().send(Discard()) == b"\x00\x00\x00\x01d"


# -- edits only at end of message, with their action ----------------------------------------

def test_edits_progress_and_verdict_at_end_of_message() -> None:
    codec = at_end_of_message(actions=SMFIF.ADDHDRS | SMFIF.CHGHDRS | SMFIF.QUARANTINE)
    edits: list[Reply] = [
        Progress(), AddHeader(b"X-A", b"b"), InsertHeader(0, b"X-B", b"c"),
        ChangeHeader(1, b"X-C", b""), Quarantine("forged"), Progress()]
    out = b"".join(codec.send(r) for r in edits)
    assert codec.pending == EndOfMessage()
    assert out.startswith(b"\x00\x00\x00\x01p\x00\x00\x00\x07hX-A\x00b\x00")
    codec.send(Continue())
    assert codec.pending is None


@pytest.mark.parametrize("edit", [AddHeader(b"X", b"v"), InsertHeader(0, b"X", b"v"),
                                  ChangeHeader(1, b"X", b""), Quarantine("r"), Progress()])
def test_edits_only_at_end_of_message(edit: Reply) -> None:
    codec = negotiated(actions=0x1FF)
    take(codec, CONNECT)
    with pytest.raises(RuntimeError, match="only at end of message"):
        codec.send(edit)


@pytest.mark.parametrize(("edit", "actions", "needed"), [
    (AddHeader(b"X", b"v"), SMFIF.CHGHDRS, "ADDHDRS"),
    (InsertHeader(0, b"X", b"v"), SMFIF.CHGHDRS, "ADDHDRS"),
    (ChangeHeader(1, b"X", b""), SMFIF.ADDHDRS, "CHGHDRS"),
    (Quarantine("r"), SMFIF.ADDHDRS | SMFIF.CHGHDRS, "QUARANTINE"),
])
def test_edits_need_their_action(edit: Reply, actions: int, needed: str) -> None:
    codec = at_end_of_message(actions=actions)
    with pytest.raises(ValueError, match=f"SMFIF_{needed}, not negotiated"):
        codec.send(edit)


# -- which commands expect a reply ----------------------------------------------------------

EVENTS_AND_BITS: list[tuple[Event, int]] = [
    (Connect("h", "U", None, None), SMFIP.NR_CONN),
    (Helo("h"), SMFIP.NR_HELO),
    (MailFrom(("<>",)), SMFIP.NR_MAIL),
    (RcptTo(("<a@b>",)), SMFIP.NR_RCPT),
    (Data(), SMFIP.NR_DATA),
    (Unknown(b"X"), SMFIP.NR_UNKN),
    (Header(b"A", b"b"), SMFIP.NR_HDR),
    (EndOfHeaders(), SMFIP.NR_EOH),
    (BodyChunk(b"x"), SMFIP.NR_BODY),
]


@pytest.mark.parametrize(("event", "bit"), EVENTS_AND_BITS)
def test_expects_reply_follows_its_no_reply_bit(event: Event, bit: int) -> None:
    assert negotiated().expects_reply(event)
    assert not negotiated(protocol=bit).expects_reply(event)
    others = sum(b for _, b in EVENTS_AND_BITS) & ~bit
    assert negotiated(protocol=others).expects_reply(event)


@pytest.mark.parametrize("event", [Macros("C", {}), Abort(), Quit(), QuitNewConnection()])
def test_never_answered(event: Event) -> None:
    assert not negotiated().expects_reply(event)


@pytest.mark.parametrize("event", [OptionNegotiate(6, 0, 0), EndOfMessage()])
def test_always_answered(event: Event) -> None:
    assert negotiated(protocol=NR_ALL).expects_reply(event)


# -- framing bounds -----------------------------------------------------------------------

def test_zero_length_packet_is_refused() -> None:
    with pytest.raises(MilterProtocolError, match="length 0"):
        drive([b"\x00\x00\x00\x00"])


def test_oversized_packet_is_refused_from_its_header() -> None:
    codec = MilterCodec(max_packet=100)
    codec.receive_data(b"\x00\x00\x00\x65")  # 101, and none of the data has come
    with pytest.raises(MilterProtocolError, match="101 bytes is over the limit of 100"):
        codec.next_event()


def test_packet_at_the_limit_is_fine() -> None:
    limited = MilterCodec(max_packet=100)
    limited.receive_data(OFFER)
    limited.next_event()
    limited.send(OptionNegotiateReply(6, 0, SMFIP.NR_BODY))
    limited.receive_data(pkt(b"B", b"x" * 99))
    assert limited.next_event() == BodyChunk(b"x" * 99)


def test_default_limit_takes_a_1m_body_chunk() -> None:
    codec = negotiated(protocol=SMFIP.NOCONNECT | SMFIP.NOHELO | SMFIP.NOMAIL
                       | SMFIP.NORCPT | SMFIP.NODATA | SMFIP.NOHDRS | SMFIP.NOEOH
                       | SMFIP.NR_BODY)
    chunk = b"a" * (1024 * 1024 - 1)  # SMFIP_MDS_1M: data up to 1 MiB - 1
    assert take(codec, pkt(b"B", chunk)) == BodyChunk(chunk)
    codec.receive_data(b"\x7f\xff\xff\xff")
    with pytest.raises(MilterProtocolError, match="over the limit"):
        codec.next_event()


def test_limit_must_hold_option_negotiation() -> None:
    with pytest.raises(ValueError, match="cannot hold"):
        MilterCodec(max_packet=12)


def test_unknown_command_byte_is_refused() -> None:
    with pytest.raises(MilterProtocolError, match="unknown milter command"):
        drive([OFFER + pkt(b"X")])


def test_failure_sticks() -> None:
    codec = MilterCodec()
    codec.receive_data(pkt(b"Z"))
    with pytest.raises(MilterProtocolError, match="unknown milter command"):
        codec.next_event()
    codec.receive_data(OFFER)
    with pytest.raises(MilterProtocolError, match="already failed"):
        codec.next_event()
    with pytest.raises(RuntimeError, match="failed"):
        codec.send(Continue())
