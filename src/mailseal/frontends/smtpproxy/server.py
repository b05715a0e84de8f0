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
from collections.abc import Callable, Sequence
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

#: Octets a client may send ahead of what the session has taken (pipelined commands,
#: content while a reply is awaited) before reading from it pauses.
PAUSE_READING_AT = 1 << 18
#: Replies held for one write at most; a longer pipelined batch gets them in parts (a
#: client that sends without reading then meets the transport's flow control).
HOLD_AT_MOST = 64


class SmtpHandler(Protocol):
    """What an SMTP server does with a client's commands; each answer is a Reply."""

    async def connect(self) -> Reply: ...  # the greeting: 220, or 421 to refuse
    async def helo(self, event: Helo) -> Reply: ...  # EHLO: the reply lists the extensions
    # ahead: the XFORWARD/MAIL/RCPT commands the client pipelined behind this one
    # (SmtpServerCodec.batch_ahead), for a handler that passes them on in one write
    async def xforward(self, event: Xforward, ahead: Sequence[Event]) -> Reply: ...
    async def mail(self, event: Mail, ahead: Sequence[Event]) -> Reply: ...
    async def rcpt(self, event: Rcpt) -> Reply: ...
    async def data(self) -> Reply: ...  # 354 to receive the message
    def content(self, data: bytes) -> None: ...  # message content, streamed
    async def end_of_data(self, event: EndOfData) -> Reply: ...
    async def rset(self) -> Reply: ...
    async def quit(self) -> Reply: ...
    async def close(self) -> None: ...  # always called once, at the end


