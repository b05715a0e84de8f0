"""How fast does Postfix sign and verify with mailseal's milter, next to OpenDKIM and
dkimpy-milter?

Run (as root, Postfix installed): ``.venv/bin/python bench/milter_postfix.py [--quick]``

One private Postfix instance (``tests/mta/``) on 127.0.0.1 relays everything to
Postfix's ``smtp-sink``, which dumps every message. ``smtp-source`` sends the same
prepared message N times over S parallel sessions (one message per session, as an MX
sees it). The run is timed from smtp-source's start until the sink has counted the
last message. Between runs only ``smtpd_milters`` changes (``postfix reload``), to:
no milter, OpenDKIM, dkimpy-milter, mailseal with 1 worker process, mailseal with 2.

All signers use one RSA-2048 key, d=example.com, rsa-sha256, relaxed/simple; the key
record is served by a loopback authoritative DNS server (``tests/dnsserver.py``) that
mailseal and dkimpy-milter query when they verify (mailseal caches the answer, dkimpy
does not). OpenDKIM reads the same record from a ``TestDNSData`` file instead: pointed at
a loopback server through libunbound it crashes under concurrent sessions (see
``_harness.py``), and a table lookup can only flatter it.

- **sign**: the client (127.0.0.1) is internal: each milter signs the unsigned message.
  Every captured message must carry exactly one DKIM-Signature (d=, s=, a=, c= as
  configured) that mailseal's library and dkimpy both verify against the loopback DNS.
- **verify**: nobody is internal: each milter verifies a message pre-signed once by
  mailseal's library. Every captured message must carry that milter's
  Authentication-Results (its own authserv-id) with dkim=pass, and no second signature.

A run with an error, a lost message or a failed check shows ERROR instead of figures,
and the script exits 1. Warm-up messages go through the same path before each timed
run; the milters stay up for the whole bench.

Measured per run: messages per second end to end; the milter's CPU seconds (utime +
stime over its process tree, workers included); Postfix's CPU seconds (its master with
the daemons it reaped, plus the live ones); the whole machine's CPU time (/proc/stat);
the milter's peak RSS (VmHWM summed over the tree, reset before the run) and peak PSS
(sampled every 0.1 s; forked workers share pages, which summed VmHWM counts per process).
msg/s moves with whatever else the machine runs; CPU per message does not, so both are
shown. The output is Markdown for docs/performance.md; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import importlib.metadata
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import dkim  # type: ignore[import-untyped]
import dns.resolver

# _harness puts tests/ on sys.path (for dnsserver, mta, daemons): import it first.
from _harness import (
    CLOCK_TICKS,
    ROOT,
    BenchError,
    DkimpyMilter,
    Mailseal,
    Milter,
    OpenDkim,
    PssSampler,
    Signing,
    TreeSample,
    check,
    fields_named,
    key_record,
    machine_ticks,
    peak_rss_kib,
    postfix_cpu_seconds,
    postsuper_delete_all,
    read_dump,
    reset_peak_rss,
    txt_strings,
    write_private,
)
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from dkim_throughput import DOMAIN, RSA_SELECTOR, make_message
from dnsserver import ZoneServer, make_zone
from mta import (
    PostfixError,
    PrivatePostfix,
    SmtpSinkProcess,
    free_port,
    missing_postfix,
    run_smtp_source,
    write_source_file,
)

from mailseal import api
from mailseal.dns.resolver import DnsResolver

KIB, MIB = 1024, 1024 * 1024
SIZES = (("4 KiB", 4 * KIB), ("180 KiB", 180 * KIB))
BIG = ("5 MiB", 5 * MIB)
KEY_NAME = f"{RSA_SELECTOR}._domainkey.{DOMAIN}"
ROLES = ("sign", "verify")
NONE = "no milter"
OPENDKIM, DKIMPY = "OpenDKIM", "dkimpy-milter"
MAILSEAL_WORKERS = (1, 2)
WARMUP = 20

TARGET_VS_OPENDKIM = 1.0  # msg/s, sign and verify, 4 KiB and 180 KiB
TARGET_VS_DKIMPY = 2.5
TARGET_CPU_VS_OPENDKIM = 1.0  # milter CPU per message, at most OpenDKIM's
TARGET_RSS_BYTES = 150_000_000  # 150 sessions of 5 MiB messages
CHECK_ALL_UP_TO = 200 * KIB  # larger messages: crypto checks on a sample
SAMPLE = 20
#: Postfix warnings that say nothing about the mail: this VM's clock steps now and then.
BENIGN = re.compile(r"warning: (file system clock is \d+ seconds? ahead of local clock"
                    r"|resetting file time stamps - this hurts performance)")


@dataclass
class Run:
    mode: str
    role: str
    size: str
    sessions: int
    count: int
    seconds: float = 0.0
    cpu: dict[int, float] = field(default_factory=dict)  # per process of the milter
    peak_kib: int = 0  # VmHWM summed over the milter's processes
    pss_kib: int = 0  # the highest summed PSS sampled during the run
    busy: float = 0.0  # the machine's CPU use over the run, fraction of all cores
    machine_cpu: float = 0.0  # CPU seconds used by the whole machine over the run
    postfix_cpu: float = 0.0  # CPU seconds of the Postfix instance (all its daemons)
    checked: str = ""
    dns_queries: int = 0  # key lookups the loopback DNS server answered during the run
    error: str = ""

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0

    @property
    def cpu_total(self) -> float:
        return sum(self.cpu.values())


class Bench:
    """The loopback DNS server, the milters (each mode in both roles, all up for the
    whole bench), smtp-sink and Postfix; ``run`` measures and checks one run."""

    def __init__(self, folder: Path, modes: Sequence[str]) -> None:
        self.folder = folder
        self.modes = list(modes)
        self.milters: dict[tuple[str, str], Milter] = {}
        self.unavailable: dict[str, str] = {}
        self.files: dict[tuple[str, str], Path] = {}
        self.sizes: dict[str, int] = {}
        self.expected = 0  # messages the sink has counted so far
        self.current_milter = ""
        self.loop = asyncio.new_event_loop()

    # -- setup -------------------------------------------------------------------------

    def start(self, sizes: Sequence[tuple[str, int]]) -> None:
        keys = self.folder / "keys"
        keys.mkdir(mode=0o755)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.key_file = write_private(keys / "bench-rsa.pem", key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption()))
        spki = key.public_key().public_bytes(serialization.Encoding.DER,
                                             serialization.PublicFormat.SubjectPublicKeyInfo)
        record = key_record(spki)
        self.dns = ZoneServer(make_zone(DOMAIN, f"{RSA_SELECTOR}._domainkey TXT "
                                                f"{txt_strings(record)}"))
        self.dns.start()
        self.resolver = DnsResolver([f"127.0.0.1:{self.dns.port}"])
        self.dkimpy_resolver = dns.resolver.Resolver(configure=False)
        self.dkimpy_resolver.nameservers = ["127.0.0.1"]
        self.dkimpy_resolver.port = self.dns.port
        self.signing = Signing(DOMAIN, RSA_SELECTOR, self.key_file, self.dns.port, record)
        self._write_messages(sizes)
        for mode in self.modes:
            for role in ROLES:
                self._start_milter(mode, role)
        self.sink = SmtpSinkProcess(dump_dir=self.folder / "sink", backlog=512).start()
        self.postfix = PrivatePostfix(relayhost=self.sink.relayhost, name="bench",
                                      base_dir=self.folder, main_cf={
                                          # 150 sessions: the limit also caps the backlog
                                          "default_process_limit": "400",
                                          "smtpd_milters": "",
                                          "milter_command_timeout": "30s",
                                          "milter_content_timeout": "300s",
                                          "milter_default_action": "tempfail",
                                      })
        self.postfix.start()

    def _write_messages(self, sizes: Sequence[tuple[str, int]]) -> None:
        for label, size in sizes:
            message = make_message(label, size)
            signed = api.sign(message, domain=DOMAIN, selector=RSA_SELECTOR,
                              key=self.key_file) + message
            name = label.replace(" ", "")
            self.files["sign", label] = write_source_file(self.folder / f"{name}.eml", message)
            self.files["verify", label] = write_source_file(self.folder / f"{name}-signed.eml",
                                                            signed)
            self.sizes[label] = size
        for path in self.files.values():
            path.chmod(0o644)

    def _start_milter(self, mode: str, role: str) -> None:
        if mode == NONE or mode in self.unavailable:
            return
        port = free_port()
        milter: Milter
        if mode == OPENDKIM:
            milter = OpenDkim(mode, role, self.signing, self.folder, port)
        elif mode == DKIMPY:
            reason = DkimpyMilter.missing()
            if reason:
                self.unavailable[mode] = reason
                return
            milter = DkimpyMilter(mode, role, self.signing, self.folder, port)
        else:
            workers = int(mode.rpartition("=")[2])
            milter = Mailseal(mode, role, self.signing, self.folder, port, workers)
        try:
            self.milters[mode, role] = milter.start()
        except (RuntimeError, OSError) as exc:
            self.unavailable[mode] = f"{mode} did not start: {exc}"

    def close(self) -> None:
        for milter in self.milters.values():
            milter.stop()
        for stop in ("postfix", "sink", "dns"):
            thing = getattr(self, stop, None)
            if thing is not None:
                try:
                    thing.close() if stop == "postfix" else thing.stop()
                except Exception as exc:  # keep stopping the rest
                    print(f"stopping {stop}: {exc}", file=sys.stderr)
        self.loop.close()

    # -- one timed run -------------------------------------------------------------------

    def run(self, mode: str, role: str, size: str, *, sessions: int, count: int) -> Run:
        result = Run(mode, role, size, sessions, count)
        if mode in self.unavailable:
            # A peer may be missing here; mailseal, the subject, may not.
            why = self.unavailable[mode]
            result.error = why if mode.startswith("mailseal") else "unavailable"
            return result
        milter = self.milters.get((mode, role))
        try:
            self._measure(result, milter)
        except (BenchError, PostfixError, TimeoutError, subprocess.TimeoutExpired) as exc:
            result.error = f"{type(exc).__name__}: {exc}"[:2000]
            self._recover()
        return result

    def _use(self, milter: Milter | None) -> None:
        address = milter.address if milter is not None else ""
        if address != self.current_milter:
            self.postfix.reload({"smtpd_milters": address})
            self.current_milter = address
            time.sleep(0.5)  # idle smtpd processes of the old configuration exit

    def _send(self, source: Path, count: int, sessions: int, size: int) -> None:
        timeout = 120 + count * size / 2e6  # bounded: smtp-source has no timeout itself
        run_smtp_source(self.postfix.port, count=count, sessions=sessions,
                        message_file=source, timeout=timeout)
        self.expected += count
        self.sink.wait_for(self.expected, timeout=timeout)

    def _clear_dumps(self) -> None:
        for path in self.sink.dump_files():
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()

    def _measure(self, result: Run, milter: Milter | None) -> None:
        self._use(milter)
        source = self.files[result.role, result.size]
        size = self.sizes[result.size]
        self._send(source, min(WARMUP, result.count), min(WARMUP, result.sessions), size)
        self.postfix.wait_queue_empty(timeout=60)
        self._clear_dumps()
        pids = milter.pids() if milter is not None else []
        for pid in pids:
            reset_peak_rss(pid)
        log_start = self.postfix.log_file.stat().st_size
        with PssSampler(pids) as pss:
            master = self.postfix.master_pid() or 0
            queries0 = self.dns.count(KEY_NAME)
            postfix0 = postfix_cpu_seconds(master)
            before, busy0 = TreeSample.take(pids), machine_ticks()
            t0 = time.perf_counter()
            self._send(source, result.count, result.sessions, size)
            result.seconds = time.perf_counter() - t0
            after, busy1 = TreeSample.take(pids), machine_ticks()
            result.postfix_cpu = postfix_cpu_seconds(master) - postfix0
            result.dns_queries = self.dns.count(KEY_NAME) - queries0
        result.cpu = after.since(before)
        result.busy = (busy1[0] - busy0[0]) / max(busy1[1] - busy0[1], 1)
        result.machine_cpu = (busy1[0] - busy0[0]) / CLOCK_TICKS
        result.pss_kib = pss.peak_kib
        if milter is not None:
            now = milter.pids()
            check(sorted(now) == sorted(pids), f"milter processes changed during the run "
                  f"({sorted(pids)} → {sorted(now)}): a worker died?\n{milter.log_tail()}")
            result.peak_kib = sum(peak_rss_kib(pid) for pid in now)
        self.postfix.wait_queue_empty(timeout=60)
        problems = [line for line in self._log_since(log_start).splitlines()
                    if re.search(r"\]: (warning|error|fatal|panic): |status=(deferred|bounced)",
                                 line) and not BENIGN.search(line)]
        check(not problems, "Postfix logged problems:\n" + "\n".join(problems[:10]))
        dumps = [p for p in self.sink.dump_files() if p.is_file()]
        check(len(dumps) == result.count,
              f"{len(dumps)} messages captured, {result.count} sent")
        result.checked = self._check(result, milter, dumps)
        self._clear_dumps()

    def _log_since(self, offset: int) -> str:
        with open(self.postfix.log_file, "rb") as log:
            log.seek(offset)
            return log.read().decode(errors="replace")

    def _recover(self) -> None:
        """After a failed run: empty the queue, count what the sink has, drop dumps."""
        postsuper_delete_all(self.postfix.config_dir)
        time.sleep(1)
        self.expected = self.sink.messages
        self._clear_dumps()

    # -- checks ---------------------------------------------------------------------------

    def _check(self, result: Run, milter: Milter | None, dumps: list[Path]) -> str:
        size = self.sizes[result.size]
        step = 1 if size <= CHECK_ALL_UP_TO else max(1, len(dumps) // SAMPLE)
        sample = dumps[::step]
        # Header checks on every message (the first 64 KiB hold the header section).
        heads = [read_dump(path, 1 << 16) for path in dumps]
        for path, head in zip(dumps, heads, strict=True):
            sigs = fields_named(head, "DKIM-Signature")
            if result.role == "sign":
                want = 0 if milter is None else 1
                check(len(sigs) == want, f"{path.name}: {len(sigs)} DKIM-Signature fields, "
                      f"expected {want}")
                if want:
                    self._check_tags(path, sigs[0])
            else:
                check(len(sigs) == 1, f"{path.name}: {len(sigs)} DKIM-Signature fields, "
                      "expected the one it was sent with")
                if milter is not None:
                    self._check_authres(path, head, milter.authserv_id)
        if result.role == "verify":
            return "" if milter is None else (f"{len(dumps)}/{len(dumps)} dkim=pass; "
                                              f"{result.dns_queries} DNS queries")
        if milter is None:
            return "no signature"
        messages = [read_dump(path) for path in sample]
        ours = self.loop.run_until_complete(self._verify_mailseal(messages))
        for path, results in zip(sample, ours, strict=True):
            check(len(results) == 1 and str(results[0].result) == "pass",
                  f"{path.name}: mailseal's library says "
                  f"{[(str(r.result), r.reason_text) for r in results]}")
        for path, message in zip(sample, messages, strict=True):
            try:
                ok = dkim.verify(message, dnsfunc=self._dkimpy_dns)
            except dkim.DKIMException as exc:
                ok, why = False, str(exc)
            else:
                why = "verify returned False"
            check(ok, f"{path.name}: dkimpy does not verify the signature: {why}")
        return f"{len(sample)}/{len(dumps)} verified"

    def _check_tags(self, path: Path, field_bytes: bytes) -> None:
        value = re.sub(rb"\s+", b"", field_bytes.partition(b":")[2])
        tags = dict(t.partition(b"=")[::2] for t in value.split(b";") if t)
        want = {b"d": DOMAIN.encode(), b"s": RSA_SELECTOR.encode(), b"a": b"rsa-sha256",
                b"c": b"relaxed/simple"}
        got = {k: tags.get(k) for k in want}
        check(got == want, f"{path.name}: signature tags {got}, expected {want}")

    def _check_authres(self, path: Path, head: bytes, authserv_id: str) -> None:
        mine = []
        for f in fields_named(head, "Authentication-Results"):
            value = re.sub(rb"\s+", b" ", f.partition(b":")[2]).strip()
            if value.split(b";", 1)[0].strip() == authserv_id.encode():
                mine.append(value)
        check(len(mine) == 1 and re.search(rb"\bdkim=pass\b", mine[0]) is not None
              and re.search(rb"header\.d=" + re.escape(DOMAIN.encode()), mine[0]) is not None,
              f"{path.name}: Authentication-Results from {authserv_id}: {mine}")

    async def _verify_mailseal(self, messages: list[bytes]) -> list[list[api.DkimResult]]:
        return [await api.verify_async(m, dns=self.resolver) for m in messages]

    def _dkimpy_dns(self, name: bytes, timeout: float = 5) -> bytes | None:
        answer = self.dkimpy_resolver.resolve(name.decode(), "TXT", lifetime=timeout)
        return b"".join(answer[0].strings)


# -- report ---------------------------------------------------------------------------------


def version(command: list[str], pattern: str) -> str:
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    found = re.search(pattern, out)
    return found.group(1) if found else "?"


def machine(peers_error: dict[str, str]) -> list[str]:
    model = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.partition(":")[2].strip()
            break
    peers_python = ROOT / "bench" / ".peers-venv" / "bin" / "python"
    dkimpy_milter = version([str(peers_python), "-c", "import importlib.metadata as m; "
                             "print(m.version('dkimpy-milter'), m.version('pymilter'), "
                             "m.version('dkimpy'))"], r"(.+)") if peers_python.exists() else "?"
    commit = version(["git", "-C", str(ROOT), "describe", "--always", "--dirty"], r"(\S+)")
    postfix = version(["postconf", "-d", "mail_version"], r"= (\S+)")
    opendkim = version(["opendkim", "-V"], r"Filter v(\S+)")
    lines = [
        f"- date: {datetime.datetime.now(datetime.UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- CPU: {model}; nproc {len(os.sched_getaffinity(0))}",
        f"- Linux {platform.release()}; Python {platform.python_version()}; "
        f"mailseal {importlib.metadata.version('mailseal')} ({commit})",
        f"- Postfix {postfix}; OpenDKIM {opendkim}; dkimpy-milter, "
        f"pymilter, dkimpy: {dkimpy_milter}",
    ]
    lines += [f"- {mode}: not measured: {why}" for mode, why in peers_error.items()]
    return lines


def table(head: Sequence[str], rows: Sequence[Sequence[str]], align: str = "") -> str:
    """A Markdown table; ``align`` has one letter per column, l or r (default: the first
    three columns left, the rest right)."""
    align = align or "lll" + "r" * (len(head) - 3)
    out = ["| " + " | ".join(head) + " |",
           "|" + "|".join("---" if a == "l" else "---:" for a in align) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


@dataclass
class Cell:
    """The runs of one (mode, role, size, sessions), one per round. Figures: the best
    round's msg/s, the lowest CPU per message, the highest memory peaks."""

    runs: list[Run]

    @property
    def ok(self) -> list[Run]:
        return [r for r in self.runs if not r.error]

    @property
    def failed(self) -> bool:
        return not self.ok or any(r.error and r.error != "unavailable" for r in self.runs)

    @property
    def best(self) -> Run:
        return max(self.ok, key=lambda r: r.rate)

    @property
    def rate(self) -> float:
        return self.best.rate

    @property
    def cpu_ms(self) -> float:
        return min(r.cpu_total / r.count * 1000 for r in self.ok)

    @property
    def machine_ms(self) -> float:
        return min(r.machine_cpu / r.count * 1000 for r in self.ok)

    @property
    def postfix_ms(self) -> float:
        return min(r.postfix_cpu / r.count * 1000 for r in self.ok)

    @property
    def peak_mib(self) -> float:
        return max(r.peak_kib for r in self.ok) / 1024

    @property
    def pss_mib(self) -> float:
        return max(r.pss_kib for r in self.ok) / 1024


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if a and b else "n/a"


