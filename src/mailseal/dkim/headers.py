"""Which header fields a signature covers, and the header hash (RFC 6376 §5.4.2, §3.7)."""

from __future__ import annotations

from collections.abc import Sequence

from mailseal.dkim.canonical import HASHES, Canon, canon_header
from mailseal.message import HeaderField

FieldIndex = dict[bytes, list[HeaderField]]


def index_fields(fields: Sequence[HeaderField]) -> FieldIndex:
    """Fields by lower-cased name, in message order: built once per message."""
    index: FieldIndex = {}
    for field in fields:
        index.setdefault(field.lname, []).append(field)
    return index


def select_headers(fields: Sequence[HeaderField], names: Sequence[str],
                   index: FieldIndex | None = None) -> list[HeaderField]:
    """RFC 6376 §5.4.2: for each name in ``h=``, take the last not yet used instance
    of that field, counting from the bottom; a name with no instance left adds nothing
    (this is how oversigning makes later additions fail)."""
    if index is None:
        index = index_fields(fields)
    used: dict[bytes, int] = {}
    chosen: list[HeaderField] = []
    for name in names:
        key = name.strip().lower().encode("ascii", "replace")
        stack = index.get(key)
        if stack:
            n = used.get(key, 0) + 1
            if n <= len(stack):
                chosen.append(stack[-n])
                used[key] = n
    return chosen


def header_digest(
    fields: Sequence[HeaderField],
    names: Sequence[str],
    canon: Canon,
    hash_name: str,
    signature_field: HeaderField,
    index: FieldIndex | None = None,
) -> bytes:
    """Hash of the selected header fields followed by the signature field itself,
    which has its ``b=`` value empty and no trailing CRLF (RFC 6376 §3.7)."""
    parts = [canon_header(field, canon) for field in select_headers(fields, names, index)]
    parts.append(canon_header(signature_field, canon)[:-2])
    return HASHES[hash_name](b"".join(parts)).digest()
