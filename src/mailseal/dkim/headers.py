"""Which header fields a signature covers, and the header hash (RFC 6376 §5.4.2, §3.7)."""

from __future__ import annotations

from collections.abc import Sequence

from mailseal.dkim.canonical import HASHES, Canon, canon_header, relaxed_headers
from mailseal.message import HeaderField

FieldIndex = dict[bytes, list[HeaderField]]


def index_fields(fields: Sequence[HeaderField]) -> FieldIndex:
    """Fields by lower-cased name, in message order: built once per message."""
    index: FieldIndex = {}
    for field in fields:
        same = index.get(field[2])  # field.lname, without the property call
        if same is None:
            index[field[2]] = [field]
        else:
            same.append(field)
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
    return digest_fields(select_headers(fields, names, index), canon, hash_name,
                         signature_field)


def digest_fields(chosen: list[HeaderField], canon: Canon, hash_name: str,
                  signature_field: HeaderField) -> bytes:
    """``header_digest`` of fields already selected (``chosen`` is extended)."""
    if canon is Canon.RELAXED:
        chosen.append(signature_field)
        return HASHES[hash_name](relaxed_headers(chosen)).digest()
    parts = [canon_header(field, canon) for field in chosen]
    parts.append(signature_field.name + b":" + signature_field.value)
    return HASHES[hash_name](b"".join(parts)).digest()
