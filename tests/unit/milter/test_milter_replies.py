"""Every reply's exact bytes, computed by hand from the protocol (4-byte big-endian
length of command byte + data, command byte, data), and the checks made when a reply
is built."""

from __future__ import annotations

import pytest

from mailseal.frontends.milter import (
    SMFIF,
    SMFIM,
    Accept,
    AddHeader,
    ChangeHeader,
    Continue,
    Discard,
    InsertHeader,
    OptionNegotiateReply,
    Progress,
    Quarantine,
    Reject,
    Reply,
    ReplyCode,
    TempFail,
)

EXACT: list[tuple[Reply, bytes]] = [
    (Continue(), b"\x00\x00\x00\x01c"),
    (Accept(), b"\x00\x00\x00\x01a"),
    (Reject(), b"\x00\x00\x00\x01r"),
    (TempFail(), b"\x00\x00\x00\x01t"),
    (Discard(), b"\x00\x00\x00\x01d"),
    (Progress(), b"\x00\x00\x00\x01p"),
    # "550 5.7.1 Rejected 100%% sure" is 29 bytes, + NUL + 'y' = 31.
    (ReplyCode(550, "5.7.1", "Rejected 100% sure"),
     b"\x00\x00\x00\x1fy550 5.7.1 Rejected 100%% sure\x00"),
    (ReplyCode(451, "4.7.5", "DNS timeout, try later"),
     b"\x00\x00\x00\x22y451 4.7.5 DNS timeout, try later\x00"),
    (ReplyCode(421, None, "closing"), b"\x00\x00\x00\x0dy421 closing\x00"),
    (ReplyCode(554, "5.7.0", ""), b"\x00\x00\x00\x0by554 5.7.0\x00"),
    (ReplyCode(550, None, ""), b"\x00\x00\x00\x05y550\x00"),
    (AddHeader(b"X-A", b"b"), b"\x00\x00\x00\x07hX-A\x00b\x00"),
    (AddHeader(b"X-Empty", b""), b"\x00\x00\x00\x0ahX-Empty\x00\x00"),
    # 4 (index) + "Authentication-Results\0" (23) + "mx; none\0" (9) = 36, + 'i' = 37.
    (InsertHeader(0, b"Authentication-Results", b"mx; none"),
     b"\x00\x00\x00\x25i\x00\x00\x00\x00Authentication-Results\x00mx; none\x00"),
    (InsertHeader(0x01020304, b"A", b"folded\n\tline"),
     b"\x00\x00\x00\x14i\x01\x02\x03\x04A\x00folded\n\tline\x00"),
    # 4 + "DKIM-Signature\0" (15) + "\0" (1) = 20, + 'm' = 21: delete the second one.
    (ChangeHeader(2, b"DKIM-Signature", b""),
     b"\x00\x00\x00\x15m\x00\x00\x00\x02DKIM-Signature\x00\x00"),
    (ChangeHeader(1, b"Subject", b"new"),
     b"\x00\x00\x00\x11m\x00\x00\x00\x01Subject\x00new\x00"),
    (Quarantine("forged"), b"\x00\x00\x00\x08qforged\x00"),
    (OptionNegotiateReply(6, 0x11, 0x80),
     b"\x00\x00\x00\x0dO\x00\x00\x00\x06\x00\x00\x00\x11\x00\x00\x00\x80"),
    (OptionNegotiateReply(2, 0, 0),
     b"\x00\x00\x00\x0dO\x00\x00\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00"),
    # 12 + (4 + "j {daemon_name}\0" 16) + (4 + "i\0" 2) = 38, + 'O' = 39.
    (OptionNegotiateReply(6, 0x111, 0x100000,
                          ((SMFIM.CONNECT, ("j", "{daemon_name}")), (SMFIM.EOM, ("i",)))),
     b"\x00\x00\x00\x27O\x00\x00\x00\x06\x00\x00\x01\x11\x00\x10\x00\x00"
     b"\x00\x00\x00\x00j {daemon_name}\x00\x00\x00\x00\x05i\x00"),
    # An empty list asks for no macros at that stage: u32 stage + "\0".
    (OptionNegotiateReply(6, 0x100, 0, ((SMFIM.EOH, ()),)),
     b"\x00\x00\x00\x12O\x00\x00\x00\x06\x00\x00\x01\x00\x00\x00\x00\x00"
     b"\x00\x00\x00\x06\x00"),
]


@pytest.mark.parametrize(("reply", "wire"), EXACT, ids=[repr(r) for r, _ in EXACT])
def test_reply_bytes(reply: Reply, wire: bytes) -> None:
    assert reply.to_bytes() == wire


