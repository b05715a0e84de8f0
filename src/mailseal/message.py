"""Raw header fields and body chunks, exactly as received.

Canonicalization needs the original bytes, so a message is never round-tripped
through ``email.message``. Header fields keep their folding; LF-only input is
treated as CRLF (the MTA convention for local submission, RFC 5322 §2.1 requires
CRLF on the wire).

Grammar kept here (RFC 5322 §2.2, §3.6.8)::

    field      = field-name ":" unstructured CRLF
    field-name = 1*ftext          ; printable US-ASCII except ":"
    folding    = CRLF 1*WSP       ; a line starting with SP/HTAB continues the field
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator

#: Bounds on attacker-controlled header data (see MessageLimits for the defaults).
MAX_HEADER_FIELDS = 1000
MAX_HEADER_BYTES = 1024 * 1024


class MessageError(ValueError):
    """The message cannot be parsed into header fields and body."""


class HeaderField(tuple[bytes, bytes, bytes]):
    """One header field: ``name`` as written, ``value`` everything after the colon,
    internal CRLFs (folding) kept, the terminating CRLF not included; ``lname`` is the
    lower-cased, stripped name used for matching, computed once. Immutable. (A tuple
    underneath: fields are built for every message, and this is the cheapest
    immutable object Python offers.)"""

    __slots__ = ()

    def __new__(cls, name: bytes, value: bytes) -> HeaderField:
        return tuple.__new__(cls, (name, value, name.strip().lower()))

    @property
    def name(self) -> bytes:
        """The name as written."""
        return self[0]

    @property
    def value(self) -> bytes:
        """Everything after the colon."""
        return self[1]

    @property
    def lname(self) -> bytes:
        """The lower-cased name without surrounding whitespace."""
        return self[2]

    def __repr__(self) -> str:
        return f"HeaderField(name={self.name!r}, value={self.value!r})"

    @property
    def raw(self) -> bytes:
        """The field as it appears in the message, without its final CRLF."""
        return self.name + b":" + self.value

    def text(self) -> str:
        """The unfolded value as text (for display and address parsing)."""
        return unfold(self.value).decode("utf-8", "surrogateescape").strip()


def unfold(value: bytes) -> bytes:
    """Remove folding CRLFs (RFC 5322 §2.2.3)."""
    return value.replace(b"\r\n", b"").replace(b"\n", b"")


def to_crlf_py(data: bytes) -> bytes:
    """Turn every bare LF into CRLF; existing CRLFs and bare CRs are kept.

    Two C-speed replaces instead of a regex: CRLF → LF, then LF → CRLF gives the
    same bytes ("\r\r\n" stays "\r\r\n") and runs many times faster."""
    lf = data.count(b"\n")
    if not lf:
        return data
    crlf = data.count(b"\r\n")
    if crlf == lf:
        return data
    if crlf:
        data = data.replace(b"\r\n", b"\n")
    return data.replace(b"\n", b"\r\n")


class CrlfStream:
    """Incremental ``to_crlf`` for a body fed in chunks: a CR at the end of one chunk
    and an LF at the start of the next are one line break, not CR + CRLF."""

    __slots__ = ("_last_cr",)

    def __init__(self) -> None:
        self._last_cr = False

    def feed(self, chunk: bytes) -> bytes:
        if not chunk:
            return chunk
        out = to_crlf(chunk)
        if self._last_cr and chunk[0:1] == b"\n" and out[0:2] == b"\r\n":
            out = out[1:]  # the CR was in the previous chunk
        self._last_cr = chunk[-1:] == b"\r"
        return out


def split_message(
    data: bytes,
    *,
    max_fields: int = MAX_HEADER_FIELDS,
    max_header_bytes: int = MAX_HEADER_BYTES,
) -> tuple[list[HeaderField], bytes]:
    """Split a whole message into header fields and body (line endings made CRLF).

    The header ends at the first empty line. A message with no empty line is all
    header. Lines that are neither a field nor a continuation (no colon) are
    left out of the field list: no signature can list them. Callers that write
    the message back keep the original bytes, so nothing is lost.
    """
    data = to_crlf(data)
    end = data.find(b"\r\n\r\n")
    if data.startswith(b"\r\n"):
        head, body = b"", data[2:]
    elif end < 0:
        head, body = data, b""
        if head.endswith(b"\r\n"):
            head = head[:-2]
    else:
        head, body = data[:end], data[end + 4 :]
    if len(head) > max_header_bytes:
        raise MessageError(f"header section is {len(head)} bytes, limit {max_header_bytes}")
    return parse_header_block(head, max_fields=max_fields), body


_FIELD_BREAK = re.compile(rb"\r\n(?![ \t])")


def parse_header_block(head: bytes, *,
                       max_fields: int | None = MAX_HEADER_FIELDS) -> list[HeaderField]:
    """Parse a CRLF-separated header block (without the empty line) into fields.

    A line break followed by SP or HTAB continues the field (folding); any other
    line break starts a new one. A line without a colon is left out: no signature
    can name it. ``max_fields=None``: no limit (the caller applies its own)."""
    # The C version takes bytes only; anything bytes-like takes the Python one.
    fields = _parse_fields(head, HeaderField) if type(head) is bytes else parse_fields_py(head)
    if max_fields is not None and len(fields) > max_fields:
        raise MessageError(f"more than {max_fields} header fields")
    return fields


def field_lines(head: bytes) -> list[bytes]:
    """The lines of a CRLF header block (without its final CRLF), each folded line
    joined to its field: what ``parse_header_block`` reads fields from, fields or not."""
    return _FIELD_BREAK.split(head) if head else []


def parse_fields_py(head: bytes, cls: type[HeaderField] = HeaderField) -> list[HeaderField]:
    """``parse_header_block`` without the count limit, in Python (the reference for
    the C accelerator ``mailseal.dkim._canon.parse_fields``)."""
    fields: list[HeaderField] = []
    make = tuple.__new__  # HeaderField(name, value) without a Python-level call per field
    for raw in field_lines(head):
        name, sep, value = raw.partition(b":")
        lname = name.strip().lower()
        if sep and lname:
            fields.append(make(cls, (name, value, lname)))
    return fields


def _accelerated() -> tuple[Callable[[bytes], bytes],
                            Callable[[bytes, type[HeaderField]], list[HeaderField]]]:
    """The C versions of to_crlf and parse_fields when the optional accelerator
    (src/mailseal/dkim/_canon.c, which has no Python dependencies) was built."""
    try:
        from mailseal.dkim._canon import parse_fields, to_crlf
    except ImportError:
        return to_crlf_py, parse_fields_py
    return to_crlf, parse_fields


_to_crlf, _parse_fields = _accelerated()


def to_crlf(data: bytes) -> bytes:
    """Turn every bare LF into CRLF; existing CRLFs and bare CRs are kept (``to_crlf_py``,
    in C when the accelerator was built; the input itself when there is no bare LF)."""
    return _to_crlf(data) if type(data) is bytes else to_crlf_py(data)


def find_fields(fields: Iterable[HeaderField], name: bytes) -> list[HeaderField]:
    lname = name.lower()
    return [f for f in fields if f.lname == lname]


def iter_chunks(data: bytes, size: int = 65536) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]
