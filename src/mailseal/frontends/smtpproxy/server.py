"""The thin asyncio side of the SMTP server: one task per client connection moves
bytes between the socket and ``SmtpServerCodec`` and asks an ``SmtpHandler`` for the
answer to each command.

The handler is a ``Protocol`` with one method per command; the loop picks the method
by the event's type, so nothing is looked up by name. NOOP, VRFY, STARTTLS and the
codec's own refusals are answered here; everything else is the handler's.

Replies to a pipelined batch (RFC 2920) are gathered and written in one go when the
batch is used up. A client idle longer than ``idle_timeout`` gets 421 and is
closed. When the service stops, an idle client gets 421 at once; one in the middle
of a transaction finishes it first. Whatever ends the connection — QUIT, EOF, a reset,
a timeout, cancellation — the handler's ``close()`` runs, so the handler frees its
next-hop connection and its spool.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from typing import Protocol

from mailseal.frontends.smtpproxy import replies
from mailseal.frontends.smtpproxy.events import (
    Content,
    Data,
    EndOfData,
    Event,
    Helo,
    Mail,
    Noop,
    Quit,
    Rcpt,
    Refused,
    Rset,
    StartTls,
    Vrfy,
    Xforward,
)
from mailseal.frontends.smtpproxy.replies import Reply
from mailseal.frontends.smtpproxy.server_codec import NEED_DATA, PAUSED, SmtpServerCodec

log = logging.getLogger("mailseal.proxy")

READ_SIZE = 1 << 18  # what a loopback socket holds: fewer, larger reads


class SmtpHandler(Protocol):
    """What an SMTP server does with a client's commands; each answer is a Reply."""

    async def connect(self) -> Reply: ...  # the greeting: 220, or 421 to refuse
    async def helo(self, event: Helo) -> Reply: ...  # EHLO: the reply lists the extensions
    async def xforward(self, event: Xforward) -> Reply: ...
    async def mail(self, event: Mail) -> Reply: ...
    async def rcpt(self, event: Rcpt) -> Reply: ...
    async def data(self) -> Reply: ...  # 354 to receive the message
    def content(self, data: bytes) -> None: ...  # message content, streamed
    async def end_of_data(self, event: EndOfData) -> Reply: ...
    async def rset(self) -> Reply: ...
    async def quit(self) -> Reply: ...
    async def close(self) -> None: ...  # always called once, at the end


class SmtpConnection:
    def __init__(self, handler: SmtpHandler, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter, *, max_size: int, idle_timeout: float,
                 stopping: asyncio.Event, tls: ssl.SSLContext | None = None) -> None:
        self.handler = handler
        self.reader = reader
        self.writer = writer
        self.codec = SmtpServerCodec(max_size=max_size)
        self.idle_timeout = idle_timeout
        self.stopping = stopping
        self.tls = tls
        self.tls_active = False
        self.waiting_idle = False  # blocked reading, between transactions
        # Replies wait here while the client's pipelined commands are being answered
        # (RFC 2920 §3.2 lets a server gather them); they go out in one write before
        # the next read, so a client that waits for each reply gets it at once.
        self._held: list[bytes] = []

    async def run(self) -> None:
        try:
            await self._serve()
        except TimeoutError:
            self._say(replies.TIMEOUT)
        except (ConnectionError, OSError, ssl.SSLError) as exc:
            log.debug("client connection ended: %s", exc)
        except Exception:  # a bug: say so and close; the client keeps the message and retries
            log.exception("internal error in an SMTP session; closing it with 421")
            self._say(replies.INTERNAL_ERROR)
        finally:
            try:
                await self.handler.close()
            finally:
                self.writer.close()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self.writer.wait_closed(), 5)

    def _say(self, reply: Reply) -> None:
        """A last word before closing (421), after the replies still held, when the
        connection still takes one."""
        if not self.codec.closed and not self.writer.is_closing():
            with contextlib.suppress(Exception):
                self.writer.write(b"".join(self._held) + self.codec.send_unsolicited(reply))
        self._held.clear()

    async def _serve(self) -> None:
        codec, writer = self.codec, self.writer
        writer.write(codec.send(await self.handler.connect()))
        held = self._held
        while not codec.closed:
            event = codec.next_event()
            if event is NEED_DATA:
                if held:
                    writer.write(b"".join(held))
                    held.clear()
                await writer.drain()
                if codec.idle and self.stopping.is_set():
                    writer.write(codec.send_unsolicited(replies.SHUTTING_DOWN))
                    break
                self.waiting_idle = codec.idle
                try:
                    async with asyncio.timeout(self.idle_timeout):
                        data = await self.reader.read(READ_SIZE)
                except asyncio.CancelledError:
                    if self.waiting_idle:  # the service stops (listener.py)
                        self._say(replies.SHUTTING_DOWN)
                    raise
                finally:
                    self.waiting_idle = False
                if not data:
                    return
                codec.receive_data(data)
                continue
            if event is PAUSED:  # cannot happen: every event is answered below
                raise RuntimeError("SMTP codec paused with no reply pending")
            if isinstance(event, Content):
                self.handler.content(event.data)
                continue
            reply = await self._answer(event)
            held.append(codec.send(reply))
            if isinstance(event, StartTls) and reply.code == 220:
                writer.write(b"".join(held))
                held.clear()
                await self._start_tls()
        writer.write(b"".join(held))
        await writer.drain()

    async def _answer(self, event: Event) -> Reply:
        h = self.handler
        if isinstance(event, Refused):
            return event.reply
        if isinstance(event, Helo):
            reply = await h.helo(event)
            if event.extended and reply.code == 250 and self.tls and not self.tls_active:
                reply = Reply(reply.code, reply.enhanced, reply.text, (*reply.more, "STARTTLS"))
            return reply
        if isinstance(event, Xforward):
            return await h.xforward(event)
        if isinstance(event, Mail):
            return await h.mail(event)
        if isinstance(event, Rcpt):
            return await h.rcpt(event)
        if isinstance(event, Data):
            return await h.data()
        if isinstance(event, EndOfData):
            return await h.end_of_data(event)
        if isinstance(event, Rset):
            return await h.rset()
        if isinstance(event, Quit):
            return await h.quit()
        if isinstance(event, Noop):
            return replies.OK
        if isinstance(event, Vrfy):
            return replies.CANNOT_VRFY
        if isinstance(event, StartTls):
            return replies.START_TLS
        raise TypeError(f"unexpected event {event!r}")

    async def _start_tls(self) -> None:
        assert self.tls is not None
        await self.writer.drain()
        await self.writer.start_tls(self.tls)
        self.tls_active = True
        self.codec.tls_started()
