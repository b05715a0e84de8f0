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
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

_BARE_LF = re.compile(rb"(?<!\r)\n")

#: Bounds on attacker-controlled header data (see MessageLimits for the defaults).
MAX_HEADER_FIELDS = 1000
MAX_HEADER_BYTES = 1024 * 1024


class MessageError(ValueError):
    """The message cannot be parsed into header fields and body."""


@dataclass(frozen=True, slots=True)
class HeaderField:
    """One header field: ``name`` as written, ``value`` everything after the colon,
    internal CRLFs (folding) kept, the terminating CRLF not included."""

    name: bytes
    value: bytes

    @property
    def raw(self) -> bytes:
        """The field as it appears in the message, without its final CRLF."""
        return self.name + b":" + self.value

    @property
    def lname(self) -> bytes:
        """The lower-cased name with surrounding whitespace removed, for matching."""
        return self.name.strip().lower()

    def text(self) -> str:
        """The unfolded value as text (for display and address parsing)."""
        return unfold(self.value).decode("utf-8", "surrogateescape").strip()


def unfold(value: bytes) -> bytes:
    """Remove folding CRLFs (RFC 5322 §2.2.3)."""
    return value.replace(b"\r\n", b"").replace(b"\n", b"")


def to_crlf(data: bytes) -> bytes:
    """Turn every bare LF into CRLF; existing CRLFs and bare CRs are kept."""
    if b"\n" not in data:
        return data
    if b"\r\n" in data and data.count(b"\n") == data.count(b"\r\n"):
        return data
    return _BARE_LF.sub(b"\r\n", data)


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


def parse_header_block(head: bytes, *, max_fields: int = MAX_HEADER_FIELDS) -> list[HeaderField]:
    """Parse a CRLF-separated header block (without the empty line) into fields."""
    if not head:
        return []
    fields: list[HeaderField] = []
    lines = head.split(b"\r\n")
    current: list[bytes] = []
    for line in lines:
        if line[:1] in (b" ", b"\t") and current:
            current.append(line)
            continue
        if current:
            _add_field(fields, current)
            if len(fields) > max_fields:
                raise MessageError(f"more than {max_fields} header fields")
        current = [line]
    if current:
        _add_field(fields, current)
    if len(fields) > max_fields:
        raise MessageError(f"more than {max_fields} header fields")
    return fields


def _add_field(fields: list[HeaderField], lines: list[bytes]) -> None:
    raw = b"\r\n".join(lines)
    name, sep, value = raw.partition(b":")
    if sep and name.strip():
        fields.append(HeaderField(name, value))


def find_fields(fields: Iterable[HeaderField], name: bytes) -> list[HeaderField]:
    lname = name.lower()
    return [f for f in fields if f.lname == lname]


def iter_chunks(data: bytes, size: int = 65536) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]