HEAD = ["role", "message", "milter", "msg/s", "milter CPU ms/msg", "Postfix CPU ms/msg",
        "machine CPU ms/msg", "machine busy", "peak RSS MiB", "peak PSS MiB", "vs OpenDKIM",
        "vs dkimpy-milter", "vs no milter", "checked (last round)"]


def cell_rows(cells: dict[tuple[str, str, str, int], Cell], modes: Sequence[str],
              role: str, size: str, sessions: int, suffix: str = "") -> list[list[str]]:
    rows = []
    here = {m: cells.get((m, role, size, sessions)) for m in modes}

    def rate(mode: str) -> float:
        c = here.get(mode)
        return c.rate if c is not None and not c.failed else 0.0

    for mode in modes:
        c = here[mode]
        if c is None:
            continue
        name = mode + suffix
        if c.failed:
            why = "unavailable" if c.runs[0].error == "unavailable" else "ERROR"
            rows.append([role, size, name, why] + [""] * (len(HEAD) - 4))
            continue
        milter = mode != NONE
        best = c.best
        rows.append([
            role, size, name, f"{c.rate:,.1f}",
            f"{c.cpu_ms:.2f}" if milter else "", f"{c.postfix_ms:.2f}",
            f"{c.machine_ms:.2f}", f"{best.busy:.0%}",
            f"{c.peak_mib:.1f}" if milter else "", f"{c.pss_mib:.1f}" if milter else "",
            ratio(c.rate, rate(OPENDKIM)) if mode != OPENDKIM else "",
            ratio(c.rate, rate(DKIMPY)) if mode != DKIMPY else "",
            ratio(c.rate, rate(NONE)) if milter else "",
            c.runs[-1].checked,
        ])
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="100 messages per run and 1 round (not 400 and 3); the "
                             "150-session runs only for OpenDKIM and mailseal")
    parser.add_argument("--modes", help="comma-separated subset of: none, opendkim, "
                        "dkimpy-milter, mailseal1, mailseal2")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args(argv)
    why = missing_postfix()
    if why:
        print(f"cannot run: {why}", file=sys.stderr)
        return 2
    all_modes = [NONE, OPENDKIM, DKIMPY, *(f"mailseal w={n}" for n in MAILSEAL_WORKERS)]
    short = {"none": NONE, "opendkim": OPENDKIM, "dkimpy-milter": DKIMPY,
             **{f"mailseal{n}": f"mailseal w={n}" for n in MAILSEAL_WORKERS}}
    modes = [short[m] for m in args.modes.split(",")] if args.modes else all_modes
    count, rounds, sessions = (100, 1, 20) if args.quick else (400, 3, 20)
    big_count, big_sessions = 150, 150
    many_count = 150 if args.quick else 400
    many_modes = [m for m in modes if not args.quick or m in (OPENDKIM, *all_modes[3:])]
    started = time.perf_counter()

    def progress(text: str) -> None:
        print(f"  [{time.perf_counter() - started:5.0f} s] {text}", file=sys.stderr, flush=True)

    folder = Path(tempfile.mkdtemp(prefix="mailseal-bench-", dir="/var/tmp"))
    folder.chmod(0o755)  # the postfix user must reach the sink's dump folder
    bench = Bench(folder, modes)
    cells: dict[tuple[str, str, str, int], Cell] = {}
    failed = False

    def measure(mode: str, role: str, label: str, n: int, s: int) -> None:
        nonlocal failed
        run = bench.run(mode, role, label, sessions=s, count=n)
        cells.setdefault((mode, role, label, s), Cell([])).runs.append(run)
        per = 1000 / max(run.count, 1)
        text = (f"{run.rate:,.1f} msg/s; CPU ms/msg: milter {run.cpu_total * per:.2f}, "
                f"Postfix {run.postfix_cpu * per:.2f}, machine {run.machine_cpu * per:.2f}; "
                f"peak RSS {run.peak_kib / 1024:.0f} MiB, PSS {run.pss_kib / 1024:.0f} MiB")
        progress(f"{role} {label} x{n} s={s} {mode}: " + (run.error or text))
        if run.error and run.error != "unavailable":
            failed = True

    try:
        bench.start([*SIZES, BIG])
        for why_mode, why in bench.unavailable.items():
            progress(f"{why_mode}: {why}")
        progress("started: DNS, milters, smtp-sink, Postfix")
        for r in range(rounds):
            for label, _ in SIZES:
                for role in ROLES:
                    for mode in modes:
                        measure(mode, role, label, count, sessions)
            progress(f"round {r + 1} of {rounds} done")
        for role in ROLES:
            for mode in many_modes:
                measure(mode, role, SIZES[1][0], many_count, big_sessions)
        for role in ROLES:
            for mode in many_modes:
                measure(mode, role, BIG[0], big_count, big_sessions)
        elapsed = time.perf_counter() - started
    finally:
        bench.close()
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)

    print(f"Command: `.venv/bin/python bench/milter_postfix.py{' --quick' if args.quick else ''}`"
          f"; the whole run took {elapsed:.0f} s.\n")
    print("\n".join(machine(bench.unavailable)) + "\n")
    print(f"#### {sessions} sessions, {count} messages per run, best of {rounds} "
          f"round{'s' if rounds > 1 else ''}\n")
    rows = []
    for label, _ in SIZES:
        for role in ROLES:
            rows += cell_rows(cells, modes, role, label, sessions)
    print(table(HEAD, rows) + "\n")
    print(f"#### {big_sessions} sessions, one round\n")
    rows = []
    for label, n in ((SIZES[1][0], many_count), (BIG[0], big_count)):
        for role in ROLES:
            rows += cell_rows(cells, many_modes, role, label, big_sessions, f" x{n}")
    print(table(HEAD, rows) + "\n")
    print_cpu(cells, modes, sessions)
    print_targets(cells, modes, sessions, big_sessions)
    print_notes(cells)
    errors = [r for c in cells.values() for r in c.runs if r.error and r.error != "unavailable"]
    for run in errors:
        print(f"\nERROR {run.role} {run.size} {run.mode} s={run.sessions}: {run.error}")
    return 1 if failed else 0


