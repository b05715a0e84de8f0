"""How fast is mailseal's SPF check_host(), next to pyspf, cold and warm?

Run: ``.venv/bin/python bench/spf.py [--quick]`` (pyspf: ``.venv/bin/pip install pyspf``;
it is a bench-only dependency).

The domain looks like a big provider's customer: its record includes two providers,
one of which includes three netblock records (the ``_spf.google.com`` shape), the
other a long ip4/ip6 list that includes one more; then ``mx`` and ``-all``. A check
from an address that is not listed walks all of it: 7 DNS-querying terms, 8 TXT
lookups, an MX lookup and 2 address lookups. Three client addresses are checked in
turn: one in the deepest netblock (pass), one MX host (pass), one unlisted (fail);
every result is checked against that, and a wrong one raises ``BenchError``.

All DNS comes from a real authoritative server on loopback (``tests/dnsserver.py``),
over UDP, for both engines. The server runs in a child process, so its Python thread
does not compete with the engine being measured for this process's GIL.

- mailseal: an ``SpfChecker`` (what a server keeps: the production ``DnsResolver``
  pointed at the server plus a ``RecordCache`` of parsed records). Cold: a new
  ``DnsCache`` for every check, so each lookup is a query, and no parsed records
  kept. Warm: one DNS cache, filled by a first check, so every lookup is a cache hit,
  and the parsed records kept; shown also with the DNS cache only (records parsed
  on every check, as the one-off ``check_mail_from()`` function does). All checks
  run in one long-lived event loop, as in a server.
- pyspf: ``spf.check2()``, with ``spf.DNSLookup`` replaced by a function that asks
  the same server through a dnspython ``Resolver`` (pyspf's own dnspython lookup
  does the same through the system resolver). pyspf keeps a cache only inside one
  query object, which ``check2`` makes anew for each check, so it has no warm state
  of its own. Warm: the lookup function is memoized in a dict (name, type) → answer,
  so pyspf, like mailseal, gets every answer from memory and only its own work
  remains. Cold: no memo.

Each cell runs for at least 0.5 s (0.2 s with ``--quick``), in 5 rounds (2), the two
sides of a ratio back to back; each figure is the best round. Output is Markdown.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import importlib.metadata
import multiprocessing
import os
import platform
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import dns.exception
import dns.resolver

ROOT = Path(__file__).resolve().parent.parent
# This file is bench/spf.py: with bench/ on the path, "import spf" would import it
# again instead of pyspf's spf module.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT / "tests"))

from dnsserver import ZoneServer, make_zone  # noqa: E402

from mailseal.dns.cache import DnsCache  # noqa: E402
from mailseal.dns.resolver import DnsResolver  # noqa: E402
from mailseal.spf import RecordCache, SpfChecker, check_mail_from  # noqa: E402

try:
    import spf as pyspf  # type: ignore[import-untyped]
except ImportError:  # pragma: no cover - reported by main()
    pyspf = None

TARGET_WARM = 3.0
HELO = "mail.customer.example"
SENDER = "news@customer.example"
#: (client address, expected result)
CLIENTS = (("172.16.40.9", "pass"), ("192.0.2.25", "pass"), ("203.0.113.77", "fail"))


class BenchError(AssertionError):
    """A measured path gave a wrong result; its figures would be worthless."""


def _netblocks(first: int, count: int) -> str:
    ip4 = " ".join(f"ip4:172.{first + i}.0.0/16" for i in range(count))
    ip6 = " ".join(f"ip6:2001:db8:{first + i:x}::/48" for i in range(count // 2))
    return f"{ip4} {ip6} ~all"


def zones() -> list[str]:
    provider_b = " ".join(f"ip4:100.{64 + i}.0.0/16" for i in range(12))
    return [
        make_zone("customer.example", """
            @ IN TXT "v=spf1 include:_spf.mailhost.example include:spf.office.example ip4:198.51.100.0/24 mx -all"
            @ IN MX 10 mx1
            @ IN MX 20 mx2
            mx1 IN A 192.0.2.25
            mx2 IN A 192.0.2.26
            mail IN A 192.0.2.30
        """),
        make_zone("mailhost.example", f"""
            _spf IN TXT "v=spf1 include:_netblocks.mailhost.example include:_netblocks2.mailhost.example include:_netblocks3.mailhost.example ~all"
            _netblocks IN TXT "v=spf1 {_netblocks(16, 8)}"
            _netblocks2 IN TXT "v=spf1 {_netblocks(24, 8)}"
            _netblocks3 IN TXT "v=spf1 {_netblocks(40, 8)}"
        """),
        make_zone("office.example", f"""
            spf IN TXT "v=spf1 {provider_b} include:spf2.office.example -all"
            spf2 IN TXT "v=spf1 ip4:100.100.0.0/16 ip6:2001:db8:ff00::/40 -all"
        """),
    ]


# --- the two engines ------------------------------------------------------------------


def _serve(conn: Connection) -> None:
    with ZoneServer(*zones()) as server:
        conn.send(server.port)
        conn.recv()  # until the parent says stop


@contextmanager
def zone_server() -> Iterator[str]:
    """``127.0.0.1:PORT`` of a ZoneServer serving :func:`zones` in a child process."""
    ours, theirs = multiprocessing.Pipe()
    child = multiprocessing.get_context("fork").Process(target=_serve, args=(theirs,))
    child.start()
    try:
        if not ours.poll(10):
            raise BenchError("the DNS server process did not start")
        yield f"127.0.0.1:{ours.recv()}"
    finally:
        ours.send("stop")
        child.join(10)


def pyspf_lookup(address: str, memo: dict[tuple[str, str], Any] | None
                 ) -> Callable[..., list[Any]]:
    """A ``spf.DNSLookup`` over the loopback server, shaped as pyspf's own
    dnspython lookup answers; memoized when ``memo`` is a dict."""
    res = dns.resolver.Resolver(configure=False)
    host, port = address.split(":")
    res.nameservers = [host]
    res.port = int(port)

    def lookup(name: str, qtype: str, strict: bool = True, timeout: float = 30) -> list[Any]:
        if memo is not None and (name.lower(), qtype) in memo:
            return memo[(name.lower(), qtype)]  # type: ignore[no-any-return]
        out: list[Any] = []
        try:
            for rdata in res.resolve(name, qtype, lifetime=timeout, search=False):
                if qtype in ("A", "AAAA"):
                    out.append(((name, qtype), rdata.address))
                elif qtype == "MX":
                    out.append(((name, qtype), (rdata.preference, rdata.exchange)))
                elif qtype == "PTR":
                    out.append(((name, qtype), rdata.target.to_text(True)))
                else:
                    out.append(((name, qtype), rdata.strings))
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            pass
        except dns.exception.Timeout as exc:
            raise pyspf.TempError(f"DNS {exc}") from None
        if memo is not None:
            memo[(name.lower(), qtype)] = out
        return out

    return lookup


def pyspf_check(ip: str) -> str:
    result, _explanation = pyspf.check2(i=ip, s=SENDER, h=HELO)
    return str(result)


async def mailseal_checks(resolver: DnsResolver, count: int, cold: bool,
                          records: RecordCache | None) -> list[str]:
    """``count`` checks; ``records`` None: no parsed-record cache (a RecordCache that
    keeps nothing), as a caller using the check_mail_from() function gets."""
    kept = records if records is not None else RecordCache(max_entries=0)
    checker = SpfChecker(resolver, records=kept)
    results = []
    for n in range(count):
        if cold:
            resolver.cache = DnsCache()
        ip = CLIENTS[n % len(CLIENTS)][0]
        result = await checker.mail_from(ip, SENDER, HELO, now=0)
        results.append(str(result.result))
    return results


# --- timing -------------------------------------------------------------------------


def expect(results: list[str], what: str) -> None:
    for n, got in enumerate(results):
        wanted = CLIENTS[n % len(CLIENTS)][1]
        if got != wanted:
            raise BenchError(f"{what}: {CLIENTS[n % len(CLIENTS)][0]} gave {got}, not {wanted}")


def rate(run: Callable[[int], list[str]], what: str, seconds: float) -> float:
    """Checks per second over batches until ``seconds`` have passed."""
    batch, done, spent = len(CLIENTS), 0, 0.0
    while spent < seconds:
        start = time.perf_counter()
        results = run(batch)
        spent += time.perf_counter() - start
        expect(results, what)
        done += batch
        batch = min(batch * 2, 3000)
    return done / spent


def cells(address: str, loop: asyncio.AbstractEventLoop
          ) -> dict[str, Callable[[int], list[str]]]:
    warm = DnsResolver([address], timeout=2.0)
    cold = DnsResolver([address], timeout=2.0)
    memo: dict[tuple[str, str], Any] = {}
    cold_lookup, warm_lookup = pyspf_lookup(address, None), pyspf_lookup(address, memo)

    def pyspf_run(lookup: Callable[..., list[Any]]) -> Callable[[int], list[str]]:
        def run(count: int) -> list[str]:
            pyspf.DNSLookup = lookup
            return [pyspf_check(CLIENTS[n % len(CLIENTS)][0]) for n in range(count)]
        return run

    records = RecordCache()
    return {
        "mailseal warm": lambda n: loop.run_until_complete(
            mailseal_checks(warm, n, False, records)),
        "pyspf warm": pyspf_run(warm_lookup),
        "mailseal warm, DNS cache only": lambda n: loop.run_until_complete(
            mailseal_checks(warm, n, False, None)),
        "mailseal cold": lambda n: loop.run_until_complete(mailseal_checks(cold, n, True, None)),
        "pyspf cold": pyspf_run(cold_lookup),
    }


def rounds(table: dict[str, Callable[[int], list[str]]], count: int, seconds: float
           ) -> Iterator[dict[str, float]]:
    for _ in range(count):
        yield {name: rate(run, name, seconds) for name, run in table.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter cells, 2 rounds")
    args = parser.parse_args(argv)
    if pyspf is None:
        print("pyspf is not installed: .venv/bin/pip install pyspf", file=sys.stderr)
        return 2
    seconds, count = (0.2, 2) if args.quick else (0.5, 5)
    began = time.perf_counter()
    with zone_server() as address:
        loop = asyncio.new_event_loop()
        try:
            table = cells(address, loop)
            for run in table.values():  # warm-up; fills the warm caches; checks results
                expect(run(len(CLIENTS)), "warm-up")
            measured = list(rounds(table, count, seconds))
        finally:
            loop.close()
        probe = asyncio.run(check_mail_from(DnsResolver([address]), CLIENTS[2][0],
                                            SENDER, HELO, now=0))
    best = {name: max(r[name] for r in measured) for name in measured[0]}
    print(f"## SPF check_host(): mailseal vs pyspf\n\nCommand: `.venv/bin/python bench/spf.py"
          f"{' --quick' if args.quick else ''}`; {count} rounds of ≥ {seconds} s per cell, "
          f"best round shown; {time.perf_counter() - began:.0f} s in all.\n")
    print(f"- date: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC")
    print(f"- Python {platform.python_version()}, {platform.system()} {platform.release()} "
          f"{platform.machine()}")
    print(f"- nproc {os.cpu_count()}; load average at the end "
          f"{', '.join(f'{x:.1f}' for x in os.getloadavg())} (other jobs share the machine)")
    print(f"- pyspf {importlib.metadata.version('pyspf')}, dnspython "
          f"{importlib.metadata.version('dnspython')}")
    print(f"- an unlisted client costs {probe.lookups} DNS-querying terms "
          f"({len(probe.trace)} trace lines); results checked: pass, pass, fail\n")
    rows = (
        ("warm: DNS cache + parsed records", "mailseal warm", "pyspf warm"),
        ("warm: DNS cache only", "mailseal warm, DNS cache only", "pyspf warm"),
        ("cold: every lookup a query", "mailseal cold", "pyspf cold"),
    )
    print("| cache | mailseal checks/s | pyspf checks/s | mailseal/pyspf | per round |")
    print("|---|---:|---:|---:|---|")
    for label, ours, theirs in rows:
        spread = ", ".join(f"{r[ours] / r[theirs]:.2f}x" for r in measured)
        print(f"| {label} | {best[ours]:,.0f} | {best[theirs]:,.0f} | "
              f"{best[ours] / best[theirs]:.2f}x | {spread} |")
    ratio = best["mailseal warm"] / best["pyspf warm"]
    print(f"\nTarget: warm cache ≥ {TARGET_WARM:.0f}x pyspf: {ratio:.2f}x "
          f"{'PASS' if ratio >= TARGET_WARM else 'MISS'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