class SmtpConnection(asyncio.Protocol):
    """One client connection: an asyncio protocol whose bytes go straight into the
    codec (no stream buffer in between: one copy less of every message, and no
    future per read beyond the one the waiting task needs), and one task that
    takes the codec's events in order and answers them.

    ``make_handler(peer_address)`` gives the connection its handler when it is
    made; ``done(connection)`` is called when its task ends. The task is
    ``self.task`` (the listener cancels idle ones when the service stops)."""

    def __init__(self, make_handler: Callable[[str | None], SmtpHandler], *, max_size: int,
                 idle_timeout: float, stopping: asyncio.Event,
                 tls: ssl.SSLContext | None = None,
                 done: Callable[[SmtpConnection], None] | None = None,
                 pause_at: int = PAUSE_READING_AT) -> None:
        self.make_handler = make_handler
        self.codec = SmtpServerCodec(max_size=max_size)
        self.idle_timeout = idle_timeout
        self.stopping = stopping
        self.tls = tls
        self.tls_active = False
        self.done = done
        self.pause_at = pause_at  # octets received ahead of the session before reading pauses
        self.waiting_idle = False  # blocked reading, between transactions
        self.task: asyncio.Task[None] | None = None
        self.transport: asyncio.Transport | None = None
        # Replies wait here while the client's pipelined commands are being answered
        # (RFC 2920 §3.2 lets a server gather them); they go out in one write before
        # the next read, so a client that waits for each reply gets it at once.
        self._held: list[bytes] = []
        self._loop = asyncio.get_running_loop()
        self._data_waiter: asyncio.Future[None] | None = None
        self._drain_waiter: asyncio.Future[None] | None = None
        self._closed: asyncio.Future[None] = self._loop.create_future()
        self._write_paused = False
        self._read_paused = False
        self._unread = 0  # octets received since the codec last ran dry
        self._eof = False
        self._lost = False
        # The idle timeout: one timer per connection, not one per read. It fires at
        # the earliest moment the client can have been idle too long, and looks.
        self._last_active = self._loop.time()
        self._watchdog: asyncio.TimerHandle | None = None

    # -- asyncio.Protocol ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.handler = self.make_handler(peer[0] if isinstance(peer, tuple) else None)
        self.task = self._loop.create_task(self._main())
        self._watchdog = self._loop.call_at(self._last_active + self.idle_timeout,
                                            self._check_idle)

    def data_received(self, data: bytes) -> None:
        self.codec.receive_data(data)
        self._unread += len(data)
        if self._unread > self.pause_at and not self._read_paused and self.transport:
            self._read_paused = True  # a client pushing more than we take: wait
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        self._eof = True
        self._wake()
        return not self.tls_active  # we close, after the replies still due (TLS cannot wait)

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        self._wake()
        if self._drain_waiter is not None and not self._drain_waiter.done():
            self._drain_waiter.set_exception(ConnectionResetError("connection lost"))
        if not self._closed.done():
            self._closed.set_result(None)
        if self._watchdog is not None:
            self._watchdog.cancel()

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        if self._drain_waiter is not None and not self._drain_waiter.done():
            self._drain_waiter.set_result(None)

    def _wake(self) -> None:
        waiter = self._data_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _check_idle(self) -> None:
        now = self._loop.time()
        waiter = self._data_waiter
        idle_since = self._last_active
        if waiter is not None and not waiter.done() and now - idle_since >= self.idle_timeout:
            waiter.set_exception(TimeoutError())
            return
        due = idle_since + self.idle_timeout
        self._watchdog = self._loop.call_at(due if due > now else now + self.idle_timeout,
                                            self._check_idle)

    # -- the session -----------------------------------------------------------------------

    async def _main(self) -> None:
        try:
            await self.run()
        except asyncio.CancelledError:
            # The service stops: the connection is closed and its handler cleaned up
            # (run's finally); end the task quietly, the client will retry.
            pass
        finally:
            if self.done is not None:
                self.done(self)

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
                await self._close()

    async def _close(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
        transport = self.transport
        if transport is None or self._closed.done():
            return
        transport.close()
        if not transport.get_write_buffer_size():
            return  # closed at the loop's next turn: nothing to wait for
        try:
            async with asyncio.timeout(5):  # a client that reads nothing cannot hold us
                await self._closed
        except TimeoutError:
            transport.abort()

    def _write(self, data: bytes) -> None:
        if not self._lost and self.transport is not None:
            self.transport.write(data)

    async def _drain(self) -> None:
        if self._lost:
            raise ConnectionResetError("connection lost")
        if self._write_paused:
            self._drain_waiter = self._loop.create_future()
            try:
                await self._drain_waiter
            finally:
                self._drain_waiter = None

    async def _more(self) -> bool:
        """Wait until the client sent more (it is in the codec then); False at its
        end. The idle timeout runs while waiting."""
        if self._unread:  # it came while the replies were going out
            return True
        if self._eof or self._lost:
            return False
        if self._read_paused and self.transport is not None:
            self._read_paused = False
            self.transport.resume_reading()
        self._last_active = self._loop.time()
        self._data_waiter = waiter = self._loop.create_future()
        try:
            await waiter
        finally:
            self._data_waiter = None
            self._last_active = self._loop.time()
        return not (self._eof or self._lost) or self._unread > 0

    def _say(self, reply: Reply) -> None:
        """A last word before closing (421), after the replies still held, when the
        connection still takes one."""
        if not self.codec.closed and not self._lost:
            with contextlib.suppress(Exception):
                self._write(b"".join(self._held) + self.codec.send_unsolicited(reply))
        self._held.clear()

    async def _serve(self) -> None:
        codec = self.codec
        self._write(codec.send(await self.handler.connect()))
        held = self._held
        while not codec.closed:
            event = codec.next_event()
            if event is NEED_DATA:
                self._unread = 0  # the codec took all there was
                if held:
                    self._write(b"".join(held))
                    held.clear()
                await self._drain()
                if codec.idle and self.stopping.is_set():
                    self._write(codec.send_unsolicited(replies.SHUTTING_DOWN))
                    break
                self.waiting_idle = codec.idle
                try:
                    more = await self._more()
                except asyncio.CancelledError:
                    if self.waiting_idle:  # the service stops (listener.py)
                        self._say(replies.SHUTTING_DOWN)
                    raise
                finally:
                    self.waiting_idle = False
                if not more:
                    return
                continue
            if event is PAUSED:  # cannot happen: every event is answered below
                raise RuntimeError("SMTP codec paused with no reply pending")
            if isinstance(event, Content):
                self.handler.content(event.data)
                continue
            reply = await self._answer(event)
            held.append(codec.send(reply))
            if len(held) >= HOLD_AT_MOST:
                self._write(b"".join(held))
                held.clear()
                await self._drain()
            if isinstance(event, StartTls) and reply.code == 220:
                self._write(b"".join(held))
                held.clear()
                await self._start_tls()
        self._write(b"".join(held))
        held.clear()
        await self._drain()

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
            return await h.xforward(event, self.codec.batch_ahead())
        if isinstance(event, Mail):
            return await h.mail(event, self.codec.batch_ahead())
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
        assert self.tls is not None and self.transport is not None
        await self._drain()
        # Until here the codec dropped whatever came after STARTTLS (it was sent in
        # the clear). start_tls puts TLS between the socket and us before it first
        # waits, so from now on every byte we get has come through the handshake.
        self.codec.tls_started()
        self.tls_active = True
        transport = await self._loop.start_tls(self.transport, self, self.tls,
                                               server_side=True)
        assert transport is not None
        self.transport = transport
