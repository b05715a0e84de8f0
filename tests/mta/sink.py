"""``MailSink``: an SMTP capture server (aiosmtpd in a thread with its own loop) that
keeps every message as received and can be told how to answer each DATA."""

from __future__ import annotations

import asyncio
import enum
import json
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from aiosmtpd.smtp import SMTP, syntax

from mta.tools import (
    LOOPBACK,
)

# -- the capture sink -----------------------------------------------------------------


class Outcome(enum.Enum):
    """What the sink does with one DATA transaction."""

    ACCEPT = "accept"  # keep the message, reply 250
    REPLY = "reply"  # keep nothing, send the action's (4xx/5xx) reply
    # Close after the first bytes of data, no reply. On loopback the client may have
    # written the whole message into socket buffers already: Postfix then logs "lost
    # connection ... while sending end of data", as for DROP_BEFORE_REPLY.
    DROP_MID_DATA = "drop-mid-data"
    DROP_BEFORE_REPLY = "drop-before-reply"  # read all data, close without a reply
    ACCEPT_THEN_CLOSE = "accept-then-close"  # keep the message, reply 250, close


@dataclass(frozen=True)
class DataAction:
    outcome: Outcome = Outcome.ACCEPT
    reply: str = "250 2.0.0 Ok: queued"

    @classmethod
    def accept(cls) -> DataAction:
        return cls()

    @classmethod
    def reject(cls, code: int = 451, text: str = "4.3.0 Try again later") -> DataAction:
        if not 400 <= code <= 599:
            raise ValueError(f"a rejection needs a 4xx or 5xx code, not {code}")
        return cls(Outcome.REPLY, f"{code} {text}")

    @classmethod
    def drop_mid_data(cls) -> DataAction:
        return cls(Outcome.DROP_MID_DATA)

    @classmethod
    def drop_before_reply(cls) -> DataAction:
        return cls(Outcome.DROP_BEFORE_REPLY)

    @classmethod
    def accept_then_close(cls) -> DataAction:
        return cls(Outcome.ACCEPT_THEN_CLOSE)


@dataclass(frozen=True)
class SinkMessage:
    """One DATA transaction as the sink saw it."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes  # dot-unstuffed, CRLF line ends as sent; DROP_MID_DATA: first raw bytes
    mail_options: tuple[str, ...]
    helo: str
    outcome: Outcome

    @property
    def header(self) -> bytes:
        """The header section, up to and including the CRLF ending its last field."""
        end = self.data.find(b"\r\n\r\n")
        return self.data if end < 0 else self.data[:end + 2]

    @property
    def body(self) -> bytes:
        end = self.data.find(b"\r\n\r\n")
        return b"" if end < 0 else self.data[end + 4:]

    def fields(self, name: str) -> list[bytes]:
        """Raw header fields named ``name`` (case-insensitive), folding kept, in order."""
        wanted = name.lower().encode() + b":"
        raw = re.split(rb"\r\n(?![ \t])", self.header)
        return [f + b"\r\n" for f in raw if f.lower().startswith(wanted)]


class SinkError(AssertionError):
    """The sink's server thread failed; the test must not pass."""


class _SinkHandler:
    def __init__(self, sink: MailSink) -> None:
        self.sink = sink

    async def handle_exception(self, error: Exception) -> str:
        self.sink.errors.append(error)
        return "451 4.3.0 sink error (see MailSink.errors)"


