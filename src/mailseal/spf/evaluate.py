"""check_host() (RFC 7208 §4): a coroutine over an injected resolver.

The evaluation is pure logic: every DNS answer comes from the :class:`FullResolver`
passed in, typed (records, NXDOMAIN, no data, temporary failure), and the clock for
``%{t}`` is a parameter. A temporary DNS failure is never downgraded: it ends the
check with temperror (§2.6.6, §5), except where the RFC says to skip a name (the
address lookups of ``ptr`` and ``%{p}``, §5.5) or to ignore ``exp=`` (§6.2).

Limits (§4.6.4): at most 10 terms that query DNS (include, a, mx, ptr, exists,
redirect), at most 2 void lookups (NXDOMAIN or no records; counted for the queries
of a, mx, ptr and exists), at most 10 MX exchanges looked up per ``mx`` (more →
permerror) and 10 PTR names per ``ptr`` or ``%{p}`` (the rest ignored).
"""

from __future__ import annotations

import dataclasses
import enum
import ipaddress

from mailseal.dns.types import FullResolver, Status
from mailseal.results import Result
from mailseal.spf.macro import (
    IPAddress,
    MacroContext,
    MacroError,
    MacroString,
    expand,
    expand_domain,
    parse_macro_string,
)
from mailseal.spf.record import (
    BadRecord,
    Directive,
    Kind,
    Record,
    RecordCache,
    parse_record,
    select_records,
)

MAX_DNS_TERMS = 10  # §4.6.4: include, a, mx, ptr, exists, redirect
MAX_VOID_LOOKUPS = 2  # §4.6.4: "a default of two is RECOMMENDED"
MAX_MX_NAMES = 10  # §4.6.4: address lookups per mx mechanism
MAX_PTR_NAMES = 10  # §4.6.4: PTR names considered per ptr mechanism / %{p}
MAX_DOMAIN = 253


class Identity(enum.StrEnum):
    """Which identity was checked (RFC 7208 §2.3, §2.4; Received-SPF ``identity=``)."""

    MAILFROM = "mailfrom"
    HELO = "helo"


@dataclasses.dataclass(frozen=True, slots=True)
class SpfResult:
    """The outcome of one check_host() run, with how it was reached."""

    result: Result  # §2.6: pass fail softfail neutral none temperror permerror
    identity: Identity
    domain: str  # the <domain> the check started from
    sender: str  # the <sender> evaluated ("postmaster@..." when it had no local-part)
    ip: str  # the <ip>, IPv4 when it was IPv4-mapped (§5)
    helo: str  # the HELO/EHLO name given (%{h})
    explanation: str | None = None  # §6.2: the expanded exp= text, on fail only
    mechanism: str | None = None  # the directive that matched, as written ("-all")
    problem: str | None = None  # why: none, temperror, permerror
    trace: tuple[str, ...] = ()  # the evaluation step by step, for humans
    lookups: int = 0  # DNS-querying terms evaluated (limit 10)
    void_lookups: int = 0  # void lookups seen (limit 2)


class _Stop(Exception):
    """Internal: ends the whole check with temperror or permerror."""

    def __init__(self, result: Result, problem: str) -> None:
        super().__init__(problem)
        self.result = result
        self.problem = problem


@dataclasses.dataclass(frozen=True, slots=True)
class _Verdict:
    result: Result
    directive: Directive | None  # None: no mechanism matched (§4.7 default)
    record: Record  # the record that decided (after any redirect), for exp=
    domain: str


def normalize_ip(ip: str | IPAddress) -> IPAddress:
    """``ip`` as an address; an IPv4-mapped IPv6 address becomes IPv4 (RFC 7208 §5:
    it "MUST still be considered an IPv4 address"). ValueError if not an address."""
    address = ipaddress.ip_address(ip) if isinstance(ip, str) else ip
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def valid_domain(domain: str) -> bool:
    """RFC 7208 §4.3: a <domain> check_host() can evaluate: a multi-label name with
    labels of 1..63 octets, at most 253 in all, not an address or domain literal."""
    name = domain[:-1] if domain.endswith(".") else domain
    if not name or len(name) > MAX_DOMAIN or not name.isascii() or name.startswith("["):
        return False
    labels = name.split(".")
    if len(labels) < 2 or any(not 0 < len(label) <= 63 for label in labels):
        return False
    return not labels[-1].isdigit()  # a top label of digits only: an IPv4 literal


def split_sender(sender: str, domain: str) -> tuple[str, str, str]:
    """(<sender>, local-part, domain of <sender>): "postmaster" stands in for a missing
    local-part (RFC 7208 §4.3); an address without "@" is read as a domain."""
    local, at, sender_domain = sender.rpartition("@")
    if not at:
        local, sender_domain = "", sender or domain
    if not local:
        local = "postmaster"
        sender = f"{local}@{sender_domain}"
    return sender, local, sender_domain


