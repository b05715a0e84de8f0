"""The DKIM-Signature header field (RFC 6376 §3.5) as a value.

Parsing never raises for bad input: a malformed signature becomes a
``BadSignature`` carrying its reason, so it is reported like any other result.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

from mailseal.dkim.canonical import Canon, parse_canonicalization
from mailseal.dkim.reasons import Reason
from mailseal.message import HeaderField
from mailseal.tagvalue import TagListError, parse_tag_list, strip_whitespace

#: Algorithms we can check (RFC 6376 §3.3, RFC 8463 §3). rsa-sha1 is parsed so that
#: it can be reported as too weak (RFC 8301 §3.1), not verified.
ALGORITHMS = {"rsa-sha256": ("rsa", "sha256"), "ed25519-sha256": ("ed25519", "sha256"),
              "rsa-sha1": ("rsa", "sha1")}

#: RFC 6376 §3.5: tags a signature MUST carry.
REQUIRED_TAGS = ("v", "a", "b", "bh", "d", "h", "s")

# RFC 6376 §3.5 and RFC 5321 §4.1.2: sub-domain *("." sub-domain); we accept
# underscores (seen in real d=) and require at least the label syntax.
_DOMAIN = re.compile(r"(?:[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?\.)*"
                     r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?\Z")


def valid_domain(name: str) -> bool:
    """A DNS name as d= and s= allow it (labels of letters, digits, '-', '_')."""
    return bool(_DOMAIN.match(name))


def within(domain: str, parent: str) -> bool:
    """RFC 6376 §3.5, §6.1.1: ``domain`` is ``parent`` or a subdomain of it (both
    lower-case)."""
    return domain == parent or domain.endswith("." + parent)


_DIGITS = re.compile(r"[0-9]{1,76}\Z")  # RFC 6376 §3.5: l=, t=, x= are 1*76DIGIT
_B_TAG = re.compile(rb"((?:^|;)[ \t\r\n]*b[ \t\r\n]*=)[^;]*")


@dataclass(frozen=True, slots=True)
class Signature:
    """A syntactically valid DKIM-Signature. Field names are the RFC tag names."""

    v: str  # §3.5 version, "1"
    a: str  # §3.5 signing algorithm, e.g. "rsa-sha256"
    b: bytes  # §3.5 signature data (decoded)
    bh: bytes  # §3.5 body hash (decoded)
    c: tuple[Canon, Canon]  # §3.5 canonicalization (header, body)
    d: str  # §3.5 SDID, lower-cased
    h: tuple[str, ...]  # §3.5 signed header fields, as written
    i: str  # §3.5 AUID; "@" + d when absent
    l: int | None  # noqa: E741  §3.5 body length count
    q: tuple[str, ...]  # §3.5 query methods
    s: str  # §3.5 selector
    t: int | None  # §3.5 signature timestamp
    x: int | None  # §3.5 signature expiration
    z: str | None  # §3.5 copied header fields
    field: HeaderField  # the header field the signature came from
    index: int  # position of the field among the message's header fields

    @property
    def key_type(self) -> str:
        return ALGORITHMS[self.a][0]

    @property
    def hash_name(self) -> str:
        return ALGORITHMS[self.a][1]

    @property
    def key_name(self) -> str:
        """The DNS name of the key record (RFC 6376 §3.6.2.1)."""
        return f"{self.s}._domainkey.{self.d}"

    @property
    def auid_domain(self) -> str:
        return self.i.rpartition("@")[2].lower()

    def b_stripped_field(self) -> HeaderField:
        """The field with the value of ``b=`` deleted (RFC 6376 §3.7 step 2)."""
        return HeaderField(self.field.name, _B_TAG.sub(rb"\1", self.field.value))


@dataclass(frozen=True, slots=True)
class BadSignature:
    """A DKIM-Signature that cannot be evaluated, and why."""

    reason: Reason
    detail: str
    tags: dict[str, str]  # what could be parsed, for reporting d=/s=
    field: HeaderField
    index: int


def parse_signature(field: HeaderField, index: int = 0) -> Signature | BadSignature:
    """Parse and check a DKIM-Signature field per RFC 6376 §6.1.1."""
    try:
        tags = parse_tag_list(field.value)
    except TagListError as exc:
        return BadSignature(Reason.SYNTAX, str(exc), {}, field, index)

    def bad(reason: Reason, detail: str) -> BadSignature:
        return BadSignature(reason, detail, tags, field, index)

    missing = [t for t in REQUIRED_TAGS if t not in tags]
    if missing:
        return bad(Reason.MISSING_TAG, "missing " + ", ".join(f"{t}=" for t in missing))
    if tags["v"] != "1":
        return bad(Reason.BAD_VERSION, f"v={tags['v'][:20]}")
    algorithm = tags["a"].lower()
    if algorithm not in ALGORITHMS:
        return bad(Reason.BAD_ALGORITHM, f"a={tags['a'][:40]}")
    try:
        canon = parse_canonicalization(tags.get("c", "simple/simple"))
    except ValueError:
        return bad(Reason.BAD_CANONICALIZATION, f"c={tags.get('c', '')[:40]}")
    d = tags["d"].lower()
    if not valid_domain(d):
        return bad(Reason.SYNTAX, f"invalid d= {d[:60]!r}")
    selector = tags["s"]
    if not valid_domain(selector):
        return bad(Reason.SYNTAX, f"invalid s= {selector[:60]!r}")
    signed = tuple(n.strip(" \t\r\n") for n in tags["h"].split(":"))
    if not signed or any(not n or ":" in n for n in signed):
        return bad(Reason.SYNTAX, "empty name in h=")
    # RFC 6376 §5.4: "The From header field MUST be signed".
    if "from" not in (n.lower() for n in signed):
        return bad(Reason.FROM_NOT_SIGNED, "h= does not list From")
    auid = _decode_qp(tags["i"]) if "i" in tags else "@" + d
    if "@" not in auid:
        return bad(Reason.SYNTAX, "i= has no @")
    auid_domain = auid.rpartition("@")[2].lower()
    # RFC 6376 §6.1.1: the domain of i= must be d= or a subdomain of it.
    if not within(auid_domain, d):
        return bad(Reason.DOMAIN_MISMATCH, f"i={auid[:60]} d={d}")
    numbers: dict[str, int | None] = {}
    for tag in ("l", "t", "x"):
        if tag in tags:
            if not _DIGITS.match(tags[tag]):
                return bad(Reason.SYNTAX, f"invalid {tag}=")
            numbers[tag] = int(tags[tag])
        else:
            numbers[tag] = None
    t, x = numbers["t"], numbers["x"]
    if t is not None and x is not None and x < t:
        return bad(Reason.SYNTAX, "x= is before t=")
    methods = tuple(m.strip(" \t\r\n") for m in tags.get("q", "dns/txt").split(":"))
    # RFC 6376 §3.5: unknown query methods are ignored; dns/txt must be there.
    if not any(m.lower() == "dns/txt" for m in methods):
        return bad(Reason.BAD_QUERY_METHOD, f"q={tags.get('q', '')[:40]}")
    try:
        b = _b64(tags["b"])
        bh = _b64(tags["bh"])
    except ValueError as exc:
        return bad(Reason.SYNTAX, str(exc))
    if not b or not bh:
        return bad(Reason.SYNTAX, "empty b= or bh=")
    return Signature(v="1", a=algorithm, b=b, bh=bh, c=canon, d=d, h=signed, i=auid,
                     l=numbers["l"], q=methods, s=selector, t=t, x=x, z=tags.get("z"),
                     field=field, index=index)


def _b64(value: str) -> bytes:
    text = strip_whitespace(value)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("invalid base64") from None


def _decode_qp(value: str) -> str:
    """``dkim-quoted-printable`` (RFC 6376 §2.11) for i=."""
    text = strip_whitespace(value)
    if "=" not in text:
        return text
    raw = re.sub(rb"=([0-9A-Fa-f]{2})", lambda m: bytes([int(m.group(1), 16)]),
                 text.encode("utf-8", "surrogateescape"))
    return raw.decode("utf-8", "replace")