class _SinkSMTP(SMTP):
    """aiosmtpd's SMTP with DATA read here, so the sink decides how each one ends.

    Relies on aiosmtpd 1.4 internals (``_reader``, ``_handler_coroutine``,
    ``_set_post_data_state``); closing mirrors its own QUIT.
    """

    def __init__(self, sink: MailSink, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(_SinkHandler(sink), hostname=sink.hostname, ident="mailseal-sink",
                         data_size_limit=None, enable_SMTPUTF8=True, decode_data=False,
                         loop=loop)
        self.sink = sink

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.sink._sessions.add(self)

    def connection_lost(self, error: Exception | None) -> None:
        self.sink._sessions.discard(self)
        super().connection_lost(error)

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:
        envelope = self.envelope
        if envelope is None or not envelope.rcpt_tos or arg:
            await super().smtp_DATA(arg)  # aiosmtpd answers the sequence error
            return
        action = self.sink._next_action()
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        if action.outcome is Outcome.DROP_MID_DATA:
            self.sink._record(self, await self._reader.read(4096), action)
            self.close_session()
            return
        data = await self._read_data()
        self.sink._record(self, data, action)
        if action.outcome is Outcome.DROP_BEFORE_REPLY:
            self.close_session()
            return
        await self.push(action.reply)
        if action.outcome is Outcome.ACCEPT_THEN_CLOSE:
            self.close_session()
            return
        self._set_post_data_state()  # type: ignore[no-untyped-call]

    async def _read_data(self) -> bytes:
        """The message up to the lone dot, dot-unstuffed (RFC 5321 §4.5.2), lines of
        any length kept whole."""
        lines: list[bytes] = []
        line = bytearray()
        while True:
            try:
                line += await self._reader.readuntil(b"\r\n")
            except asyncio.LimitOverrunError as overrun:  # longer than the reader's limit
                line += await self._reader.readexactly(overrun.consumed)
                continue
            if line == b".\r\n":
                return b"".join(lines)
            lines.append(bytes(line[1:] if line.startswith(b".") else line))
            line.clear()

    def close_session(self) -> None:
        """Close now, as aiosmtpd's QUIT does; ``transport = None`` also ends its command
        loop, which would otherwise read client data already buffered as commands."""
        assert self._handler_coroutine is not None and self.transport is not None
        self._handler_coroutine.cancel()
        self.transport.close()
        self.transport = None


class MailSink:
    """An SMTP server on 127.0.0.1 (random port) that captures every message.

    ``messages`` holds the accepted ones, ``attempts`` every DATA transaction whatever
    its outcome. Each DATA takes the next action queued with ``plan()``/``fail_next()``,
    or ``default_action`` when none is queued. With ``directory``, accepted messages are
    also written there as ``NNNNNN.eml`` plus ``NNNNNN.json`` (the envelope).
    """

    def __init__(self, *, directory: Path | None = None,
                 hostname: str = "sink.mailseal.test", timeout: float = 10.0) -> None:
        self.directory = directory
        self.hostname = hostname  # must differ from Postfix's myhostname (loop check)
        self.timeout = timeout
        self.default_action = DataAction.accept()
        self.errors: list[BaseException] = []
        self.port = 0
        self._plan: list[DataAction] = []
        self._attempts: list[SinkMessage] = []
        self._changed = threading.Condition()
        self._sessions: set[_SinkSMTP] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    @property
    def relayhost(self) -> str:
        """The value for Postfix's ``relayhost`` (brackets: no MX lookup)."""
        return f"[{LOOPBACK}]:{self.port}"

    # -- what tests read and steer --

    @property
    def attempts(self) -> list[SinkMessage]:
        with self._changed:
            return list(self._attempts)

    @property
    def messages(self) -> list[SinkMessage]:
        return [m for m in self.attempts if m.outcome in (Outcome.ACCEPT,
                                                          Outcome.ACCEPT_THEN_CLOSE)]

    def plan(self, *actions: DataAction) -> None:
        """Queue actions for the next DATA transactions, in order."""
        with self._changed:
            self._plan.extend(actions)

    def fail_next(self, count: int = 1, code: int = 451,
                  text: str = "4.3.0 Try again later") -> None:
        self.plan(*[DataAction.reject(code, text)] * count)

    def clear(self) -> None:
        """Forget captured messages and queued actions; accept by default again."""
        with self._changed:
            self._attempts.clear()
            self._plan.clear()
            self.default_action = DataAction.accept()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[SinkMessage]:
        """Wait until at least ``count`` messages were accepted; return all of them."""
        return self._wait(lambda: self.messages, count, timeout, "accepted messages")

    def wait_for_attempts(self, count: int, timeout: float = 10.0) -> list[SinkMessage]:
        return self._wait(lambda: self.attempts, count, timeout, "DATA transactions")

    def _wait(self, read: Callable[[], list[SinkMessage]], count: int, timeout: float,
              what: str) -> list[SinkMessage]:
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(found := read()) < count:
                self._raise_errors()
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"sink {self.address}: {len(found)} of {count} "
                                       f"{what} after {timeout:g} s")
                self._changed.wait(left)
            return found

    # -- called in the server thread --

    def _next_action(self) -> DataAction:
        with self._changed:
            return self._plan.pop(0) if self._plan else self.default_action

    def _record(self, server: _SinkSMTP, data: bytes, action: DataAction) -> None:
        envelope, session = server.envelope, server.session
        assert envelope is not None and session is not None
        message = SinkMessage(
            mail_from=envelope.mail_from or "", rcpt_tos=tuple(envelope.rcpt_tos),
            data=data, mail_options=tuple(envelope.mail_options),
            helo=session.host_name or "", outcome=action.outcome)
        with self._changed:
            self._attempts.append(message)
            number = len(self._attempts)
            self._changed.notify_all()
        if self.directory is not None and action.outcome in (Outcome.ACCEPT,
                                                             Outcome.ACCEPT_THEN_CLOSE):
            (self.directory / f"{number:06d}.eml").write_bytes(data)
            (self.directory / f"{number:06d}.json").write_text(json.dumps(
                {"mail_from": message.mail_from, "rcpt_tos": message.rcpt_tos,
                 "mail_options": message.mail_options, "helo": message.helo}))

    # -- life cycle --

    def start(self) -> MailSink:
        if self._thread is not None:
            raise RuntimeError("sink already started")
        if self.directory is not None:
            self.directory.mkdir(parents=True, exist_ok=True)
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind((LOOPBACK, 0))  # bound here: no port race
        listener.listen(128)
        self.port = listener.getsockname()[1]
        self._loop = asyncio.new_event_loop()
        self._loop.set_exception_handler(self._loop_error)
        ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(listener, ready),
                                        name=f"MailSink:{self.port}", daemon=True)
        self._thread.start()
        if not ready.wait(self.timeout):
            raise TimeoutError(f"sink {self.address} did not start")
        self._raise_errors()
        return self

    def _loop_error(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        self.errors.append(context.get("exception") or RuntimeError(context["message"]))

    def _serve(self, listener: socket.socket, ready: threading.Event) -> None:
        loop = self._loop
        assert loop is not None
        asyncio.set_event_loop(loop)
        try:
            server = loop.run_until_complete(
                loop.create_server(lambda: _SinkSMTP(self, loop), sock=listener))
        except BaseException as error:
            self.errors.append(error)
            listener.close()
            loop.close()
            ready.set()
            return
        ready.set()
        try:
            loop.run_forever()
            server.close()
            for session in list(self._sessions):
                if session.transport is not None:
                    session.close_session()
            tasks = asyncio.all_tasks(loop)
            loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            loop.run_until_complete(server.wait_closed())
            for _ in range(3):  # let connection_lost callbacks run
                loop.run_until_complete(asyncio.sleep(0))
            loop.run_until_complete(loop.shutdown_asyncgens())
        except BaseException as error:
            self.errors.append(error)
        finally:
            loop.close()

    def stop(self) -> None:
        """Stop serving; raise ``SinkError`` if the server thread failed meanwhile."""
        if self._thread is None or self._loop is None:
            return
        if not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(self.timeout)
        if self._thread.is_alive():
            raise TimeoutError(f"sink {self.address} did not stop")
        self._thread = None
        self._raise_errors()

    def _raise_errors(self) -> None:
        if self.errors:
            raise SinkError(f"sink {self.address} failed: {self.errors[0]!r}") \
                from self.errors[0]

    def __enter__(self) -> MailSink:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


