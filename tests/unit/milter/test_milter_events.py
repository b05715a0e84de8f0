"""Every SMFIC_* command parsed from its data bytes, and every malformed variant refused
with MilterProtocolError. Byte strings are written out by hand from the protocol."""

from __future__ import annotations

import re

import pytest

from mailseal.frontends.milter import (
    Abort,
    BodyChunk,
    Connect,
    Data,
    EndOfHeaders,
    EndOfMessage,
    Header,
    Helo,
    Macros,
    MailFrom,
    MilterProtocolError,
    OptionNegotiate,
    Quit,
    QuitNewConnection,
    RcptTo,
    Unknown,
)
from mailseal.frontends.milter.events import Event, parse_command

PARSED: list[tuple[bytes, bytes, Event]] = [
    (b"O", b"\x00\x00\x00\x06\x00\x00\x01\xff\x00\x1f\xff\xff",
     OptionNegotiate(version=6, actions=0x1FF, protocol=0x1FFFFF)),
    # Longer negotiation data is reserved for future words and ignored (engine.c).
    (b"O", b"\x00\x00\x00\x02\x00\x00\x00\x01\x00\x00\x00\x00" + b"\x00" * 8,
     OptionNegotiate(version=2, actions=1, protocol=0)),
    (b"D", b"Cj\x00mx.example.com\x00{daemon_name}\x00smtpd\x00",
     Macros("C", {"j": "mx.example.com", "{daemon_name}": "smtpd"})),
    (b"D", b"M", Macros("M", {})),
    (b"D", b"E{empty}\x00\x00", Macros("E", {"{empty}": ""})),
    (b"D", b"Hx\x00caf\xc3\xa9\x00", Macros("H", {"x": "café"})),
    (b"D", b"Rx\x00\xff\x00", Macros("R", {"x": "\udcff"})),
    (b"C", b"client.example.net\x004\xc3\x50192.0.2.7\x00",
     Connect("client.example.net", "4", 50000, "192.0.2.7")),
    (b"C", b"[2001:db8::7]\x006\x00\x192001:db8::7\x00",
     Connect("[2001:db8::7]", "6", 25, "2001:db8::7")),
    (b"C", b"localhost\x00L\x00\x00/run/smtp.sock\x00",
     Connect("localhost", "L", 0, "/run/smtp.sock")),
    (b"C", b"unknown\x00U", Connect("unknown", "U", None, None)),
    (b"C", b"\x004\x00\x01\x00", Connect("", "4", 1, "")),
    (b"H", b"client.example.net\x00", Helo("client.example.net")),
    (b"H", b"\x00", Helo("")),
    (b"M", b"<alice@example.org>\x00SIZE=1024\x00BODY=8BITMIME\x00",
     MailFrom(("<alice@example.org>", "SIZE=1024", "BODY=8BITMIME"))),
    (b"M", b"<>\x00", MailFrom(("<>",))),
    (b"R", b"<bob@example.com>\x00", RcptTo(("<bob@example.com>",))),
    (b"R", b"<bob@example.com>\x00NOTIFY=NEVER\x00",
     RcptTo(("<bob@example.com>", "NOTIFY=NEVER"))),
    (b"T", b"", Data()),
    (b"L", b"Subject\x00Hello there\x00", Header(b"Subject", b"Hello there")),
    (b"L", b"Received\x00from a\n\tby b\x00", Header(b"Received", b"from a\n\tby b")),
    (b"L", b"X-Empty\x00\x00", Header(b"X-Empty", b"")),
    (b"L", b"To\x00  two spaces kept\x00", Header(b"To", b"  two spaces kept")),
    (b"L", b"X-8bit\x00\xe9t\xe9\x00", Header(b"X-8bit", b"\xe9t\xe9")),
    (b"N", b"", EndOfHeaders()),
    (b"B", b"Hello\r\n\r\nworld\r\n", BodyChunk(b"Hello\r\n\r\nworld\r\n")),
    (b"B", b"\x00", BodyChunk(b"\x00")),
    (b"E", b"", EndOfMessage()),
    (b"E", b"last piece\r\n", EndOfMessage(b"last piece\r\n")),
    (b"A", b"", Abort()),
    (b"Q", b"", Quit()),
    (b"K", b"", QuitNewConnection()),
    (b"U", b"XYZZY plugh\x00", Unknown(b"XYZZY plugh")),
]


