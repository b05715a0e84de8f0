"""Reply values on the wire (RFC 5321 §4.2, RFC 2034) and a next hop's replies read
back with ReplyReader, fed whole, split at every offset and one byte at a time."""

from __future__ import annotations

import pytest

from mailseal.frontends.smtpproxy.client_codec import (
    NEED_DATA,
    ReplyProtocolError,
    ReplyReader,
)
from mailseal.frontends.smtpproxy.replies import Reply, ehlo_keywords
from mailseal.pipeline import model


def test_reply_bytes() -> None:
    assert Reply(250, "2.1.0", "Ok").to_bytes() == b"250 2.1.0 Ok\r\n"
    assert Reply(354, "", "go").to_bytes() == b"354 go\r\n"
    assert Reply(250, "", "mx", ("PIPELINING", "SIZE 10")).to_bytes() == \
        b"250-mx\r\n250-PIPELINING\r\n250 SIZE 10\r\n"
    assert Reply(550, "5.1.1", "a", ("b",)).to_bytes() == b"550-5.1.1 a\r\n550 5.1.1 b\r\n"
    assert Reply(250).to_bytes() == b"250\r\n"
    assert str(Reply(451, "4.4.2", "later")) == "451 4.4.2 later"
    assert Reply.from_pipeline(model.Reply(550, "5.7.1", "no")) == Reply(550, "5.7.1", "no")


@pytest.mark.parametrize(("code", "enhanced", "text"), [
    (199, "", "x"), (600, "", "x"), (250, "5.0.0", "x"), (250, "2.0", "x"), (250, "", "a\r\nb"),
])
def test_reply_refuses_what_cannot_go_on_the_wire(code: int, enhanced: str, text: str) -> None:
    with pytest.raises(ValueError):
        Reply(code, enhanced, text)


WIRE = (b"220 relay.test ESMTP\r\n"
        b"250-relay.test\r\n250-PIPELINING\r\n250-size 1000\r\n250-XFORWARD NAME ADDR\r\n"
        b"250 8BITMIME\r\n"
        b"550-5.1.1 first\r\n550-5.1.1 second\r\n550 5.1.1 third\r\n"
        b"250 ok without enhanced\n"
        b"354\r\n")
REPLIES = [
    Reply(220, "", "relay.test ESMTP"),
    Reply(250, "", "relay.test", ("PIPELINING", "size 1000", "XFORWARD NAME ADDR", "8BITMIME")),
    Reply(550, "5.1.1", "first", ("second", "third")),
    Reply(250, "", "ok without enhanced"),
    Reply(354, "", ""),
]


def read(pieces: list[bytes]) -> list[Reply]:
    reader = ReplyReader()
    out: list[Reply] = []
    for piece in pieces:
        reader.receive_data(piece)
        while (reply := reader.next_reply()) is not NEED_DATA:
            out.append(reply)
    return out


def test_reader_however_split() -> None:
    ways = [[WIRE], [bytes([b]) for b in WIRE], *([WIRE[:i], WIRE[i:]] for i in range(len(WIRE)))]
    for pieces in ways:
        assert read(pieces) == REPLIES


def test_ehlo_keywords() -> None:
    assert ehlo_keywords(REPLIES[1]) == {"PIPELINING": "", "SIZE": "1000",
                                         "XFORWARD": "NAME ADDR", "8BITMIME": ""}


@pytest.mark.parametrize("wire", [b"hello\r\n", b"25 x\r\n", b"250-a\r\n550 b\r\n",
                                  b"250" + b"x" * 5000 + b"\r\n", b"250-x\r\n" * 300,
                                  b"2" * 5000])
def test_reader_refuses_garbage(wire: bytes) -> None:
    with pytest.raises(ReplyProtocolError):
        read([wire])
