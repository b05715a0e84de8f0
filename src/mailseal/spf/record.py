"""SPF records (RFC 7208 §4.5, §4.6, §5, §6): selection among TXT records and
parsing into terms, with a syntax error kept as a value.

The grammar, RFC 7208 §4.6.1, §5, §6 and §12 (ABNF literals are case-insensitive)::

    record           = version terms *SP
    version          = "v=spf1"
    terms            = *( 1*SP ( directive / modifier ) )
    directive        = [ qualifier ] mechanism
    qualifier        = "+" / "-" / "?" / "~"
    mechanism        = ( all / include / a / mx / ptr / ip4 / ip6 / exists )
    all              = "all"
    include          = "include"  ":" domain-spec
    a                = "a"      [ ":" domain-spec ] [ dual-cidr-length ]
    mx               = "mx"     [ ":" domain-spec ] [ dual-cidr-length ]
    ptr              = "ptr"    [ ":" domain-spec ]
    ip4              = "ip4"      ":" ip4-network   [ ip4-cidr-length ]
    ip6              = "ip6"      ":" ip6-network   [ ip6-cidr-length ]
    exists           = "exists"   ":" domain-spec
    ip4-cidr-length  = "/" ("0" / %x31-39 0*1DIGIT) ; value range 0-32
    ip6-cidr-length  = "/" ("0" / %x31-39 0*2DIGIT) ; value range 0-128
    dual-cidr-length = [ ip4-cidr-length ] [ "/" ip6-cidr-length ]
    modifier         = redirect / explanation / unknown-modifier
    redirect         = "redirect" "=" domain-spec
    explanation      = "exp" "=" domain-spec
    unknown-modifier = name "=" macro-string
    name             = ALPHA *( ALPHA / DIGIT / "-" / "_" / "." )

A modifier name is never read greedily as an unknown modifier: ``redirect=`` and
``exp=`` with a bad domain-spec are syntax errors, as the OpenSPF suite and every
implementation agree.
"""

from __future__ import annotations

import dataclasses
import enum
import ipaddress
import re
from collections import OrderedDict
from collections.abc import Iterable

from mailseal.results import Result
from mailseal.spf.macro import MacroError, MacroString, parse_domain_spec, parse_macro_string

VERSION = b"v=spf1"

_MODIFIER = re.compile(r"([A-Za-z][A-Za-z0-9_.\-]*)=(.*)", re.DOTALL)
_DUAL_CIDR = re.compile(r"(?:/([0-9]+))?(?://([0-9]+))?")
_DOMAIN_AND_CIDR = re.compile(r"(.*?)(?:/([0-9]+))?(?://([0-9]+))?", re.DOTALL)
_CIDR = re.compile(r"0|[1-9][0-9]{0,2}")  # no leading zeros (§5.6 ABNF)
_QNUM = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"  # §5.6 qnum: no leading zeros
_IP4 = re.compile(rf"{_QNUM}\.{_QNUM}\.{_QNUM}\.{_QNUM}")
_NAME = re.compile(r"[^:/]*")


class Qualifier(enum.Enum):
    """RFC 7208 §4.6.2: the result a matching mechanism gives."""

    PASS = "+"
    FAIL = "-"
    SOFTFAIL = "~"
    NEUTRAL = "?"

    @property
    def result(self) -> Result:
        return _QUALIFIER_RESULT[self]


_QUALIFIER_RESULT = {
    Qualifier.PASS: Result.PASS,
    Qualifier.FAIL: Result.FAIL,
    Qualifier.SOFTFAIL: Result.SOFTFAIL,
    Qualifier.NEUTRAL: Result.NEUTRAL,
}
_QUALIFIERS = {q.value: q for q in Qualifier}


class Kind(enum.StrEnum):
    """The mechanisms of RFC 7208 §5."""

    ALL = "all"
    INCLUDE = "include"
    A = "a"
    MX = "mx"
    PTR = "ptr"
    IP4 = "ip4"
    IP6 = "ip6"
    EXISTS = "exists"


