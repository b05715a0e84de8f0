"""DMARC, ADSP and DomainKeys-policy verdicts as Authentication-Results entries.

- ``dmarc=<result> header.from=<Author Domain> policy.dmarc=<policy>``: RFC 9989
  §9.1 registers ``header.from`` and ``policy.dmarc`` ("the evaluated DMARC policy
  applied/to be applied after policy options have been processed": after ``t=y``
  or ``pct``). The comment carries the published policies, as deployed verifiers do.
- ``dkim-adsp=<result> header.from=<Author Domain>``: RFC 5617 §5.4 (registered in
  RFC 8601's registry). The DomainKeys policy has no method of its own; it rides
  along as a comment.
"""

from __future__ import annotations

from mailseal.authres.model import MethodResult, Property, printable
from mailseal.dmarc.adsp import AdspVerdict, DkPolicyResult, DkPolicyVerdict
from mailseal.dmarc.evaluate import DmarcResult
from mailseal.results import Result


def dmarc_method_result(r: DmarcResult) -> MethodResult:
    props: list[Property] = []
    if r.header_from:
        props.append(Property("header", "from", printable(r.header_from)))
    if r.policy is not None and r.result in (Result.PASS, Result.FAIL):
        props.append(Property("policy", "dmarc", r.policy.value))
    return MethodResult(
        method="dmarc",
        result=r.result,
        reason=None if r.result is Result.PASS else _reason(r),
        properties=tuple(props),
        comment=_comment(r),
    )


def _reason(r: DmarcResult) -> str:
    text = r.reason.value
    if r.result in (Result.TEMPERROR, Result.PERMERROR) and r.detail:
        text += f": {r.detail}"
    return printable(text)


def _comment(r: DmarcResult) -> str | None:
    record = r.record
    if record is None or record.p is None:
        return None
    parts = [f"p={record.p.value.upper()}"]
    if record.sp is not None:
        parts.append(f"sp={record.sp.value.upper()}")
    if record.np is not None:
        parts.append(f"np={record.np.value.upper()}")
    if r.result is Result.FAIL:
        parts.append(f"dis={r.disposition.upper()}")
    if r.override is not None:
        parts.append(r.override.value.replace("_", "-"))
    if r.policy_domain and r.policy_domain != r.header_from:
        parts.append(f"from {printable(r.policy_domain)}")
    return " ".join(parts)


def adsp_method_result(adsp: AdspVerdict, dk: DkPolicyVerdict | None = None) -> MethodResult:
    """The informational ``dkim-adsp`` entry; ``dk`` adds the DomainKeys policy."""
    notes: list[str] = []
    if dk is not None and dk.result is not DkPolicyResult.NONE:
        note = f"DomainKeys policy {dk.result.value}"
        if dk.result in (DkPolicyResult.FAIL, DkPolicyResult.NEUTRAL):
            note += f": o={'-' if dk.signs_all else '~'}{', t=y' if dk.testing else ''}"
        notes.append(note)
    props = (Property("header", "from", printable(adsp.domain)),) if adsp.domain else ()
    return MethodResult(
        method="dkim-adsp",
        result=adsp.result.value,
        reason=None if adsp.result.value in ("pass", "none") else printable(adsp.detail),
        properties=props,
        comment="; ".join(notes) or None,
    )
