"""DKIM canonicalization (RFC 6376 §3.4), header and body.

Header canonicalization is a pure function of one field. Body canonicalization is
streaming: a ``BodyCanonicalizer`` is fed arbitrary chunks (a CRLF may be split
across two chunks, whitespace runs too) and writes canonical bytes to its sinks,
holding back only what the next chunk could still change: a run of trailing
CRLFs (kept as a count, so a body of a million empty lines costs no memory), and
one pending space and/or CR. Feeding a body whole, in pieces or byte by byte
gives the same output.

The relaxed body algorithm works on whole chunks instead of a per-line loop. The
whitespace transform (``relax``) reduces every run of SP/HTAB to one SP (RFC 6376
§3.4.4 b: "reduce all sequences of WSP within a line to a single SP") and drops a run
directly followed by CRLF (§3.4.4 a: "ignore all whitespace at the end of lines");
then the trailing-empty-line rule (§3.4.3/§3.4.4) is applied at the end of the body.
``relax`` is the C accelerator ``mailseal.dkim._canon`` when it was built (one pass,
no copy when nothing changes), else ``relax_py``, the same transform with bytes
methods; docs/performance.md has the figures.
"""

from __future__ import annotations

import enum
import hashlib
import re
from collections.abc import Callable, Sequence
from typing import Protocol

from mailseal.message import HeaderField

CRLF = b"\r\n"

#: The hash constructors by DKIM name (direct constructors: faster than hashlib.new).
HASHES = {"sha256": hashlib.sha256, "sha1": hashlib.sha1}
_TAB_TO_SP = bytes.maketrans(b"\t", b" ")
_EMIT_PIECE = 1 << 16


class Canon(enum.StrEnum):
    SIMPLE = "simple"
    RELAXED = "relaxed"


def parse_canonicalization(value: str) -> tuple[Canon, Canon]:
    """``c=`` tag value → (header, body). RFC 6376 §3.5: missing body part = simple.

    Raises ValueError for an unknown algorithm name.
    """
    head, _, body = value.strip().lower().partition("/")
    return Canon(head), Canon(body or "simple")


# --- header fields -----------------------------------------------------------


def canon_header(field: HeaderField, canon: Canon) -> bytes:
    """One header field canonicalized, with its terminating CRLF."""
    if canon is Canon.SIMPLE:
        return field.name + b":" + field.value + CRLF
    return relaxed_header(field.name, field.value) + CRLF


def relaxed_header(name: bytes, value: bytes) -> bytes:
    """RFC 6376 §3.4.2 without the final CRLF: lower-case the name, unfold, reduce
    WSP runs to one SP, delete WSP at the end of the value and around the colon."""
    if _PLAIN_VALUE(value) is None:
        # One line, and no whitespace but SP/HTAB: bytes.split() (any run of ASCII
        # whitespace) then a join is exactly "reduce WSP runs, strip both ends".
        return name.strip(b" \t").lower() + b":" + b" ".join(value.split())
    v = value
    if b"\n" in v:
        v = v.replace(b"\r\n", b"").replace(b"\n", b"")
    if b"\t" in v:
        v = v.translate(_TAB_TO_SP)
    while b"  " in v:
        v = v.replace(b"  ", b" ")
    return name.strip(b" \t").lower() + b":" + v.strip(b" ")


#: Finds what bytes.split() would treat as whitespace but DKIM's relaxed rules do not
#: (CR, LF, VT, FF): values without any take the fast path.
_PLAIN_VALUE = re.compile(rb"[\r\n\x0b\x0c]").search


def relaxed_headers_py(fields: Sequence[HeaderField]) -> bytes:
    """The fields canonicalized with ``relaxed_header`` and joined by CRLF (no CRLF
    after the last): the header hash input when the signature field is last."""
    return CRLF.join([relaxed_header(f[0], f[1]) for f in fields])


def _accelerated_headers() -> Callable[[Sequence[HeaderField]], bytes]:
    try:
        from mailseal.dkim._canon import relaxed_headers as fast
    except ImportError:  # not built: see _accelerated below
        return relaxed_headers_py
    return fast


#: ``relaxed_headers_py``, in C when the accelerator was built (one pass, one copy).
relaxed_headers: Callable[[Sequence[HeaderField]], bytes] = _accelerated_headers()


# --- body --------------------------------------------------------------------

Sink = Callable[[bytes], None]
Relax = Callable[[bytes], bytes]


def relax_py(data: bytes) -> bytes:
    """The relaxed body whitespace transform on one buffer, with bytes methods:
    1. HTAB → SP; 2. halve runs of SP until none of two is left; 3. "SP CRLF" → CRLF."""
    if b"\t" in data:  # a memchr: most mail has no tab, translate would copy it all
        data = data.translate(_TAB_TO_SP)
    while b"  " in data:
        data = data.replace(b"  ", b" ")
    if b" \r\n" in data:
        data = data.replace(b" \r\n", CRLF)
    return data


