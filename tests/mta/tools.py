"""Small tools of the mail-server harness: constants, bounded waits, Postfix's
programs and processes (see the package docstring)."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

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


def postfix_program(name: str) -> str:
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


