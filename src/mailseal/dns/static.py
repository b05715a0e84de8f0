"""A resolver answering from a fixed table or a zone file: offline use and tests.

It gives the same typed outcomes as the network resolver: a name that is absent is
NXDOMAIN, a name that exists without records of the type asked for is NODATA (an
empty non-terminal — a name with names below it — exists too, RFC 8020), and a name
can be made to fail temporarily. Names match case-insensitively (RFC 4343); CNAMEs
are followed (RFC 1034 §3.6.2).
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from typing import Any

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.reversename
import dns.tokenizer
import dns.zonefile
from dns.rdtypes.ANY.CNAME import CNAME
from dns.rdtypes.ANY.MX import MX
from dns.rdtypes.ANY.PTR import PTR
from dns.rdtypes.ANY.TXT import TXT
from dns.rdtypes.IN.A import A
from dns.rdtypes.IN.AAAA import AAAA

from mailseal.dns.resolver import name_text, to_name
from mailseal.dns.types import Answer, MxRecord, Status

MAX_CNAME_CHAIN = 8
_TYPES = ("TXT", "A", "AAAA", "MX", "PTR", "CNAME")
_ALL = "*"  # the node key marking a name whose every lookup fails temporarily

_Node = dict[str, tuple[Any, ...] | Status]


def _key(name: str) -> str:
    """The table key for a name: lower case, no trailing dot. ValueError if invalid."""
    qname = to_name(name)
    if qname is None:
        raise ValueError(f"invalid DNS name {name!r}")
    return name_text(qname.canonicalize())


def _target(name: str) -> str:
    """A name in record data (MX, PTR): checked, no trailing dot, case kept."""
    qname = to_name(name)
    if qname is None and name != ".":
        raise ValueError(f"invalid DNS name {name!r}")
    return "." if qname is None else name_text(qname)


def _table_key(name: str) -> str:
    try:  # an address stands for its reverse name, for PTR entries
        return _key(dns.reversename.from_address(name).to_text())
    except (ValueError, dns.exception.SyntaxError):
        return _key(name)


def _listed(value: Any) -> list[Any]:
    single = isinstance(value, str | bytes) or (
        isinstance(value, tuple) and value and isinstance(value[0], int)
    )
    return [value] if single else list(value)


def _convert(rdtype: str, value: Any) -> Any:
    if rdtype == "TXT":
        return value.encode("utf-8") if isinstance(value, str) else bytes(value)
    if rdtype in ("A", "AAAA"):
        address = ipaddress.ip_address(value)
        if address.version != (4 if rdtype == "A" else 6):
            raise ValueError(f"{value!r} is not an {rdtype} address")
        return str(address)
    if rdtype == "MX":
        preference, exchange = value.split() if isinstance(value, str) else value
        return (int(preference), _target(exchange))
    if rdtype == "CNAME":
        return _key(value)  # only ever used as a table key
    return _target(value)  # PTR


def _parse_value(value: Any) -> _Node:
    if value == "TEMPFAIL":
        return {_ALL: Status.TEMPFAIL}
    if not isinstance(value, Mapping):
        value = {"TXT": value}
    node: _Node = {}
    for rdtype_text, items in value.items():
        rdtype = rdtype_text.upper()
        if rdtype not in _TYPES:
            raise ValueError(f"unsupported record type {rdtype_text!r}")
        if items == "TEMPFAIL":
            node[rdtype] = Status.TEMPFAIL
        else:
            node[rdtype] = tuple(_convert(rdtype, item) for item in _listed(items))
    return node


def _rdata_value(rdata: dns.rdata.Rdata) -> Any:
    if isinstance(rdata, TXT):
        # RFC 6376 §3.6.2.2: the character strings are joined with nothing between.
        return b"".join(rdata.strings)
    if isinstance(rdata, A | AAAA):
        return str(rdata.address)
    if isinstance(rdata, MX):
        return (rdata.preference, name_text(rdata.exchange))
    if isinstance(rdata, CNAME):
        return name_text(rdata.target.canonicalize())  # a table key, like _key()
    if isinstance(rdata, PTR):
        return name_text(rdata.target)
    return None


class _Collector(dns.zonefile.RRsetsReaderTransaction):
    """Collects the RRsets of a zone file with any number of ``$ORIGIN``s.

    SOA records are only noted (their owner exists): dnspython refuses an SOA that is
    not at the reader's origin, and the resolver has no use for its data.
    """

    def __init__(self, manager: _Manager) -> None:
        super().__init__(manager, True, False)  # type: ignore[no-untyped-call]

    def add(self, *args: Any) -> None:
        if len(args) == 3 and getattr(args[2], "rdtype", None) == dns.rdatatype.SOA:
            manager = self.manager
            assert isinstance(manager, _Manager)
            manager.soa_owners.append(args[0])
            return
        super().add(*args)


class _Manager(dns.zonefile.RRSetsReaderManager):
    def __init__(self, origin: dns.name.Name) -> None:
        super().__init__(origin, False, dns.rdataclass.IN)
        self.soa_owners: list[dns.name.Name] = []

    def writer(self, replacement: bool = False) -> _Collector:
        return _Collector(self)


class StaticResolver:
    """Answers from a table (:meth:`from_records`) or a zone file (:meth:`from_zone_file`).

    ``authenticated`` is reported as the AD bit of every answer.
    """

    def __init__(self, *, authenticated: bool = False) -> None:
        self.authenticated = authenticated
        self._nodes: dict[str, _Node] = {}
        self._nxdomain: set[str] = set()
        self._parents: set[str] = set()  # names with names below them

    @classmethod
    def from_records(
        cls, table: Mapping[str, Any], *, authenticated: bool = False
    ) -> StaticResolver:
        """A resolver from ``{name: value}``; names with or without the trailing dot.

        ``value`` is one of:

        - ``str`` or ``bytes``: one TXT record (a ``str`` is encoded as UTF-8);
        - a list of them: several TXT records at the name;
        - ``"NXDOMAIN"``: the name does not exist (as for a name not in the table);
        - ``"TEMPFAIL"``: every lookup of the name fails temporarily;
        - a dict by record type, ``{"TXT": ..., "A": [...], "AAAA": [...],
          "MX": [(10, "mx.example.com"), "20 mx2.example.com"], "PTR": [...],
          "CNAME": "target.example.com"}``, each a value or a list of values, or
          ``"TEMPFAIL"`` to fail that type only.

        To publish the literal text ``NXDOMAIN`` or ``TEMPFAIL`` as TXT, give bytes. A
        name that is an IP address stands for its reverse name, for PTR:
        ``{"192.0.2.1": {"PTR": "mail.example.com"}}``.
        """
        resolver = cls(authenticated=authenticated)
        for name, value in table.items():
            key = _table_key(name)
            if value == "NXDOMAIN":
                resolver._nxdomain.add(key)
            else:
                resolver._add(key, _parse_value(value))
        return resolver

    @classmethod
    def from_zone_file(
        cls,
        path_or_text: str | os.PathLike[str],
        origin: str | None = None,
        *,
        authenticated: bool = False,
    ) -> StaticResolver:
        """A resolver from a BIND-style zone file (RFC 1035 §5).

        A ``str`` containing a line break is the zone text itself; any other ``str``
        or path-like is a file name. ``$ORIGIN`` (any number, for several domains) and
        ``$TTL`` are understood, ``$INCLUDE`` is not; relative names before the first
        ``$ORIGIN`` are relative to ``origin`` (default: the root). Parenthesised and
        multi-string TXT records work as in any zone file; SOA and other types make
        their owner name exist without giving it data.
        """
        if isinstance(path_or_text, str) and "\n" in path_or_text:
            text, filename = path_or_text, "<zone>"
        else:
            filename = os.fspath(path_or_text)
            with open(filename, encoding="utf-8") as file:
                text = file.read()
        base = dns.name.from_text(origin) if origin else dns.name.root
        manager = _Manager(base)
        with manager.writer(True) as txn:
            reader = dns.zonefile.Reader(
                dns.tokenizer.Tokenizer(text, filename),
                dns.rdataclass.IN,
                txn,
                allow_directives={"$ORIGIN", "$TTL"},
                default_ttl=300,  # TTLs do not matter here; do not insist on them
            )
            reader.read()
        resolver = cls(authenticated=authenticated)
        for owner in manager.soa_owners:
            resolver._add(name_text(owner.canonicalize()), {})
        for rrset in manager.rrsets:
            node: _Node = {}
            rdtype = dns.rdatatype.to_text(rrset.rdtype)
            if rdtype in _TYPES:
                node[rdtype] = tuple(_rdata_value(rdata) for rdata in rrset)
            resolver._add(name_text(rrset.name.canonicalize()), node)
        return resolver

    def _add(self, key: str, node: _Node) -> None:
        self._nodes.setdefault(key, {}).update(node)
        labels = key.split(".")
        self._parents.update(".".join(labels[i:]) for i in range(1, len(labels)))

    # -- lookups ------------------------------------------------------------------

    async def txt(self, name: str) -> Answer[bytes]:
        return self._lookup(name, "TXT")

    async def addresses(self, name: str, family: int) -> Answer[str]:
        if family not in (4, 6):
            raise ValueError(f"family must be 4 or 6, not {family!r}")
        return self._lookup(name, "A" if family == 4 else "AAAA")

    async def mx(self, name: str) -> Answer[MxRecord]:
        return self._lookup(name, "MX")

    async def ptr(self, ip: str) -> Answer[str]:
        try:
            reverse = dns.reversename.from_address(ip)
        except (dns.exception.SyntaxError, ValueError):
            return Answer(Status.NXDOMAIN, error="invalid address")
        return self._lookup(reverse.to_text(), "PTR")

    def _lookup(self, name: str, rdtype: str) -> Answer[Any]:
        try:
            key = _key(name)
        except ValueError:
            # RFC 1035 §2.3.4 limits; such a name cannot exist (as in DnsResolver).
            return Answer(Status.NXDOMAIN, error="invalid name")
        ad = self.authenticated
        for _ in range(MAX_CNAME_CHAIN):
            node = self._nodes.get(key)
            if key in self._nxdomain or (node is None and key not in self._parents):
                return Answer(Status.NXDOMAIN, authenticated=ad)
            if node is None:
                return Answer(Status.NODATA, authenticated=ad)
            found = node.get(_ALL) or node.get(rdtype)
            if found is Status.TEMPFAIL:
                return Answer(Status.TEMPFAIL, error=f"{key}/{rdtype}: static TEMPFAIL")
            if isinstance(found, tuple) and found:
                return Answer(Status.OK, found, authenticated=ad)
            target = node.get("CNAME")
            if not isinstance(target, tuple) or not target or rdtype == "CNAME":
                return Answer(Status.NODATA, authenticated=ad)
            key = target[0]
        return Answer(Status.TEMPFAIL, error=f"{name}: CNAME chain too long")
