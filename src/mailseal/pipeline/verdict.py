"""From verification results to an action and the Authentication-Results field."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from mailseal.config.model import ActionSpec, VerifySettings
from mailseal.dkim.reasons import Reason
from mailseal.dkim.verify import DkimResult
from mailseal.message import HeaderField, find_fields
from mailseal.pipeline.model import DEFAULT_REPLIES, Action, Reply
from mailseal.results import Result


def apply_must_be_signed(results: Sequence[DkimResult], fields: Sequence[HeaderField],
                         must: Sequence[str]) -> list[DkimResult]:
    """OpenDKIM's MustBeSigned: a passing signature that leaves a listed field (present
    in the message) unsigned is reported as ``policy`` instead of ``pass``."""
    if not must:
        return list(results)
    out = []
    for r in results:
        if r.result is Result.PASS:
            missing = [n for n in must
                       if len(find_fields(fields, n.lower().encode()))
                       > r.signed_fields.count(n.lower())]
            if missing:
                r = replace(r, result=Result.POLICY,
                            detail=f"must-be-signed field(s) not signed: {', '.join(missing)}")
        out.append(r)
    return out


def outcome(results: Sequence[DkimResult], settings: VerifySettings) -> tuple[str, ActionSpec]:
    """(outcome name, configured action) for a verified message.

    Testing-mode signatures (t=y) never lead to a rejection (RFC 6376 §3.6.1:
    "Verifiers MUST NOT treat messages from Signers in testing mode differently
    from unsigned email")."""
    if not results:
        return "no signature", settings.on_no_signature
    if any(r.result is Result.PASS for r in results):
        return "pass", ActionSpec(action="accept")
    counted = [r for r in results if not r.testing]
    if not counted:
        return "only testing-mode signatures failed", ActionSpec(action="accept")
    if any(r.result is Result.TEMPERROR for r in counted):
        return "DNS error", settings.on_dns_error
    if all(r.reason is Reason.KEY_NOT_FOUND for r in counted):
        return "key not found", settings.on_key_not_found
    return "bad signature", settings.on_bad_signature


def reply_for(spec: ActionSpec) -> tuple[Action, Reply | None]:
    action = Action(spec.action)
    if spec.reply:
        return action, Reply.parse(spec.reply)
    return action, DEFAULT_REPLIES.get(action)
