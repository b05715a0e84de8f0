"""The milters that ``milter_postfix.py`` puts behind Postfix, and what it reads from
/proc about them.

Three signers/verifiers, one key, one DNS zone:

- ``OpenDkim``: Debian's ``opendkim -f -x CONF`` (C, libmilter, threads). It resolves
  through libunbound, which will not query 127.0.0.1 unless a ``ResolverConfiguration``
  file says ``do-not-query-localhost: no``; but OpenDKIM 2.11.0 parses that file again
  for every message, from several threads at once, and unbound's flex scanner is not
  reentrant: at 20 sessions it dies within seconds ("fatal flex scanner internal
  error--end of buffer missed", or a SIGSEGV, or a syntax error on a good line). So it
  reads the key record from ``TestDNSData`` (a file: no DNS at all, which only flatters
  it) and is given no resolver settings when it signs. Keys under a folder others can
  search need ``RequireSafeKeys no``.
- ``DkimpyMilter``: PyPI ``dkimpy-milter`` (pymilter over libmilter: one thread per MTA
  connection, one process), installed in its own venv ``bench/.peers-venv``. It has no
  DNS server option: dkimpy calls ``dns.resolver.resolve`` on dnspython's default
  resolver, so a small launcher points that resolver at the loopback zone first, then
  runs ``dkimpy_milter.main()``. Without syslog it logs nothing.
- ``Mailseal``: ``mailseal milter -c CONF`` (``tests/daemons.py``), with ``workers = N``
  in ``[server]``: with N > 1 a supervisor forks N workers that share the socket.

CPU and memory are read over each milter's whole process tree (the supervisor and its
workers): CPU as utime + stime from ``/proc/PID/stat`` (all threads), peak RSS as
``VmHWM`` from ``/proc/PID/status``, reset before each timed run by writing ``5`` to
``/proc/PID/clear_refs`` (Linux ≥ 4.0, root). Summing VmHWM over forked workers counts
the pages they share with the supervisor once per process: an upper bound.

Everything lives under one folder in /var/tmp that the postfix user can search (pytest
and mkdtemp folders in /tmp are 0700), removed at the end.
"""

from __future__ import annotations

import base64
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from daemons import MailsealProcess  # noqa: E402
from mta import find_program, is_listening, process_alive, wait_until  # noqa: E402

PEERS_VENV = ROOT / "bench" / ".peers-venv"
LOOPBACK = "127.0.0.1"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
#: authserv-ids, so a verify run's Authentication-Results name the milter that wrote them
AUTHSERV = {"opendkim": "opendkim.bench", "dkimpy-milter": "dkimpy.bench",
            "mailseal": "mailseal.bench"}
#: A client address that is nobody's: the verify runs list it as the only internal host,
#: so mail from 127.0.0.1 is verified, not signed.
NOT_US = "192.0.2.1"

# dkimpy-milter has no nameserver option: point dnspython's default resolver (what
# dkimpy's dnsplug uses) at the loopback zone, then run the milter as its script does.
DKIMPY_LAUNCHER = """
import sys
import dns.resolver
resolver = dns.resolver.Resolver(configure=False)
resolver.nameservers = ["127.0.0.1"]
resolver.port = int(sys.argv[2])
dns.resolver.default_resolver = resolver
sys.argv = ["dkimpy-milter", sys.argv[1]]
from dkimpy_milter import main
main()
"""


class BenchError(AssertionError):
    """A measured run gave wrong mail; its figures would be worthless."""


def check(condition: bool, what: str) -> None:
    if not condition:
        raise BenchError(what)


# -- /proc ------------------------------------------------------------------------------


def process_tree(pid: int) -> list[int]:
    """``pid`` and its live descendants (one pass over /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                fields = (entry / "stat").read_text().rpartition(")")[2].split()
                if fields[0] != "Z":
                    children.setdefault(int(fields[1]), []).append(int(entry.name))
    tree, todo = [], [pid] if process_alive(pid) else []
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, ()))
    return tree


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` (all its threads), in seconds."""
    return sum(cpu_split(pid))


