"""Reading Authentication-Results (RFC 8601 §2.2), and the §5 ownership check.

The grammar, abbreviated from RFC 8601 §2.2 (CFWS, quoted-string and comment
from RFC 5322 §3.2; value and token from RFC 2045 §5.1; Keyword from
RFC 5321 §4.1.2; domain-name from RFC 6376 §3.5)::

    payload    = [CFWS] authserv-id [CFWS version] (no-result / 1*resinfo) [CFWS]
    authserv-id = value                        ; token / quoted-string
    version    = 1*DIGIT [CFWS]
    no-result  = [CFWS] ";" [CFWS] "none"
    resinfo    = [CFWS] ";" methodspec [CFWS reasonspec] [CFWS 1*propspec]
    methodspec = [CFWS] method [CFWS] "=" [CFWS] result
    method     = Keyword [[CFWS] "/" [CFWS] 1*DIGIT [CFWS]]
    result     = Keyword
    reasonspec = "reason" [CFWS] "=" [CFWS] value
    propspec   = ptype [CFWS] "." [CFWS] property [CFWS] "=" pvalue
    pvalue     = [CFWS] (value / [[local-part] "@"] domain-name) [CFWS]

Deliberate leniencies, each because deployed producers need it and none
changes what a conforming field means:

- an unquoted pvalue is any run of visible (or non-ASCII) characters but
  ``( ) ; " \\`` — IPv6 addresses (":"), base64 ("/", "=") and
  address literals appear unquoted in the wild;
- ``reason`` may stand among the properties (at most once);
- an empty last clause is ignored: ``id; spf=pass;`` and ``id;``;
- a bare LF counts as CRLF in folding.

Limits: values over 64 KiB and comments nested deeper than 50 are refused.
The per-result comment kept in :class:`MethodResult` is the first comment
found between the elements after the result word; other comments are dropped.
"""

from __future__ import annotations

import re

from mailseal.authres import syntax
from mailseal.authres.lexer import AuthResParseError, Cursor
from mailseal.authres.model import AuthenticationResults, MethodResult, Property

#: Longest value parse_value accepts (64 KiB), in octets (bytes) or characters (str).
MAX_VALUE_LENGTH = 64 * 1024

_FIELD_NAME = b"authentication-results"
_LEADING_FIELD_NAME = re.compile(r"authentication-results[ \t]*:", re.IGNORECASE | re.ASCII)

__all__ = [
    "MAX_VALUE_LENGTH",
    "AuthResParseError",
    "carries_authserv_id",
    "parse_field",
    "parse_value",
]


def _pvalue(cur: Cursor) -> str:
    if cur.peek() == '"':
        local = cur.quoted_string()
        if cur.peek() != "@":
            return local
        return local + cur.bare()  # quoted local-part "@" domain-name
    word = cur.bare()
    if not word:
        raise cur.error("expected a property value")
    return word


def _resinfo(cur: Cursor) -> MethodResult:
    """One resinfo after its ";" and leading CFWS."""
    method = cur.keyword()
    cur.cfws()
    version = None
    if cur.peek() == "/":
        cur.pos += 1
        cur.cfws()
        version = cur.number()
        cur.cfws()
    cur.expect("=")
    cur.cfws()
    result = cur.keyword()
    comment: str | None = None
    reason: str | None = None
    properties: list[Property] = []
    comments = cur.cfws()
    while True:
        if comment is None and comments:
            comment = comments[0]
        if cur.at_end() or cur.peek() == ";":
            break
        word_at = cur.pos
        word = cur.keyword()
        cur.cfws()
        if word == "reason" and cur.peek() == "=":
            if reason is not None:
                raise cur.error("second reason in one resinfo", word_at)
            cur.pos += 1
            cur.cfws()
            reason = cur.value()
        elif cur.peek() == ".":
            cur.pos += 1
            cur.cfws()
            name = cur.keyword()
            cur.cfws()
            cur.expect("=")
            cur.cfws()
            properties.append(Property(word, name, _pvalue(cur)))
        else:
            raise cur.error("expected '.' after property type, or 'reason='")
        comments = cur.cfws()
    return MethodResult(method, result, version, reason, tuple(properties), comment)


def _parse(cur: Cursor) -> AuthenticationResults:
    cur.cfws()
    if cur.peek() == '"':
        at = cur.pos
        authserv_id = cur.quoted_string()
        if not authserv_id:
            raise cur.error("empty authserv-id", at)
    else:
        authserv_id = cur.token()
        if not authserv_id:
            raise cur.error("expected authserv-id")
    cur.cfws()
    version = None
    if cur.peek() in syntax.DIGITS:
        version = cur.number()
        cur.cfws()
    cur.expect(";")
    cur.cfws()
    results: list[MethodResult] = []
    if cur.at_end():
        return AuthenticationResults(authserv_id, version, ())
    mark = cur.pos
    if cur.keyword() == "none":
        cur.cfws()
        if cur.at_end():
            return AuthenticationResults(authserv_id, version, ())
    cur.pos = mark  # a method that happens to be called "none"
    while True:
        results.append(_resinfo(cur))
        if cur.at_end():
            break
        cur.expect(";")
        cur.cfws()
        if cur.at_end():
            break
    return AuthenticationResults(authserv_id, version, tuple(results))


