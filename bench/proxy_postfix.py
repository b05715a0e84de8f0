"""How fast does Postfix sign and verify through mailseal's SMTP proxy, next to no
filter at all and next to mailseal's own milter, in the same run?

Run (as root, Postfix installed): ``.venv/bin/python bench/proxy_postfix.py [--quick]``

One private Postfix instance (``tests/mta/``) relays to Postfix's ``smtp-sink``, which
dumps every message. ``smtp-source`` sends one prepared 180 KiB message 400 times over
20 parallel sessions (one message per session, as an MX sees it), timed from its start
until the sink has counted the last message. The services, all in one master.cf, are
the lines ``mailseal postfix-config --mode proxy`` prints, plus two milter services:

- **baseline**: smtpd → queue → sink; no filter.
- **proxy out**: submission smtpd → queue → content_filter → proxy (role out, signs) →
  return smtpd → queue → sink. Postfix handles each message twice: about 50% of the
  baseline is the ceiling. Target ≥ 45% of the baseline.
- **proxy in**: smtpd → smtpd_proxy_filter → proxy (role in, verifies a message signed
  beforehand) → return smtpd → queue → sink; one queue pass. Target ≥ 70%.
- **no proxy in**: smtpd → smtpd_proxy_filter pointed straight at the return smtpd →
  queue: the before-queue route with a filter that costs nothing, i.e. the ceiling for
  any before-queue proxy on this machine (the ratio ``proxy in`` can at most reach).
- **milter sign / milter verify**: smtpd with ``smtpd_milters`` → mailseal's milter
  (``mailseal milter``, one process) → queue → sink: the reference for CPU.

Both proxies run in one ``mailseal proxy`` process, the milters in one ``mailseal
milter`` process each; all use one RSA-2048 key (rsa-sha256, relaxed/simple) whose
record a loopback DNS server serves (``tests/dnsserver.py``). CPU per message is utime +
stime of the filter's process over the timed run divided by the messages: target, the
proxy's ≤ the milter's for the same role.

Every captured message is checked: signed runs carry exactly one DKIM-Signature that
mailseal's library verifies (and dkimpy, on a sample); verify runs carry the filter's
Authentication-Results with dkim=pass. A run that loses mail or fails a check shows
ERROR, and the script exits 1. Output: Markdown for docs/performance.md; progress on
stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import dkim  # type: ignore[import-untyped]
import dns.resolver

# _harness puts tests/ on sys.path (for dnsserver, mta, daemons): import it first.
from _harness import (
    BenchError,
    check,
    cpu_seconds,
    cpu_split,
    fields_named,
    machine_ticks,
    postfix_cpu_seconds,
    postsuper_delete_all,
    process_tree,
    read_dump,
    txt_strings,
)
from daemons import MailsealProcess
from dkim_throughput import DOMAIN, RSA_SELECTOR, make_message
from dnsserver import ZoneServer, make_zone
from mta import (
    PostfixError,
    PrivatePostfix,
    SmtpSinkProcess,
    free_port,
    is_listening,
    missing_postfix,
    run_smtp_source,
    wait_until,
    write_source_file,
)

from mailseal import api
from mailseal.dkim.keys import load_key
from mailseal.dkim.publish import record_value
from mailseal.dns.resolver import DnsResolver
from mailseal.frontends.cli.postfix_cmds import ProxyPlan, proxy_master_cf
from mailseal.keystore import generate_key, write_private_key

LOOP = "127.0.0.1"
SIZE = 180 * 1024
AUTHSERV = {"proxy": "proxy.bench", "milter": "milter.bench"}
# Each proxy route next to the milter route it is compared with (their order swaps
# every other round), the baseline and the before-queue ceiling around them.
ROUTES = ("baseline", "proxy out", "milter sign", "proxy in", "milter verify", "no proxy in")
SERVICE = {"baseline": "smtp", "proxy out": "submission", "proxy in": "inbound",
           "no proxy in": "noproxy",
           "milter sign": "msign", "milter verify": "mverify"}
VERIFYING = ("proxy in", "no proxy in", "milter verify")  # these get signed mail
UNFILTERED = ("baseline", "no proxy in")  # no mailseal process on the route
TARGET_OUT, TARGET_IN = 0.45, 0.70
WARMUP = 20
SAMPLE = 10  # messages per run that dkimpy verifies too


@dataclass
class Run:
    route: str
    count: int
    seconds: float = 0.0
    cpu: float = 0.0  # the filter's CPU seconds over the run
    system: float = 0.0  # the part of it spent in the kernel (stime)
    machine: float = 0.0  # CPU seconds the whole machine used over the run
    postfix: float = 0.0  # CPU seconds of the Postfix instance over the run
    checked: str = ""
    error: str = ""

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0

    @property
    def cpu_ms(self) -> float:
        return self.cpu / self.count * 1000

    @property
    def machine_ms(self) -> float:
        return self.machine / self.count * 1000

    @property
    def mail_system_ms(self) -> float:
        """Postfix + the filter, per message: what other load on the machine does not
        move (unlike msg/s and machine CPU)."""
        return (self.postfix + self.cpu) / self.count * 1000


@dataclass
class Bench:
    folder: Path
    processes: dict[str, MailsealProcess] = field(default_factory=dict)
    expected: int = 0

    # -- setup ---------------------------------------------------------------------------

    def start(self) -> None:
        keys = self.folder / "keys"
        keys.mkdir(mode=0o755)
        self.key_file = keys / "bench-rsa.pem"
        write_private_key(self.key_file, generate_key("rsa"))
        value = record_value(load_key(self.key_file))
        strings = txt_strings(value)
        # The parent zone too: DMARC's tree walk (RFC 9989) ends at the TLD, whose
        # NXDOMAIN a resolver caches; a server that refused it would cost a query per message.
        self.dns = ZoneServer(make_zone(DOMAIN, f"{RSA_SELECTOR}._domainkey TXT "
                                                f"{strings}"),
                              make_zone(DOMAIN.partition(".")[2])).start()
        self.resolver = DnsResolver([f"{LOOP}:{self.dns.port}"])
        message = make_message("180 KiB", SIZE)
        signed = api.sign(message, domain=DOMAIN, selector=RSA_SELECTOR,
                          key=self.key_file) + message
        self.files = {"unsigned": write_source_file(self.folder / "plain.eml", message),
                      "signed": write_source_file(self.folder / "signed.eml", signed)}
        for path in self.files.values():
            path.chmod(0o644)
        ports = {name: free_port() for name in ("out", "in", "outret", "inret", "msign",
                                                "mverify")}
        self._start_filters(ports)
        self.sink = SmtpSinkProcess(dump_dir=self.folder / "sink", backlog=512).start()
        plan = ProxyPlan(out_listen=(LOOP, ports["out"]), out_relay=(LOOP, ports["outret"]),
                         in_listen=(LOOP, ports["in"]), in_relay=(LOOP, ports["inret"]),
                         submission=f"{LOOP}:{{submission}}", inbound=f"{LOOP}:{{inbound}}",
                         chroot="n", submission_auth=False)
        services = proxy_master_cf(plan) + "".join(
            f"{LOOP}:{{{name}}} inet n - n - - smtpd\n"
            f"  -o smtpd_milters=inet:{LOOP}:{ports[name]}\n" for name in ("msign", "mverify")) + (
            f"{LOOP}:{{noproxy}} inet n - n - - smtpd\n"
            f"  -o smtpd_proxy_filter={LOOP}:{ports['inret']}\n  -o smtpd_proxy_timeout=150s\n")
        self.postfix = PrivatePostfix(
            relayhost=self.sink.relayhost, name="proxybench", base_dir=self.folder,
            services=services, service_ports=["submission", "inbound", "msign", "mverify", "noproxy"],
            main_cf={"milter_default_action": "tempfail", "milter_content_timeout": "300s"})
        self.postfix.start()

    def _start_filters(self, ports: dict[str, int]) -> None:
        common = f"""