class _Check:
    """The state of one check_host() run: counters, trace, the PTR names of <ip>."""

    def __init__(self, resolver: FullResolver, ctx: MacroContext,
                 records: RecordCache | None) -> None:
        self.resolver = resolver
        self.ctx = ctx
        self.parse = parse_record if records is None else records.parse
        self.family = ctx.ip.version
        self.ip_int = int(ctx.ip)
        self.bits = 32 if self.family == 4 else 128
        self.lookups = 0
        self.voids = 0
        self.trace: list[str] = []
        self.depth = 0
        self._ptr_names: list[str] | None = None
        self._validated: list[str] | None = None

    def note(self, text: str) -> None:
        self.trace.append("  " * self.depth + text)

    # -- limits ----------------------------------------------------------------------

    def count(self, term: str) -> None:
        self.lookups += 1
        if self.lookups > MAX_DNS_TERMS:
            raise _Stop(Result.PERMERROR, f"more than {MAX_DNS_TERMS} DNS-querying terms "
                        f"(at {term}; RFC 7208 §4.6.4)")

    def void(self, name: str) -> None:
        self.voids += 1
        self.note(f"void lookup {self.voids}: {name}")
        if self.voids > MAX_VOID_LOOKUPS:
            raise _Stop(Result.PERMERROR, f"more than {MAX_VOID_LOOKUPS} void lookups "
                        f"(at {name}; RFC 7208 §4.6.4)")

    # -- records ---------------------------------------------------------------------

    async def record(self, domain: str) -> Record | None:
        """The SPF record at ``domain`` (§4.4, §4.5); None when there is none."""
        answer = await self.resolver.txt(domain)
        if answer.status is Status.TEMPFAIL:
            raise _Stop(Result.TEMPERROR, f"TXT lookup of {domain} failed: {answer.error}")
        if not answer.ok:
            self.note(f"{domain}: {answer.status.value}, no SPF record")
            return None
        found = select_records(answer.records)
        if not found:
            self.note(f"{domain}: no v=spf1 record among {len(answer.records)} TXT")
            return None
        if len(found) > 1:
            raise _Stop(Result.PERMERROR, f"{domain} has {len(found)} v=spf1 records (§4.5)")
        parsed = self.parse(found[0])
        if isinstance(parsed, BadRecord):
            where = f" in {parsed.term!r}" if parsed.term else ""
            raise _Stop(Result.PERMERROR, f"syntax error in the record of {domain}{where}: "
                        f"{parsed.reason}")
        self.note(f"{domain}: {parsed.text!r}")
        return parsed

    async def evaluate(self, record: Record, domain: str) -> _Verdict:
        """§4.6, §4.7: the directives left to right, then redirect=, then neutral."""
        for directive in record.directives:
            if await self.matches(directive, domain):
                result = directive.qualifier.result
                self.note(f"{directive.text}: match → {result}")
                return _Verdict(result, directive, record, domain)
        if record.redirect is None:
            self.note("no match, no redirect: neutral (§4.7)")
            return _Verdict(Result.NEUTRAL, None, record, domain)
        # §6.1: redirect applies when no mechanism matched (an "all" always matches).
        self.count("redirect=" + record.redirect.text)
        target = await self.target(record.redirect, domain)
        self.note(f"redirect={target} [lookup {self.lookups}]")
        redirected = await self.record(target)
        if redirected is None:
            raise _Stop(Result.PERMERROR, f"redirect={target}: no SPF record there (§6.1)")
        return await self.evaluate(redirected, target)

    async def target(self, spec: MacroString, domain: str) -> str:
        validated = await self.validated_name(domain) if spec.uses_p else "unknown"
        return expand_domain(spec, self.ctx, domain, validated)

    # -- mechanisms (§5) -------------------------------------------------------------

    async def matches(self, d: Directive, domain: str) -> bool:
        kind = d.kind
        if kind is Kind.ALL:
            return True
        if kind is Kind.IP4 or kind is Kind.IP6:
            assert d.network is not None
            hit = d.network.version == self.family and self.ctx.ip in d.network
            if not hit:
                self.note(f"{d.text}: no match")
            return hit
        self.count(d.text)
        name = domain if d.target is None else await self.target(d.target, domain)
        self.note(f"{d.text} → {name} [lookup {self.lookups}]")
        if kind is Kind.INCLUDE:
            return await self.include(name)
        if kind is Kind.A:
            return await self.addresses_match(name, d, void=True)
        if kind is Kind.MX:
            return await self.mx(name, d)
        if kind is Kind.PTR:
            return await self.ptr(name)
        return await self.exists(name)

    async def include(self, name: str) -> bool:
        self.depth += 1
        record = await self.record(name)
        if record is None:
            # §5.2: an included domain without a record is a permerror.
            raise _Stop(Result.PERMERROR, f"include:{name} has no SPF record (§5.2)")
        verdict = await self.evaluate(record, name)
        self.depth -= 1
        # §5.2 table: only pass matches; fail, softfail, neutral do not; errors stop.
        self.note(f"include:{name} gave {verdict.result}: "
                  f"{'match' if verdict.result is Result.PASS else 'no match'}")
        return verdict.result is Result.PASS

    async def addresses_match(self, name: str, d: Directive, *, void: bool) -> bool:
        """§5.3: any A (IPv4 client) or AAAA (IPv6 client) record of ``name`` within
        the CIDR length of <ip>."""
        answer = await self.resolver.addresses(name, self.family)
        if answer.status is Status.TEMPFAIL:
            raise _Stop(Result.TEMPERROR, f"address lookup of {name} failed: {answer.error}")
        if not answer.ok:
            if void:
                self.void(name)
            return False
        cidr = d.cidr4 if self.family == 4 else d.cidr6
        shift = self.bits - cidr
        mine = self.ip_int >> shift
        return any(int(ipaddress.ip_address(text)) >> shift == mine for text in answer.records)

    async def mx(self, name: str, d: Directive) -> bool:
        """§5.4: the addresses of the MX hosts of ``name``; no MX: no match."""
        answer = await self.resolver.mx(name)
        if answer.status is Status.TEMPFAIL:
            raise _Stop(Result.TEMPERROR, f"MX lookup of {name} failed: {answer.error}")
        if not answer.ok:
            self.void(name)
            return False
        # A null MX (RFC 7505, exchange ".") names no host.
        hosts = [host for _, host in sorted(answer.records) if host != "."]
        for host in hosts[:MAX_MX_NAMES]:
            if await self.addresses_match(host, d, void=False):
                self.note(f"  MX host {host} matches")
                return True
        if len(hosts) > MAX_MX_NAMES:
            raise _Stop(Result.PERMERROR, f"mx:{name} has {len(hosts)} MX hosts; at most "
                        f"{MAX_MX_NAMES} may be looked up (§4.6.4)")
        return False

    async def ptr(self, name: str) -> bool:
        """§5.5: a validated PTR name of <ip> that is ``name`` or ends in ``.name``."""
        names = await self.ptr_names(count_void=True)
        target = name.lower()
        suffix = "." + target
        for host in names:
            lowered = host.lower().rstrip(".")
            if (lowered == target or lowered.endswith(suffix)) and await self.confirms(host):
                self.note(f"  {host} is validated")
                return True
        return False

    async def exists(self, name: str) -> bool:
        """§5.7: any A record at ``name``, whatever the client's address family."""
        answer = await self.resolver.addresses(name, 4)
        if answer.status is Status.TEMPFAIL:
            raise _Stop(Result.TEMPERROR, f"A lookup of {name} failed: {answer.error}")
        if not answer.ok:
            self.void(name)
            return False
        return True

    # -- reverse names (§5.5, §7.3 %{p}) ---------------------------------------------

    async def ptr_names(self, *, count_void: bool) -> list[str]:
        """The first 10 PTR names of <ip> (§4.6.4); a DNS error gives none (§5.5)."""
        if self._ptr_names is None:
            answer = await self.resolver.ptr(str(self.ctx.ip))
            if answer.status is Status.TEMPFAIL:
                self.note(f"PTR lookup failed ({answer.error}): no names")
            elif not answer.ok and count_void:
                self.void("PTR " + str(self.ctx.ip))
            self._ptr_names = list(answer.records[:MAX_PTR_NAMES])
        return self._ptr_names

    async def confirms(self, host: str) -> bool:
        """Whether ``host`` has <ip> among its addresses; errors skip the name (§5.5)."""
        answer = await self.resolver.addresses(host, self.family)
        if not answer.ok:
            return False
        return any(ipaddress.ip_address(text) == self.ctx.ip for text in answer.records)

    async def validated_name(self, domain: str) -> str:
        """``%{p}`` (§7.3): <domain> itself if validated, else a validated subdomain of
        it, else any validated name, else "unknown". Not counted against the limits."""
        if self._validated is None:
            self._validated = [h for h in await self.ptr_names(count_void=False)
                               if await self.confirms(h)]
        wanted = domain.lower()
        names = [h.rstrip(".") for h in self._validated]
        for host in names:
            if host.lower() == wanted:
                return host
        for host in names:
            if host.lower().endswith("." + wanted):
                return host
        return names[0] if names else "unknown"

    # -- explanation (§6.2) ------------------------------------------------------------

    async def explain(self, record: Record, domain: str) -> str | None:
        """The exp= text, or None: any failure here means "as if no exp= was given"."""
        if record.exp is None:
            return None
        name = await self.target(record.exp, domain)
        answer = await self.resolver.txt(name)
        if not answer.ok or len(answer.records) != 1:
            self.note(f"exp={name}: {answer.status.value}, {len(answer.records)} TXT; ignored")
            return None
        try:
            spec = parse_macro_string(answer.records[0].decode("ascii"), explanation=True)
        except (UnicodeDecodeError, MacroError) as exc:
            self.note(f"exp={name}: bad explanation ({exc}); ignored")
            return None
        validated = await self.validated_name(domain) if spec.uses_p else "unknown"
        text = expand(spec, self.ctx, domain, validated)
        self.note(f"exp={name}: {text!r}")
        return text