def _accelerated() -> Relax:
    try:
        from mailseal.dkim._canon import relax as fast
    except ImportError:  # installed without a C compiler: setup.py builds it optionally
        return relax_py
    return fast


relax: Relax = _accelerated()


class BodyCanonicalizer:
    """Streams a body through one canonicalization into one or more sinks."""

    __slots__ = ("_crlfs", "_emitted", "_finished", "_pending", "_relax", "_relaxed", "_sinks")

    def __init__(self, canon: Canon, sinks: Sequence[Sink], relax: Relax = relax) -> None:
        """``relax``: the whitespace transform for relaxed bodies; any function with
        ``relax_py``'s behaviour (the default is the accelerated one, if built)."""
        self._relaxed = canon is Canon.RELAXED
        self._relax = relax
        self._sinks = tuple(sinks)
        self._crlfs = 0  # trailing CRLFs held back (they vanish if the body ends here)
        self._pending = b""  # at most b" ", b"\r" or b" \r" held after them
        self._emitted = False  # anything other than held CRLFs written yet
        self._finished = False

    def feed(self, chunk: bytes) -> None:
        if not chunk:
            return
        data = self._pending + chunk
        if self._relaxed:
            data = self._relax(data)
        head, crlfs, pending = _split_tail(data, allow_space=self._relaxed)
        if head:
            self._write_crlfs()
            self._write(head)
            self._emitted = True
        self._crlfs += crlfs
        self._pending = pending

    def finish(self) -> None:
        """End of body: apply the trailing-line rules (RFC 6376 §3.4.3, §3.4.4)."""
        if self._finished:
            return
        self._finished = True
        pending = self._pending
        if self._relaxed and pending.startswith(b" ") and b"\r" not in pending:
            pending = b""  # trailing WSP on the last line is deleted
        if b"\r" in pending:
            # A bare CR ends the body: it is content; the body gets its CRLF.
            self._write_crlfs()
            self._write(pending + CRLF)
        elif self._emitted or not self._relaxed:
            # Non-empty body: exactly one CRLF ends it (added if it was missing).
            # Simple: an empty body is canonicalized to a single CRLF (§3.4.3);
            # relaxed: an empty body stays empty (§3.4.4, as corrected by erratum 1384).
            self._write(CRLF)

    def _write_crlfs(self) -> None:
        n = self._crlfs
        self._crlfs = 0
        while n > 0:
            step = min(n, _EMIT_PIECE)
            self._write(CRLF * step)
            n -= step

    def _write(self, data: bytes) -> None:
        for sink in self._sinks:
            sink(data)


def _split_tail(data: bytes, *, allow_space: bool) -> tuple[bytes, int, bytes]:
    """Split ``data`` into (final part, count of trailing CRLFs, pending bytes).

    The pending bytes are what a following chunk could still change: a final CR
    (may be the start of a CRLF) and, under relaxed, a space before it (may be
    whitespace at the end of a line).
    """
    pending = b""
    if data.endswith(b"\r"):
        pending = b"\r"
        data = data[:-1]
    if allow_space and data.endswith(b" "):
        pending = b" " + pending
        data = data[:-1]
    if data.endswith(b"\r"):
        # "\r \r": the first CR is followed by a space, so it is a bare CR: final.
        return data, 0, pending
    if not data.endswith(CRLF):
        return data, 0, pending
    core = data.rstrip(b"\r\n")
    seg = data[len(core) :]
    # seg holds only CR and LF and ends with LF; find its suffix of whole CRLF pairs.
    start = max(seg.rfind(b"\r\r"), seg.rfind(b"\n\n")) + 1
    if seg[start : start + 1] == b"\n":
        start += 1
    return data[: len(core) + start], (len(seg) - start) // 2, pending


class HashSink:
    """Feeds a hash object, up to an optional length limit (the ``l=`` tag)."""

    __slots__ = ("_hash", "hashed", "length", "limit")

    def __init__(self, hash_obj: _Hash, limit: int | None = None) -> None:
        self._hash = hash_obj
        self.limit = limit
        self.length = 0  # canonical body length seen (all of it, past the limit too)
        self.hashed = 0  # bytes actually hashed

    def __call__(self, data: bytes) -> None:
        self.length += len(data)
        if self.limit is None:
            self._hash.update(data)
            self.hashed += len(data)
            return
        room = self.limit - self.hashed
        if room > 0:
            part = data[:room] if len(data) > room else data
            self._hash.update(part)
            self.hashed += len(part)

    def digest(self) -> bytes:
        return self._hash.digest()


class _Hash(Protocol):  # the subset of hashlib's interface that we use
    def update(self, data: bytes, /) -> None: ...
    def digest(self) -> bytes: ...