_KINDS = {k.value: k for k in Kind}


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclasses.dataclass(frozen=True, slots=True)
class Directive:
    """One ``[qualifier] mechanism`` term."""

    qualifier: Qualifier
    kind: Kind
    text: str  # the term as written, for traces and Received-SPF "mechanism="
    target: MacroString | None = None  # domain-spec: include, a, mx, ptr, exists (§5)
    network: Network | None = None  # ip4, ip6 (§5.6)
    cidr4: int = 32  # a, mx: ip4-cidr-length (§5.3, §5.4)
    cidr6: int = 128  # a, mx: ip6-cidr-length


@dataclasses.dataclass(frozen=True, slots=True)
class Record:
    """A parsed ``v=spf1`` record."""

    text: str
    directives: tuple[Directive, ...]
    redirect: MacroString | None = None  # §6.1
    exp: MacroString | None = None  # §6.2
    unknown: tuple[tuple[str, str], ...] = ()  # §6: other modifiers, ignored


@dataclasses.dataclass(frozen=True, slots=True)
class BadRecord:
    """A record with a syntax error: check_host() gives permerror (RFC 7208 §4.6)."""

    text: str
    term: str  # the offending term ("" for the record as a whole)
    reason: str


class _TermError(Exception):
    """Internal: a term that does not parse; turned into a BadRecord below."""


def is_spf(txt: bytes) -> bool:
    """RFC 7208 §4.5: "v=spf1" (any case) followed by SP or the end of the record."""
    return txt[:6].lower() == VERSION and (len(txt) == 6 or txt[6] == 0x20)


def select_records(txts: Iterable[bytes]) -> list[bytes]:
    """The TXT records at a name that are SPF records (§4.5); the caller decides on
    none (result none) and several (permerror)."""
    return [txt for txt in txts if is_spf(txt)]


def parse_record(data: bytes | str) -> Record | BadRecord:
    """Parse a whole record. Any syntax error anywhere makes the record a
    :class:`BadRecord` (RFC 7208 §4.6: "If there are any syntax errors anywhere in
    the record, check_host() returns immediately with the result 'permerror'")."""
    if isinstance(data, bytes):
        try:
            text = data.decode("ascii")
        except UnicodeDecodeError:
            # §3: SPF records are 7-bit ASCII (the suites' non-ascii-* cases).
            return BadRecord(data.decode("latin-1"), "", "record is not ASCII")
    elif data.isascii():
        text = data
    else:
        return BadRecord(data, "", "record is not ASCII")
    if not is_spf(text.encode("ascii")):
        return BadRecord(text, "", "not a v=spf1 record")
    directives: list[Directive] = []
    redirect: MacroString | None = None
    exp: MacroString | None = None
    unknown: list[tuple[str, str]] = []
    # §4.6.1: terms are separated by one or more SP; no other character separates.
    for term in text[6:].split(" "):
        if not term:
            continue
        try:
            modifier = _MODIFIER.fullmatch(term)
            if modifier is None:
                directives.append(_directive(term))
                continue
            name, value = modifier.group(1).lower(), modifier.group(2)
            if name == "redirect":
                if redirect is not None:
                    raise _TermError("redirect= appears twice (§6)")
                redirect = parse_domain_spec(value)
            elif name == "exp":
                if exp is not None:
                    raise _TermError("exp= appears twice (§6)")
                exp = parse_domain_spec(value)
            else:
                # §6: unknown modifiers are ignored, but their value must still be a
                # valid macro-string (Appendix A, unknown-modifier).
                parse_macro_string(value, explanation=True)
                unknown.append((modifier.group(1), value))
        except (_TermError, MacroError) as exc:
            return BadRecord(text, term, str(exc))
    return Record(text, tuple(directives), redirect, exp, tuple(unknown))