async def check_host(
    resolver: FullResolver,
    ip: str | IPAddress,
    domain: str,
    sender: str,
    *,
    now: float,
    helo: str = "",
    receiver: str = "unknown",
    identity: Identity = Identity.MAILFROM,
    records: RecordCache | None = None,
) -> SpfResult:
    """RFC 7208 §4: is ``ip`` allowed to send mail for ``domain`` as ``sender``?

    ``helo`` is %{h}, ``receiver`` is %{r} (the checking host), ``now`` is %{t} in
    seconds since the epoch; ``records``, when given, keeps parsed records across
    checks (a long-running server should keep one beside its resolver). Raises
    ValueError only for an ``ip`` that is not an address (a caller bug); every DNS
    or record problem is a result.
    """
    address = normalize_ip(ip)
    domain = domain[:-1] if domain.endswith(".") else domain
    sender, local, sender_domain = split_sender(sender, domain)
    ctx = MacroContext(sender, local, sender_domain, address, helo, receiver, int(now))
    base = SpfResult(Result.NONE, identity, domain, sender, str(address), helo)
    check = _Check(resolver, ctx, records)
    check.note(f"check_host(<ip>={address}, <domain>={domain}, <sender>={sender})")
    if not valid_domain(domain):
        # §4.3: a malformed or single-label <domain> gives none at once.
        return dataclasses.replace(base, problem=f"{domain!r} is not a valid domain name",
                                   trace=tuple(check.trace))
    try:
        record = await check.record(domain)
        if record is None:
            return _finish(base, check, Result.NONE, None, problem=f"no SPF record at {domain}")
        verdict = await check.evaluate(record, domain)
    except _Stop as stop:
        check.note(f"{stop.result}: {stop.problem}")
        return _finish(base, check, stop.result, None, problem=stop.problem)
    explanation = None
    if verdict.result is Result.FAIL:
        explanation = await check.explain(verdict.record, verdict.domain)
    mechanism = verdict.directive.text if verdict.directive is not None else None
    return _finish(base, check, verdict.result, mechanism, explanation=explanation)


