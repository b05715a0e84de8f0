"""Real mail servers on loopback, for end-to-end tests and benchmarks.

- ``MailSink``: an SMTP capture server (aiosmtpd, in a thread with its own event loop)
  that keeps every message exactly as received (dot-unstuffed, CRLF kept) and can be
  told how to answer each DATA: accept, reply 4xx/5xx, drop the connection in the
  middle of the data or before the final reply, or accept and then close.
- ``SmtpSinkProcess``: Postfix's ``smtp-sink``, far faster, for load; it counts
  messages (``-c``) and can dump them (``-d``; its dump format uses LF line ends, so it
  is not byte-exact).
- ``PrivatePostfix``: a Postfix instance of its own (config, queue and data directories
  in a temporary directory, its own ``maillog_file``, chroot off) listening on loopback
  ports, relaying everything to ``[127.0.0.1]:PORT`` — usually a sink. It never reads
  or writes ``/etc/postfix``: every command gets ``-c CONFDIR`` and ``MAIL_CONFIG``.

Running Postfix needs root (``postfix start``); ``missing_postfix()`` says why the
harness cannot run here, for a skip message. Every wait is bounded, every process
started is stopped, and only 127.0.0.1 is used.

Postfix facts these helpers rely on (3.7; see also PEERS.md):
- The master ``chdir``s to ``queue_directory`` and every daemon inherits it, so the
  processes of one instance are the ones whose ``/proc/PID/cwd`` is its queue.
- ``postfix start`` runs ``master -w``: it returns once the listeners are bound, and
  fails ("bind ... Address already in use" in the log) when a port was taken since
  ``free_port()`` chose it; ``start()`` then retries with new ports.
- Postfix re-reads main.cf while its mtime is within the current second, sleeping
  300 ms each time, in every command: config files are backdated after writing.
- On stop the master signals its process group; here PID 1 is slow to reap orphans,
  so a stopped master can linger as a zombie: ``Z`` counts as gone.
- ``smtpd`` needs ``proxymap`` (``local_recipient_maps``); with a service missing from
  master.cf it retries for ~100 s, then master throttles it — clients just hang. The
  ``smtp-source`` binary has no timeout of its own: always run it with one.
- For clients matching ``local_header_rewrite_clients`` (default: the instance's own
  ``inet_interfaces``, so every loopback client here) cleanup adds missing
  Date/Message-ID/From fields and qualifies bare addresses; send complete messages
  (or set that parameter empty) when bytes must survive. Relayed, a bare LF becomes
  CRLF, a bare CR a space, and lines over ``smtp_line_length_limit`` (998) are broken
  with CRLF SPACE.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import functools
import json
import os
import pwd
import re
import shutil
import signal
import smtplib
import socket
import stat
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any, TypeVar

from aiosmtpd.smtp import SMTP, syntax
from daemons import free_port

LOOPBACK = "127.0.0.1"
MAIL_OWNER = "postfix"
SBIN_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
COMMAND_TIMEOUT = 60.0  # any one Postfix command line
STOP_TIMEOUT = 15.0
CLIENT_HELO = "client.mailseal.test"

T = TypeVar("T")


# -- small tools --------------------------------------------------------------------


class PostfixError(RuntimeError):
    """A Postfix program failed; the message carries its output (and the log's tail)."""


def wait_until(check: Callable[[], T | None], *, timeout: float, what: str,
               interval: float = 0.05) -> T:
    """Call ``check`` until it returns a true value, and return that value.

    Raises ``TimeoutError`` naming ``what`` after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def is_listening(port: int, host: str = LOOPBACK, pid: int | None = None) -> bool:
    """Whether a TCP socket listens on ``host:port`` — one of process ``pid``'s, if given.

    Read from /proc/net/tcp, so checking opens no session in the server's log.
    """
    wanted = f"{socket.htonl(int.from_bytes(socket.inet_aton(host), 'big')):08X}:{port:04X}"
    with open("/proc/net/tcp") as table:
        next(table)
        inodes = {fields[9] for fields in map(str.split, table)
                  if fields[1] == wanted and fields[3] == "0A"}  # 0A: TCP_LISTEN
    if pid is None or not inodes:
        return bool(inodes)
    with contextlib.suppress(OSError):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                if os.readlink(fd).removeprefix("socket:[").rstrip("]") in inodes:
                    return True
    return False


def find_program(name: str) -> str | None:
    return shutil.which(name, path=f"{os.environ.get('PATH', '')}:{SBIN_PATH}")


def missing_postfix() -> str | None:
    """Why the Postfix harness cannot run here, or None when it can."""
    for program in ("postfix", "postqueue", "sendmail", "smtp-source", "smtp-sink"):
        if find_program(program) is None:
            return f"{program} not found: install the Debian package postfix (make debs)"
    if os.geteuid() != 0:
        return "a private Postfix instance must be started as root"
    try:
        pwd.getpwnam(MAIL_OWNER)
    except KeyError:
        return f"no {MAIL_OWNER} user: install the Debian package postfix"
    return None


def _program(name: str) -> str:
    path = find_program(name)
    if path is None:
        raise FileNotFoundError(f"{name} not found (Debian package postfix)")
    return path


def process_alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not count)."""
    try:
        status = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return status.rpartition(")")[2].split()[0] != "Z"  # state follows "(comm)"


def pids_with_cwd(directory: Path) -> list[int]:
    """Live processes whose working directory is ``directory``."""
    target = str(directory.resolve())
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if os.readlink(entry / "cwd") == target and process_alive(int(entry.name)):
                    found.append(int(entry.name))
    return found


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


# -- Postfix's smtp-sink and smtp-source ------------------------------------------------


class SmtpSinkProcess:
    """Postfix's ``smtp-sink`` on 127.0.0.1 (random port), for load.

    Counts messages from its ``-c`` counters. With ``dump_dir``, each transaction is
    dumped there (``-d``: X-Client-Addr… lines on top, LF line ends — not byte-exact);
    ``user`` must be able to reach it (pytest's ``tmp_path`` sits below a 0700 folder).
    ``args`` adds smtp-sink options (e.g. ``["-r", "."]`` to answer 4xx to every
    end-of-data). As root it runs as ``user`` (``-u``), which must be able to write
    ``dump_dir`` (chowned to it here).
    """

    COUNTERS = re.compile(r"sess=(\d+) quit=(\d+) mesg=(\d+)")

    def __init__(self, *, dump_dir: Path | None = None, args: Sequence[str] = (),
                 user: str = MAIL_OWNER, hostname: str = "smtp-sink.mailseal.test",
                 backlog: int = 256, timeout: float = 10.0,
                 port_source: Callable[[], int] = free_port, start_attempts: int = 5) -> None:
        self.dump_dir = dump_dir
        self.args = list(args)
        self.user = user
        self.hostname = hostname
        self.backlog = backlog
        self.timeout = timeout
        self.port_source = port_source
        self.start_attempts = start_attempts
        self.port = 0
        self.sessions = 0
        self._messages = 0
        self._changed = threading.Condition()
        self._process: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None
        self._stderr: IO[bytes] | None = None  # a file: a pipe nobody reads could fill up
        self.stderr = ""  # what smtp-sink wrote to stderr, read when it stops

    @property
    def relayhost(self) -> str:
        return f"[{LOOPBACK}]:{self.port}"

    @property
    def messages(self) -> int:
        """Messages received so far (end-of-data seen)."""
        with self._changed:
            return self._messages

    def wait_for(self, count: int, timeout: float = 30.0) -> int:
        deadline = time.monotonic() + timeout
        with self._changed:
            while self._messages < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"smtp-sink :{self.port}: {self._messages} of "
                                       f"{count} messages after {timeout:g} s")
                self._changed.wait(left)
            return self._messages

    def dump_files(self) -> list[Path]:
        return sorted(self.dump_dir.iterdir()) if self.dump_dir is not None else []

    def start(self) -> SmtpSinkProcess:
        if self._process is not None:
            raise RuntimeError("smtp-sink already started")
        options = ["-c", "-u", self.user, "-h", self.hostname]
        if self.dump_dir is not None:
            self.dump_dir.mkdir(parents=True, exist_ok=True)
            uid = pwd.getpwnam(self.user).pw_uid
            if os.geteuid() == 0:
                os.chown(self.dump_dir, uid, -1)
            for parent in self.dump_dir.resolve().parents:  # pytest's tmp_path is not
                info = parent.stat()
                if not (info.st_mode & stat.S_IXOTH or info.st_uid == uid):
                    raise PermissionError(f"{self.user} cannot reach {self.dump_dir}: "
                                          f"{parent} is not searchable by others")
            options += ["-d", f"{self.dump_dir}/%Y%m%d%H%M%S."]
        for _ in range(self.start_attempts):
            self.port = self.port_source()
            self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 -- closed by stop()
            self._process = subprocess.Popen(
                [_program("smtp-sink"), *options, *self.args, f"{LOOPBACK}:{self.port}",
                 str(self.backlog)], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=self._stderr)
            try:
                wait_until(lambda: self._listening() or self._exited(),
                           timeout=self.timeout, what=f"smtp-sink on port {self.port}")
            except TimeoutError:
                self.stop()
                raise
            if not self._exited():
                self._reader = threading.Thread(target=self._read_counters, daemon=True,
                                                name=f"smtp-sink:{self.port}")
                self._reader.start()
                return self
            self.stop()
            if "Address already in use" not in self.stderr:
                break
        raise PostfixError(f"smtp-sink did not start: {self.stderr}")

    def _listening(self) -> bool:
        return self._process is not None and is_listening(self.port, pid=self._process.pid)

    def _exited(self) -> bool:
        return self._process is not None and self._process.poll() is not None

    def _read_counters(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        stdout = self._process.stdout.fileno()
        while chunk := os.read(stdout, 4096):
            found = self.COUNTERS.findall(chunk.decode(errors="replace"))
            if found:
                with self._changed:
                    self.sessions, self._messages = int(found[-1][0]), int(found[-1][2])
                    self._changed.notify_all()

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
        try:
            process.wait(self.timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(self.timeout)
        if self._reader is not None:
            self._reader.join(self.timeout)
            self._reader = None
        if process.stdout is not None:
            process.stdout.close()
        if self._stderr is not None:
            self._stderr.seek(0)
            self.stderr = self._stderr.read().decode(errors="replace").strip()
            self._stderr.close()
            self._stderr = None

    def __enter__(self) -> SmtpSinkProcess:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def write_source_file(path: Path, message: bytes) -> Path:
    """Write ``message`` for ``smtp-source -F``, which ends every line it reads with CRLF
    itself (a CRLF file would go out as CR CR LF) and adds one empty line at the end
    (harmless for DKIM: both body canonicalizations drop trailing empty lines)."""
    path.write_bytes(message.replace(b"\r\n", b"\n"))
    return path


def run_smtp_source(port: int, *, count: int = 1, sessions: int = 1, size: int | None = None,
                    mail_from: str = "load@source.mailseal.test",
                    to: str = "sink@relay.mailseal.test", message_file: Path | None = None,
                    helo: str = CLIENT_HELO, args: Sequence[str] = (),
                    timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    """Send ``count`` messages over ``sessions`` parallel sessions with ``smtp-source``.

    ``size`` is the generated payload in bytes (CRLFs counted); ``message_file`` is sent
    instead (``-F``) — write it with ``write_source_file``. Raises ``PostfixError`` when
    smtp-source fails (it stops at the first unexpected reply unless ``args`` has
    ``-A``), ``subprocess.TimeoutExpired`` after ``timeout`` (it has no timeout itself).
    """
    command = [_program("smtp-source"), "-s", str(sessions), "-m", str(count),
               "-f", mail_from, "-t", to, "-M", helo]
    if size is not None:
        command += ["-l", str(size)]
    if message_file is not None:
        command += ["-F", str(message_file)]
    command += [*args, f"{LOOPBACK}:{port}"]
    result = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                            timeout=timeout, check=False)
    if result.returncode != 0:
        raise PostfixError(f"{' '.join(command)} exited {result.returncode}: "
                           f"{(result.stdout + result.stderr).strip()}")
    return result


# -- the private Postfix ------------------------------------------------------------------


# Debian's default services (minus the pipe(8) ones), chroot off. The first line is
# filled in with this instance's smtpd address.
MASTER_CF = """\
# service type  private unpriv  chroot  wakeup  maxproc command + args
{listen} inet  n       -       n       -       -       smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


@dataclass(frozen=True)
class QueuedRecipient:
    address: str
    delay_reason: str


@dataclass(frozen=True)
class QueuedMessage:
    """One line of ``postqueue -j``."""

    queue_name: str  # incoming, active, deferred, hold, maildrop
    queue_id: str
    sender: str
    recipients: tuple[QueuedRecipient, ...]
    arrival_time: int
    message_size: int

    @classmethod
    def from_json(cls, record: Mapping[str, Any]) -> QueuedMessage:
        return cls(queue_name=record["queue_name"], queue_id=record["queue_id"],
                   sender=record["sender"], arrival_time=record["arrival_time"],
                   message_size=record["message_size"],
                   recipients=tuple(QueuedRecipient(r["address"], r.get("delay_reason", ""))
                                    for r in record["recipients"]))


@dataclass(frozen=True)
class SendResult:
    code: int
    text: str  # the reply to end-of-data
    queue_id: str | None  # from "queued as ID"


class PrivatePostfix:
    """A Postfix instance of its own on 127.0.0.1, relaying everything to ``relayhost``.

    ``main_cf`` overrides or adds main.cf parameters (milters: ``smtpd_milters``,
    ``non_smtpd_milters``, ``milter_default_action``…). ``services`` is extra master.cf
    text; ``{NAME}`` in it, and in ``main_cf`` values, becomes the port chosen for each
    NAME in ``service_ports`` (``{smtp}`` is the main smtpd port), and ``{root}`` the
    instance's directory — searchable by the postfix user, unlike pytest's ``tmp_path``,
    so a place for unix sockets (``smtpd_milters = unix:{root}/milter.sock``). Example::

        PrivatePostfix(relayhost=sink.relayhost, service_ports=["submission"],
                       services="127.0.0.1:{submission} inet n - n - - smtpd\\n"
                                "  -o syslog_name=postfix/submission\\n")

    Ports are chosen with ``port_source`` and chosen again when a bind fails at start.
    The temporary directory (config/, queue/, data/, maillog) is removed on ``close()``
    unless ``keep``.
    """

    def __init__(self, *, relayhost: str = "", main_cf: Mapping[str, str] | None = None,
                 services: str = "", service_ports: Sequence[str] = (), name: str = "e2e",
                 base_dir: Path | None = None, keep: bool = False,
                 port_source: Callable[[], int] = free_port, start_attempts: int = 5,
                 timeout: float = 30.0) -> None:
        self.relayhost = relayhost
        self.main_cf = dict(main_cf or {})
        self.services = services
        self.service_ports = list(service_ports)
        self.name = name
        self.base_dir = base_dir
        self.keep = keep
        self.port_source = port_source
        self.start_attempts = start_attempts
        self.timeout = timeout
        self.ports: dict[str, int] = {}
        self.root: Path | None = None
        self.running = False

    # -- layout --

    def _path(self, *parts: str) -> Path:
        if self.root is None:
            raise RuntimeError("instance not started")
        return self.root.joinpath(*parts)

    @property
    def config_dir(self) -> Path:
        return self._path("config")

    @property
    def queue_dir(self) -> Path:
        return self._path("queue")

    @property
    def data_dir(self) -> Path:
        return self._path("data")

    @property
    def log_file(self) -> Path:
        return self._path("maillog")

    @property
    def port(self) -> int:
        return self.ports["smtp"]

    def _prepare(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix=f"postfix-{self.name}-", dir=self.base_dir))
        # Daemons run as postfix and open paths below the root: it must be searchable.
        self.root.chmod(0o755)
        self.config_dir.mkdir(mode=0o755)
        self.queue_dir.mkdir(mode=0o755)  # root-owned; postfix creates the rest
        self.data_dir.mkdir(mode=0o700)
        owner = pwd.getpwnam(MAIL_OWNER)
        os.chown(self.data_dir, owner.pw_uid, owner.pw_gid)

    def _fill(self, text: str) -> str:
        for service, port in self.ports.items():
            text = text.replace("{" + service + "}", str(port))
        return text.replace("{root}", str(self._path()))

    def parameters(self) -> dict[str, str]:
        """The main.cf this instance runs with (defaults, then ``main_cf``)."""
        root = self._path()
        parameters = {
            "compatibility_level": "3.6",
            "queue_directory": str(self.queue_dir),
            "data_directory": str(self.data_dir),
            "mail_owner": MAIL_OWNER,
            # Unique per instance; must differ from the sink's greeting name.
            "myhostname": f"{self.name}-{root.name.rpartition('-')[2]}.mailseal.test"
                          .lower().replace("_", "x"),
            "mydomain": "mailseal.test",
            "mydestination": "",
            "relay_domains": "",
            "local_recipient_maps": "",
            "alias_maps": "",
            "alias_database": "",
            "relayhost": self.relayhost,
            "smtp_host_lookup": "native",
            "disable_dns_lookups": "yes",
            "mynetworks": "127.0.0.0/8 [::1]/128",
            "inet_interfaces": LOOPBACK,
            "inet_protocols": "ipv4",
            "smtpd_relay_restrictions": "permit_mynetworks, reject",
            "smtp_tls_security_level": "none",
            "smtpd_tls_security_level": "none",
            "biff": "no",
            "maillog_file": str(self.log_file),
            "maillog_file_prefixes": str(root),
            "queue_run_delay": "1s",
            "minimal_backoff_time": "1s",
            "maximal_backoff_time": "2s",
            "milter_protocol": "6",
            **self.main_cf,
        }
        return {key: self._fill(value) for key, value in parameters.items()}

    def _write_config(self) -> None:
        lines = []
        for key, value in self.parameters().items():
            if "\n" in value:
                raise ValueError(f"main.cf value for {key} spans lines")
            lines.append(f"{key} = {value}\n")
        (self.config_dir / "main.cf").write_text("".join(lines))
        master = MASTER_CF.format(listen=f"{LOOPBACK}:{self.port}")
        (self.config_dir / "master.cf").write_text(master + self._fill(self.services))
        # Postfix re-reads a table file whose mtime is within the last second, sleeping
        # 300 ms between reads (a start then takes ~2.5 s instead of ~0.3 s): backdate.
        past = time.time() - 60
        for name in ("main.cf", "master.cf"):
            os.utime(self.config_dir / name, (past, past))

    # -- commands --

    def _env(self) -> dict[str, str]:
        return {**os.environ, "MAIL_CONFIG": str(self.config_dir),
                "PATH": f"{os.environ.get('PATH', '')}:{SBIN_PATH}"}

    def _run(self, *command: str, input: bytes | None = None,
             timeout: float = COMMAND_TIMEOUT) -> str:
        """Run a Postfix command line. Output goes to a file, not a pipe: ``postfix
        reload`` leaves a ``postsuper &`` behind that would hold a pipe open."""
        with tempfile.TemporaryFile() as output:
            result = subprocess.run(command, input=input, stdout=output,
                                    stderr=subprocess.STDOUT, env=self._env(),
                                    timeout=timeout, check=False,
                                    stdin=None if input is not None else subprocess.DEVNULL)
            output.seek(0)
            text = output.read().decode(errors="replace")
        if result.returncode != 0:
            raise PostfixError(f"{' '.join(command)} exited {result.returncode}: "
                               f"{text.strip()}\n-- maillog tail --\n{self.log_tail()}")
        return text

    def postfix(self, *args: str, timeout: float = COMMAND_TIMEOUT) -> str:
        return self._run(_program("postfix"), "-c", str(self.config_dir), *args,
                         timeout=timeout)

    def postconf(self, *args: str) -> str:
        return self._run(_program("postconf"), "-c", str(self.config_dir), *args)

    # -- life cycle --

    def start(self) -> PrivatePostfix:
        if self.running:
            raise RuntimeError("instance already running")
        if self.root is None:
            self._prepare()
        for attempt in range(1, self.start_attempts + 1):
            self.ports = {name: self.port_source() for name in ["smtp", *self.service_ports]}
            self._write_config()
            log_start = self.log_file.stat().st_size if self.log_file.exists() else 0
            try:
                self.postfix("start")
            except PostfixError as error:
                bind_failed = "Address already in use" in str(error) + self._log_since(log_start)
                self._wait_master_gone()
                if bind_failed and attempt < self.start_attempts:
                    continue
                raise
            self.running = True
            break
        master = self.master_pid()
        for port in self.ports.values():  # master -w returned: these are bound
            wait_until(functools.partial(is_listening, port, pid=master), timeout=self.timeout,
                       what=f"postfix {self.name} master {master} listening on port {port}")
        return self

    def master_pid(self) -> int | None:
        """The master's PID from its pid file, when that process is alive."""
        try:
            pid = int(self._path("queue", "pid", "master.pid").read_text().split()[0])
        except (FileNotFoundError, IndexError, ValueError):
            return None
        return pid if process_alive(pid) and self._belongs(pid) else None

    def _belongs(self, pid: int) -> bool:
        try:
            return os.readlink(f"/proc/{pid}/cwd") == str(self.queue_dir.resolve())
        except OSError:
            return False

    def processes(self) -> list[int]:
        """Live processes of this instance (master and daemons: cwd is its queue)."""
        return pids_with_cwd(self.queue_dir) if self.root is not None else []

    def _wait_master_gone(self) -> None:
        pid = self.master_pid()
        if pid is None:
            return
        with contextlib.suppress(TimeoutError):
            wait_until(lambda: not process_alive(pid), timeout=STOP_TIMEOUT,
                       what=f"postfix master {pid} to exit")
            return
        if self._belongs(pid):  # still ours: force it
            os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not process_alive(pid), timeout=STOP_TIMEOUT,
                   what=f"postfix master {pid} to exit after SIGKILL")

    def stop(self) -> None:
        """``postfix stop``, then make sure the master and its daemons are gone."""
        self.running = False
        if self.root is None:
            return
        try:
            if self.master_pid() is not None:  # also after a start that timed out
                self.postfix("stop")
        finally:
            self._wait_master_gone()
        wait_until(lambda: not self.processes(), timeout=STOP_TIMEOUT,
                   what=f"postfix {self.name} daemons to exit")

    def reload(self, main_cf: Mapping[str, str] | None = None, services: str | None = None,
               ) -> None:
        """Rewrite the configuration (merging ``main_cf``, replacing ``services``) and
        ``postfix reload``. Ports stay as they are."""
        self.main_cf.update(main_cf or {})
        if services is not None:
            self.services = services
        self._write_config()
        self.postfix("reload")

    def close(self) -> None:
        try:
            self.stop()
        finally:
            if self.root is not None and not self.keep:
                shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PrivatePostfix:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # -- queue and log --

    def flush(self) -> None:
        """``postqueue -f``: retry all deferred mail now, ignoring back-off."""
        self._run(_program("postqueue"), "-c", str(self.config_dir), "-f")

    def queue(self) -> list[QueuedMessage]:
        output = self._run(_program("postqueue"), "-c", str(self.config_dir), "-j")
        return [QueuedMessage.from_json(json.loads(line)) for line in output.splitlines()
                if line.startswith("{")]

    def wait_queue_empty(self, timeout: float = 20.0) -> None:
        wait_until(lambda: not self.queue(), timeout=timeout, interval=0.2,
                   what=f"postfix {self.name} queue to empty")

    def log_text(self) -> str:
        try:
            return self.log_file.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def _log_since(self, offset: int) -> str:
        try:
            with open(self.log_file, "rb") as log:
                log.seek(offset)
                return log.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 20) -> str:
        return "".join(self.log_text().splitlines(keepends=True)[-lines:])

    def log_problems(self) -> list[str]:
        """Log lines at warning, error, fatal or panic level."""
        return [line for line in self.log_text().splitlines()
                if re.search(r"\]: (warning|error|fatal|panic): ", line)]

    def wait_for_log(self, pattern: str, timeout: float = 20.0) -> re.Match[str]:
        regex = re.compile(pattern)
        return wait_until(lambda: regex.search(self.log_text()), timeout=timeout,
                          interval=0.1, what=f"/{pattern}/ in {self.log_file}")

    # -- clients --

    def send(self, message: bytes, mail_from: str, rcpts: Sequence[str], *,
             port: int | None = None, mail_options: Sequence[str] = (),
             helo: str = CLIENT_HELO, timeout: float = 30.0) -> SendResult:
        """One SMTP transaction with smtplib (message bytes sent as they are, dot-stuffed).

        Raises smtplib's ``SMTPSenderRefused``, ``SMTPRecipientsRefused`` (any refused
        recipient) or ``SMTPDataError`` — their ``smtp_code`` tells a 4xx from a 5xx.
        """
        with smtplib.SMTP(LOOPBACK, port or self.port, local_hostname=helo,
                          timeout=timeout) as client:
            client.ehlo()
            code, reply = client.mail(mail_from, list(mail_options))
            if code != 250:
                raise smtplib.SMTPSenderRefused(code, reply, mail_from)
            refused = {}
            for rcpt in rcpts:
                code, reply = client.rcpt(rcpt)
                if code not in (250, 251):
                    refused[rcpt] = (code, reply)
            if refused:
                raise smtplib.SMTPRecipientsRefused(refused)
            code, reply = client.data(message)
            if code != 250:
                raise smtplib.SMTPDataError(code, reply)
        text = reply.decode(errors="replace")
        queued = re.search(r"queued as ([0-9A-Za-z]+)", text)
        return SendResult(code, text, queued.group(1) if queued else None)

    def sendmail(self, message: bytes, mail_from: str, rcpts: Sequence[str],
                 timeout: float = COMMAND_TIMEOUT) -> None:
        """Local submission (sendmail → postdrop → pickup): the non_smtpd_milters path."""
        self._run(_program("sendmail"), "-C", str(self.config_dir), "-i", "-f", mail_from,
                  "--", *rcpts, input=message, timeout=timeout)

    def smtp_source(self, *, port: int | None = None, **options: Any,
                    ) -> subprocess.CompletedProcess[str]:
        """``run_smtp_source`` aimed at this instance's smtpd (or ``port``)."""
        return run_smtp_source(port or self.port, **options)
