"""Reading the SPF suites (OpenSPF YAML, Stalwart's line-oriented files) into cases
and zone texts for the loopback :class:`ZoneServer`.

OpenSPF ``zonedata`` is read as ``../shared/conformance/spf-openspf/README.md`` says
(the reference driver's rules, reimplemented here):

- a name not listed is NXDOMAIN (the zone sits at the root);
- ``TXT``/``SPF``: a string is one record, a list is one record of several
  character-strings; ``TXT: NONE`` means no TXT record and stops the SPF-to-TXT copy;
  a name with ``SPF`` entries and no ``TXT`` entry also serves them as TXT;
- ``TIMEOUT`` as a list item: queries of the name time out, except for the types it
  has records of (``spftimeout`` has TXT and must answer it) — served through the
  server's ``drop``/``drop_types`` sets;
- YAML ``"\\xNN"`` escapes stand for octets (``"\\xEF\\xBB\\xBF"``, ``"\\x80"``), so
  text is written as Latin-1 octets where it can be;
- an RR with no character-strings (``SPF: [ ]``) cannot be written in a zone file nor
  built by dnspython, so it is served as one empty string: the same empty record once
  the strings are joined.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import dns.reversename
import pytest
from conformance.support import _owner, _quote, _strings

from mailseal.dns.resolver import to_name

_DNS_ERROR = re.compile(r"[A-Za-z0-9_.-]*_dns_error\.[A-Za-z0-9_.-]+")
TYPES = ("TXT", "SPF", "A", "AAAA", "MX", "PTR", "CNAME")
SOA = "@ IN SOA ns.invalid. hostmaster.invalid. 1 3600 600 86400 60"


@dataclasses.dataclass
class Zone:
    """What one server serves: records by (name, type), names and types that time out,
    names answered SERVFAIL."""

    records: dict[tuple[str, str], list[Any]] = dataclasses.field(default_factory=dict)
    drop: set[str] = dataclasses.field(default_factory=set)
    drop_types: set[tuple[str, str]] = dataclasses.field(default_factory=set)
    servfail: set[str] = dataclasses.field(default_factory=set)

    def text(self) -> str:
        lines = ["$ORIGIN .", "$TTL 300", SOA]
        for (name, rdtype), values in self.records.items():
            if to_name(name) is None:
                continue  # a name no DNS server can hold (the suites' too-long ones)
            for value in values:
                lines.append(f"{_owner(name)} IN {rdtype} {_rdata(rdtype, value)}")
        return "\n".join(lines) + "\n"


def _octets(text: str) -> bytes:
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return text.encode("utf-8")


def _target(name: str) -> str:
    return "." if name in ("", ".") else _owner(name)


def _rdata(rdtype: str, value: Any) -> str:
    if rdtype in ("TXT", "SPF"):
        if isinstance(value, str):
            value = _octets(value)
        elif isinstance(value, list):
            value = [_octets(s) for s in value] or [b""]
        return " ".join(map(_quote, _strings(value)))
    if rdtype == "MX":
        preference, exchange = value
        return f"{int(preference)} {_target(str(exchange))}"
    if rdtype in ("PTR", "CNAME"):
        return _target(str(value))
    return str(ipaddress.ip_address(value))  # A, AAAA


def key(name: str) -> str:
    return name.rstrip(".").lower()


# --- OpenSPF ------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class OpenSpfCase:
    id: str  # "<scenario number>-<test name>", unique across a file
    scenario: int
    helo: str
    host: str
    mailfrom: str
    results: tuple[str, ...]  # acceptable results, the preferred one first
    explanation: str | None
    spec: str


@dataclasses.dataclass
class Scenario:
    number: int
    description: str
    zone: Zone
    cases: list[OpenSpfCase]


def openspf_zone(zonedata: Mapping[str, Sequence[Any]]) -> Zone:
    zone = Zone()
    for raw_name, entries in zonedata.items():
        name = key(raw_name)
        found: dict[str, list[Any]] = {}
        txt_given = timeout = False
        for entry in entries:
            if entry == "TIMEOUT":
                timeout = True
                continue
            for rdtype, value in entry.items():
                txt_given |= rdtype == "TXT"
                if value != "NONE":
                    found.setdefault(rdtype, []).append(value)
        if not txt_given and "SPF" in found:
            found["TXT"] = list(found["SPF"])
        for rdtype, values in found.items():
            zone.records[(name, rdtype)] = values
        if timeout and not found:
            zone.drop.add(name)
        elif timeout:
            zone.drop_types.update((name, t) for t in TYPES if t not in found)
    return zone


def load_openspf(path: Path) -> list[Scenario]:
    # PyYAML is a test dependency (pyproject "test" extra); without it the OpenSPF
    # modules skip, naming it, and the Stalwart module (no YAML) still runs.
    yaml = pytest.importorskip("yaml", reason="PyYAML is needed to read the OpenSPF suite")
    with open(path, encoding="utf-8") as fh:
        documents = list(yaml.safe_load_all(fh))
    scenarios = []
    for number, doc in enumerate(documents, 1):
        cases = []
        for test_id, test in doc["tests"].items():
            result = test["result"]
            cases.append(OpenSpfCase(
                id=f"{number:02d}-{test_id}",
                scenario=number,
                helo=str(test.get("helo", "")),
                host=str(test["host"]),
                mailfrom=str(test.get("mailfrom") or ""),
                results=tuple(result) if isinstance(result, list) else (result,),
                explanation=test.get("explanation"),
                spec=str(test.get("spec", "")),
            ))
        scenarios.append(Scenario(number, str(doc.get("description", "")),
                                  openspf_zone(doc.get("zonedata") or {}), cases))
    return scenarios


# --- Stalwart ------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class StalwartCase:
    id: str  # "<file stem>-<document>-<expectation number>"
    name: str  # the document's or test's label
    ip: str
    domain: str  # the HELO/EHLO name
    sender: str
    result: str
    explanation: str
    zone_text: str  # the DNS data as it stood when the expectation was read
    servfail: frozenset[str]


def _names(items: str) -> list[str]:
    return [item.strip() for item in items.split(",") if item.strip()]


def _stalwart_line(zone: Zone, prefix: str, rest: str) -> None:
    """Apply one DNS line (``spf:``, ``exp:``, ``a:``, ``aaaa:``, ``mx:``, ``ptr:``)."""
    name, _, value = rest.strip().partition(" ")
    if prefix in ("spf", "exp"):
        zone.records[(key(name), "TXT")] = [value]
    elif prefix in ("a", "aaaa"):
        zone.records[(key(name), prefix.upper())] = _names(value)
    elif prefix == "mx":
        exchanges = []
        for position, item in enumerate(_names(value)):
            host = f"mx.{item}.{position}"
            family = "A" if ipaddress.ip_address(item).version == 4 else "AAAA"
            zone.records[(key(host), family)] = [item]
            exchanges.append((position + 1, host))
        zone.records[(key(name), "MX")] = exchanges
    else:  # ptr: <ip> <name>, ...
        reverse = dns.reversename.from_address(name).to_text()
        zone.records[(key(reverse), "PTR")] = _names(value)


def load_stalwart(path: Path) -> Iterator[StalwartCase]:
    """The expectations of one file, read line by line as the suite's README says."""
    zone = Zone()  # the DNS data belongs to the whole file
    text = path.read_text(encoding="utf-8")
    servfail = frozenset(key(name) for name in _DNS_ERROR.findall(text))
    for number, document in enumerate(text.split("\n---\n"), 1):
        ip, domain, sender, label, count = "127.0.0.1", "", "", "", 0
        for raw in document.splitlines():
            line = raw.strip()
            if line.startswith("-"):
                line = line[1:].strip()
            prefix, colon, rest = line.partition(":")
            if not colon:
                continue
            if prefix in ("spf", "exp", "a", "aaaa", "mx", "ptr"):
                _stalwart_line(zone, prefix, rest)
            elif prefix == "name":
                label = rest.strip()
            elif prefix == "domain":
                domain = rest.strip()
            elif prefix == "sender":
                sender = rest.strip()
            elif prefix == "ip":
                ip = rest.strip()
            elif prefix == "expect":
                count += 1
                result, _, explanation = rest.strip().partition(" ")
                yield StalwartCase(
                    id=f"{path.stem}-{number}-{count}", name=label, ip=ip, domain=domain,
                    sender=sender, result=result, explanation=explanation.strip(),
                    zone_text=zone.text(), servfail=servfail,
                )
