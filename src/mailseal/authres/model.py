"""Authentication-Results as values (RFC 8601 §2.2).

Frozen value objects, normalised and checked on construction so that every
instance can be written into a header field and read back equal
(``parse_value(format_value(x)) == x``):

- keywords (method, result, ptype, property) are lower-cased — they are
  case-insensitive (RFC 5234 §2.3 literals; the IANA registries of
  RFC 8601 §6 list them in lower case);
- a result word of the shared vocabulary (RFC 8601 §2.7) becomes a
  :class:`~mailseal.results.Result`; any other word (a method registered
  later, an ``x-`` experiment) stays a plain ``str``. ``Result`` is a
  ``StrEnum``, so ``r.result == "pass"`` holds either way;
- free text may not contain CR, LF or other controls (see ``syntax.py``).

Invalid values raise ``ValueError``: building one is a bug in the caller.
"""

from __future__ import annotations

import dataclasses

from mailseal.authres import syntax
from mailseal.results import Result

#: Versions are 1*DIGIT (RFC 8601 §2.2); the parser reads at most nine digits.
MAX_VERSION = 999_999_999

_RESULT_WORDS: dict[str, Result] = {r.value: r for r in Result}


def _keyword(value: str, what: str) -> str:
    if not syntax.is_keyword(value):
        raise ValueError(f"{what} {value!r} is not a Keyword (RFC 5321 §4.1.2 Ldh-str)")
    return syntax.ascii_lower(value)


def _text(value: str, what: str) -> str:
    if not syntax.is_text(value):
        raise ValueError(f"{what} {value!r} holds characters a header field cannot carry")
    return value


def _version(value: int | None, what: str) -> None:
    if value is not None and not 0 <= value <= MAX_VERSION:
        raise ValueError(f"{what} {value!r} is not a version number (0..{MAX_VERSION})")


def printable(text: str, limit: int = 200) -> str:
    """Text from the message or DNS made safe for a header: printable ASCII, bounded."""
    return "".join(c if " " <= c <= "~" else "?" for c in text[:limit])


def result_word(word: str) -> str:
    """The normalised result: a ``Result`` member when the word is one, else ``word``."""
    lowered = _keyword(word, "result")
    return _RESULT_WORDS.get(lowered, lowered)


@dataclasses.dataclass(frozen=True, slots=True)
class Property:
    """One ``propspec``: ``ptype.property=pvalue`` (RFC 8601 §2.3, RFC 7410 registry)."""

    ptype: str  # "smtp", "header", "body", "policy" (RFC 8601 §2.3); others kept as read
    name: str  # the property, e.g. "d", "i", "b" for header; "mailfrom" for smtp
    value: str  # the pvalue, unquoted and unescaped

    def __post_init__(self) -> None:
        object.__setattr__(self, "ptype", _keyword(self.ptype, "ptype"))
        object.__setattr__(self, "name", _keyword(self.name, "property"))
        _text(self.value, "property value")


@dataclasses.dataclass(frozen=True, slots=True)
class MethodResult:
    """One ``resinfo``: a method, its result, a reason and properties (RFC 8601 §2.2)."""

    method: str  # RFC 8601 §2.3 method, e.g. "dkim", "spf", "dmarc", "arc"
    result: str  # RFC 8601 §2.7 result word; a Result member when it is one
    version: int | None = None  # method-version, "dkim/1=pass"
    reason: str | None = None  # reasonspec, RFC 8601 §2.2 reason="..."
    properties: tuple[Property, ...] = ()  # propspecs, in order
    # Free text after the result, "(1024-bit key)". When parsing: the first
    # comment standing between the elements that follow the result word.
    comment: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "method", _keyword(self.method, "method"))
        object.__setattr__(self, "result", result_word(self.result))
        object.__setattr__(self, "properties", tuple(self.properties))
        _version(self.version, "method version")
        if self.reason is not None:
            _text(self.reason, "reason")
        if self.comment is not None:
            _text(self.comment, "comment")


@dataclasses.dataclass(frozen=True, slots=True)
class AuthenticationResults:
    """The whole field value: who checked, and what came out (RFC 8601 §2.2).

    ``results == ()`` is the ``authserv-id; none`` form: no method was applied.
    """

    authserv_id: str  # RFC 8601 §2.5, typically the host name of the checker
    version: int | None  # authres-version; None when absent (that means 1)
    results: tuple[MethodResult, ...]

    def __post_init__(self) -> None:
        if not self.authserv_id:
            raise ValueError("authserv-id must not be empty (RFC 8601 §2.5)")
        _text(self.authserv_id, "authserv-id")
        _version(self.version, "authres-version")
        object.__setattr__(self, "results", tuple(self.results))
