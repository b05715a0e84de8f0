"""Which header fields a signature covers, and the header hash (RFC 6376 §5.4.2, §3.7)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from mailseal.dkim.canonical import Canon, canon_header
from mailseal.message import HeaderField


def select_headers(fields: Sequence[HeaderField], names: Sequence[str]) -> list[HeaderField]:
    """RFC 6376 §5.4.2: for each name in ``h=``, take the last not yet used instance
    of that field, counting from the bottom; a name with no instance left adds nothing
    (this is how oversigning makes later additions fail)."""
    positions: dict[bytes, list[HeaderField]] = {}
    for field in fields:
        positions.setdefault(field.lname, []).append(field)
    chosen: list[HeaderField] = []
    for name in names:
        stack = positions.get(name.strip().lower().encode("ascii", "replace"))
        if stack:
            chosen.append(stack.pop())
    return chosen


def header_digest(
    fields: Sequence[HeaderField],
    names: Sequence[str],
    canon: Canon,
    hash_name: str,
    signature_field: HeaderField,
) -> bytes:
    """Hash of the selected header fields followed by the signature field itself,
    which has its ``b=`` value empty and no trailing CRLF (RFC 6376 §3.7)."""
    h = hashlib.new(hash_name)
    for field in select_headers(fields, names):
        h.update(canon_header(field, canon))
    h.update(canon_header(signature_field, canon)[:-2])
    return h.digest()