class RecordCache:
    """Parsed records by their octets, so a record seen again (the same provider's
    include for every message) is not parsed again. Records are frozen values, so one
    parse is shared safely; the least recently used are dropped past ``max_entries``.
    Not shared between threads; one per event loop is the intended use."""

    def __init__(self, max_entries: int = 4096) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[bytes, Record | BadRecord] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def parse(self, data: bytes) -> Record | BadRecord:
        """:func:`parse_record`, remembered."""
        found = self._entries.get(data)
        if found is not None:
            self._entries.move_to_end(data)
            return found
        parsed = parse_record(data)
        if self.max_entries > 0:
            self._entries[data] = parsed
            if len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return parsed


def _cidr(text: str | None, limit: int, default: int) -> int:
    if text is None:
        return default
    if _CIDR.fullmatch(text) is None or int(text) > limit:
        raise _TermError(f"bad CIDR length /{text} (0..{limit}, no leading zeros)")
    return int(text)


def _directive(term: str) -> Directive:
    qualifier = _QUALIFIERS.get(term[0])
    body = term if qualifier is None else term[1:]
    qualifier = qualifier or Qualifier.PASS
    match = _NAME.match(body)
    assert match is not None  # the pattern matches any text
    cut = match.end()
    name, rest = body[:cut].lower(), body[cut:]
    kind = _KINDS.get(name)
    if kind is None:
        raise _TermError(f"unknown mechanism {body[:cut]!r}")
    if kind is Kind.ALL:
        if rest:
            raise _TermError("all takes no argument (§5.1)")
        return Directive(qualifier, kind, term)
    if kind in (Kind.IP4, Kind.IP6):
        return Directive(qualifier, kind, term, network=_network(kind, rest))
    if kind in (Kind.A, Kind.MX):
        return _a_or_mx(qualifier, kind, term, rest)
    # include, exists: ":" domain-spec required; ptr: optional; no CIDR for any.
    if not rest and kind is Kind.PTR:
        return Directive(qualifier, kind, term)
    if not rest.startswith(":"):
        raise _TermError(f"{name} needs ':' and a domain-spec")
    return Directive(qualifier, kind, term, target=parse_domain_spec(rest[1:]))


def _a_or_mx(qualifier: Qualifier, kind: Kind, term: str, rest: str) -> Directive:
    target: MacroString | None = None
    if rest.startswith(":"):
        match = _DOMAIN_AND_CIDR.fullmatch(rest, 1)
        assert match is not None  # the pattern matches any text
        domain, cidr4, cidr6 = match.groups()
        target = parse_domain_spec(domain)
    else:
        match = _DUAL_CIDR.fullmatch(rest)
        if match is None:
            raise _TermError(f"bad dual-cidr-length {rest!r} (§5.3)")
        cidr4, cidr6 = match.groups()
    return Directive(
        qualifier, kind, term, target=target,
        cidr4=_cidr(cidr4, 32, 32), cidr6=_cidr(cidr6, 128, 128),
    )


def _network(kind: Kind, rest: str) -> Network:
    if not rest.startswith(":"):
        raise _TermError(f"{kind} needs ':' and a network (§5.6)")
    address, slash, length = rest[1:].partition("/")
    if kind is Kind.IP4:
        quad = _IP4.fullmatch(address)
        if quad is None:
            raise _TermError(f"bad ip4 network {rest[1:]!r}")
        a, b, c, d = (int(n) for n in quad.groups())
        prefix = _cidr(length if slash else None, 32, 32)
        return ipaddress.IPv4Network(((a << 24) | (b << 16) | (c << 8) | d, prefix), strict=False)
    try:
        if "%" in address:  # a zone index (RFC 4007) is not an ip6-network
            raise ValueError(address)
        ip6 = int(ipaddress.IPv6Address(address))
    except ValueError:
        raise _TermError(f"bad ip6 network {rest[1:]!r}") from None
    prefix = _cidr(length if slash else None, 128, 128)
    return ipaddress.IPv6Network((ip6, prefix), strict=False)