@pytest.mark.parametrize(("command", "data", "event"), PARSED,
                         ids=[f"{c.decode()}-{i}" for i, (c, _, _) in enumerate(PARSED)])
def test_command_parses(command: bytes, data: bytes, event: Event) -> None:
    assert parse_command(command[0], data) == event


def test_every_mta_command_has_a_parser() -> None:
    assert {c.decode() for c, _, _ in PARSED} == set("ABCDEHKLMNOQRTU")


def test_text_round_trips_any_byte() -> None:
    event = parse_command(ord("H"), b"h\xc0\xff\x80\x00")
    assert isinstance(event, Helo)
    assert event.name.encode("utf-8", "surrogateescape") == b"h\xc0\xff\x80"


MALFORMED: list[tuple[bytes, bytes, str]] = [
    (b"O", b"\x00" * 11, "need 12"),
    (b"D", b"", "no command letter"),
    (b"D", b"Cj\x00", "has no value"),
    (b"D", b"Cj\x00v\x00k\x00", "has no value"),
    (b"D", b"Cj\x00v", "not NUL-terminated"),
    (b"C", b"hostname", "hostname is not NUL-terminated"),
    (b"C", b"host\x00", "family missing"),
    (b"C", b"host\x00X\x00\x19addr\x00", "unknown address family"),
    (b"C", b"host\x004\x00", "port truncated"),
    (b"C", b"host\x004", "port truncated"),
    (b"C", b"host\x004\x00\x19", "expected one NUL-terminated string"),
    (b"C", b"host\x004\x00\x19192.0.2.1", "not NUL-terminated"),
    (b"C", b"host\x004\x00\x19192.0\x00.2.1\x00", "got 2"),
    (b"C", b"host\x00U\x00", "after the unknown family"),
    (b"H", b"", "got 0"),
    (b"H", b"name", "not NUL-terminated"),
    (b"H", b"one\x00two\x00", "got 2"),
    (b"M", b"", "no address"),
    (b"M", b"<a@b>", "not NUL-terminated"),
    (b"R", b"", "no address"),
    (b"R", b"<a@b>\x00SIZE", "not NUL-terminated"),
    (b"L", b"Subject\x00", "got 1 strings"),
    (b"L", b"Subject\x00a\x00b\x00", "got 3 strings"),
    (b"L", b"\x00value\x00", "empty name"),
    (b"L", b"Subject\x00value", "not NUL-terminated"),
    (b"L", b"", "got 0 strings"),
    (b"B", b"", "empty chunk"),
    (b"U", b"", "got 0"),
    (b"U", b"HELP", "not NUL-terminated"),
    (b"T", b"x", "unexpected 1 data bytes"),
    (b"N", b"\x00", "unexpected 1 data bytes"),
    (b"A", b"xy", "unexpected 2 data bytes"),
    (b"Q", b"\x00", "unexpected"),
    (b"K", b"\x00", "unexpected"),
    (b"Z", b"", "unknown milter command b'Z'"),
    (b"\x00", b"", "unknown milter command"),
    (b"c", b"", "unknown milter command b'c'"),
]


@pytest.mark.parametrize(("command", "data", "reason"), MALFORMED,
                         ids=[f"{i}" for i in range(len(MALFORMED))])
def test_malformed_command_is_refused(command: bytes, data: bytes, reason: str) -> None:
    with pytest.raises(MilterProtocolError, match=re.escape(reason)):
        parse_command(command[0], data)
