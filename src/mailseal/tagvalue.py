"""Tag=value lists (RFC 6376 §3.2), used by DKIM, DomainKeys, ARC and DMARC.

Grammar (RFC 6376 §3.2)::

    tag-list  =  tag-spec *( ";" tag-spec ) [ ";" ]
    tag-spec  =  [FWS] tag-name [FWS] "=" [FWS] tag-value [FWS]
    tag-name  =  ALPHA *ALNUMPUNC              ; ALNUMPUNC = ALPHA / DIGIT / "_"
    tag-value =  [ tval *( 1*(WSP / FWS) tval ) ]
    tval      =  1*VALCHAR                     ; %x21-3A / %x3C-7E

Rules enforced here: tag names are case-sensitive; a tag that appears twice makes
the whole list invalid; unknown tags are kept (callers ignore them); whitespace
around names and values is removed, whitespace inside a value is kept as is.
"""

from __future__ import annotations

import re

_TAG_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")
# VALCHAR plus the whitespace allowed between tvals (WSP, and CRLF when folded).
_BAD_VALUE_CHAR = re.compile(r"[^\x21-\x3a\x3c-\x7e \t\r\n]")


class TagListError(ValueError):
    """The tag list is malformed; the message says how."""


def parse_tag_list(text: str | bytes, *, allow_8bit: bool = False) -> dict[str, str]:
    """Parse ``text`` into an insertion-ordered ``{tag: value}`` dict.

    ``allow_8bit`` keeps non-ASCII bytes in values (DKIM key records and
    signatures are ASCII; DMARC report URIs may not be).
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8" if allow_8bit else "ascii", "surrogateescape")
    tags: dict[str, str] = {}
    for spec in text.split(";"):
        if not spec.strip(" \t\r\n"):
            # An empty spec is allowed only as the optional trailing ";" (and we
            # tolerate empty specs elsewhere, as every deployed verifier does).
            continue
        name, eq, value = spec.partition("=")
        if not eq:
            raise TagListError(f"tag-spec without '=': {spec.strip()[:40]!r}")
        name = name.strip(" \t\r\n")
        if not _TAG_NAME.match(name):
            raise TagListError(f"invalid tag name {name[:40]!r}")
        value = value.strip(" \t\r\n")
        if not allow_8bit and _BAD_VALUE_CHAR.search(value):
            raise TagListError(f"invalid character in value of tag {name!r}")
        if name in tags:
            raise TagListError(f"duplicate tag {name!r}")
        tags[name] = value
    return tags


def strip_whitespace(value: str) -> str:
    """Remove every FWS from a value, as for base64 (``b=``, ``bh=``, ``p=``)."""
    return value.translate(_WS_TABLE)


_WS_TABLE = str.maketrans("", "", " \t\r\n")
