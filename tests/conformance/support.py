"""Shared machinery for the conformance suites in ``../shared/conformance``.

The data is read where it lies (never copied into the repository). Its location is
``<repo>/../shared/conformance``, or the ``MAILSEAL_CONFORMANCE`` environment
variable; when a suite's folder is absent, the test module that needs it skips as a
whole with a message naming the folder.

Key records are served by a real authoritative DNS server on loopback
(``tests/dnsserver.py``), built from each suite's DNS data, and read back through
:class:`mailseal.dns.resolver.DnsResolver` (mailseal) and dnspython (dkimpy's
``dnsfunc``), so every verification goes over the wire like production lookups.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeAlias

import dkim
import dns.exception
import dns.resolver
import pytest
from dnsserver import ZoneServer

from mailseal.dkim.verify import DkimResult
from mailseal.dns.resolver import DnsResolver

ENV = "MAILSEAL_CONFORMANCE"

#: RFC 8601 result words, best first: a message's overall DKIM result is the best of
#: its signatures (as Mail::DKIM's "result" and the suites' "expected" are).
RANK = ("pass", "policy", "fail", "temperror", "permerror", "neutral", "none")

#: One TXT resource record: a single value (split into 255-octet character strings
#: when served) or the list of its character strings, as some suites give them.
TxtRecord = str | bytes | Sequence[str | bytes]
Records = Mapping[str, Sequence[TxtRecord]]

#: The ``serve_zones`` fixture (conftest.py): zone texts and hooks → a running server.
ServeZones: TypeAlias = Callable[..., ZoneServer]


def conformance_root() -> Path:
    env = os.environ.get(ENV)
    if env:
        return Path(env)
    # tests/conformance/<this file> → the repository is parents[2]; shared/ is beside it.
    return Path(__file__).resolve().parents[2].parent / "shared" / "conformance"


def suite_dir(name: str) -> Path:
    """The suite's folder; skip the calling test module when it is absent."""
    path = conformance_root() / name
    if not path.is_dir():
        pytest.skip(f"conformance data not found: {path} (set {ENV} to its folder)",
                    allow_module_level=True)
    return path


def load_json(path: Path) -> Any:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


# --- zones -------------------------------------------------------------------------


def _quote(data: bytes) -> str:
    """One character-string in zone-file syntax (RFC 1035 §5.1: ``\\DDD`` is decimal)."""
    return '"' + "".join(
        chr(c) if 0x20 <= c < 0x7F and c not in b'"\\' else f"\\{c:03d}" for c in data
    ) + '"'


def _owner(name: str) -> str:
    """An absolute owner name; characters outside the hostname set are escaped, so
    a suite's deliberately broken names (``legitimate.com(.attacker.com``) load."""
    labels = name.rstrip(".").split(".")
    return ".".join(
        "".join(ch if ch.isalnum() or ch in "-_" else f"\\{ord(ch):03d}" for ch in label)
        for label in labels
    ) + "."


def _strings(record: TxtRecord) -> list[bytes]:
    if isinstance(record, str | bytes):
        value = record.encode("utf-8") if isinstance(record, str) else record
        # RFC 1035 §3.3.14: each character-string holds at most 255 octets.
        return [value[i : i + 255] for i in range(0, len(value), 255)] or [b""]
    return [s.encode("utf-8") if isinstance(s, str) else s for s in record]


def root_zone(records: Records) -> str:
    """A zone at the root holding ``records``: the server then answers every name,
    NXDOMAIN for the ones not listed (as every suite's DNS stub does)."""
    lines = ["$ORIGIN .", "$TTL 300", "@ IN SOA ns.invalid. hostmaster.invalid. 1 3600 600 86400 60"]
    for name, rrs in records.items():
        for rr in rrs:
            lines.append(f"{_owner(name)} IN TXT " + " ".join(map(_quote, _strings(rr))))
    return "\n".join(lines) + "\n"


def resolver(server: ZoneServer, timeout: float = 2.0) -> DnsResolver:
    """mailseal's production resolver, pointed at the loopback server (fresh cache)."""
    return DnsResolver([server.address], timeout=timeout)


def dkimpy_dnsfunc(server: ZoneServer) -> Callable[..., bytes | None]:
    """A dkimpy ``dnsfunc`` reading the same loopback server through dnspython, with
    dkimpy's own conventions: the joined strings of the first TXT record, or None."""
    res = dns.resolver.Resolver(configure=False)
    res.nameservers = ["127.0.0.1"]
    res.port = server.port

    def dnsfunc(name: bytes | str, timeout: float = 5) -> bytes | None:
        text = name.decode("ascii") if isinstance(name, bytes) else name
        try:
            answer = res.resolve(text, "TXT", lifetime=timeout, search=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return None
        except dns.exception.Timeout as exc:
            raise dkim.DnsTimeoutError(str(exc)) from None
        return b"".join(next(iter(answer)).strings)

    return dnsfunc


def dkimpy_verify(message: bytes, server: ZoneServer, count: int) -> list[bool]:
    """dkimpy's verdict on each of the first ``count`` DKIM signatures."""
    verifier = dkim.DKIM(message, minkey=1024)
    dnsfunc = dkimpy_dnsfunc(server)
    verdicts = []
    for idx in range(count):
        try:
            verdicts.append(bool(verifier.verify(idx, dnsfunc=dnsfunc)))
        except dkim.DKIMException:
            verdicts.append(False)
    return verdicts


# --- results -------------------------------------------------------------------------


def verdicts(results: Iterable[DkimResult]) -> list[tuple[str, str]]:
    """(RFC 8601 word, mailseal reason) per signature, for readable assertions."""
    return [(r.result.value, r.reason.name) for r in results]


def overall(results: Sequence[DkimResult]) -> str:
    """The best result of all signatures; "none" without any."""
    return min((r.result.value for r in results), key=RANK.index, default="none")
