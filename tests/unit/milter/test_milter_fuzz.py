"""Hypothesis: whatever bytes the MTA sends, the codec raises nothing but
MilterProtocolError (STYLE habit 11), however the bytes are split; and header
fields survive the trip through the wire format unchanged."""

from __future__ import annotations

import contextlib
import itertools
import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from mailseal.frontends.milter import (
    NEED_DATA,
    SMFIF,
    SMFIP,
    SMFIR,
    AddHeader,
    ChangeHeader,
    Continue,
    EndOfMessage,
    Event,
    Header,
    InsertHeader,
    MilterCodec,
    MilterProtocolError,
    OptionNegotiate,
    Progress,
    negotiate,
)
from mailseal.frontends.milter.events import parse_command


def pkt(command: bytes, data: bytes = b"") -> bytes:
    return struct.pack(">I", 1 + len(data)) + command + data


OFFER = pkt(b"O", struct.pack(">III", 6, 0x1FF, 0x1FFFFF))
COMMANDS = b"ABCDEHKLMNOQRTU"
# Characters that matter to the parsers: separators, families, folding, braces.
ALPHABET = b"\x00\x00 :\r\n\t4U6L{}<>"
TINY = st.binary(max_size=24).map(lambda raw: bytes(ALPHABET[b % len(ALPHABET)] for b in raw))


def feed(stream: bytes, cuts: list[int], events: list[Event] | None = None) -> None:
    """Feed ``stream`` cut at ``cuts``, answering as a real filter would, collecting
    the events; MilterProtocolError may come out, nothing else."""
    codec = MilterCodec(max_packet=4096)
    events = [] if events is None else events
    bounds = [0, *sorted(c % (len(stream) + 1) for c in cuts), len(stream)]
    for start, end in itertools.pairwise(bounds):
        codec.receive_data(stream[start:end])
        while (event := codec.next_event()) is not NEED_DATA:
            events.append(event)
            if not codec.expects_reply(event):
                continue
            if isinstance(event, OptionNegotiate):
                codec.send(negotiate(event, actions=0, no_reply=SMFIP.NR_HDR))
            elif isinstance(event, EndOfMessage):
                codec.send(Progress())
                codec.send(Continue())
            else:
                codec.send(Continue())


def feed_safely(stream: bytes, cuts: list[int]) -> None:
    with contextlib.suppress(MilterProtocolError):
        feed(stream, cuts)


@settings(max_examples=300)
@given(st.binary(max_size=200), st.lists(st.integers(min_value=0), max_size=4))
def test_arbitrary_bytes(stream: bytes, cuts: list[int]) -> None:
    feed_safely(stream, cuts)


@settings(max_examples=300)
@given(st.binary(max_size=200), st.lists(st.integers(min_value=0), max_size=4))
def test_arbitrary_bytes_after_negotiation(tail: bytes, cuts: list[int]) -> None:
    feed_safely(OFFER + tail, cuts)


packets = st.builds(
    lambda command, data: pkt(bytes((command,)), data),
    st.sampled_from(COMMANDS) | st.integers(0, 255),
    TINY | st.binary(max_size=40),
)


@settings(max_examples=500)
@given(st.lists(packets, max_size=12), st.lists(st.integers(min_value=0), max_size=3))
def test_well_framed_packets_of_any_content(body: list[bytes], cuts: list[int]) -> None:
    feed_safely(OFFER + b"".join(body), cuts)


@settings(max_examples=300)
@given(st.integers(0, 255), TINY | st.binary(max_size=64))
def test_every_parser_raises_only_protocol_errors(command: int, data: bytes) -> None:
    with contextlib.suppress(MilterProtocolError):
        parse_command(command, data)


@given(st.binary(max_size=300), st.lists(st.integers(min_value=0), max_size=6))
def test_splitting_never_changes_the_outcome(tail: bytes, cuts: list[int]) -> None:
    def outcome(cut_at: list[int]) -> tuple[list[Event], bool]:
        events: list[Event] = []
        try:
            feed(OFFER + tail, cut_at, events)
        except MilterProtocolError:
            return events, True
        return events, False

    assert outcome(cuts) == outcome([])


field_names = st.binary(min_size=1, max_size=30).map(
    lambda raw: bytes(33 + b % 94 for b in raw).replace(b":", b"_"))
nul_free = st.binary(max_size=200).map(lambda raw: raw.replace(b"\x00", b"\x01"))
# What a filter may send: NUL-free, CR-free, and every LF starts a folded line.
sendable = nul_free.map(
    lambda raw: raw.replace(b"\r", b"").replace(b"\n", b"\n\t"))


@given(field_names, nul_free)
def test_header_from_the_mta_keeps_its_bytes(name: bytes, value: bytes) -> None:
    assert parse_command(ord("L"), name + b"\x00" + value + b"\x00") == Header(name, value)


@given(field_names, sendable)
def test_header_edits_use_the_header_wire_format(name: bytes, value: bytes) -> None:
    """SMFIR_ADDHEADER's data is SMFIC_HEADER's data: parse one as the other."""
    wire = AddHeader(name, value).to_bytes()
    assert wire[4] == SMFIR.ADDHEADER
    assert parse_command(ord("L"), wire[5:]) == Header(name, value)
    for edit in (InsertHeader(7, name, value), ChangeHeader(7, name, value)):
        wire = edit.to_bytes()
        assert wire[5:9] == b"\x00\x00\x00\x07"
        assert parse_command(ord("L"), wire[9:]) == Header(name, value)
        assert struct.unpack(">I", wire[:4])[0] == len(wire) - 4


@given(field_names, sendable)
def test_header_round_trip_through_the_codec(name: bytes, value: bytes) -> None:
    codec = MilterCodec()
    codec.receive_data(OFFER)
    offer = codec.next_event()
    assert isinstance(offer, OptionNegotiate)
    codec.send(negotiate(offer, actions=SMFIF.ADDHDRS, no_reply=SMFIP.NR_HDR))
    codec.receive_data(pkt(b"L", name + b"\x00" + value + b"\x00") + pkt(b"E"))
    header = codec.next_event()
    assert header == Header(name, value)
    assert codec.next_event() == EndOfMessage()
    assert isinstance(header, Header)
    wire = codec.send(AddHeader(header.name, header.value))
    assert wire == pkt(b"h", name + b"\x00" + value + b"\x00")
