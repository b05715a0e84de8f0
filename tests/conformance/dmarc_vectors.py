"""Helpers for the DMARC conformance suites: zones from mailauth's vectors, one
message's evaluation over the loopback server, and mailauth's assertions read as
checks on mailseal's result values.

mailauth's assertions name fields of its own result object; the ones with a
mailseal counterpart are translated here (``translate``); the rest are reported as
not applicable by the test that meets them.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from conformance.support import _owner, _quote, _strings
from dnsserver import ZoneServer

from mailseal.authres import AuthenticationResults, format_value
from mailseal.dmarc.authres import dmarc_method_result
from mailseal.dmarc.check import check_message
from mailseal.dmarc.evaluate import DmarcResult, Reason, decisive
from mailseal.dmarc.record import AlignmentMode, Mode
from mailseal.dns.resolver import DnsResolver

Check = Callable[[DmarcResult], bool]


def zone(records: Mapping[str, Mapping[str, Any]]) -> str:
    """A root zone holding a case's TXT, A and MX records: every other name is
    NXDOMAIN, a listed name asked for another type is NODATA."""
    lines = ["$ORIGIN .", "$TTL 300", "@ IN SOA ns.invalid. hostmaster.invalid. 1 3600 600 86400 60"]
    for name, types in records.items():
        owner = _owner(name)
        for rr in types.get("TXT", []):
            lines.append(f"{owner} IN TXT " + " ".join(map(_quote, _strings(rr))))
        for address in types.get("A", []):
            lines.append(f"{owner} IN A {address}")
        for mx in types.get("MX", []):
            lines.append(f"{owner} IN MX {mx['priority']} {_owner(mx['exchange'])}")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Inputs:
    """A check's input, as mailseal takes it."""

    from_values: tuple[bytes, ...]
    dkim: tuple[str, ...]
    spf: str | None


def inputs(raw: Mapping[str, Any]) -> Inputs:
    header_from = raw["headerFrom"]
    values = header_from if isinstance(header_from, list) else [header_from]
    # mailauth takes a bare domain as a From; mailseal takes a From field value.
    values = [v if "@" in v else f"postmaster@{v}" for v in values]

    def domains(entries: list[Any]) -> tuple[str, ...]:
        return tuple(e if isinstance(e, str) else e["domain"] for e in entries)

    spf = domains(raw.get("spfDomains", []))
    return Inputs((", ".join(values).encode(),), domains(raw.get("dkimDomains", [])),
                  spf[0] if spf else None)


def evaluate(server: ZoneServer, given: Inputs, mode: Mode) -> tuple[DmarcResult, ...]:
    resolver = DnsResolver([server.address], timeout=2.0)
    return asyncio.run(check_message(given.from_values, resolver, dkim_domains=given.dkim,
                                     spf_domain=given.spf, mode=mode))


def expectation_checks(expect: Mapping[str, str]) -> dict[str, Check]:
    """mailauth's ``expect`` block: result word, policy, policy domain."""
    checks: dict[str, Check] = {}
    if "dmarc" in expect:
        checks[f"dmarc={expect['dmarc']}"] = lambda r: r.result.value == expect["dmarc"]
    if "policy" in expect:
        checks[f"policy={expect['policy']}"] = (
            lambda r: r.policy is not None and r.policy.value == expect["policy"])
    if "policy_domain" in expect:
        checks[f"policy_domain={expect['policy_domain']}"] = (
            lambda r: r.policy_domain == expect["policy_domain"])
    return checks


def _alignment(method: str, r: DmarcResult) -> list[Any]:
    return [a for a in r.alignments if a.method == method]


def _a_r(r: DmarcResult) -> str:
    return format_value(AuthenticationResults("mx.example", None, (dmarc_method_result(r),)))


def translate(assertion: str) -> Check | None:
    """A mailauth assertion as a check on mailseal's result; None: no counterpart."""
    if m := re.fullmatch(r"alignment\.(dkim|spf)\.strict to\.be\.(true|false)", assertion):
        method, strict = m[1], m[2] == "true"
        return lambda r: r.record is not None and (
            getattr(r.record, "a" + method) is AlignmentMode.STRICT) == strict
    if m := re.fullmatch(r"alignment\.(dkim|spf)\.result to\.not\.be\.ok", assertion):
        method = m[1]
        return lambda r: not any(a.aligned for a in _alignment(method, r))
    if m := re.fullmatch(r"alignment\.(dkim|spf)\.result to\.equal\('([^']+)'\)", assertion):
        method, domain = m[1], m[2]
        return lambda r: any(a.aligned and domain in (a.domain, a.org_domain)
                             for a in _alignment(method, r))
    if m := re.fullmatch(r"(p|sp) to\.equal\('(\w+)'\)", assertion):
        tag, value = m[1], m[2]
        return lambda r: r.record is not None and getattr(r.record, tag).value == value
    if m := re.fullmatch(r"pct to\.equal\((\d+)\)", assertion):
        pct = int(m[1])
        return lambda r: r.record is not None and r.record.pct == pct
    if m := re.fullmatch(r"rr to\.(equal|contain)\('(.+)'\)", assertion):
        exact, text = m[1] == "equal", m[2]
        return lambda r: r.record is not None and (
            r.record.text == text if exact else text in r.record.text)
    if m := re.fullmatch(r"status\.header\.(from|d) to\.equal\('([^']+)'\)", assertion):
        field, domain = m[1], m[2]
        return lambda r: (r.header_from if field == "from" else r.policy_domain) == domain
    if m := re.fullmatch(r"info to\.include\('(.+)'\)", assertion):
        text = m[1]
        return lambda r: text in _a_r(r)
    if assertion == "info to.be.a('string')":
        return lambda r: isinstance(_a_r(r), str)
    if m := re.fullmatch(r"dmarcQueries to\.deep\.equal\((\[.*\])\)", assertion):
        names = json.loads(m[1].replace("'", '"'))
        return lambda r: r.discovery is not None and [q.name for q in r.discovery.queries] == names
    if assertion == "(result) to.be.false":
        # mailauth declines to evaluate (several From addresses); mailseal's
        # counterpart is the permerror for an unusable From.
        return lambda r: r.reason in (Reason.NO_AUTHOR, Reason.TOO_MANY_AUTHORS)
    if assertion == "(result) to.not.have.property('policy')":
        return lambda r: r.policy is None
    if assertion == "(result) to.not.have.property('pct')":
        # RFC 9989 §9.3: pct is historic; mailseal reads it as an ignored tag.
        return lambda r: r.record is not None and r.record.pct == 100 and (
            "pct" in r.record.ignored)
    return None


def verdict(results: tuple[DmarcResult, ...]) -> DmarcResult:
    return decisive(results)
