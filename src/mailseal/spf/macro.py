"""SPF macros (RFC 7208 §7): parsing macro-strings once, expanding them per check.

The grammar, RFC 7208 §7.1 (ABNF literals are case-insensitive, RFC 5234 §2.3)::

    domain-spec      = macro-string domain-end
    domain-end       = ( "." toplabel [ "." ] ) / macro-expand
    toplabel         = ( *alphanum ALPHA *alphanum ) /
                       ( 1*alphanum "-" *( alphanum / "-" ) alphanum )
    explain-string   = *( macro-string / SP )
    macro-string     = *( macro-expand / macro-literal )
    macro-expand     = ( "%{" macro-letter transformers *delimiter "}" )
                       / "%%" / "%_" / "%-"
    macro-literal    = %x21-24 / %x26-7E
    macro-letter     = "s" / "l" / "o" / "d" / "i" / "p" / "h" / "c" / "r" / "t" / "v"
    transformers     = *DIGIT [ "r" ]
    delimiter        = "." / "-" / "+" / "," / "/" / "_" / "="

Parsing is pure and done once per record; expansion is pure too: the one value that
needs DNS, the validated domain name of ``%{p}``, is looked up by the evaluator and
passed in.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from urllib.parse import quote

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: RFC 7208 §7.2: c, r and t are allowed only in the explanation string (§7.1).
MACRO_LETTERS = frozenset("slodiphvcrt")
EXPLANATION_ONLY = frozenset("crt")

#: RFC 7208 §7.3: "the total length does not exceed 253 characters".
MAX_DOMAIN = 253

_BRACED = re.compile(r"\{([A-Za-z])([0-9]*)([Rr]?)([.\-+,/_=]*)\}")
_LITERAL = re.compile(r"[\x21-\x24\x26-\x7e]+")
_LITERAL_SP = re.compile(r"[\x20-\x24\x26-\x7e]+")
_TOPLABEL = re.compile(
    r"[A-Za-z0-9]*[A-Za-z][A-Za-z0-9]*|[A-Za-z0-9]+-[A-Za-z0-9-]*[A-Za-z0-9]"
)
_ESCAPES = {"%": "%", "_": " ", "-": "%20"}  # RFC 7208 §7.3: "%%", "%_", "%-"


class MacroError(ValueError):
    """A macro-string that does not follow RFC 7208 §7.1 (a permerror in a record)."""


@dataclasses.dataclass(frozen=True, slots=True)
class Macro:
    """One ``%{...}`` macro-expand (RFC 7208 §7.3)."""

    letter: str  # the macro-letter, lower case
    escape: bool  # written in upper case: URL-escape the value (§7.3)
    keep: int | None  # DIGIT transformer: how many right-hand parts to keep
    reverse: bool  # "r" transformer
    delimiters: str  # where to split the value; "" means "."


Part = str | Macro


@dataclasses.dataclass(frozen=True, slots=True)
class MacroString:
    """A parsed macro-string: literal text and macros, in order."""

    text: str  # as written in the record
    parts: tuple[Part, ...]
    ends_in_macro: bool = False  # the last token is a macro-expand (domain-end, §7.1)

    @property
    def literal(self) -> str | None:
        """The expansion when there is no ``%{...}`` at all, else ``None``."""
        if all(isinstance(part, str) for part in self.parts):
            return "".join(part for part in self.parts if isinstance(part, str))
        return None

    @property
    def uses_p(self) -> bool:
        """Whether expanding needs the validated domain name (``%{p}``)."""
        return any(isinstance(part, Macro) and part.letter == "p" for part in self.parts)


def parse_macro_string(text: str, *, explanation: bool = False) -> MacroString:
    """Parse a macro-string (or, with ``explanation``, an explain-string, where SP and
    the letters c, r, t are allowed). Raises :class:`MacroError`."""
    literal = _LITERAL_SP if explanation else _LITERAL
    parts: list[Part] = []
    pos = 0
    size = len(text)
    ends_in_macro = False
    while pos < size:
        ends_in_macro = text[pos] == "%"
        if not ends_in_macro:
            match = literal.match(text, pos)
            if match is None:
                raise MacroError(f"character {text[pos]!r} not allowed in {text!r}")
            _append(parts, match.group())
            pos = match.end()
            continue
        after = text[pos + 1 : pos + 2]
        if after in _ESCAPES:
            _append(parts, _ESCAPES[after])
            pos += 2
            continue
        match = _BRACED.match(text, pos + 1)
        if match is None:
            # RFC 7208 §7.1: "A '%' character not followed by a '{', '%', '-', or '_'
            # character is a syntax error."
            raise MacroError(f"bad macro at {text[pos:pos + 12]!r}")
        letter_text, digits, reverse, delimiters = match.groups()
        letter = letter_text.lower()
        if letter not in MACRO_LETTERS or (letter in EXPLANATION_ONLY and not explanation):
            raise MacroError(f"macro letter {letter_text!r} not allowed here")
        keep = int(digits) if digits else None
        if keep == 0:
            raise MacroError("the DIGIT transformer must be nonzero (RFC 7208 §7.3)")
        parts.append(Macro(letter, letter_text.isupper(), keep, bool(reverse), delimiters))
        pos = match.end()
    return MacroString(text, tuple(parts), ends_in_macro)


def _append(parts: list[Part], text: str) -> None:
    if parts and isinstance(parts[-1], str):
        parts[-1] += text
    else:
        parts.append(text)


def parse_domain_spec(text: str) -> MacroString:
    """Parse a domain-spec: a macro-string ending in a macro or in "." toplabel
    [ "." ] (RFC 7208 §7.1). Raises :class:`MacroError`."""
    if not text:
        raise MacroError("empty domain-spec")
    spec = parse_macro_string(text)
    last = spec.parts[-1]
    if spec.ends_in_macro or isinstance(last, Macro):
        return spec
    tail = last[:-1] if last.endswith(".") else last
    dot = tail.rfind(".")
    if dot < 0 or _TOPLABEL.fullmatch(tail, dot + 1) is None:
        raise MacroError(f"{text!r} does not end in a macro or a valid top label")
    return spec


@dataclasses.dataclass(frozen=True, slots=True)
class MacroContext:
    """What the macro letters stand for, except ``d`` (the current domain, which
    changes with include and redirect) and ``p`` (looked up by the evaluator)."""

    sender: str  # s: <sender>, "postmaster@..." when it had no local-part
    local_part: str  # l
    sender_domain: str  # o
    ip: IPAddress  # i, c, v: an IPv4-mapped address is already IPv4 here (§5)
    helo: str  # h
    receiver: str  # r: the host performing the check
    now: int  # t: seconds since the epoch


def dotted_ip(ip: IPAddress) -> str:
    """``%{i}``: dotted quad, or 32 dot-separated nibbles for IPv6 (RFC 7208 §7.3).

    The nibbles are upper-case, as the OpenSPF suite expects for explanations; DNS
    names compare case-insensitively (RFC 4343), so lookups are unaffected.
    """
    if ip.version == 4:
        return str(ip)
    return ".".join(f"{ip.packed.hex():0>32}".upper())


def _value(letter: str, ctx: MacroContext, domain: str, validated: str) -> str:
    if letter == "s":
        return ctx.sender
    if letter == "l":
        return ctx.local_part
    if letter == "o":
        return ctx.sender_domain
    if letter == "d":
        return domain
    if letter == "i":
        return dotted_ip(ctx.ip)
    if letter == "p":
        return validated
    if letter == "v":
        return "in-addr" if ctx.ip.version == 4 else "ip6"
    if letter == "h":
        return ctx.helo
    if letter == "c":
        return str(ctx.ip)
    if letter == "r":
        return ctx.receiver
    return str(ctx.now)  # "t"


def _transform(value: str, macro: Macro) -> str:
    # RFC 7208 §7.3: split on the delimiters (default "."), reverse if asked, keep the
    # DIGIT right-hand parts, and join the parts with ".".
    if macro.keep is None and not macro.reverse and macro.delimiters in ("", "."):
        return value
    if macro.delimiters:
        pieces = re.split("[" + re.escape(macro.delimiters) + "]", value)
    else:
        pieces = value.split(".")
    if macro.reverse:
        pieces.reverse()
    if macro.keep is not None and macro.keep < len(pieces):
        pieces = pieces[len(pieces) - macro.keep :]
    return ".".join(pieces)


def expand(spec: MacroString, ctx: MacroContext, domain: str, validated: str = "unknown") -> str:
    """The expansion of ``spec`` for the current ``domain``; ``validated`` is the
    value of ``%{p}``."""
    out: list[str] = []
    for part in spec.parts:
        if isinstance(part, str):
            out.append(part)
            continue
        value = _transform(_value(part.letter, ctx, domain, validated), part)
        # RFC 7208 §7.3: upper-case macros are URL-escaped; everything outside the
        # RFC 3986 "unreserved" set (ALPHA DIGIT - . _ ~) is escaped.
        out.append(quote(value, safe="~") if part.escape else value)
    return "".join(out)


def truncate_domain(name: str) -> str:
    """A target name ready for a query: the trailing dot dropped (a domain-spec may end
    in "." per §7.1) and, over 253 characters, labels removed from the left until it
    fits (RFC 7208 §7.3)."""
    if name.endswith("."):
        name = name[:-1]
    while len(name) > MAX_DOMAIN and "." in name:
        name = name.split(".", 1)[1]
    return name


def expand_domain(
    spec: MacroString, ctx: MacroContext, domain: str, validated: str = "unknown"
) -> str:
    """A domain-spec expanded into the name to query (see :func:`truncate_domain`)."""
    literal = spec.literal
    return truncate_domain(literal if literal is not None else expand(spec, ctx, domain, validated))
