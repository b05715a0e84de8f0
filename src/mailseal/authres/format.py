"""Writing Authentication-Results (RFC 8601 §2.2).

``format_value`` gives the field value on one line; ``format_field`` gives
the complete field, folded (RFC 5322 §2.2.3) so that lines stay within
``fold`` octets where the pieces allow.

Rendering rules, strict where the parser is lenient:

- authserv-id and property values are written bare when they are an
  RFC 2045 ``token`` (or, for property values, an RFC 8601 §2.2
  ``[local-part] "@" domain-name``), else as a quoted-string;
- ``reason`` is always a quoted-string (it is prose);
- ``header.b`` is always a quoted-string: it carries (a prefix of) base64,
  whose "/" and "=" are RFC 2045 tspecials, so a bare value would often be
  invalid; quoting every time keeps the rendering independent of the bytes
  of the signature (RFC 6008 §4 defines the property);
- the per-result comment follows the result word, in parentheses.
"""

from __future__ import annotations

from mailseal.authres import syntax
from mailseal.authres.model import AuthenticationResults, MethodResult, Property

FIELD_NAME = "Authentication-Results"

#: RFC 5322 §2.1.1: lines SHOULD be no longer than 78 characters (without CRLF).
DEFAULT_FOLD = 78

_ALWAYS_QUOTED = frozenset({("header", "b")})


def _value(text: str) -> str:
    """RFC 2045 ``value``: token or quoted-string."""
    return text if syntax.is_token(text) else syntax.quote_string(text)


def _pvalue(prop: Property) -> str:
    if (prop.ptype, prop.name) in _ALWAYS_QUOTED:
        return syntax.quote_string(prop.value)
    if syntax.is_token(prop.value) or syntax.is_address(prop.value):
        return prop.value
    return syntax.quote_string(prop.value)


def _resinfo_units(result: MethodResult) -> list[str]:
    """The pieces of one resinfo; any two may be separated by folding white space."""
    method = result.method if result.version is None else f"{result.method}/{result.version}"
    units = [f"{method}={result.result}"]
    if result.comment is not None:
        units.append(syntax.quote_comment(result.comment))
    if result.reason is not None:
        units.append(f"reason={syntax.quote_string(result.reason)}")
    units.extend(f"{p.ptype}.{p.name}={_pvalue(p)}" for p in result.properties)
    return units


def _clauses(ar: AuthenticationResults) -> list[list[str]]:
    """The value as clauses (head, then one per resinfo), each a list of units."""
    head = [_value(ar.authserv_id)]
    if ar.version is not None:
        head.append(str(ar.version))
    head[-1] += ";"
    if not ar.results:
        head.append("none")  # RFC 8601 §2.2 no-result
        return [head]
    clauses = [head]
    for index, result in enumerate(ar.results):
        units = _resinfo_units(result)
        if index < len(ar.results) - 1:
            units[-1] += ";"
        clauses.append(units)
    return clauses


def format_value(ar: AuthenticationResults) -> str:
    """The field value on one line, without the field name, e.g.
    ``mx.example.com; spf=pass smtp.mailfrom=example.net``."""
    return " ".join(unit for clause in _clauses(ar) for unit in clause)


def _width(text: str) -> int:
    # RFC 6532 §3.4: with UTF-8 in header fields the limits count octets.
    return len(text.encode("utf-8"))


def format_field(ar: AuthenticationResults, fold: int | None = DEFAULT_FOLD) -> bytes:
    """The complete field ``Authentication-Results: ...\\r\\n`` as bytes.

    If the field does not fit on one line of ``fold`` octets, each resinfo
    starts a continuation line (CRLF TAB) and long ones break between their
    units (result, comment, reason, each property). Quoted strings and
    comments are never broken, so a single unit longer than the limit gets a
    line of its own and overflows it. ``fold=None`` writes one line.
    """
    clauses = _clauses(ar)
    one_line = f"{FIELD_NAME}: " + " ".join(u for clause in clauses for u in clause)
    if fold is None or _width(one_line) <= fold:
        return (one_line + "\r\n").encode("utf-8")
    lines: list[str] = []
    line = f"{FIELD_NAME}:"
    for number, clause in enumerate(clauses):
        for position, unit in enumerate(clause):
            starts_clause = number > 0 and position == 0
            fits = _width(line) + 1 + _width(unit) <= fold
            first_on_field = number == 0 and position == 0
            if first_on_field or (fits and not starts_clause):
                line += " " + unit
            else:
                lines.append(line)
                line = "\t" + unit
    lines.append(line)
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")
