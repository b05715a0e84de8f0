"""DMARC policy records (RFC 9989 §4.7-§4.8; RFC 7489 §6.3 in compatibility mode).

Grammar (RFC 9989 §4.8)::

    dmarc-record  = dmarc-version *(dmarc-sep dmarc-tag) [dmarc-sep]
    dmarc-version = "v" equals %s"DMARC1"          ; case sensitive, MUST be first
    dmarc-sep     = *WSP ";" *WSP
    equals        = *WSP "=" *WSP
    dmarc-tag     = 1*ALPHA equals 1*dmarc-value
    dmarc-value   = %x20-3A / %x3C-7E              ; printing characters but ";"
    dmarc-request = "none" / "quarantine" / "reject"      ; p sp np
    dmarc-yorn    = "y" / "n"                             ; t
    dmarc-psd     = "y" / "n" / "u"                       ; psd
    dmarc-rors    = "r" / "s"                             ; adkim aspf
    dmarc-urilist = dmarc-uri *(*WSP "," *WSP dmarc-uri)  ; rua ruf ("!size" obsolete)
    dmarc-fo      = "0" / "1" / "d" / "s", colon-separated, "0" and "1" exclusive

Rules applied here, each from the RFC:

- a text whose first tag is not ``v=DMARC1`` is not a DMARC record at all
  (§4.7 "v": "the entire record MUST be ignored"): :class:`NotDmarc`;
- "Unknown tags MUST be ignored" and "syntax errors in the remainder of the record
  MUST be discarded in favor of default values (if any) or ignored outright" (§4.8):
  a bad tag becomes a :class:`TagError` and its default, never a rejected record;
- tag names are case-sensitive as in DKIM's tag=value syntax that §4.7 builds on
  (RFC 6376 §3.2); values that are ABNF literals are case-insensitive (RFC 5234
  §2.3), so ``p=Reject`` and ``adkim=S`` count;
- RFC 9989 mode ignores the removed tags ``pct``, ``rf`` and ``ri`` (§9.3 "historic";
  Appendix A.6); RFC 7489 mode honours them and ignores ``np``, ``psd`` and ``t``,
  which it does not define (RFC 7489 §6.3: unknown tags MUST be ignored).

Whether a record with a missing or invalid ``p`` (or an invalid ``sp``/``np``) is
used at all is decided by :meth:`DmarcRecord.effective` (RFC 9989 §4.10.1).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field, replace

#: Upper bounds on what is kept of one record: it is attacker-controlled data.
MAX_URIS = 16  # report URIs per tag
MAX_ERRORS = 32  # errors (and ignored tag names) listed

_TAG_NAME = re.compile(r"[A-Za-z]+\Z")
_BAD_VALUE_CHAR = re.compile(r"[^\x20-\x3a\x3c-\x7e]")
_WSP = " \t"
# RFC 3986 §3.1 scheme, then anything without whitespace; "!" size suffix obsolete.
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:[^\s!,]+(![0-9]+[kmgtKMGT]?)?\Z")


class Mode(enum.StrEnum):
    """Which specification drives discovery and evaluation."""

    RFC9989 = "9989"  # DMARCbis: DNS tree walk, np/psd/t
    RFC7489 = "7489"  # the compatibility mode: Public Suffix List, pct


class Policy(enum.StrEnum):
    """A Domain Owner Assessment Policy (RFC 9989 §4.7 ``dmarc-request``)."""

    NONE = "none"
    QUARANTINE = "quarantine"
    REJECT = "reject"

    def one_level_below(self) -> Policy:
        """RFC 9989 §4.7 ``t=y`` (and RFC 7489 §6.6.4 for messages sampled out):
        reject becomes quarantine, quarantine becomes none."""
        return Policy.QUARANTINE if self is Policy.REJECT else Policy.NONE

    @property
    def strictness(self) -> int:
        return _STRICTNESS[self]


_STRICTNESS = {Policy.NONE: 0, Policy.QUARANTINE: 1, Policy.REJECT: 2}


class AlignmentMode(enum.StrEnum):
    """``adkim`` / ``aspf`` (RFC 9989 §4.7 ``dmarc-rors``)."""

    RELAXED = "r"
    STRICT = "s"


class Psd(enum.StrEnum):
    """``psd`` (RFC 9989 §4.7 ``dmarc-psd``)."""

    YES = "y"  # a Public Suffix Domain's record
    NO = "n"  # an Organizational Domain boundary
    UNKNOWN = "u"  # the default: let the tree walk decide


@dataclass(frozen=True, slots=True)
class TagError:
    """One problem found in a record; the tag fell back to its default."""

    tag: str
    value: str
    reason: str

    def __str__(self) -> str:
        shown = self.value if len(self.value) <= 40 else self.value[:37] + "..."
        return f"{self.tag}={shown}: {self.reason}" if self.tag else self.reason


@dataclass(frozen=True, slots=True)
class NotDmarc:
    """A TXT record at ``_dmarc.`` that is not a DMARC record (RFC 9989 §4.10 step 2:
    discarded, as if absent)."""

    reason: str


@dataclass(frozen=True, slots=True)
class DmarcRecord:
    """A DMARC policy record as published; absent tags hold their defaults."""

    mode: Mode  # which specification the record was read under
    p: Policy | None = None  # §4.7 policy; None: absent or invalid
    sp: Policy | None = None  # §4.7 existing-subdomain policy; None: absent (or invalid)
    np: Policy | None = None  # §4.7 non-existent-subdomain policy (RFC 9989 only)
    adkim: AlignmentMode = AlignmentMode.RELAXED  # §4.7 DKIM alignment
    aspf: AlignmentMode = AlignmentMode.RELAXED  # §4.7 SPF alignment
    fo: tuple[str, ...] = ("0",)  # §4.7 failure reporting options
    rua: tuple[str, ...] = ()  # §4.7 aggregate report URIs (syntactically valid ones)
    ruf: tuple[str, ...] = ()  # §4.7 failure report URIs (syntactically valid ones)
    psd: Psd = Psd.UNKNOWN  # §4.7 (RFC 9989 only)
    t: bool = False  # §4.7 test mode (RFC 9989 only)
    pct: int = 100  # RFC 7489 §6.3 sampling rate (RFC 7489 mode only)
    rf: tuple[str, ...] = ("afrf",)  # RFC 7489 §6.3 failure report format
    ri: int = 86400  # RFC 7489 §6.3 aggregate report interval, seconds
    text: str = ""  # the record as published
    errors: tuple[TagError, ...] = ()  # what was wrong, in order
    ignored: tuple[str, ...] = ()  # tags ignored: unknown, or not of this mode
    invalid: frozenset[str] = field(default_factory=frozenset)  # policy tags present but bad

    @property
    def policy_valid(self) -> bool:
        """``p`` present and valid, no invalid ``sp``/``np`` (RFC 9989 §4.10.1)."""
        return self.p is not None and not self.invalid

    def effective(self) -> DmarcRecord | None:
        """The record as a receiver applies it, or None for "no DMARC processing".

        RFC 9989 §4.10.1 (RFC 7489 §6.6.3 step 6 likewise): without a valid ``p``, or
        with an invalid ``sp``/``np``, the receiver acts as if ``p=none`` was
        published when ``rua`` holds at least one valid URI, and otherwise applies no
        DMARC processing.
        """
        if self.policy_valid:
            return self
        if not self.rua:
            return None
        return replace(self, p=Policy.NONE, sp=None, np=None, invalid=frozenset())


# Which tags each mode reads; the others are ignored (not errors).
_COMMON = frozenset({"p", "sp", "adkim", "aspf", "fo", "rua", "ruf"})
_TAGS = {
    Mode.RFC9989: _COMMON | {"np", "psd", "t"},
    Mode.RFC7489: _COMMON | {"pct", "rf", "ri"},
}
_REMOVED_9989 = frozenset({"pct", "rf", "ri"})


def _split_version(text: str) -> tuple[str, str] | None:
    """(version spec, rest) when the record starts with a ``v`` tag."""
    first, _, rest = text.partition(";")
    name, eq, value = first.partition("=")
    if not eq or name.strip(_WSP) != "v":
        return None
    return value.strip(_WSP), rest


def parse_record(text: str | bytes, mode: Mode = Mode.RFC9989) -> DmarcRecord | NotDmarc:
    """Read one TXT record found at a ``_dmarc.`` name (strings already joined,
    RFC 9989 §4.5)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "surrogateescape")
    version = _split_version(text.strip(_WSP + "\r\n"))
    if version is None:
        return NotDmarc("does not start with a v= tag")
    value, rest = version
    if value != "DMARC1":
        # §4.7: "The tag value is case sensitive, and the only possible value is DMARC1."
        return NotDmarc(f"version {value[:20]!r} is not DMARC1")
    return _Reader(mode, text).read(rest)