def cpu_split(pid: int) -> tuple[float, float]:
    """(utime, stime) of ``pid`` (all its threads), in seconds: user space, kernel."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0, 0.0
    return int(fields[11]) / CLOCK_TICKS, int(fields[12]) / CLOCK_TICKS  # stat fields 14, 15


def postfix_cpu_seconds(master: int) -> float:
    """CPU seconds of a Postfix instance: its master (with the daemons it has reaped:
    cutime, cstime) plus the daemons alive now. A daemon that exits between two readings
    moves from the second term to the first with its whole lifetime, so differences of
    two readings are right."""
    try:
        fields = Path(f"/proc/{master}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    own = sum(int(x) for x in fields[11:15]) / CLOCK_TICKS  # utime stime cutime cstime
    return own + sum(cpu_seconds(pid) for pid in process_tree(master)[1:])


def peak_rss_kib(pid: int) -> int:
    """VmHWM: the resident-set high-water mark since start or the last reset."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def reset_peak_rss(pid: int) -> None:
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/clear_refs").write_text("5")


def pss_kib(pid: int) -> int:
    """Proportional set size: shared pages divided among the processes sharing them."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class PssSampler:
    """Samples the summed PSS of some processes every ``interval`` seconds in a thread
    and keeps the peak: for forked workers, whose VmHWM each count the pages they share
    with the supervisor, this is the memory the tree really holds (sampled, so a
    short spike between two samples can be missed)."""

    def __init__(self, pids: list[int], interval: float = 0.1) -> None:
        self.pids = pids
        self.interval = interval
        self.peak_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pss-sampler", daemon=True)

    def _run(self) -> None:
        while True:
            self.peak_kib = max(self.peak_kib, sum(pss_kib(pid) for pid in self.pids))
            if self._stop.wait(self.interval):
                return

    def __enter__(self) -> PssSampler:
        if self.pids:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.pids:
            self._stop.set()
            self._thread.join()


def machine_ticks() -> tuple[int, int]:
    """(busy, total) clock ticks of all CPUs since boot, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    total = sum(fields[:8])  # without guest time, already counted in user
    return total - idle, total


@dataclass
class TreeSample:
    cpu: dict[int, float]

    @classmethod
    def take(cls, pids: list[int]) -> TreeSample:
        return cls({pid: cpu_seconds(pid) for pid in pids})

    def since(self, before: TreeSample) -> dict[int, float]:
        return {pid: t - before.cpu.get(pid, 0.0) for pid, t in self.cpu.items()}


# -- keys and DNS -------------------------------------------------------------------------


def write_private(path: Path, data: bytes) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    return path


def key_record(public_der: bytes) -> str:
    return "v=DKIM1; k=rsa; p=" + base64.b64encode(public_der).decode()


def txt_strings(text: str) -> str:
    """A TXT record in zone-file form: character-strings of at most 255 octets
    (RFC 1035 §3.3)."""
    return " ".join(f'"{text[i:i + 250]}"' for i in range(0, len(text), 250))


# -- the milters ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Signing:
    """What every signer is told: the same key, domain, selector, canonicalization."""

    domain: str
    selector: str
    key_file: Path
    dns_port: int
    record: str  # the key record's text, for OpenDKIM's TestDNSData
    canonicalization: str = "relaxed/simple"


