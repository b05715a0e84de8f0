"""Run mailseal's own daemons as real processes for end-to-end tests."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

from mailseal.keystore import generate_key, write_private_key

#: Ports handed out for services a test configures in advance come from below the
#: kernel's ephemeral range (Linux: 32768-60999). A port from bind(0) is drawn from that
#: range, so a later bind(0) or outgoing connection elsewhere in the test could take it
#: before the service binds it (seen: a Postfix return-path smtpd losing its port).
FIXED_PORTS = range(20000, 32000)


def free_port() -> int:
    """A TCP port on 127.0.0.1, outside the ephemeral range, that was free a moment ago."""
    rng = random.Random()
    for _ in range(200):
        port = rng.choice(FIXED_PORTS)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise OSError("no free port found below the ephemeral range")


def wait_port(host: str, port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout} s")


def wait_path(path: Path, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            return
        time.sleep(0.05)
    raise TimeoutError(f"{path} did not appear after {timeout} s")


def make_keys(folder: Path, domain: str = "example.com") -> dict[str, Path]:
    """An RSA-2048 and an Ed25519 key (mode 0600) under ``folder``."""
    paths = {"rsa": folder / f"{domain}-rsa.private", "ed": folder / f"{domain}-ed.private"}
    write_private_key(paths["rsa"], generate_key("rsa"))
    write_private_key(paths["ed"], generate_key("ed25519"))
    return paths


class MailsealProcess:
    """``mailseal <command> -c CONFIG`` in a subprocess; stopped with SIGTERM (then
    SIGKILL, by its own PID only)."""

    def __init__(self, config: Path, command: str = "milter", *extra: str) -> None:
        self.config = config
        self.args = [sys.executable, "-m", "mailseal.frontends.cli.main", command,
                     "-c", str(config), *extra]
        self.log = config.with_suffix(".log")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, wait_for: tuple[str, int] | Path | None = None) -> MailsealProcess:
        log = open(self.log, "ab")  # noqa: SIM115 - closed in stop()
        self._logfh = log
        self.proc = subprocess.Popen(self.args, stdout=log, stderr=subprocess.STDOUT,
                                     env={**os.environ, "PYTHONUNBUFFERED": "1"})
        try:
            if isinstance(wait_for, Path):
                wait_path(wait_for)
            elif wait_for is not None:
                wait_port(*wait_for)
        except TimeoutError:
            self.stop()
            raise RuntimeError(f"mailseal did not start: {self.log_text()}") from None
        return self

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        if getattr(self, "_logfh", None) is not None:
            self._logfh.close()
            self._logfh = None

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def __enter__(self) -> MailsealProcess:
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
