"""Character classes and quoting for Authentication-Results (RFC 8601 §2.2).

One place for the lexical rules that the value model checks, the formatter
relies on and the parser reads, so the three cannot drift apart:

- ``token`` from RFC 2045 §5.1 (what ``value`` allows unquoted),
- ``Keyword`` = ``Ldh-str`` from RFC 5321 §4.1.2 (method, result, ptype, property),
- ``quoted-string`` and ``comment`` from RFC 5322 §3.2.2 and §3.2.4,
- ``[ [ local-part ] "@" ] domain-name`` from RFC 8601 §2.2 with
  ``domain-name`` from RFC 6376 §3.5 and ``dot-atom`` from RFC 5322 §3.2.3.

Free text (authserv-id, reason, comment, property values) may hold visible
ASCII, SP, HTAB and, per RFC 6532 §3.2, any non-ASCII character that UTF-8
can carry. Everything else (CR, LF, NUL, other controls) cannot be written
into a header field at all and is refused.
"""

from __future__ import annotations

import re

#: RFC 2045 §5.1: characters that end a ``token``.
TSPECIALS = frozenset('()<>@,;:\\"/[]?=')

DIGITS = frozenset("0123456789")

#: RFC 5321 §4.1.2: Keyword = Ldh-str = *( ALPHA / DIGIT / "-" ) Let-dig.
KEYWORD_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-")
_KEYWORD = re.compile(r"[A-Za-z0-9-]*[A-Za-z0-9]")

# RFC 5322 §3.2.3 atext, and RFC 6376 §3.5 domain-name (at least two labels,
# each a sub-domain = Let-dig [Ldh-str] of RFC 5321 §4.1.2).
_ATEXT = r"A-Za-z0-9!#$%&'*+/=?^_`{|}~-"
_DOT_ATOM = rf"[{_ATEXT}]+(?:\.[{_ATEXT}]+)*"
_SUB_DOMAIN = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_ADDRESS = re.compile(rf"(?:{_DOT_ATOM})?@{_SUB_DOMAIN}(?:\.{_SUB_DOMAIN})+")

_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def ascii_lower(text: str) -> str:
    """Lower-case ASCII letters only (keywords and domain names, RFC 5234 §2.3)."""
    return text.translate(_ASCII_LOWER)


def is_token_char(char: str) -> bool:
    """RFC 2045 §5.1: any CHAR except SPACE, CTLs and tspecials."""
    return "!" <= char <= "~" and char not in TSPECIALS


def is_token(text: str) -> bool:
    """Non-empty, every character ``is_token_char`` (one regex match, not a loop)."""
    return _TOKEN.fullmatch(text) is not None


def is_keyword(text: str) -> bool:
    return _KEYWORD.fullmatch(text) is not None


def is_address(text: str) -> bool:
    """RFC 8601 §2.2 ``[ [ local-part ] "@" ] domain-name`` with an "@" present.

    Without the "@" a domain-name is always a ``token`` already, so callers
    test :func:`is_token` first. Only the dot-atom form of local-part is
    recognised; a local-part needing quotes makes the whole value quoted.
    """
    return _ADDRESS.fullmatch(text) is not None


def is_text_char(char: str) -> bool:
    """Characters a quoted-string or comment can carry (RFC 5322 §3.2, RFC 6532 §3.2)."""
    if " " <= char <= "~" or char == "\t":
        return True
    return char >= "\x80" and not "\ud800" <= char <= "\udfff"


def is_text(text: str) -> bool:
    """Every character ``is_text_char`` (one regex match, not a loop)."""
    return _TEXT.fullmatch(text) is not None


_TOKEN = re.compile("[" + "".join(re.escape(chr(c)) for c in range(0x21, 0x7F)
                                  if chr(c) not in TSPECIALS) + "]+")
_TEXT = re.compile("[\t -~\x80-\ud7ff\ue000-\U0010ffff]*")


def is_bare_char(char: str) -> bool:
    """Characters the parser accepts in an unquoted property value.

    Wider than ``token`` / addr-spec on purpose (see ``parse.py``): every
    visible character except the ones that carry structure here.
    """
    if "!" <= char <= "~":
        return char not in '();"\\'
    return char >= "\x80" and is_text_char(char)


def quote_string(text: str) -> str:
    """RFC 5322 §3.2.4 quoted-string: escape only DQUOTE and backslash."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def quote_comment(text: str) -> str:
    """RFC 5322 §3.2.2 comment: parentheses and backslash become quoted-pairs."""
    escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
    return "(" + escaped + ")"