class _Reader:
    """Collects tag values and errors for one record."""

    def __init__(self, mode: Mode, text: str) -> None:
        self.mode = mode
        self.values: dict[str, object] = {"mode": mode, "text": text}
        self.errors: list[TagError] = []
        self.ignored: list[str] = []
        self.invalid: set[str] = set()
        self.seen: set[str] = set()

    def error(self, tag: str, value: str, reason: str) -> None:
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(TagError(tag, value[:100], reason))
        elif len(self.errors) == MAX_ERRORS:
            self.errors.append(TagError("", "", "more errors not listed"))

    def read(self, rest: str) -> DmarcRecord:
        for spec in rest.split(";"):
            if spec.strip(_WSP + "\r\n"):
                self.spec(spec)
        return DmarcRecord(
            errors=tuple(self.errors), ignored=tuple(self.ignored),
            invalid=frozenset(self.invalid), **self.values,  # type: ignore[arg-type]
        )

    def spec(self, spec: str) -> None:
        name, eq, raw = spec.partition("=")
        name = name.strip(_WSP + "\r\n")
        value = raw.strip(_WSP + "\r\n")
        if not eq:
            self.error("", spec.strip()[:40], "tag without '=' ignored")
            return
        if not _TAG_NAME.match(name):
            self.error(name[:20], value, "invalid tag name, ignored")
            return
        if name in self.seen:
            # Two values for one tag: neither can be trusted.
            self.error(name, value, "duplicate tag; the tag is treated as invalid")
            self.values.pop(name, None)
            if name in ("p", "sp", "np"):
                self.invalid.add(name)
            return
        self.seen.add(name)
        if name not in _TAGS[self.mode]:
            if len(self.ignored) < MAX_ERRORS:
                self.ignored.append(name)
            if self.mode is Mode.RFC9989 and name in _REMOVED_9989:
                self.error(name, value, "removed in RFC 9989 (historic), ignored")
            return
        if not value or _BAD_VALUE_CHAR.search(value):
            self.bad(name, value, "empty value" if not value else "invalid character")
            return
        _READERS[name](self, name, value)

    def bad(self, name: str, value: str, reason: str) -> None:
        self.error(name, value, f"{reason}; default used")
        if name in ("p", "sp", "np"):
            self.invalid.add(name)

    def policy(self, name: str, value: str) -> None:
        try:
            self.values[name] = Policy(value.lower())
        except ValueError:
            self.bad(name, value, "not none, quarantine or reject")

    def rors(self, name: str, value: str) -> None:
        try:
            self.values[name] = AlignmentMode(value.lower())
        except ValueError:
            self.bad(name, value, "not r or s")

    def psd(self, name: str, value: str) -> None:
        try:
            self.values[name] = Psd(value.lower())
        except ValueError:
            self.bad(name, value, "not y, n or u")

    def yorn(self, name: str, value: str) -> None:
        if value.lower() not in ("y", "n"):
            self.bad(name, value, "not y or n")
            return
        self.values[name] = value.lower() == "y"

    def fo(self, name: str, value: str) -> None:
        items = [item.strip(_WSP).lower() for item in value.split(":")]
        if (not all(item in ("0", "1", "d", "s") for item in items)
                or len(set(items)) != len(items) or {"0", "1"} <= set(items)):
            self.bad(name, value, "not a colon-separated list of 0, 1, d, s")
            return
        self.values[name] = tuple(items)

    def uris(self, name: str, value: str) -> None:
        good: list[str] = []
        for uri in (u.strip(_WSP) for u in value.split(",")):
            if _URI.match(uri):
                if len(good) < MAX_URIS:
                    good.append(uri)
            else:
                self.error(name, uri, "not a URI, ignored")
        self.values[name] = tuple(good)

    def pct(self, name: str, value: str) -> None:
        # RFC 7489 §6.3: "pct: (plain-text integer between 0 and 100, inclusive)".
        if not value.isascii() or not value.isdigit() or len(value) > 3 or int(value) > 100:
            self.bad(name, value, "not an integer from 0 to 100")
            return
        self.values[name] = int(value)

    def rf(self, name: str, value: str) -> None:
        # RFC 7489 §6.3: values MUST be registered formats; only "afrf" is.
        items = tuple(item.strip(_WSP).lower() for item in value.split(":"))
        if "afrf" not in items:
            self.bad(name, value, "no registered report format (afrf)")
            return
        self.values[name] = items

    def ri(self, name: str, value: str) -> None:
        # RFC 7489 §6.3: "plain-text 32-bit unsigned integer".
        if not value.isascii() or not value.isdigit() or int(value) > 0xFFFFFFFF:
            self.bad(name, value, "not a 32-bit unsigned integer")
            return
        self.values[name] = int(value)


_READERS = {
    "p": _Reader.policy, "sp": _Reader.policy, "np": _Reader.policy,
    "adkim": _Reader.rors, "aspf": _Reader.rors, "psd": _Reader.psd, "t": _Reader.yorn,
    "fo": _Reader.fo, "rua": _Reader.uris, "ruf": _Reader.uris,
    "pct": _Reader.pct, "rf": _Reader.rf, "ri": _Reader.ri,
}