def _finish(base: SpfResult, check: _Check, result: Result, mechanism: str | None, *,
            problem: str | None = None, explanation: str | None = None) -> SpfResult:
    return dataclasses.replace(base, result=result, mechanism=mechanism, problem=problem,
                               explanation=explanation, trace=tuple(check.trace),
                               lookups=check.lookups, void_lookups=check.voids)


async def check_mail_from(
    resolver: FullResolver,
    ip: str | IPAddress,
    mail_from: str,
    helo: str,
    *,
    now: float,
    receiver: str = "unknown",
    records: RecordCache | None = None,
) -> SpfResult:
    """The MAIL FROM identity (RFC 7208 §2.4). A null reverse-path (``""`` or ``"<>"``)
    is checked as postmaster@``helo``."""
    address = mail_from.strip()
    if address.startswith("<") and address.endswith(">"):
        address = address[1:-1]
    if not address:
        address = f"postmaster@{helo}"
    domain = address.rpartition("@")[2]
    return await check_host(resolver, ip, domain, address, now=now, helo=helo,
                            receiver=receiver, identity=Identity.MAILFROM, records=records)


async def check_helo(
    resolver: FullResolver,
    ip: str | IPAddress,
    helo: str,
    *,
    now: float,
    receiver: str = "unknown",
    records: RecordCache | None = None,
) -> SpfResult:
    """The HELO identity (RFC 7208 §2.3): <domain> is the HELO name and <sender> is
    postmaster@HELO."""
    return await check_host(resolver, ip, helo, f"postmaster@{helo}", now=now, helo=helo,
                            receiver=receiver, identity=Identity.HELO, records=records)
