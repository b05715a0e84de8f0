"""The proxy's next hop: a small asyncio SMTP client over ``ReplyReader`` and
``Stuffer``, on an asyncio protocol whose bytes go straight into the reply parser.

Every step is bounded in time (connect, each command, the message, the final reply),
and every way the next hop can fail — refused connection, timeout, lost connection,
garbage — comes back as a ``Reply`` value, not an exception: a 451 4.4.x naming the
next hop and the step, so the proxy's own client keeps the message and retries
(RFC 5321 §4.2.5: after a lost connection the outcome is unknown, and a transient
reply is the one that loses nothing). The connection is closed after a failure;
``connected`` says whether it can still be used.

A next hop's 421 means it is closing (RFC 5321 §3.8): it is passed on as 451 with
the same text, so only the transaction fails, not the client's session.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from mailseal.frontends.smtpproxy.client_codec import (
    NEED_DATA,
    ReplyProtocolError,
    ReplyReader,
)
from mailseal.frontends.smtpproxy.replies import Reply, ehlo_keywords

WRITE_BLOCK = 256 * 1024


@dataclass(frozen=True)
class RelayTimeouts:
    connect: float = 10.0  # TCP connect and greeting
    command: float = 60.0  # each command's reply, and each write of the message
    data: float = 60.0  # the reply to the end of the message


class _Wire(asyncio.Protocol):
    """The next-hop connection's transport side: replies are parsed as they come, and
    the one task that waits for them is woken."""

    def __init__(self, replies: ReplyReader) -> None:
        self.replies = replies
        self.transport: asyncio.Transport | None = None
        self.closed = False  # the next hop closed, or the connection was lost
        self.waiter: asyncio.Future[None] | None = None
        self.write_paused = False
        self.drain_waiter: asyncio.Future[None] | None = None
        # Waits fail with TimeoutError after the deadline (loop time). One timer at a
        # time, made when a deadline is set and none runs: not one per command.
        self.deadline = math.inf
        self._watchdog: asyncio.TimerHandle | None = None

    def expire_at(self, deadline: float) -> None:
        self.deadline = deadline
        watchdog = self._watchdog
        if watchdog is None or watchdog.when() > deadline:
            if watchdog is not None:
                watchdog.cancel()
            self._watchdog = asyncio.get_running_loop().call_at(deadline, self._check)

    def stop(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None

    def _check(self) -> None:
        self._watchdog = None
        loop = asyncio.get_running_loop()
        if loop.time() < self.deadline:  # the deadline moved on meanwhile
            self._watchdog = loop.call_at(self.deadline, self._check)
            return
        for waiter in (self.waiter, self.drain_waiter):
            if waiter is not None and not waiter.done():
                waiter.set_exception(TimeoutError())

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.replies.receive_data(data)
        self._wake()

    def eof_received(self) -> bool:
        self.closed = True
        self._wake()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.stop()
        self._wake()
        waiter = self.drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(ConnectionResetError("connection lost"))

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        waiter = self.drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def write(self, data: bytes) -> None:
        if self.closed or self.transport is None:
            raise ConnectionResetError("connection closed by the next hop")
        self.transport.write(data)

    async def drain(self) -> None:
        if self.closed:
            raise ConnectionResetError("connection closed by the next hop")
        if self.write_paused:
            self.drain_waiter = asyncio.get_running_loop().create_future()
            try:
                await self.drain_waiter
            finally:
                self.drain_waiter = None

    async def read(self) -> Reply:
        while True:
            reply = self.replies.next_reply()
            if reply is not NEED_DATA:
                return reply
            if self.closed:
                raise ConnectionResetError("connection closed by the next hop")
            self.waiter = asyncio.get_running_loop().create_future()
            try:
                await self.waiter
            finally:
                self.waiter = None


class Relay:
    def __init__(self, host: str, port: int, timeouts: RelayTimeouts = RelayTimeouts()) -> None:
        self.host = host
        self.port = port
        self.timeouts = timeouts
        self.extensions: dict[str, str] = {}  # from its EHLO reply
        self._wire: _Wire | None = None
        self.idle_since = 0.0  # when it was parked in a RelayPool

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def connected(self) -> bool:
        """Usable as far as we know: not closed by us, nor seen closed by the next hop."""
        return self._wire is not None and not self._wire.closed

    async def open(self) -> Reply:
        """Connect and read the greeting (which is returned, whatever its code)."""
        self.close()
        wire = _Wire(ReplyReader())
        try:
            async with asyncio.timeout(self.timeouts.connect):
                await asyncio.get_running_loop().create_connection(
                    lambda: wire, self.host, self.port)
                self._wire = wire
                greeting = await wire.read()
        except (OSError, TimeoutError, ReplyProtocolError) as exc:
            return self._fail("connect", exc, code=421, enhanced="4.4.1")
        if greeting.code != 220:
            self.close()
        return greeting

    async def hello(self, name: str) -> Reply:
        """EHLO, or HELO when the next hop does not know EHLO (RFC 5321 §3.2)."""
        self.extensions = {}
        reply = await self.command(f"EHLO {name}")
        if reply.code == 250:
            self.extensions = ehlo_keywords(reply)
        elif self.connected and reply.code in (500, 502):
            reply = await self.command(f"HELO {name}")
        return reply

    async def command(self, line: str) -> Reply:
        return (await self.commands([line]))[0]

    async def commands(self, lines: list[str]) -> list[Reply]:
        """Commands in one write (RFC 2920 pipelining: the caller checked the next hop
        offers it, for more than one), and their replies in order. A failure answers
        the command it happened at and every one after it."""
        answers: list[Reply] = []
        verb = lines[0].partition(" ")[0].upper()
        wire = self._wire
        if wire is None:
            return [self._fail(verb, ConnectionError("not connected"))] * len(lines)
        try:
            wire.expire_at(asyncio.get_running_loop().time() + self.timeouts.command)
            wire.write("".join(line + "\r\n" for line in lines)
                       .encode("utf-8", "surrogateescape"))
            await wire.drain()
            for line in lines:
                verb = line.partition(" ")[0].upper()
                reply = self._closing(await wire.read())
                answers.append(reply)
                if not self.connected:  # a 421: what came after it never happened
                    return answers + [reply] * (len(lines) - len(answers))
        except (OSError, TimeoutError, ReplyProtocolError) as exc:
            failure = self._fail(verb, exc)
            return answers + [failure] * (len(lines) - len(answers))
        return answers

    async def send_data(self, wire: Iterable[bytes]) -> Reply:
        """After 354: the content as it goes on the wire (dot-stuffed, ending with the
        lone dot: see ``dotstuff.Stuffer``), then the reply to it."""
        return await self._write_content(wire, "message")

    async def _write_content(self, wire: Iterable[bytes], step: str) -> Reply:
        """Write ``wire`` in blocks of ``WRITE_BLOCK`` octets (one system call each, not
        one per chunk), then read the final reply."""
        hop = self._wire
        if hop is None:
            return self._fail(step, ConnectionError("not connected"))
        loop = asyncio.get_running_loop()
        try:
            block: list[bytes] = []
            size = 0
            for piece in wire:
                block.append(piece)
                size += len(piece)
                if size >= WRITE_BLOCK:
                    hop.write(b"".join(block))
                    block, size = [], 0
                    if hop.write_paused:
                        hop.expire_at(loop.time() + self.timeouts.command)
                        await hop.drain()
            hop.write(b"".join(block))
            step = "end of data"
            hop.expire_at(loop.time() + self.timeouts.data)
            await hop.drain()
            reply = await hop.read()
        except (OSError, TimeoutError, ReplyProtocolError) as exc:
            return self._fail(step, exc)
        return self._closing(reply)

    async def send_chunk(self, content: Iterable[bytes], size: int) -> Reply:
        """CHUNKING (RFC 3030): the whole message as one ``BDAT size LAST`` chunk, its
        octets as they are (no dot-stuffing, no end mark to scan for), and the reply.
        One round trip less than DATA. ``size`` must be the octets ``content`` yields."""
        return await self._write_content(_prefixed(f"BDAT {size} LAST\r\n".encode(), content),
                                         "BDAT")

    async def quit(self) -> None:
        """QUIT and close, briefly and quietly: the session is over either way."""
        wire = self._wire
        if wire is not None:
            with contextlib.suppress(OSError, TimeoutError, ReplyProtocolError):
                async with asyncio.timeout(min(self.timeouts.command, 5.0)):
                    wire.write(b"QUIT\r\n")
                    await wire.drain()
                    await wire.read()
        self.close()

    def close(self) -> None:
        wire, self._wire = self._wire, None
        if wire is not None:
            wire.stop()
            if wire.transport is not None:
                wire.transport.abort()

    def _closing(self, reply: Reply) -> Reply:
        if reply.code != 421:
            return reply
        self.close()
        return Reply(451, reply.enhanced or "4.4.2", reply.text, reply.more)

    def _fail(self, step: str, exc: BaseException, *, code: int = 451,
              enhanced: str = "4.4.2") -> Reply:
        self.close()
        if isinstance(exc, TimeoutError):
            why = "timed out"
        elif isinstance(exc, ConnectionRefusedError):
            why = "connection refused"
        else:
            why = str(exc) or type(exc).__name__
        why = "".join(c if " " <= c <= "~" else "?" for c in why)[:120]
        return Reply(code, enhanced, f"next hop {self.address}: {step}: {why}")


def _prefixed(first: bytes, rest: Iterable[bytes]) -> Iterator[bytes]:
    yield first
    yield from rest


class RelayPool:
    """Next-hop connections left idle by one client, kept for the next.

    Before the queue, Postfix opens one proxy connection per message: without a pool
    each would cost the next hop (a Postfix smtpd) a connection, a greeting and a QUIT.
    A connection is parked only between transactions with nothing pending (no XFORWARD
    sent since the last transaction either: it would carry over), for at most
    ``idle`` seconds (Postfix's smtpd drops idle clients after 10 s under load). The
    next client's EHLO is answered from its known extensions; the first command sent
    on it checks it is still alive, and a dead one is replaced by a new connection
    before the client is answered (proxy.py)."""

    def __init__(self, host: str, port: int, *, size: int = 32, idle: float = 10.0) -> None:
        self.host = host
        self.port = port
        self.size = size
        self.idle = idle
        self._idle: list[Relay] = []
        self.closed = False  # the service stops: nothing is parked any more

    def take(self, timeouts: RelayTimeouts) -> Relay:
        """A parked connection (most recent first), or a new, unconnected Relay."""
        now = time.monotonic()
        while self._idle:
            relay = self._idle.pop()
            if relay.connected and now - relay.idle_since < self.idle:
                relay.timeouts = timeouts
                return relay
            relay.close()
        return Relay(self.host, self.port, timeouts)

    def give(self, relay: Relay, *, used: bool = True) -> None:
        """Park ``relay``; ``used=False`` when the client gave it no command: its age
        then still counts from its last use."""
        if self.closed or not relay.connected or len(self._idle) >= self.size:
            relay.close()
            return
        if used:
            relay.idle_since = time.monotonic()
        self._idle.append(relay)

    def close(self) -> None:
        self.closed = True
        while self._idle:
            self._idle.pop().close()