def print_targets(cells: dict[tuple[str, str, str, int], Cell], modes: Sequence[str],
                  sessions: int, big: int) -> None:
    """Each target per mailseal configuration. Throughput ratios are of the two cells'
    best rounds; the range is the lowest and highest ratio within one round."""
    mailseals = [m for m in modes if m.startswith("mailseal")]
    rows = []

    def get(mode: str, role: str, size: str, s: int = sessions) -> Cell | None:
        c = cells.get((mode, role, size, s))
        return c if c is not None and not c.failed else None

    def verdict(ok: bool) -> str:
        return "PASS" if ok else "MISS"

    def rounds(c: Cell, other: Cell) -> str:
        ratios = [a.rate / b.rate for a, b in zip(c.runs, other.runs, strict=False)
                  if not a.error and not b.error]
        if len(ratios) < 2:
            return ""
        return f" (rounds {min(ratios):.2f}–{max(ratios):.2f}x)"

    for label, _ in SIZES:
        for role in ROLES:
            for what, peer, target in (("msg/s", OPENDKIM, TARGET_VS_OPENDKIM),
                                       ("msg/s", DKIMPY, TARGET_VS_DKIMPY),
                                       ("CPU/msg", OPENDKIM, TARGET_CPU_VS_OPENDKIM)):
                other = get(peer, role, label)
                bare = get(NONE, role, label)
                op = ">=" if what == "msg/s" else "<="
                row = [f"{role} {label}: {what} {op} {target:g}x {peer}'s",
                       ratio(bare.rate, other.rate) if what == "msg/s" and bare and other
                       else ""]
                for m in mailseals:
                    c = get(m, role, label)
                    if c is None or other is None:
                        row.append("n/a")
                    elif what == "msg/s":
                        x = c.rate / other.rate
                        row.append(f"{x:.2f}x{rounds(c, other)} {verdict(x >= target)}")
                    else:
                        x = c.cpu_ms / other.cpu_ms
                        row.append(f"{c.cpu_ms:.2f} vs {other.cpu_ms:.2f} ms = {x:.2f}x "
                                   f"{verdict(x <= target)}")
                rows.append(row)
    for role in ROLES:
        row = [f"{role}, {big} sessions x 5 MiB: milter peak memory < 150 MB (143 MiB): "
               "summed VmHWM; sampled PSS", ""]
        for m in mailseals:
            c = cells.get((m, role, BIG[0], big))
            if c is None:
                row.append("n/a")
            elif c.failed:
                row.append("ERROR MISS")
            else:
                limit = TARGET_RSS_BYTES / MIB
                row.append(f"{c.peak_mib:.1f} MiB {verdict(c.peak_mib < limit)}; "
                           f"{c.pss_mib:.1f} MiB {verdict(c.pss_mib < limit)}")
        rows.append(row)
    for role in ROLES:
        row = [f"{role}, {big} sessions x 180 KiB: no errors, no lost messages", ""]
        for m in mailseals:
            c = cells.get((m, role, SIZES[1][0], big))
            n = c.runs[0].count if c is not None else 0
            row.append("n/a" if c is None else "ERROR MISS" if c.failed else
                       f"{n}/{n} delivered, checked PASS")
        rows.append(row)
    print("#### Targets\n")
    head = ["target", "ceiling: no milter / peer", *mailseals]
    print(table(head, rows, "lr" + "l" * len(mailseals)) + "\n")


