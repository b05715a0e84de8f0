"""The message as the proxy holds it: the header block in memory (split from the
streamed content at the first empty line), the body in a spool; and the header block
written back with the pipeline's edits applied (removals, then insertions at the top,
in order), every other byte as received.

Header fields are found as ``message.parse_header_block`` finds them (a line break
not followed by SP/HTAB starts a field; a field has a colon and a non-empty name), so
an edit's ``index`` (the n-th field of that name) points at the same field here as in
the pipeline. Lines that are no field (an mbox ``From `` line) are kept, not judged.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from mailseal.message import (
    MAX_HEADER_BYTES,
    HeaderField,
    field_lines,
    parse_header_block,
    to_crlf,
)
from mailseal.pipeline.model import HeaderEdit


class HeaderSplitter:
    """Feed CRLF content; ``feed`` returns what belongs to the body. Once the empty
    line is seen (or the header passed ``limit`` octets: the rest is body, as Postfix's
    cleanup does past ``header_size_limit``), ``header`` holds the header block with
    the CRLF that ends its last line, and ``separator`` says whether an empty line
    followed it."""

    def __init__(self, limit: int = MAX_HEADER_BYTES) -> None:
        self.limit = limit
        self.done = False
        self.header = b""
        self.separator = False
        self._head = bytearray()

    def feed(self, data: bytes) -> bytes:
        if self.done:
            return data
        head = self._head
        start = max(len(head) - 3, 0)
        head += data
        if head.startswith(b"\r\n"):  # no header at all
            return self._split(0, 2, separator=True)
        end = head.find(b"\r\n\r\n", start)
        if end >= 0:
            return self._split(end + 2, end + 4, separator=True)
        if len(head) > self.limit:
            cut = head.rfind(b"\r\n") + 2  # 0 when there is no line end at all
            return self._split(cut, cut, separator=False)
        return b""

    def finish(self) -> None:
        """End of data: whatever is held is the header (a message without body)."""
        if not self.done:
            self.header = bytes(self._head)
            self._head = bytearray()
            self.done = True

    def _split(self, header_end: int, body_start: int, *, separator: bool) -> bytes:
        head = self._head
        self.header = bytes(head[:header_end])
        body = bytes(head[body_start:])
        self._head = bytearray()
        self.separator = separator
        self.done = True
        return body


def raw_fields(header: bytes) -> list[bytes]:
    """The header block's lines, folded lines joined to their field; no final CRLF."""
    return field_lines(header.removesuffix(b"\r\n"))


def field_of(raw: bytes) -> HeaderField | None:
    name, sep, value = raw.partition(b":")
    return HeaderField(name, value) if sep and name.strip() else None


def header_fields(header: bytes) -> list[HeaderField]:
    """The fields of a CRLF header block (``field_of`` for each of ``raw_fields``; in
    one C call when the accelerator is built)."""
    return parse_header_block(header.removesuffix(b"\r\n"), max_fields=None)


def edited_header(header: bytes, edits: Sequence[HeaderEdit]) -> bytes:
    """The header block with ``edits`` applied: the removals (the ``index``-th field
    called ``name``), then the insertions at the top in the order given."""
    removals = {(e.name.lower().encode("ascii", "replace"), e.index) for e in edits if e.remove}
    inserted = [e.name.encode("ascii") + b":" + to_crlf(e.value) for e in edits if not e.remove]
    if not removals:  # the block as it came, below the new fields
        return _lines(inserted) + (header if not header or header.endswith(b"\r\n")
                                   else header + b"\r\n")
    kept: list[bytes] = []
    seen: dict[bytes, int] = {}
    for raw in raw_fields(header):
        field = field_of(raw)
        if field is not None:
            count = seen[field.lname] = seen.get(field.lname, 0) + 1
            if (field.lname, count) in removals:
                continue
        kept.append(raw)
    return _lines([*inserted, *kept])


def _lines(items: Iterable[bytes]) -> bytes:
    return b"".join(item + b"\r\n" for item in items)