class Milter:
    """One milter process on ``inet:127.0.0.1:port``, configured to sign (internal
    client) or to verify (nobody is internal)."""

    kind = ""

    def __init__(self, label: str, role: str, signing: Signing, folder: Path, port: int) -> None:
        self.label = label  # as in the tables: "mailseal w=2"
        self.role = role  # "sign" or "verify"
        self.signing = signing
        self.folder = folder
        self.port = port
        self.log = folder / f"{self.slug}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def slug(self) -> str:
        return f"{self.label.replace(' ', '').replace('=', '')}-{self.role}"

    @property
    def address(self) -> str:
        """The value for Postfix's ``smtpd_milters``."""
        return f"inet:{LOOPBACK}:{self.port}"

    @property
    def authserv_id(self) -> str:
        return AUTHSERV[self.kind]

    def command(self) -> list[str]:
        raise NotImplementedError

    def start(self) -> Milter:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT,
                                         env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self._wait_listening()
        return self

    def _wait_listening(self) -> None:
        try:
            wait_until(lambda: is_listening(self.port) or self._exited(), timeout=30,
                       what=f"{self.label} ({self.role}) on port {self.port}")
        except TimeoutError:
            self.stop()
            raise RuntimeError(f"{self.label} did not start: {self.log_tail()}") from None
        if self._exited():
            raise RuntimeError(f"{self.label} exited at start: {self.log_tail()}")

    def _exited(self) -> bool:
        return self.proc is not None and self.proc.poll() is not None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def pids(self) -> list[int]:
        return process_tree(self.pid)

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        tree = process_tree(proc.pid)
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        for pid in tree[1:]:  # workers we started through it, by their own PIDs
            with contextlib.suppress(TimeoutError):
                wait_until(lambda p=pid: not process_alive(p), timeout=5, what=f"pid {pid}")
                continue
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "".join(self.log.read_text(errors="replace").splitlines(True)[-lines:])
        except FileNotFoundError:
            return ""


class OpenDkim(Milter):
    kind = "opendkim"

    def config_text(self) -> str:
        s = self.signing
        records = self.folder / "opendkim-keys.txt"  # TestDNSData: name, then the record
        records.write_text(f"{s.selector}._domainkey.{s.domain} {s.record}\n")
        settings = {
            "Syslog": "no",
            "Socket": f"inet:{self.port}@{LOOPBACK}",
            "Mode": "sv" if self.role == "sign" else "v",
            "Domain": s.domain, "Selector": s.selector, "KeyFile": str(s.key_file),
            "Canonicalization": s.canonicalization, "SignatureAlgorithm": "rsa-sha256",
            "InternalHosts": LOOPBACK if self.role == "sign" else NOT_US,
            "RequireSafeKeys": "no",
            "AuthservID": self.authserv_id,
            "AlwaysAddARHeader": "yes",
        }
        if self.role == "verify":
            settings["TestDNSData"] = f"file:{records}"

        return "".join(f"{k} {v}\n" for k, v in settings.items())

    def command(self) -> list[str]:
        program = find_program("opendkim")
        if program is None:
            raise RuntimeError("opendkim not installed (Debian: opendkim)")
        conf = self.folder / f"{self.slug}.conf"
        conf.write_text(self.config_text())
        return [program, "-f", "-x", str(conf)]


class DkimpyMilter(Milter):
    kind = "dkimpy-milter"

    @staticmethod
    def missing() -> str | None:
        python = PEERS_VENV / "bin" / "python"
        if not python.exists():
            return (f"{python} not found: python3 -m venv {PEERS_VENV} && "
                    f"{PEERS_VENV}/bin/pip install dkimpy-milter (needs Debian libmilter-dev)")
        probe = subprocess.run([str(python), "-c", "import dkimpy_milter, Milter"],
                               capture_output=True, text=True, check=False)
        if probe.returncode != 0:
            return f"dkimpy-milter does not import: {probe.stderr.strip()[-300:]}"
        return None

    def command(self) -> list[str]:
        s = self.signing
        settings = {
            "Syslog": "no",
            "Socket": f"inet:{self.port}@{LOOPBACK}",
            "Mode": "sv" if self.role == "sign" else "v",
            "Domain": s.domain, "Selector": s.selector, "KeyFile": str(s.key_file),
            "Canonicalization": s.canonicalization,
            "InternalHosts": LOOPBACK if self.role == "sign" else NOT_US,
            "AuthservID": self.authserv_id,
            # As root: the interpreter lives under /root (pyenv), so after a switch to
            # nobody its lazy imports fail ("LookupError: unknown encoding: ascii").
            "UserID": "root",
        }
        conf = self.folder / f"{self.slug}.conf"
        conf.write_text("".join(f"{k} {v}\n" for k, v in settings.items()))
        launcher = self.folder / "dkimpy_launcher.py"
        launcher.write_text(DKIMPY_LAUNCHER)
        return [str(PEERS_VENV / "bin" / "python"), str(launcher), str(conf), str(s.dns_port)]


