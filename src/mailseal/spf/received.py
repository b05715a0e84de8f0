"""An SPF result as header text: the Received-SPF field (RFC 7208 §9.1) and the
``spf`` entry of Authentication-Results (RFC 8601 §2.7.2).

The grammar, RFC 7208 §9.1::

    header-field     = "Received-SPF:" [CFWS] result FWS [comment FWS]
                       [ key-value-list ] CRLF
    key-value-list   = key-value-pair *( ";" [CFWS] key-value-pair ) [";"]
    key-value-pair   = key [CFWS] "=" ( dot-atom / quoted-string )
    key              = "client-ip" / "envelope-from" / "helo" /
                       "problem" / "receiver" / "identity" /
                       "mechanism" / name

The comment follows the wording of the RFC's examples. Text that comes from the
SMTP session (sender, HELO name) is kept to printable ASCII, so the field is always
writable whatever the client sent.
"""

from __future__ import annotations

import re

from mailseal.authres import syntax
from mailseal.authres.model import MethodResult, Property, printable
from mailseal.results import Result
from mailseal.spf.evaluate import Identity, SpfResult

FIELD_NAME = "Received-SPF"
DEFAULT_FOLD = 78  # RFC 5322 §2.1.1
MAX_TEXT = 200  # longest piece of client-supplied text written

_DOT_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")


def _safe(text: str) -> str:
    return printable(text, MAX_TEXT)


def _kv(value: str) -> str:
    """dot-atom when it is one, else quoted-string (RFC 5322 §3.2.3, §3.2.4)."""
    value = _safe(value)
    return value if _DOT_ATOM.fullmatch(value) else syntax.quote_string(value)


def comment_text(r: SpfResult, receiver: str) -> str:
    """The human sentence of RFC 7208 §9.1's examples for ``r``."""
    who = f"domain of {_safe(r.sender)}"
    ip = r.ip
    if r.result is Result.PASS:
        text = f"{who} designates {ip} as permitted sender"
    elif r.result is Result.FAIL:
        text = f"{who} does not designate {ip} as permitted sender"
    elif r.result is Result.SOFTFAIL:
        text = f"transitioning {who} does not designate {ip} as permitted sender"
    elif r.result is Result.NEUTRAL:
        text = f"{ip} is neither permitted nor denied by {who}"
    elif r.result is Result.NONE:
        text = f"{who} does not designate permitted sender hosts"
    elif r.result is Result.TEMPERROR:
        text = f"error in processing during lookup of {who}"
    else:
        text = f"permanent error in processing {who}"
    return f"{_safe(receiver)}: {text}" if receiver else text


def _pairs(r: SpfResult, receiver: str, envelope_from: str | None) -> list[str]:
    sender = r.sender if envelope_from is None else envelope_from
    pairs = [("client-ip", r.ip), ("envelope-from", sender or "<>")]
    if r.helo:
        pairs.append(("helo", r.helo))
    if receiver:
        pairs.append(("receiver", receiver))
    pairs.append(("identity", r.identity.value))
    if r.mechanism is not None:
        pairs.append(("mechanism", r.mechanism))
    if r.problem is not None and r.result in (Result.TEMPERROR, Result.PERMERROR):
        pairs.append(("problem", r.problem))
    return [f"{key}={_kv(value)};" for key, value in pairs]


def _units(r: SpfResult, receiver: str, envelope_from: str | None) -> list[str]:
    words = syntax.quote_comment(comment_text(r, receiver)).split(" ")
    return [str(r.result), *words, *_pairs(r, receiver, envelope_from)]


def received_spf_value(
    r: SpfResult, receiver: str = "", *, envelope_from: str | None = None
) -> str:
    """The field value on one line, e.g. ``pass (mx.example.org: domain of
    a@example.com designates 192.0.2.1 as permitted sender) client-ip=192.0.2.1; …``.

    ``receiver`` is the checking host (RFC 7208 §9.1 ``receiver=``); ``envelope_from``
    the MAIL FROM as received (default: the <sender> evaluated).
    """
    return " ".join(_units(r, receiver, envelope_from))


def received_spf_field(
    r: SpfResult,
    receiver: str = "",
    *,
    envelope_from: str | None = None,
    fold: int | None = DEFAULT_FOLD,
) -> bytes:
    """The complete ``Received-SPF: …\\r\\n`` field, folded (CRLF SP) between words so
    lines stay within ``fold`` octets where the pieces allow; ``None``: one line."""
    units = _units(r, receiver, envelope_from)
    if fold is None:
        return f"{FIELD_NAME}: {' '.join(units)}\r\n".encode("ascii")
    lines: list[str] = []
    line = f"{FIELD_NAME}:"
    for unit in units:
        if len(line) + 1 + len(unit) > fold and line != f"{FIELD_NAME}:":
            lines.append(line)
            line = " " + unit
        else:
            line += " " + unit
    lines.append(line)
    return ("\r\n".join(lines) + "\r\n").encode("ascii")


def method_result(r: SpfResult) -> MethodResult:
    """``spf=<result> smtp.mailfrom=<sender>`` (MAIL FROM identity, including the
    postmaster@HELO of a null sender, RFC 7208 §2.4) or ``spf=<result>
    smtp.helo=<name>`` (HELO identity) — RFC 8601 §2.7.2."""
    if r.identity is Identity.HELO:
        prop = Property("smtp", "helo", _safe(r.helo or r.domain))
    else:
        prop = Property("smtp", "mailfrom", _safe(r.sender))
    reason = None
    if r.result in (Result.TEMPERROR, Result.PERMERROR) and r.problem:
        reason = _safe(r.problem)
    return MethodResult(method="spf", result=r.result, reason=reason, properties=(prop,))