[dns]
nameservers = ["{LOOP}:{self.dns.port}"]
[[keys]]
name = "bench-rsa"
domain = "{DOMAIN}"
selector = "{RSA_SELECTOR}"
file = "{self.key_file}"
"""
        rules = f'rules = [{{ match = "*@{DOMAIN}", keys = ["bench-rsa"] }}]\n'
        configs = {
            "proxy": f"""[server]
authserv_id = "{AUTHSERV['proxy']}"
log_level = "warning"
[[listeners]]
kind = "proxy"
address = "inet:{LOOP}:{ports['out']}"
role = "out"
relay = "{LOOP}:{ports['outret']}"
[[listeners]]
kind = "proxy"
address = "inet:{LOOP}:{ports['in']}"
role = "in"
relay = "{LOOP}:{ports['inret']}"
[signing]
{rules}{common}""",
        }
        for role, internal in (("sign", '["127.0.0.0/8"]'), ("verify", "[]")):
            configs[f"milter {role}"] = f"""[server]
authserv_id = "{AUTHSERV['milter']}"
log_level = "warning"
[[listeners]]
kind = "milter"
address = "inet:{LOOP}:{ports['m' + role]}"
[signing]
internal_hosts = {internal}
sign_authenticated = false
{rules}{common}"""
        for name, text in configs.items():
            path = self.folder / f"{name.replace(' ', '-')}.toml"
            path.write_text(text)
            command = "proxy" if name == "proxy" else "milter"
            proc = MailsealProcess(path, command).start()
            self.processes[name] = proc
            port = ports["out" if name == "proxy" else "m" + name.split()[1]]
            wait_until(lambda p=port: is_listening(p), timeout=30, what=f"{name} on {port}")

    def close(self) -> None:
        for proc in self.processes.values():
            proc.stop()
        for name in ("postfix", "sink", "dns"):
            thing = getattr(self, name, None)
            if thing is not None:
                try:
                    thing.close() if name == "postfix" else thing.stop()
                except Exception as exc:  # keep stopping the rest
                    print(f"stopping {name}: {exc}", file=sys.stderr)

    # -- one timed run -------------------------------------------------------------------

    def filter_pids(self, route: str) -> list[int]:
        name = "proxy" if route.startswith("proxy") else route
        proc = self.processes.get(name)
        return process_tree(proc.proc.pid) if proc is not None and proc.proc else []

    def run(self, route: str, count: int, sessions: int) -> Run:
        result = Run(route, count)
        try:
            self._measure(result, sessions)
        except (BenchError, PostfixError, TimeoutError, subprocess.TimeoutExpired) as exc:
            result.error = f"{type(exc).__name__}: {exc}"[:1500]
            postsuper_delete_all(self.postfix.config_dir)
            time.sleep(1)
            self.expected = self.sink.messages
        return result

    def _send(self, route: str, count: int, sessions: int) -> None:
        source = self.files["signed" if route in VERIFYING else "unsigned"]
        timeout = 120 + count * SIZE / 2e6
        run_smtp_source(self.postfix.ports[SERVICE[route]], count=count, sessions=sessions,
                        message_file=source, mail_from=f"load@{DOMAIN}", timeout=timeout)
        self.expected += count
        self.sink.wait_for(self.expected, timeout=timeout)

    def _clear_dumps(self) -> None:
        for path in self.sink.dump_files():
            shutil.rmtree(path) if path.is_dir() else path.unlink()

    def _measure(self, result: Run, sessions: int) -> None:
        route = result.route
        self._send(route, WARMUP, min(WARMUP, sessions))
        self.postfix.wait_queue_empty(timeout=60)
        self._clear_dumps()
        pids = self.filter_pids(route)
        master = self.postfix.master_pid()
        check(master is not None, "the Postfix master is gone")
        assert master is not None
        before, busy0 = sum(cpu_seconds(pid) for pid in pids), machine_ticks()[0]
        system0 = sum(cpu_split(pid)[1] for pid in pids)
        postfix0 = postfix_cpu_seconds(master)
        t0 = time.perf_counter()
        self._send(route, result.count, sessions)
        result.seconds = time.perf_counter() - t0
        self.postfix.wait_queue_empty(timeout=60)
        result.cpu = sum(cpu_seconds(pid) for pid in pids) - before
        result.system = sum(cpu_split(pid)[1] for pid in pids) - system0
        result.postfix = postfix_cpu_seconds(master) - postfix0
        result.machine = (machine_ticks()[0] - busy0) / os.sysconf("SC_CLK_TCK")
        self.postfix.wait_queue_empty(timeout=60)
        dumps = [p for p in self.sink.dump_files() if p.is_file()]
        check(len(dumps) == result.count, f"{len(dumps)} messages captured, "
              f"{result.count} sent")
        result.checked = self._check(route, dumps)
        self._clear_dumps()

    # -- checks ----------------------------------------------------------------------------

    def _check(self, route: str, dumps: list[Path]) -> str:
        heads = [read_dump(path, 1 << 16) for path in dumps]
        signing = route in ("proxy out", "milter sign")
        for path, head in zip(dumps, heads, strict=True):
            sigs = fields_named(head, "DKIM-Signature")
            want = 1 if signing or route in VERIFYING else 0
            check(len(sigs) == want, f"{path.name}: {len(sigs)} DKIM-Signature fields, "
                  f"expected {want}")
            if route in ("proxy in", "milter verify"):
                authserv = AUTHSERV["proxy" if route == "proxy in" else "milter"]
                mine = [re.sub(rb"\s+", b" ", f) for f in fields_named(head, "Authentication-Results")
                        if f.partition(b":")[2].strip().startswith(authserv.encode() + b";")]
                check(len(mine) == 1 and b"dkim=pass" in mine[0],
                      f"{path.name}: Authentication-Results by {authserv}: {mine}")
            elif route == "no proxy in":
                check(not fields_named(head, "Authentication-Results"),
                      f"{path.name}: Authentication-Results on a route without a filter")
        if route == "baseline":
            return "unsigned"
        if route == "no proxy in":
            return f"{len(dumps)}/{len(dumps)} signed, not annotated"
        if not signing:
            return f"{len(dumps)}/{len(dumps)} dkim=pass"
        messages = [read_dump(path) for path in dumps]
        results = asyncio.run(self._verify(messages))
        for path, found in zip(dumps, results, strict=True):
            check([str(r.result) for r in found] == ["pass"],
                  f"{path.name}: mailseal's library says {[(str(r.result), r.reason_text) for r in found]}")
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers, resolver.port = [LOOP], self.dns.port

        def dnsfunc(name: bytes, timeout: float = 5) -> bytes:
            return b"".join(resolver.resolve(name.decode(), "TXT", lifetime=timeout)[0].strings)

        for path, message in list(zip(dumps, messages, strict=True))[::max(1, len(dumps) // SAMPLE)]:
            check(dkim.verify(message, dnsfunc=dnsfunc), f"{path.name}: dkimpy says fail")
        return f"{len(dumps)}/{len(dumps)} verified (dkimpy: a sample of {SAMPLE})"

    async def _verify(self, messages: list[bytes]) -> list[list[api.DkimResult]]:
        return [await api.verify_async(m, dns=self.resolver) for m in messages]


# -- report ------------------------------------------------------------------------------------


def table(head: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 2) + "---|"]
    return "\n".join(out + ["| " + " | ".join(r) + " |" for r in rows])


def machine_lines(command: str, elapsed: float) -> list[str]:
    model = next((line.partition(":")[2].strip() for line in
                  Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), "unknown")
    postfix = subprocess.run(["postconf", "-d", "mail_version"], capture_output=True,
                             text=True, check=False).stdout.strip().partition("= ")[2]
    return [f"Command: `{command}`; the whole run took {elapsed:.0f} s.", "",
            f"- date: {datetime.datetime.now(datetime.UTC).strftime('%Y-%m-%d %H:%M UTC')}",
            f"- CPU: {model}; nproc {len(os.sched_getaffinity(0))}",
            f"- Linux {platform.release()}; Python {platform.python_version()}; "
            f"Postfix {postfix}"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100 messages, 1 round")
    parser.add_argument("--rounds", type=int, help="rounds (default 3; --quick 1)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument("--routes", default=",".join(ROUTES),
                        help="comma-separated routes to run (default: all; the baseline "
                        "always runs)")
    args = parser.parse_args(argv)
    why = missing_postfix()
    if why:
        print(f"cannot run: {why}", file=sys.stderr)
        return 2
    count, rounds, sessions = (100, 1, 20) if args.quick else (400, 3, 20)
    chosen = {name.strip() for name in args.routes.split(",")} | {"baseline"}
    unknown = chosen - set(ROUTES)
    if unknown:
        parser.error(f"unknown route(s): {', '.join(sorted(unknown))}")
    routes = [route for route in ROUTES if route in chosen]
    rounds = args.rounds or rounds
    started = time.perf_counter()
    folder = Path(tempfile.mkdtemp(prefix="mailseal-proxybench-", dir="/var/tmp"))
    folder.chmod(0o755)  # the postfix user must reach the sink's dump folder
    bench = Bench(folder)
    runs: dict[str, list[Run]] = {route: [] for route in routes}
    # Each round also ends with the baseline: a route's share is its rate over the mean
    # of the two baselines around it, so a slow spell of the host (the machine is a VM
    # whose neighbours come and go) weighs on both sides of the ratio.
    per_round: list[dict[str, Run]] = []
    try:
        bench.start()
        for r in range(rounds):
            order = list(routes)
            if r % 2:
                for a, b in (("proxy out", "milter sign"), ("proxy in", "milter verify")):
                    if a in order and b in order:
                        i, j = order.index(a), order.index(b)
                        order[i], order[j] = b, a
            per_round.append({})
            for route in [*order, "baseline end"]:
                run = bench.run(route.removesuffix(" end"), count, sessions)
                per_round[-1][route] = run
                runs[route.removesuffix(" end")].append(run)
                print(f"  round {r + 1} {route}: " + (run.error or
                      f"{run.rate:.1f} msg/s, filter CPU {run.cpu_ms:.2f} ms/msg"),
                      file=sys.stderr, flush=True)
    finally:
        bench.close()
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    elapsed = time.perf_counter() - started
    command = ".venv/bin/python bench/proxy_postfix.py" + (" --quick" if args.quick else "")
    print("\n".join(machine_lines(command, elapsed)) + "\n")
    failed = any(run.error for rs in runs.values() for run in rs)
    ok = {route: [run for run in runs.get(route, []) if not run.error] for route in ROUTES}

    def rate(route: str) -> float:
        return statistics.median(run.rate for run in ok[route]) if ok[route] else 0.0

    def shares(route: str) -> list[float]:
        """Per round: the route's rate over the mean of that round's two baselines."""
        out = []
        for rr in per_round:
            x, a, b = rr.get(route), rr.get("baseline"), rr.get("baseline end")
            if x and a and b and not (x.error or a.error or b.error):
                out.append(x.rate / ((a.rate + b.rate) / 2))
        return out

    def share(route: str) -> float:
        return statistics.median(shares(route)) if shares(route) else 0.0

    def cpu(route: str) -> float:
        return statistics.median(run.cpu_ms for run in ok[route]) if ok[route] else 0.0

    def machine(route: str) -> float:
        return statistics.median(run.machine_ms for run in ok[route]) if ok[route] else 0.0

    def system(route: str) -> float:
        return statistics.median(run.mail_system_ms for run in ok[route]) if ok[route] else 0.0

    def kernel(route: str) -> float:
        return statistics.median(run.system / run.count * 1000 for run in ok[route]) \
            if ok[route] else 0.0

    rows = []
    for route in routes:
        if not ok[route]:
            rows.append([route, "ERROR", "", "", "", "", "", runs[route][-1].error[:200]])
            continue
        rates = ", ".join(f"{run.rate:.1f}" for run in ok[route])
        rows.append([route, f"{rate(route):.1f}", rates,
                     f"{share(route):.0%}" if route != "baseline" else "100%",
                     "" if route in UNFILTERED else f"{cpu(route):.2f} ({kernel(route):.2f})",
                     f"{system(route):.2f}", f"{machine(route):.2f}",
                     ok[route][-1].checked])
    print(f"#### {sessions} sessions, {count} messages of 180 KiB per run, "
          f"median of {rounds} round{'s' if rounds > 1 else ''}\n")
    print(table(["route", "msg/s", "each round", "of baseline",
                 "filter CPU ms/msg (of it in the kernel)",
                 "Postfix + filter CPU ms/msg", "machine CPU ms/msg",
                 "checked (last round)"], rows) + "\n")

    def verdict(good: bool) -> str:
        return "PASS" if good else "MISS"

    targets = []
    for route, target in (("proxy out", TARGET_OUT), ("proxy in", TARGET_IN)):
        if shares(route):
            ceiling = ""
            if route == "proxy in" and shares("no proxy in"):
                ceiling = (f" (no proxy at all: {share('no proxy in'):.0%}; proxy in "
                           f"reaches {share(route) / share('no proxy in'):.0%} of that)")
            targets.append([f"{route}: msg/s ≥ {target:.0%} of the baseline",
                            f"per round {', '.join(f'{x:.0%}' for x in shares(route))}, "
                            f"median {share(route):.0%} {verdict(share(route) >= target)}"
                            f"{ceiling}"])
    for route, milter in (("proxy out", "milter sign"), ("proxy in", "milter verify")):
        if ok[route] and ok[milter]:
            # Per round: the two ran seconds apart, so a slow spell of the machine (a
            # busy neighbour on the host) weighs on both; the median of these ratios is
            # the verdict.
            pairs = [rr[route].cpu_ms / rr[milter].cpu_ms for rr in per_round
                     if route in rr and milter in rr
                     and not rr[route].error and not rr[milter].error]
            ratio = statistics.median(pairs)
            targets.append([f"{route}: CPU per message ≤ the milter's ({milter})",
                            f"{cpu(route):.2f} vs {cpu(milter):.2f} ms (medians); per round "
                            f"{', '.join(f'{r:.2f}' for r in pairs)}x, median "
                            f"{ratio:.2f}x {verdict(ratio <= 1.0)}"])
    print("#### Targets\n")
    print(table(["target", "measured"], targets) + "\n")
    for route, rs in runs.items():
        for run in rs:
            if run.error:
                print(f"ERROR {route}: {run.error}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