class Mailseal(Milter):
    kind = "mailseal"

    def __init__(self, label: str, role: str, signing: Signing, folder: Path, port: int,
                 workers: int) -> None:
        super().__init__(label, role, signing, folder, port)
        self.workers = workers
        self.process: MailsealProcess | None = None

    def config_text(self) -> str:
        s = self.signing
        internal = '["127.0.0.0/8"]' if self.role == "sign" else "[]"
        return f"""\
[server]
authserv_id = "{self.authserv_id}"
log_level = "warning"
workers = {self.workers}

[[listeners]]
kind = "milter"
address = "{self.address}"

[dns]
nameservers = ["{LOOPBACK}:{s.dns_port}"]

[[keys]]
name = "bench-rsa"
domain = "{s.domain}"
selector = "{s.selector}"
file = "{s.key_file}"

[signing]
internal_hosts = {internal}
sign_authenticated = {"true" if self.role == "sign" else "false"}
rules = [{{ match = "*@{s.domain}", keys = ["bench-rsa"] }}]
canonicalization = "{s.canonicalization}"

# DKIM only, like the OpenDKIM and dkimpy-milter it is compared with: SPF and DMARC
# (on by default) would add work the peers do not do.
[spf]
enabled = false

[dmarc]
enabled = false
"""

    def start(self) -> Milter:
        conf = self.folder / f"{self.slug}.toml"
        conf.write_text(self.config_text())
        self.process = MailsealProcess(conf, "milter")
        self.log = self.process.log
        # No wait_for: MailsealProcess would open a milter session to probe the port.
        self.process.start()
        self.proc = self.process.proc
        self._wait_listening()
        wait_until(lambda: len(self.pids()) > self.workers or self.workers == 1, timeout=30,
                   what=f"{self.workers} mailseal workers")
        return self

    def stop(self) -> None:
        tree = process_tree(self.pid) if self.proc is not None else []
        if self.process is not None:
            self.process.stop()
            self.process = None
        self.proc = None
        for pid in tree[1:]:
            with contextlib.suppress(TimeoutError):
                wait_until(lambda p=pid: not process_alive(p), timeout=5, what=f"pid {pid}")
                continue
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


# -- what smtp-sink captured ------------------------------------------------------------------

SINK_FIELDS = (b"x-client-addr:", b"x-client-proto:", b"x-helo-args:", b"x-mail-args:",
               b"x-rcpt-args:")


def read_dump(path: Path, limit: int | None = None) -> bytes:
    """A message as smtp-sink dumped it, back to CRLF, without smtp-sink's own lines on
    top (the X-Client-… envelope lines; its Received field is kept, as a relay would)."""
    with open(path, "rb") as fh:
        data = fh.read() if limit is None else fh.read(limit)
    lines = data.split(b"\n")
    start = 0
    while start < len(lines) and lines[start].lower().startswith(SINK_FIELDS):
        start += 1
    return b"\r\n".join(lines[start:])


def header_fields(message: bytes) -> list[bytes]:
    """The raw header fields of a CRLF message (folding kept, no final CRLF)."""
    end = message.find(b"\r\n\r\n")
    head = message if end < 0 else message[:end]
    fields: list[bytes] = []
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] += b"\r\n" + line
        elif line:
            fields.append(line)
    return fields


def fields_named(message: bytes, name: str) -> list[bytes]:
    prefix = name.lower().encode() + b":"
    return [f for f in header_fields(message) if f.lower().startswith(prefix)]


def postsuper_delete_all(config_dir: Path) -> None:
    """Empty a private Postfix's queue after a failed run, so nothing left over is
    delivered into the next run's count."""
    program = find_program("postsuper")
    if program is not None:
        subprocess.run([program, "-c", str(config_dir), "-d", "ALL"], capture_output=True,
                       timeout=60, check=False)
        time.sleep(0.5)
