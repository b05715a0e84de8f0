"""DKIM verdicts as Authentication-Results entries (RFC 8601 §2.7.1, RFC 6008)."""

from __future__ import annotations

from collections.abc import Sequence

from mailseal.authres.model import MethodResult, Property, printable
from mailseal.dkim.verify import DkimResult
from mailseal.results import RESULT_RANK, Result

#: RFC 6008 §4: header.b carries enough of b= to tell signatures apart; 8 characters
#: is what OpenDKIM and the RFC's examples use.
HEADER_B_CHARS = 8


def method_result(r: DkimResult) -> MethodResult:
    props: list[Property] = []
    if r.domain:
        props.append(Property("header", "d", r.domain))
    if r.identity and r.identity != "@" + r.domain:
        props.append(Property("header", "i", r.identity))
    if r.selector:
        props.append(Property("header", "s", r.selector))
    if r.algorithm:
        props.append(Property("header", "a", r.algorithm))
    if r.b:
        props.append(Property("header", "b", r.b[:HEADER_B_CHARS]))
    notes = []
    if r.key_bits:
        notes.append(f"{r.key_bits}-bit key")
    if r.testing:
        notes.append("test mode")
    return MethodResult(
        method="dkim",
        result=r.result,
        reason=None if r.result is Result.PASS else printable(r.reason_text),
        properties=tuple(props),
        comment="; ".join(notes) or None,
    )


def dkim_method_results(results: Sequence[DkimResult]) -> list[MethodResult]:
    """One entry per signature; ``dkim=none`` when the message carries none."""
    if not results:
        return [MethodResult(method="dkim", result=Result.NONE, reason="no signatures")]
    return [method_result(r) for r in results]


def best(results: Sequence[DkimResult]) -> Result:
    """The best result of a message's signatures (``none`` when there are none)."""
    if not results:
        return Result.NONE
    return min((r.result for r in results), key=RESULT_RANK.__getitem__)
