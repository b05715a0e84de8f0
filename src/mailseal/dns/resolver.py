"""The production resolver: dnspython's async query functions, a cache, typed outcomes.

One lookup asks the configured nameservers in turn over UDP with EDNS0 (RFC 6891),
retries over TCP when the answer comes back truncated (RFC 1035 §4.2.1, RFC 7766 §5),
follows CNAME chains in the answer (RFC 1034 §3.6.2) and reports the AD bit
(RFC 4035 §3.2.3) without requiring DNSSEC. The whole lookup, all servers included,
is bounded by ``timeout`` seconds. Identical lookups running at the same time share
one query.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, TypeVar, cast

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdatatype
import dns.reversename
from dns.rdtypes.ANY.MX import MX
from dns.rdtypes.ANY.PTR import PTR
from dns.rdtypes.ANY.TXT import TXT
from dns.rdtypes.IN.A import A
from dns.rdtypes.IN.AAAA import AAAA

from mailseal.dns.cache import CacheKey, DnsCache
from mailseal.dns.types import Answer, MxRecord, Status

T = TypeVar("T")

# The EDNS0 UDP payload size we advertise: 1232 octets avoids IP fragmentation on
# common paths (DNS Flag Day 2020; RFC 9715 §3.2).
EDNS_PAYLOAD = 1232
RESOLV_CONF = "/etc/resolv.conf"


def to_name(text: str) -> dns.name.Name | None:
    """``text`` as an absolute DNS name, or ``None`` if no such name can exist.

    Labels are taken literally (no backslash escapes: SPF macro expansion may put any
    character in a label), encoded as UTF-8; IDN conversion is not done. RFC 1035
    §2.3.4 limits labels to 63 octets and names to 255 octets on the wire (253 in
    text); empty labels are not allowed either.
    """
    if text.endswith("."):
        text = text[:-1]
    if not text:
        return None
    try:
        labels = [label.encode("utf-8") for label in text.split(".")]
        return dns.name.Name([*labels, b""])
    except (dns.exception.DNSException, UnicodeError):
        return None


#: Names as most lookups carry them: labels of 1..63 letters, digits, "-" and "_".
#: dnspython's canonical text of such a name is its lower-case text with the final
#: dot, so the cache key is had without building a Name (a cache hit costs a dict
#: lookup, which matters to SPF: a dozen lookups per check).
_PLAIN_NAME = re.compile(r"(?:[A-Za-z0-9_-]{1,63}\.)*[A-Za-z0-9_-]{1,63}\.?")


def plain_key(name: str) -> str | None:
    """The cache-key text of a plain host name (as ``to_name(name).canonicalize()
    .to_text()``), or ``None`` for any other name (escapes, other characters, limits)."""
    if len(name) > 254 or _PLAIN_NAME.fullmatch(name) is None:
        return None
    text = name.lower() if name.endswith(".") else name.lower() + "."
    return text if len(text) <= 254 else None  # RFC 1035 §2.3.4: 253 + the root dot


def parse_nameserver(entry: str) -> tuple[str, int]:
    """``"HOST"``, ``"HOST:PORT"`` or ``"[V6]:PORT"`` as (address, port); ValueError if bad."""
    port_text = ""
    if entry.startswith("["):
        host, bracket, rest = entry[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise ValueError(f"bad nameserver {entry!r}: expected [ADDRESS]:PORT")
        port_text = rest[1:]
    elif entry.count(":") == 1:
        host, port_text = entry.split(":")
    else:
        host = entry  # an IPv4 address, or an IPv6 address without a port
    try:
        ipaddress.ip_address(host)
        port = int(port_text) if port_text else 53
    except ValueError:
        raise ValueError(f"bad nameserver {entry!r}: not an IP address and port") from None
    if not 0 < port < 65536:
        raise ValueError(f"bad nameserver {entry!r}: port out of range")
    return host, port


def system_nameservers(path: str = RESOLV_CONF) -> tuple[tuple[str, int], ...]:
    """The ``nameserver`` lines of resolv.conf(5); without any, the local host."""
    found: list[tuple[str, int]] = []
    try:
        with open(path, encoding="utf-8", errors="replace") as conf:
            for line in conf:
                fields = line.split()
                if len(fields) >= 2 and fields[0] == "nameserver":
                    try:
                        found.append(parse_nameserver(fields[1]))
                    except ValueError:
                        continue  # the C library skips lines it cannot parse too
    except OSError:
        pass
    # resolv.conf(5): "If there are no nameserver lines, the default is to use the
    # name server on the local machine."
    return tuple(found) or (("127.0.0.1", 53),)


def _where(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _txt(rdata: dns.rdata.Rdata) -> bytes:
    # RFC 6376 §3.6.2.2 and RFC 7208 §3.3: the character strings of one TXT record
    # are concatenated with nothing between them.
    return b"".join(cast(TXT, rdata).strings)


def _address(rdata: dns.rdata.Rdata) -> str:
    return str(cast(A | AAAA, rdata).address)


def name_text(name: dns.name.Name) -> str:
    """A name in answers: no trailing dot; the root is ``"."``."""
    return "." if name == dns.name.root else name.to_text(omit_final_dot=True)


def _mx(rdata: dns.rdata.Rdata) -> MxRecord:
    mx = cast(MX, rdata)
    return (mx.preference, name_text(mx.exchange))


def _ptr(rdata: dns.rdata.Rdata) -> str:
    return name_text(cast(PTR, rdata).target)


class DnsResolver:
    """Asynchronous DNS lookups with typed outcomes (a :class:`FullResolver`).

    ``nameservers``: ``"HOST"``, ``"HOST:PORT"`` or ``"[V6]:PORT"`` entries, tried in
    order; empty means the ``nameserver`` lines of /etc/resolv.conf. ``timeout``
    bounds each lookup as a whole. ``cache``: where answers are kept; ``None`` makes a
    private :class:`DnsCache` that reads time from ``clock``. Query timeouts use the
    event loop's own clock.
    """

    def __init__(
        self,
        nameservers: Sequence[str] = (),
        timeout: float = 5.0,
        cache: DnsCache | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if isinstance(nameservers, str):
            raise TypeError("nameservers must be a sequence of strings, not one string")
        self.nameservers = tuple(parse_nameserver(e) for e in nameservers) or system_nameservers()
        self.timeout = timeout
        self.cache = cache if cache is not None else DnsCache(clock=clock)
        self._inflight: dict[CacheKey, asyncio.Task[Answer[Any]]] = {}

    async def txt(self, name: str) -> Answer[bytes]:
        return await self._lookup(name, dns.rdatatype.TXT, _txt)

    async def addresses(self, name: str, family: int) -> Answer[str]:
        if family not in (4, 6):
            raise ValueError(f"family must be 4 or 6, not {family!r}")
        rdtype = dns.rdatatype.A if family == 4 else dns.rdatatype.AAAA
        return await self._lookup(name, rdtype, _address)

    async def mx(self, name: str) -> Answer[MxRecord]:
        return await self._lookup(name, dns.rdatatype.MX, _mx)

    async def ptr(self, ip: str) -> Answer[str]:
        try:
            # RFC 1035 §3.5 (in-addr.arpa) and RFC 3596 §2.5 (ip6.arpa).
            reverse = dns.reversename.from_address(ip)
        except (dns.exception.SyntaxError, ValueError):
            return Answer(Status.NXDOMAIN, error="invalid address")
        return await self._lookup(reverse.to_text(), dns.rdatatype.PTR, _ptr)

    async def _lookup(
        self, name: str, rdtype: dns.rdatatype.RdataType, convert: Callable[[dns.rdata.Rdata], T]
    ) -> Answer[T]:
        key_text = plain_key(name)
        qname = None if key_text is not None else to_name(name)
        if qname is not None:
            key_text = qname.canonicalize().to_text()
        if key_text is None:
            # A name longer than 253 octets, a label longer than 63 or an empty label
            # (RFC 1035 §2.3.4) cannot exist anywhere: answer a permanent NXDOMAIN
            # without asking a server.
            return Answer(Status.NXDOMAIN, error="invalid name")
        key: CacheKey = (key_text, int(rdtype))
        cached = self.cache.get(key)
        if cached is not None:
            return cached
        if qname is None:
            qname = to_name(name)
            if qname is None:  # pragma: no cover - plain_key() accepts only valid names
                return Answer(Status.NXDOMAIN, error="invalid name")
        loop = asyncio.get_running_loop()
        task = self._inflight.get(key)
        if task is None or task.get_loop() is not loop:
            task = loop.create_task(self._fetch(key, qname, rdtype, convert))
            self._inflight[key] = task
            task.add_done_callback(partial(self._forget, key))
        # shield: a caller that gives up must not cancel the query the others await.
        return await asyncio.shield(task)

    def _forget(self, key: CacheKey, task: asyncio.Task[Answer[Any]]) -> None:
        if self._inflight.get(key) is task:
            del self._inflight[key]

    async def _fetch(
        self,
        key: CacheKey,
        qname: dns.name.Name,
        rdtype: dns.rdatatype.RdataType,
        convert: Callable[[dns.rdata.Rdata], T],
    ) -> Answer[T]:
        query = dns.message.make_query(qname, rdtype, use_edns=0, payload=EDNS_PAYLOAD)
        # RFC 6840 §5.7: setting AD in a query asks for the AD bit in the answer
        # without asking for DNSSEC records (no DO bit).
        query.flags |= dns.flags.AD
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        errors: list[str] = []
        servers = self.nameservers
        for index, (host, port) in enumerate(servers):
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            # Each server left gets a fair share of the time left, so one dead
            # server cannot use up the whole budget.
            share = remaining / (len(servers) - index)
            where = _where(host, port)
            try:
                response = await self._exchange(query, host, port, share)
                rcode = response.rcode()
                if rcode not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
                    errors.append(f"{where}: {dns.rcode.to_text(rcode)}")
                    continue
                answer, ttl = _interpret(response, convert)
            except dns.exception.Timeout:
                errors.append(f"{where}: no answer within {share:.2g} s")
                continue
            except (OSError, dns.exception.DNSException) as exc:
                errors.append(f"{where}: {exc or type(exc).__name__}")
                continue
            self.cache.put(key, answer, ttl)
            return answer
        failed: Answer[T] = Answer(Status.TEMPFAIL, error="; ".join(errors) or "timed out")
        self.cache.put(key, failed, 0)
        return failed

    @staticmethod
    async def _exchange(
        query: dns.message.Message, host: str, port: int, timeout: float
    ) -> dns.message.Message:
        loop = asyncio.get_running_loop()
        start = loop.time()
        try:
            return await dns.asyncquery.udp(
                query,
                host,
                timeout=timeout,
                port=port,
                ignore_unexpected=True,  # stray or spoofed datagrams (RFC 5452 §4.1)
                raise_on_truncation=True,
            )
        except dns.message.Truncated:
            pass
        # RFC 7766 §5: a truncated UDP answer is retried over TCP.
        remaining = timeout - (loop.time() - start)
        if remaining <= 0:
            raise dns.exception.Timeout
        return await dns.asyncquery.tcp(query, host, timeout=remaining, port=port)


def _interpret(
    response: dns.message.Message, convert: Callable[[dns.rdata.Rdata], T]
) -> tuple[Answer[T], float]:
    """The typed answer in a NOERROR or NXDOMAIN response, and how long to cache it."""
    if not isinstance(response, dns.message.QueryMessage):
        raise dns.message.NotQueryResponse
    authenticated = bool(response.flags & dns.flags.AD)
    # Follows the CNAME chain from the question name through the answer section.
    chain = response.resolve_chaining()
    if chain.answer is not None:
        records = tuple(convert(rdata) for rdata in chain.answer)
        return Answer(Status.OK, records, authenticated), float(chain.minimum_ttl)
    status = Status.NXDOMAIN if response.rcode() == dns.rcode.NXDOMAIN else Status.NODATA
    # RFC 2308 §5: the negative TTL is min(SOA TTL, SOA MINIMUM) of the SOA in the
    # authority section (resolve_chaining computes it); without an SOA, do not cache.
    has_soa = any(rrset.rdtype == dns.rdatatype.SOA for rrset in response.authority)
    ttl = float(chain.minimum_ttl) if has_soa else 0.0
    return Answer(status, (), authenticated), ttl
