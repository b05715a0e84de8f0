"""SPF and DMARC for a message being verified: the sender checks that come after
DKIM, their Authentication-Results entries, the DMARC record-keeping, and the action
DMARC asks for when enforcement is on."""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field

from mailseal.authres.model import MethodResult
from mailseal.config.load import Config
from mailseal.dkim.verify import DkimResult
from mailseal.dmarc.adsp import check_adsp, check_dk_policy
from mailseal.dmarc.authres import adsp_method_result, dmarc_method_result
from mailseal.dmarc.check import check_message
from mailseal.dmarc.evaluate import DmarcResult, decisive
from mailseal.dmarc.record import Mode, Policy
from mailseal.dmarc.report import ReportStore, evaluation
from mailseal.dmarc.reportxml import DkimAuth, OverrideReason, SpfAuth
from mailseal.dns.types import FullResolver, Resolver
from mailseal.message import HeaderField, find_fields
from mailseal.pipeline.model import Action, Envelope, Reply
from mailseal.results import Result
from mailseal.spf.checker import SpfChecker
from mailseal.spf.evaluate import SpfResult
from mailseal.spf.received import method_result as spf_method_result

log = logging.getLogger("mailseal.pipeline")


@dataclass
class SenderChecks:
    spf: SpfResult | None = None
    dmarc: DmarcResult | None = None
    entries: list[MethodResult] = field(default_factory=list)
    trail: list[str] = field(default_factory=list)
    action: Action = Action.ACCEPT
    reply: Reply | None = None


async def check_spf(config: Config, env: Envelope, resolver: Resolver,
                    now: float) -> SpfResult | None:
    """MAIL FROM identity (postmaster@HELO for the null sender), when enabled and the
    client address is known."""
    if not config.settings.spf.enabled or not env.client_address:
        return None
    if not isinstance(resolver, FullResolver):
        return None
    checker = spf_checker(resolver, config.authserv_id)
    try:
        return await checker.mail_from(env.client_address, env.mail_from or "",
                                       env.helo or "unknown", now=now)
    except ValueError:  # not an IP address (e.g. a unix-socket client)
        return None


async def check_dmarc(config: Config, env: Envelope, fields: Sequence[HeaderField],
                      dkim: Sequence[DkimResult], spf: SpfResult | None,
                      resolver: Resolver, now: float) -> SenderChecks:
    out = SenderChecks(spf=spf)
    if spf is not None:
        out.entries.append(spf_method_result(spf))
        out.trail.append(f"spf={spf.result} for {spf.sender} from {spf.ip}"
                         + (f" ({spf.mechanism})" if spf.mechanism else "")
                         + (f": {spf.problem}" if spf.problem else ""))
    s = config.settings.dmarc
    if not s.enabled:
        return out
    mode = Mode(s.mode)
    passed = [r.domain for r in dkim if r.result is Result.PASS]
    spf_domain = spf.domain if spf is not None and spf.result is Result.PASS else None
    from_values = [f.value for f in find_fields(fields, b"from")]
    results = await check_message(from_values, resolver, dkim_domains=passed,
                                  spf_domain=spf_domain, mode=mode,
                                  sample=random.random() if mode is Mode.RFC7489 else None)
    verdict = decisive(results)
    out.dmarc = verdict
    out.entries.append(dmarc_method_result(verdict))
    out.trail.append(f"dmarc={verdict.result} header.from={verdict.header_from or '-'}"
                     + (f" policy={verdict.policy}" if verdict.policy else "")
                     + (f": {verdict.detail}" if verdict.detail else ""))
    if s.adsp and verdict.header_from:
        # Historic policies (RFC 5617 ADSP, RFC 4870 DomainKeys): reported, never enforced.
        adsp = await check_adsp(verdict.header_from, resolver, dkim_domains=passed)
        dk = await check_dk_policy(verdict.header_from, resolver, signed_domains=passed)
        out.entries.append(adsp_method_result(adsp, dk))
        out.trail.append(f"dkim-adsp={adsp.result.value} (informational)")
    forwarder = config.is_trusted_forwarder(env.client_address)
    enforce = (s.enforce and verdict.result is Result.FAIL and not forwarder
               and verdict.policy in (Policy.REJECT, Policy.QUARANTINE))
    if enforce:
        out.action = Action.REJECT if verdict.policy is Policy.REJECT else Action.QUARANTINE
        out.reply = Reply.parse(s.reject_reply) if out.action is Action.REJECT else None
        out.trail.append(f"dmarc policy {verdict.policy} enforced → {out.action}")
    elif verdict.result is Result.FAIL and verdict.policy not in (None, Policy.NONE):
        why = "trusted forwarder" if forwarder else "enforcement off"
        out.trail.append(f"dmarc policy {verdict.policy} not enforced ({why})")
    if s.report_db:
        disposition = None
        reasons: list[OverrideReason] = []
        if not enforce and verdict.disposition not in ("none", "pass"):
            disposition = "none"
            reasons.append(OverrideReason("trusted_forwarder" if forwarder else "local_policy"))
        row = evaluation(
            verdict, time=int(now), source_ip=env.client_address or "0.0.0.0",
            envelope_from=(env.mail_from or "").rpartition("@")[2] or None,
            envelope_to=(env.recipients[0].rpartition("@")[2] if env.recipients else None),
            dkim=[DkimAuth(r.domain, r.selector, r.result.value) for r in dkim if r.domain],
            spf=SpfAuth(spf.domain, spf.result.value) if spf is not None else None,
            disposition=disposition, reasons=reasons)
        try:
            await asyncio.to_thread(open_store(s.report_db).record, row)
        except Exception as exc:  # reporting must never cost a message
            log.error("DMARC report store %s: %s", s.report_db, exc)
    return out


_CHECKERS: weakref.WeakKeyDictionary[FullResolver, SpfChecker] = weakref.WeakKeyDictionary()


def spf_checker(resolver: FullResolver, receiver: str) -> SpfChecker:
    """One checker per resolver (as long as it lives): its parsed-record cache then
    lasts across messages (re-parsing the big providers' records was most of a warm
    check, docs/performance.md "SPF")."""
    checker = _CHECKERS.get(resolver)
    if checker is None or checker.receiver != receiver:
        checker = _CHECKERS[resolver] = SpfChecker(resolver, receiver=receiver)
    return checker


@functools.lru_cache(maxsize=8)
def open_store(path: str) -> ReportStore:
    """One store per file per process (a connection pool of one)."""
    return ReportStore(path)