def print_cpu(cells: dict[tuple[str, str, str, int], Cell], modes: Sequence[str],
              sessions: int) -> None:
    """Postfix + milter CPU per message: what the mail system itself pays, immune to
    other load on the machine (which moves msg/s a lot on a shared VM). Its inverse is
    the throughput of a CPU-bound server that runs nothing else."""
    mailseals = [m for m in modes if m.startswith("mailseal")]
    head = ["role", "message", *modes]
    for m in mailseals:
        head += [f"{m}: OpenDKIM / it", f"{m}: dkimpy-milter / it"]
    rows = []
    for label, _ in SIZES:
        for role in ROLES:
            cost: dict[str, float] = {}
            for mode in modes:
                c = cells.get((mode, role, label, sessions))
                if c is not None and not c.failed:
                    cost[mode] = min((r.postfix_cpu + r.cpu_total) / r.count * 1000
                                     for r in c.ok)
            row = [role, label, *(f"{cost[m]:.2f}" if m in cost else "n/a" for m in modes)]
            for m in mailseals:
                row += [ratio(cost.get(OPENDKIM, 0.0), cost.get(m, 0.0)),
                        ratio(cost.get(DKIMPY, 0.0), cost.get(m, 0.0))]
            rows.append(row)
    print(f"#### Postfix + milter CPU ms per message, {sessions} sessions (lowest of the "
          "rounds)\n")
    print(table(head, rows, "ll" + "r" * (len(head) - 2)) + "\n")


def print_notes(cells: dict[tuple[str, str, str, int], Cell]) -> None:
    """How CPU spread over mailseal's processes in the runs with workers."""
    lines = []
    for (mode, role, size, s), c in sorted(cells.items()):
        if not mode.startswith("mailseal") or mode.endswith("=1") or c.failed:
            continue
        best = max(c.ok, key=lambda r: r.rate)
        parts = sorted(best.cpu.values(), reverse=True)
        total = sum(parts) or 1
        lines.append(f"- {mode} {role} {size} s={s}: CPU per process "
                     + ", ".join(f"{p:.2f} s ({p / total:.0%})" for p in parts))
    if lines:
        print("#### CPU per mailseal process (supervisor included)\n")
        print("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
