"""DKIM signing (RFC 6376 §5), pure: header fields and body digests in, fields out.

A ``Signer`` is set up from the header fields and one or more ``SignSpec``; the
body is fed once in chunks whatever the number of signatures (RSA and Ed25519 with
the same canonicalization share one canonical stream and one hash); ``finish``
returns the DKIM-Signature fields to prepend, each ending in CRLF, in spec order.
"""

from __future__ import annotations

import base64
import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from mailseal.dkim.bodyhash import BodyHashes
from mailseal.dkim.canonical import Canon, parse_canonicalization
from mailseal.dkim.crypto import sign_digest
from mailseal.dkim.headers import FieldIndex, digest_fields, index_fields, select_headers
from mailseal.dkim.keys import SigningKey
from mailseal.dkim.signature import ALGORITHMS, valid_domain, within
from mailseal.message import HeaderField

#: RFC 6376 §5.4.1: fields that SHOULD be signed when present. To those we add the
#: MIME fields and Message-ID, as OpenDKIM and dkimpy do: they change how the body
#: is read, or identify the message.
DEFAULT_SIGNED = (
    "from", "reply-to", "subject", "date", "to", "cc", "resent-date", "resent-from",
    "resent-sender", "resent-to", "resent-cc", "in-reply-to", "references",
    "list-id", "list-help", "list-unsubscribe", "list-subscribe", "list-post",
    "list-owner", "list-archive", "message-id", "mime-version", "content-type",
    "content-transfer-encoding", "content-disposition", "sender",
)

#: Oversigned by default: listed once more than present, so an added instance breaks
#: the signature (RFC 6376 §8.15). From is always oversigned.
DEFAULT_OVERSIGNED = ("from",)

MAX_LINE = 78


class SignError(ValueError):
    """The message cannot be signed as asked; the text says why."""


@dataclass(frozen=True, slots=True)
class SignSpec:
    """What to sign with. Field names follow the tags they produce."""

    domain: str  # d=
    selector: str  # s=
    key: SigningKey
    algorithm: str = ""  # a=; "" picks rsa-sha256 or ed25519-sha256 from the key
    canonicalization: str = "relaxed/simple"  # c=
    headers: tuple[str, ...] | None = None  # h= candidates; None: DEFAULT_SIGNED
    oversign: tuple[str, ...] = DEFAULT_OVERSIGNED
    identity: str | None = None  # i=
    timestamp: bool = True  # t=
    expire_after: int | None = None  # x= = t= + this many seconds
    body_length: bool = False  # l=
    copy_headers: bool = False  # z=
    allow_sha1: bool = False  # RFC 8301 §3.1: rsa-sha1 MUST NOT be used for signing
    extra: tuple[tuple[str, str], ...] = field(default=())  # more tags, before bh=

    def resolved_algorithm(self) -> str:
        """The a= value, after checking the spec can make a valid signature."""
        return _resolve(self)


@functools.lru_cache(maxsize=256)
def _resolve(spec: SignSpec) -> str:
    """SignSpec.resolved_algorithm, computed once per spec (specs are frozen values)."""
    # RFC 6376 §3.5: d= and s= are DNS names; anything else would be a signature
    # no verifier accepts, or worse, header injection (a CRLF in s=).
    if not valid_domain(spec.domain):
        raise SignError(f"invalid signing domain {spec.domain!r}")
    if not valid_domain(spec.selector):
        raise SignError(f"invalid selector {spec.selector!r}")
    if spec.identity is not None:  # RFC 6376 §3.5: i= within d= (a property of the spec)
        auid_domain = spec.identity.rpartition("@")[2].lower()
        domain = spec.domain.lower()
        if "@" not in spec.identity or not within(auid_domain, domain):
            raise SignError(f"identity {spec.identity!r} is not within {domain}")
    algorithm = (spec.algorithm or f"{spec.key.key_type}-sha256").lower()
    if algorithm not in ALGORITHMS:
        raise SignError(f"unknown algorithm {algorithm!r}")
    if ALGORITHMS[algorithm][0] != spec.key.key_type:
        raise SignError(f"algorithm {algorithm} needs a {ALGORITHMS[algorithm][0]} key, "
                        f"got {spec.key.key_type} ({spec.key.source or 'key'})")
    if algorithm == "rsa-sha1" and not spec.allow_sha1:
        raise SignError("rsa-sha1 is not allowed for signing (RFC 8301); "
                        "use rsa-sha256 or force it with the legacy switch")
    return algorithm


#: parse_canonicalization once per value seen (the result is immutable).
_parse_canonicalization = functools.lru_cache(maxsize=64)(parse_canonicalization)


