"""The asyncio adapter (server.py) with a handler of the test's own: any object with
the SmtpHandler methods will do; a handler that fails gets the client a 421, never a
silent close, and its ``close()`` runs whatever happened."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from mailseal.frontends.smtpproxy import replies
from mailseal.frontends.smtpproxy.client_codec import NEED_DATA, ReplyReader
from mailseal.frontends.smtpproxy.events import EndOfData, Event, Helo, Mail, Rcpt, Xforward
from mailseal.frontends.smtpproxy.replies import Reply
from mailseal.frontends.smtpproxy.server import PAUSE_READING_AT, SmtpConnection


class Handler:
    def __init__(self) -> None:
        self.content_seen = b""
        self.closed = 0

    async def connect(self) -> Reply:
        return Reply(220, "", "test ESMTP")

    async def helo(self, event: Helo) -> Reply:
        return Reply(250, "", "test", ("PIPELINING",))

    async def xforward(self, event: Xforward, ahead: Sequence[Event] = ()) -> Reply:
        return replies.OK

    async def mail(self, event: Mail, ahead: Sequence[Event] = ()) -> Reply:
        if event.address == "bug@example.com":
            raise RuntimeError("a bug")
        return replies.OK

    async def rcpt(self, event: Rcpt) -> Reply:
        return replies.OK

    async def data(self) -> Reply:
        return replies.START_DATA

    def content(self, data: bytes) -> None:
        self.content_seen += data

    async def end_of_data(self, event: EndOfData) -> Reply:
        return Reply(250, "2.0.0", f"got {event.size}")

    async def rset(self) -> Reply:
        return replies.OK

    async def quit(self) -> Reply:
        return replies.BYE

    async def close(self) -> None:
        self.closed += 1


def converse(wire: bytes, *, pause_at: int = PAUSE_READING_AT) -> tuple[list[Reply], Handler]:
    handler = Handler()

    async def main() -> list[Reply]:
        def connection() -> SmtpConnection:
            return SmtpConnection(lambda peer: handler, max_size=0, idle_timeout=5,
                                  stopping=asyncio.Event(), pause_at=pause_at)

        server = await asyncio.get_running_loop().create_server(connection, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(wire)
        out: list[Reply] = []
        parser = ReplyReader()
        while data := await asyncio.wait_for(reader.read(65536), 5):
            parser.receive_data(data)
            while (reply := parser.next_reply()) is not NEED_DATA:
                assert isinstance(reply, Reply)
                out.append(reply)
        writer.close()
        server.close()
        await server.wait_closed()
        return out

    return asyncio.run(main()), handler


def test_a_pipelined_session_through_the_loop() -> None:
    got, handler = converse(b"EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n"
                            b"x\r\n..y\r\n.\r\nQUIT\r\n")
    assert [str(r) for r in got] == ["220 test ESMTP", "250 test", "250 2.0.0 Ok",
                                     "250 2.0.0 Ok", "354 End data with <CR><LF>.<CR><LF>",
                                     "250 2.0.0 got 7", "221 2.0.0 Bye"]
    assert handler.content_seen == b"x\r\n.y\r\n"
    assert handler.closed == 1


def test_a_failing_handler_gets_the_client_a_421() -> None:
    got, handler = converse(b"EHLO c\r\nMAIL FROM:<bug@example.com>\r\n")
    assert [r.code for r in got] == [220, 250, 421]
    assert str(got[-1]) == "421 4.3.0 Internal error, try again later"
    assert handler.closed == 1


def test_noop_vrfy_and_refusals_are_answered_by_the_loop() -> None:
    got, _ = converse(b"NOOP\r\nVRFY x\r\nFOO\r\nSTARTTLS\r\nQUIT\r\n")
    assert [r.code for r in got] == [220, 250, 252, 500, 502, 221]


def test_a_long_pipelined_batch_is_answered_whole_and_in_order() -> None:
    """Replies go out in parts of a bounded size, not all held for one write."""
    got, _ = converse(b"EHLO c\r\n" + b"NOOP\r\n" * 5000 + b"QUIT\r\n")
    assert [r.code for r in got] == [220, 250, *[250] * 5000, 221]


@pytest.mark.parametrize("pause_at", [1, PAUSE_READING_AT])
def test_a_client_sending_more_than_we_take_is_paused_and_resumed(pause_at: int) -> None:
    """Past ``pause_at`` octets ahead of the session, reading pauses (at 1: after every
    read) and resumes when the session has taken them; nothing is lost."""
    count = 60_000  # 360 KB of commands in one write
    got, _ = converse(b"EHLO c\r\n" + b"NOOP\r\n" * count + b"QUIT\r\n", pause_at=pause_at)
    assert len(got) == count + 3 and got[-1].code == 221
