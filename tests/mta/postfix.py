"""``PrivatePostfix``: a Postfix instance of its own on loopback (see the package
docstring for the Postfix facts it relies on)."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import pwd
import re
import shutil
import signal
import smtplib
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from daemons import free_port

from mta.source import run_smtp_source
from mta.tools import (
    CLIENT_HELO,
    COMMAND_TIMEOUT,
    LOOPBACK,
    MAIL_OWNER,
    SBIN_PATH,
    STOP_TIMEOUT,
    PostfixError,
    is_listening,
    pids_with_cwd,
    postfix_program,
    process_alive,
    wait_until,
)

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
        return self._run(postfix_program("postfix"), "-c", str(self.config_dir), *args,
                         timeout=timeout)

    def postconf(self, *args: str) -> str:
        return self._run(postfix_program("postconf"), "-c", str(self.config_dir), *args)

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
        self._run(postfix_program("postqueue"), "-c", str(self.config_dir), "-f")

    def queue(self) -> list[QueuedMessage]:
        output = self._run(postfix_program("postqueue"), "-c", str(self.config_dir), "-j")
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
        self._run(postfix_program("sendmail"), "-C", str(self.config_dir), "-i", "-f", mail_from,
                  "--", *rcpts, input=message, timeout=timeout)

    def smtp_source(self, *, port: int | None = None, **options: Any,
                    ) -> subprocess.CompletedProcess[str]:
        """``run_smtp_source`` aimed at this instance's smtpd (or ``port``)."""
        return run_smtp_source(port or self.port, **options)