class Signer:
    """Signs one message with one or more specs."""

    def __init__(self, fields: Sequence[HeaderField], specs: Iterable[SignSpec]) -> None:
        self._fields = list(fields)
        self._index = index_fields(self._fields)
        froms = self._index.get(b"from", [])
        # RFC 6376 §5.4: From MUST be signed; RFC 5322 §3.6: exactly one From.
        if not froms:
            raise SignError("message has no From field")
        if len(froms) > 1:
            raise SignError(f"message has {len(froms)} From fields")
        self._plans: list[tuple[SignSpec, str, tuple[Canon, Canon], str]] = []
        self._bodies = BodyHashes()
        for spec in specs:
            algorithm = spec.resolved_algorithm()
            try:
                canon = _parse_canonicalization(spec.canonicalization)
            except ValueError:
                raise SignError(f"unknown canonicalization {spec.canonicalization!r}") from None
            hash_name = ALGORITHMS[algorithm][1]
            self._bodies.add(canon[1], hash_name)
            self._plans.append((spec, algorithm, canon, hash_name))
        if not self._plans:
            raise SignError("nothing to sign with")

    def feed(self, chunk: bytes) -> None:
        self._bodies.feed(chunk)

    def finish(self, now: int) -> list[bytes]:
        """The DKIM-Signature fields, each ending in CRLF, in spec order."""
        if now < 0:
            raise SignError(f"signing time {now} is before 1970 (t= is 1*76DIGIT)")
        self._bodies.finish()
        out = []
        for spec, algorithm, canon, hash_name in self._plans:
            sink = self._bodies.get(canon[1], hash_name)
            out.append(self._sign_one(spec, algorithm, canon, hash_name,
                                      sink.digest(), sink.length, now))
        return out

    def _sign_one(self, spec: SignSpec, algorithm: str, canon: tuple[Canon, Canon],
                  hash_name: str, bh: bytes, body_length: int, now: int) -> bytes:
        names, chosen = _signed_headers(self._index, spec.headers, spec.oversign)
        domain = spec.domain.lower()
        tags: list[tuple[str, str]] = [
            ("v", "1"), ("a", algorithm), ("c", f"{canon[0]}/{canon[1]}"),
            ("d", domain), ("s", spec.selector),
        ]
        if spec.identity is not None:  # checked with the spec (_resolve)
            tags.append(("i", qp_encode(spec.identity)))
        if spec.body_length:
            tags.append(("l", str(body_length)))
        if spec.timestamp or spec.expire_after is not None:
            tags.append(("t", str(now)))
        if spec.expire_after is not None:
            tags.append(("x", str(now + spec.expire_after)))
        tags.append(("h", ":".join(names)))
        if spec.copy_headers:
            tags.append(("z", copied_headers(self._fields, names)))
        tags.extend(spec.extra)
        tags.append(("bh", base64.b64encode(bh).decode("ascii")))
        tags.append(("b", ""))
        unsigned = fold_tags(tags)
        field = HeaderField(b"DKIM-Signature", unsigned.encode("ascii"))
        digest = digest_fields(chosen, canon[0], hash_name, field)
        b = base64.b64encode(sign_digest(spec.key.private, hash_name, digest)).decode("ascii")
        return b"DKIM-Signature:" + (unsigned + _fold_b64(b, unsigned)).encode("ascii") + b"\r\n"


def signed_header_names(fields: Sequence[HeaderField], wanted: Sequence[str] | None,
                        oversign: Sequence[str], index: FieldIndex | None = None) -> list[str]:
    """The h= list: each wanted field once per instance present, oversigned ones once
    more; From always, and always oversigned."""
    if index is None:
        index = index_fields(fields)
    names: list[str] = []
    for name, key, extra in _wanted(None if wanted is None else tuple(wanted), tuple(oversign)):
        n = len(index.get(key, ())) + extra
        if n:
            names.extend([name] * n)
    return names


def _signed_headers(index: FieldIndex, wanted: Sequence[str] | None,
                    oversign: Sequence[str]) -> tuple[list[str], list[HeaderField]]:
    """``signed_header_names`` and, in the same pass, the fields those names select
    (``select_headers``: each name takes the last instance not yet taken)."""
    plan = _wanted(None if wanted is None else tuple(wanted), tuple(oversign))
    if not _selects_by_key(plan):  # a name select_headers would look up differently
        names = signed_header_names((), wanted, oversign, index)
        return names, select_headers((), names, index)
    names = []
    chosen: list[HeaderField] = []
    for name, key, extra in plan:
        stack = index.get(key)
        if stack:
            names.extend([name] * (len(stack) + extra))
            chosen.extend(reversed(stack))
        elif extra:
            names.append(name)
    return names, chosen


