"""Typed DNS outcomes and the resolver protocol the core is written against.

A lookup never answers ``None`` for both "absent" and "broken": the status tells
NXDOMAIN, no data, and temporary failure apart, because RFC 6376 §6.1.2 turns the
first two into permerror and the last into temperror (RFC 7208 §5 likewise for SPF).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar, runtime_checkable

T = TypeVar("T")


class Status(enum.Enum):
    OK = "ok"  # one or more records of the type asked for
    NXDOMAIN = "nxdomain"  # the name does not exist (RCODE 3)
    NODATA = "nodata"  # the name exists, no record of this type
    TEMPFAIL = "tempfail"  # timeout, SERVFAIL, refused, network error


@dataclass(frozen=True)  # no slots: with Generic, Answer[bytes](...) would fail on 3.11
class Answer(Generic[T]):
    """The outcome of one query.

    ``records`` holds one item per resource record: for TXT the record's character
    strings joined with nothing between them (RFC 6376 §3.6.2.2, RFC 7208 §3.3).
    """

    status: Status
    records: tuple[T, ...] = ()
    authenticated: bool = False  # the AD bit of the answer (DNSSEC-validated upstream)
    error: str = ""  # human text for TEMPFAIL

    @property
    def ok(self) -> bool:
        return self.status is Status.OK




class Resolver(Protocol):
    """What the core needs from DNS. Implementations: ``DnsResolver`` (dnspython,
    cached), ``StaticResolver`` (zone file or table)."""

    async def txt(self, name: str) -> Answer[bytes]:
        """TXT records at ``name`` (a fully qualified name, trailing dot optional)."""
        ...


MxRecord = tuple[int, str]  # (preference, exchange) — RFC 1035 §3.3.9


@runtime_checkable
class FullResolver(Resolver, Protocol):
    """The lookups SPF needs besides TXT (RFC 7208 §5).

    Names in answers (MX exchanges, PTR targets) come without the trailing dot; the
    root name (a null MX, RFC 7505) is ``"."``. Addresses are in their usual text form.
    """

    async def addresses(self, name: str, family: int) -> Answer[str]:
        """A records (``family`` 4) or AAAA records (``family`` 6) at ``name``."""
        ...

    async def mx(self, name: str) -> Answer[MxRecord]:
        """MX records at ``name`` as (preference, exchange)."""
        ...

    async def ptr(self, ip: str) -> Answer[str]:
        """PTR records for an IPv4 or IPv6 address (the reverse name is built here)."""
        ...
