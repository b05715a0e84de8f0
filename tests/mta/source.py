"""Postfix's ``smtp-sink`` (``SmtpSinkProcess``) and ``smtp-source`` (``run_smtp_source``),
for load."""

from __future__ import annotations

import os
import pwd
import re
import stat
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO

from daemons import free_port

from mta.tools import (
    CLIENT_HELO,
    LOOPBACK,
    MAIL_OWNER,
    PostfixError,
    is_listening,
    postfix_program,
    wait_until,
)

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
                [postfix_program("smtp-sink"), *options, *self.args, f"{LOOPBACK}:{self.port}",
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
    command = [postfix_program("smtp-source"), "-s", str(sessions), "-m", str(count),
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