@functools.lru_cache(maxsize=256)
def _selects_by_key(plan: tuple[tuple[str, bytes, int], ...]) -> bool:
    """Whether select_headers looks each name of the plan up by its key (names with
    surrounding whitespace or non-ASCII letters may differ)."""
    return all(name.strip().lower().encode("ascii", "replace") == key
               for name, key, _ in plan)


@functools.lru_cache(maxsize=256)
def _wanted(wanted: tuple[str, ...] | None,
            oversign: tuple[str, ...]) -> tuple[tuple[str, bytes, int], ...]:
    """(name, name as bytes, 1 if oversigned) per wanted field, From first if missing:
    the same for every message signed with one spec, so computed once."""
    names = [n.lower() for n in (wanted if wanted is not None else DEFAULT_SIGNED)]
    if "from" not in names:
        names.insert(0, "from")
    over = {n.lower() for n in oversign} | {"from"}
    return tuple((n, n.encode("ascii", "replace"), 1 if n in over else 0)
                 for n in dict.fromkeys(names))


def copied_headers(fields: Sequence[HeaderField], names: Sequence[str]) -> str:
    """z= (RFC 6376 §3.5): the signed fields, dkim-quoted-printable, joined by "|"."""
    parts = []
    for f in select_headers(fields, names):
        raw = f.name.strip() + b":" + f.value.replace(b"\r\n", b"").strip()
        parts.append("".join(
            chr(c) if 0x21 <= c <= 0x7E and c not in b";|=" else f"={c:02X}" for c in raw))
    return "|".join(parts)


def fold_tags(tags: Sequence[tuple[str, str]]) -> str:
    """Lay out ``tag=value;`` items, folding so no line passes MAX_LINE columns where
    the grammar allows a break (RFC 6376 §3.5: FWS around "=", between h= names,
    inside base64 and dkim-quoted-printable). The result starts with a space (after
    "DKIM-Signature:"); the last tag is ``b=`` with its value left empty."""
    out: list[str] = []
    col = len("DKIM-Signature:")
    fresh = False  # at the start of a continuation line (no separating space needed)
    last = len(tags) - 1
    for i, (name, value) in enumerate(tags):
        item = f"{name}={value}" if i == last else f"{name}={value};"
        if len(item) + (0 if fresh else 1) <= MAX_LINE - col:
            out.append(item if fresh else " " + item)
            col += len(item) + (0 if fresh else 1)
            fresh = False
            continue
        if not fresh:
            out.append("\r\n\t")
            col = 8
        if len(item) <= MAX_LINE - col or name not in _SPLITTABLE:
            out.append(item)  # an unbreakable value longer than a line stays whole
            col += len(item)
            fresh = False
            continue
        out.append(f"{name}=")
        col += len(name) + 1
        units = _units(name, value)
        if i != last:
            units[-1] += ";"
        fresh = False
        for unit in units:
            if len(unit) > MAX_LINE - col and not fresh:
                out.append("\r\n\t")
                col = 8
            out.append(unit)
            col += len(unit)
            fresh = False
    return "".join(out)


_SPLITTABLE = {"h", "z", "bh"}


def _units(name: str, value: str) -> list[str]:
    """The smallest pieces a value may be broken between."""
    if name == "h":
        parts = value.split(":")
        return [p + ":" for p in parts[:-1]] + [parts[-1]]
    if name == "z":  # anywhere but inside an "=XX" escape (dkim-quoted-printable)
        return re.findall(r"=[0-9A-F]{2}|.", value)
    return list(value)  # base64


def qp_encode(text: str) -> str:
    """dkim-quoted-printable (RFC 6376 §2.11) for i=: UTF-8, with everything outside
    %x21-3A / %x3C / %x3E-7E written as =XX."""
    return "".join(chr(c) if 0x21 <= c <= 0x7E and c not in b";=" else f"={c:02X}"
                   for c in text.encode("utf-8"))


def _fold_b64(b: str, unsigned: str) -> str:
    """Fold the b= value: fill the current line, then whole continuation lines."""
    last = unsigned.rpartition("\n")[2]
    col = 8 + len(last) - 1 if "\n" in unsigned else len("DKIM-Signature:") + len(last)
    first = MAX_LINE - col
    if first > 0:
        lines, rest = [b[:first]], b[first:]
    else:
        lines, rest = [""], b
    width = MAX_LINE - 8
    lines += [rest[i : i + width] for i in range(0, len(rest), width)]
    return "\r\n\t".join(lines)