def test_bare_replies_are_distinct_values() -> None:
    replies: list[object] = [Continue(), Continue(), Accept()]
    assert replies[0] == replies[1]
    assert replies[0] != replies[2]
    assert len({Continue(), Accept(), Reject(), TempFail(), Discard(), Progress()}) == 6


@pytest.mark.parametrize(("code", "enhanced", "text", "reason"), [
    (250, None, "ok", "not 4xx or 5xx"),
    (600, None, "x", "not 4xx or 5xx"),
    (399, "4.0.0", "x", "not 4xx or 5xx"),
    (550, "4.7.1", "x", "does not match"),
    (450, "5.7.1", "x", "does not match"),
    (550, "5.7", "x", "class.subject.detail"),
    (550, "5.7.1000", "x", "class.subject.detail"),
    (550, "3.7.1", "x", "class.subject.detail"),
    (550, "5.7.1", "two\r\nlines", "printable ASCII"),
    (550, "5.7.1", "bare\nlf", "printable ASCII"),
    (550, "5.7.1", "nul\x00", "printable ASCII"),
    (550, "5.7.1", "caf\u00e9", "printable ASCII"),
])
def test_reply_code_is_checked(code: int, enhanced: str | None, text: str,
                               reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        ReplyCode(code, enhanced, text)


def test_reply_code_allows_tab() -> None:
    assert ReplyCode(550, None, "a\tb").to_bytes() == b"\x00\x00\x00\x09y550 a\tb\x00"


@pytest.mark.parametrize(("name", "value", "reason"), [
    (b"", b"v", "field name"),
    (b"Bad Name", b"v", "field name"),
    (b"Bad:Name", b"v", "field name"),
    (b"Na\x00me", b"v", "field name"),
    (b"X-\xe9", b"v", "field name"),
    (b"X", b"nul\x00", "NUL, CR"),
    (b"X", b"crlf\r\n\tfold", "NUL, CR"),
    (b"X", b"bare\nlf", "NUL, CR"),
    (b"X", b"trailing\n", "NUL, CR"),
    (b"X", b"cr\r", "NUL, CR"),
])
def test_header_edits_are_checked(name: bytes, value: bytes, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        AddHeader(name, value)
    with pytest.raises(ValueError, match=reason):
        InsertHeader(0, name, value)
    with pytest.raises(ValueError, match=reason):
        ChangeHeader(1, name, value)


@pytest.mark.parametrize("index", [-1, 2**32])
def test_insert_index_fits_32_bits(index: int) -> None:
    with pytest.raises(ValueError, match="fit in 32 bits"):
        InsertHeader(index, b"X", b"v")


@pytest.mark.parametrize(("index", "reason"), [(0, "1-based"), (-1, "1-based"),
                                               (2**32, "fit in 32 bits")])
def test_change_index_is_1_based_32_bits(index: int, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        ChangeHeader(index, b"X", b"v")


@pytest.mark.parametrize("reason", ["", "two\nlines", "cr\r", "nul\x00"])
def test_quarantine_reason_is_one_line(reason: str) -> None:
    with pytest.raises(ValueError, match="quarantine reason"):
        Quarantine(reason)


def test_quarantine_reason_is_utf8() -> None:
    assert Quarantine("\u00e9").to_bytes() == b"\x00\x00\x00\x04q\xc3\xa9\x00"


@pytest.mark.parametrize(("kwargs", "reason"), [
    ({"version": 1, "actions": 0, "protocol": 0}, "protocol version 1"),
    ({"version": 7, "actions": 0, "protocol": 0}, "protocol version 7"),
    ({"version": 6, "actions": -1, "protocol": 0}, "32 bits"),
    ({"version": 6, "actions": 0, "protocol": 2**32}, "32 bits"),
    ({"version": 6, "actions": 0, "protocol": 0, "macros": ((SMFIM.HELO, ("j",)),)},
     "SETSYMLIST"),
    ({"version": 6, "actions": SMFIF.SETSYMLIST, "protocol": 0,
      "macros": ((SMFIM.HELO, ("j",)), (SMFIM.HELO, ("i",)))}, "repeat"),
    ({"version": 6, "actions": SMFIF.SETSYMLIST, "protocol": 0,
      "macros": ((SMFIM.HELO, ("a b",)),)}, "white space"),
    ({"version": 6, "actions": SMFIF.SETSYMLIST, "protocol": 0,
      "macros": ((SMFIM.HELO, ("",)),)}, "empty"),
    ({"version": 6, "actions": SMFIF.SETSYMLIST, "protocol": 0,
      "macros": ((7, ("i",)),)}, "7 is not a valid SMFIM"),
])
def test_option_reply_is_checked(kwargs: dict[str, object], reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        OptionNegotiateReply(**kwargs)  # type: ignore[arg-type]