def _parse_bytes(data: bytes, start: int) -> AuthenticationResults:
    """Parse ``data[start:]``; error offsets are octet offsets into ``data``."""
    if len(data) - start > MAX_VALUE_LENGTH:
        raise AuthResParseError(start + MAX_VALUE_LENGTH, "value longer than 64 KiB")
    try:
        text = data[start:].decode("utf-8")  # RFC 6532 §3.2: UTF-8 header fields
    except UnicodeDecodeError as exc:
        raise AuthResParseError(start + exc.start, "invalid UTF-8") from None
    try:
        return _parse(Cursor(text))
    except AuthResParseError as exc:
        octets = len(text[: exc.offset].encode("utf-8"))
        raise AuthResParseError(start + octets, exc.reason) from None


def parse_value(value: str | bytes) -> AuthenticationResults:
    """Parse a field value (the text after ``Authentication-Results:``).

    Raises :class:`AuthResParseError` (a ``ValueError``) and nothing else on
    malformed input.
    """
    if isinstance(value, bytes):
        return _parse_bytes(value, 0)
    if len(value) > MAX_VALUE_LENGTH:
        raise AuthResParseError(MAX_VALUE_LENGTH, "value longer than 64 KiB")
    return _parse(Cursor(value))


def parse_field(raw_field: bytes) -> AuthenticationResults:
    """Parse a whole field, ``Authentication-Results: ...`` with its folding and
    final CRLF, exactly as received. Error offsets count octets of ``raw_field``."""
    colon = raw_field.find(b":")
    if colon < 0:
        raise AuthResParseError(0, "not a header field (no ':')")
    # RFC 5322 §3.6.8 field names are case-insensitive; §4.5 obs-optional
    # allows white space before the colon.
    if raw_field[:colon].rstrip(b" \t").lower() != _FIELD_NAME:
        raise AuthResParseError(0, "not an Authentication-Results field")
    return _parse_bytes(raw_field, colon + 1)


def _comparable(authserv_id: str) -> str:
    # Domain names compare case-insensitively (RFC 4343); a trailing dot names
    # the same host, so "mx.example.com." must not slip past the check.
    lowered = syntax.ascii_lower(authserv_id)
    return lowered[:-1] if len(lowered) > 1 and lowered.endswith(".") else lowered


def carries_authserv_id(raw_field_value: bytes, authserv_id: str) -> bool:
    """RFC 8601 §5: does this field claim to come from ``authserv_id``?

    A border MTA must remove (or rename) such fields arriving from outside
    before it adds its own, or a forger could vouch for mail in our name.

    The decision rests on the leading authserv-id alone — [CFWS] then a token
    or quoted-string — and the rest of the value is not parsed. So a field
    whose id is ours counts as ours even when what follows is broken, and a
    forger cannot evade removal with a syntax error, a 64 KiB pad or deep
    comments after the id (none of the parser's limits apply here; the scan is
    linear). Compared case-insensitively (ASCII), ignoring one trailing dot.
    A value whose leading CFWS is itself broken (unterminated comment) names
    no id and is not ours; an unterminated quoted id is read as a bare one.
    A bare id is read both as an RFC 2045 token and with non-ASCII octets
    kept; either reading naming us is enough. A field name at the front
    (``Authentication-Results:``) is tolerated and skipped, so passing the
    whole field by mistake cannot turn the answer into a silent "no".
    Octets outside ASCII are compared as they are (our id as UTF-8).
    """
    want = _comparable(authserv_id.encode("utf-8").decode("latin-1"))
    text = raw_field_value.decode("latin-1")
    prefix = _LEADING_FIELD_NAME.match(text)
    if prefix is not None:
        text = text[prefix.end() :]
    # Line breaks only matter for where the field ends; here they are space.
    cur = Cursor(text.replace("\r", " ").replace("\n", " "), lenient=True)
    try:
        cur.cfws()
    except AuthResParseError:
        return False
    if not want:
        return False
    return want in {_comparable(name) for name in _leading_ids(cur)}


def _leading_ids(cur: Cursor) -> list[str]:
    """The plausible readings of the authserv-id at ``cur`` (after CFWS)."""
    start = cur.pos
    if cur.peek() == '"':
        try:
            return [cur.quoted_string()]
        except AuthResParseError:
            start += 1  # unterminated: read what follows the quote as a bare id
    # A bare id read as an RFC 2045 token, and read with non-ASCII octets
    # kept (as an RFC 6532-minded reader might): either naming us is enough.
    cur.pos = start
    token = cur.token()
    end = start
    while end < len(cur.text) and (syntax.is_token_char(cur.text[end]) or cur.text[end] >= "\x80"):
        end += 1
    return [token, cur.text[start:end]]
