"""DMARC evaluation, pure: identifier alignment and the result with its policy.

Inputs are values: the :class:`~mailseal.dmarc.discover.PolicyDiscovery` for the
Author Domain, the authenticated identifiers (``d=`` of the DKIM signatures that
passed, the SPF-authenticated MAIL FROM domain) and the Organizational Domains the
resolver side found for them. The result is a frozen :class:`DmarcResult`.

- RFC 9989 §4.4 / §3.2.10: strict alignment is identity (case-insensitive, RFC
  4343); relaxed alignment is "the same Organizational Domain".
- §5.3.5: pass when at least one Authenticated Identifier aligns, else fail.
- §5.3.6: when DNS queries needed for the verdict did not complete, the message
  "cannot be considered to pass or fail": temperror (unless another identifier
  already aligned, which settles it).
- §4.7 ``t=y``: the policy applied to failing mail is one level below the published
  one; RFC 7489 §6.6.4 ``pct``: a message not sampled gets the same treatment.
- §5.3.1 / §11.5: no Author Domain, or several (see :func:`decisive`).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from mailseal.address import addresses, domain_of
from mailseal.dmarc.discover import DiscoveryStatus, PolicyDiscovery, normalize_domain
from mailseal.dmarc.record import AlignmentMode, DmarcRecord, Mode, Policy
from mailseal.results import Result

#: RFC 9989 §11.5: evaluating every Author Domain of a multi-valued From invites a
#: denial of service; this many are evaluated, more make the evaluation a permerror.
MAX_AUTHOR_DOMAINS = 4


class Reason(enum.Enum):
    """Why the result is what it is (closed set; the value is the A-R reason text)."""

    ALIGNED = "an authenticated identifier is aligned"
    NOT_ALIGNED = "no authenticated identifier is aligned"
    NO_RECORD = "no DMARC policy record"
    NO_POLICY = "DMARC record without a valid policy or rua"
    DNS_ERROR = "DNS error during policy discovery"
    ALIGNMENT_DNS_ERROR = "DNS error while finding an organizational domain"
    EXISTENCE_UNKNOWN = "DNS error while testing whether the author domain exists"
    NO_AUTHOR = "no author domain in From"
    TOO_MANY_AUTHORS = "too many author domains in From"
    BAD_AUTHOR = "author domain is not a domain name"


class Override(enum.StrEnum):
    """Why the policy applied is below the one published (RFC 9990 reason types)."""

    POLICY_TEST_MODE = "policy_test_mode"  # RFC 9989 t=y
    SAMPLED_OUT = "sampled_out"  # RFC 7489 pct (RFC 7489 Appendix C reason type)


@dataclass(frozen=True, slots=True)
class Identifiers:
    """The authenticated identifiers of one message (RFC 9989 §4.3)."""

    dkim: tuple[str, ...] = ()  # d= of every DKIM signature that passed
    spf: str | None = None  # the MAIL FROM domain SPF passed for (HELO for <>), else None

    @classmethod
    def of(cls, dkim: Iterable[str] = (), spf: str | None = None) -> Identifiers:
        """Normalized (lower case, A-labels), duplicates and non-names dropped."""
        seen: list[str] = []
        for domain in dkim:
            name = normalize_domain(domain)
            if name is not None and name not in seen:
                seen.append(name)
        return cls(tuple(seen), normalize_domain(spf) if spf else None)


@dataclass(frozen=True, slots=True)
class Alignment:
    """One identifier checked against the Author Domain."""

    method: str  # "dkim" or "spf"
    domain: str  # the authenticated identifier
    mode: AlignmentMode  # adkim / aspf
    aligned: bool | None  # None: its Organizational Domain is unknown (DNS error)
    org_domain: str | None = None  # its Organizational Domain, when one was needed


@dataclass(frozen=True, slots=True)
class DmarcResult:
    """The DMARC verdict for one Author Domain."""

    result: Result  # pass fail none temperror permerror (RFC 9989 §9.2)
    reason: Reason
    header_from: str  # the Author Domain ("" when the message has none)
    mode: Mode
    policy_domain: str | None = None  # whose record applies
    record: DmarcRecord | None = None  # that record, as applied
    policy_tag: str | None = None  # "p", "sp" or "np"
    requested: Policy | None = None  # the policy that tag publishes
    policy: Policy | None = None  # the policy to apply after t= / pct (policy.dmarc)
    override: Override | None = None  # why ``policy`` is below ``requested``
    alignments: tuple[Alignment, ...] = ()
    discovery: PolicyDiscovery | None = None  # how the record was found (queries)
    detail: str = ""

    @property
    def dkim_aligned(self) -> bool:
        return any(a.aligned for a in self.alignments if a.method == "dkim")

    @property
    def spf_aligned(self) -> bool:
        return any(a.aligned for a in self.alignments if a.method == "spf")

    @property
    def disposition(self) -> str:
        """What DMARC asks for this message (RFC 9990 ``ActionDispositionType``):
        "pass" for passing mail under an enforcing policy, else the policy."""
        if self.policy is None:
            return "none"
        if self.result is Result.PASS:
            return "pass" if self.policy is not Policy.NONE else "none"
        return self.policy.value if self.result is Result.FAIL else "none"


def author_domains(from_values: Iterable[bytes]) -> list[str]:
    """The distinct Author Domains of the From field value(s), in order (RFC 9989
    §5.3.1). Several From fields break RFC 5322 §3.6; their domains all count."""
    found: list[str] = []
    for value in from_values:
        for address in addresses(value):
            raw = domain_of(address)
            domain = normalize_domain(raw) or raw
            if domain and domain not in found:
                found.append(domain)
    return found


def needs_org_domain(discovery: PolicyDiscovery, ids: Identifiers,
                     author_org: str | None = None) -> list[str]:
    """The domains whose Organizational Domain relaxed alignment needs.

    RFC 9989 §4.10.2 note: no tree walk when an identifier equals the Author Domain
    or alignment is strict. An identifier's Organizational Domain is one of its
    parents (or itself), so it can equal the author's only when the identifier is
    at or under that domain: other identifiers need no walk. Call first without
    ``author_org`` (gives the author, if needed), then with it.
    """
    record = discovery.record
    if record is None or discovery.status is not DiscoveryStatus.FOUND:
        return []
    author = discovery.author_domain
    relaxed = [d for d in ids.dkim if record.adkim is AlignmentMode.RELAXED and d != author]
    if ids.spf and record.aspf is AlignmentMode.RELAXED and ids.spf != author:
        relaxed.append(ids.spf)
    if not relaxed:
        return []
    author_org = author_org or discovery.org_domain
    if author_org is None:
        return [author]
    return [d for d in dict.fromkeys(relaxed)
            if d == author_org or d.endswith("." + author_org)]


def evaluate(discovery: PolicyDiscovery, ids: Identifiers,
             org_domains: Mapping[str, str | None] | None = None, *,
             sample: float | None = None) -> DmarcResult:
    """The verdict for one Author Domain.

    ``org_domains`` maps domains to their Organizational Domain (None: unknown
    because of a DNS error); see :func:`needs_org_domain`. ``sample`` is a number
    drawn uniformly from [0, 1) by the caller, used only in RFC 7489 mode for
    ``pct`` < 100 (None: the message counts as selected).
    """
    base = DmarcResult(Result.NONE, Reason.NO_RECORD, discovery.author_domain, discovery.mode,
                       discovery=discovery, detail=discovery.detail)
    if discovery.status is DiscoveryStatus.PERMERROR:
        return _with(base, Result.PERMERROR, Reason.BAD_AUTHOR)
    if discovery.status is DiscoveryStatus.TEMPERROR:
        return _with(base, Result.TEMPERROR, Reason.DNS_ERROR)
    record = discovery.record
    if discovery.status is DiscoveryStatus.NONE or record is None:
        return _with(base, Result.NONE,
                     Reason.NO_POLICY if discovery.published else Reason.NO_RECORD)
    orgs = dict(org_domains or {})
    if discovery.org_domain is not None:
        orgs.setdefault(discovery.author_domain, discovery.org_domain)
    checks = tuple(_alignments(discovery.author_domain, record, ids, orgs))
    passing = any(a.aligned for a in checks)
    policy, override = _policy(discovery, record, None if passing else sample)
    found = DmarcResult(
        Result.PASS, Reason.ALIGNED, discovery.author_domain, discovery.mode,
        policy_domain=discovery.policy_domain, record=record, policy_tag=discovery.policy_tag,
        requested=discovery.requested, policy=policy, alignments=checks,
        discovery=discovery, detail=discovery.detail)
    if passing:
        return found
    if any(a.aligned is None for a in checks):
        return _with(found, Result.TEMPERROR, Reason.ALIGNMENT_DNS_ERROR)
    if discovery.requested is None:
        return _with(found, Result.TEMPERROR, Reason.EXISTENCE_UNKNOWN)
    return _with(found, Result.FAIL, Reason.NOT_ALIGNED, override=override)


def _with(result: DmarcResult, word: Result, reason: Reason,
          override: Override | None = None) -> DmarcResult:
    return replace(result, result=word, reason=reason, override=override)


def _alignments(author: str, record: DmarcRecord, ids: Identifiers,
                orgs: Mapping[str, str | None]) -> Iterable[Alignment]:
    for method, domain, mode in [*(("dkim", d, record.adkim) for d in ids.dkim),
                                 *((("spf", ids.spf, record.aspf),) if ids.spf else ())]:
        yield _align(method, author, domain, mode, orgs)


def _align(method: str, author: str, domain: str, mode: AlignmentMode,
           orgs: Mapping[str, str | None]) -> Alignment:
    if domain == author:
        return Alignment(method, domain, mode, True)
    if mode is AlignmentMode.STRICT:
        return Alignment(method, domain, mode, False)
    # Relaxed: the same Organizational Domain. A domain missing from ``orgs`` or
    # mapped to None has an unknown one (its tree walk failed, or was not made).
    author_org = orgs.get(author)
    if author_org is None:
        return Alignment(method, domain, mode, None)
    if domain != author_org and not domain.endswith("." + author_org):
        return Alignment(method, domain, mode, False)  # its org is one of its parents
    org = orgs.get(domain)
    return Alignment(method, domain, mode, None if org is None else org == author_org, org)


def _policy(discovery: PolicyDiscovery, record: DmarcRecord,
            sample: float | None) -> tuple[Policy | None, Override | None]:
    """The policy after the record's options: t=y (RFC 9989), pct (RFC 7489, only
    with a ``sample``: sampling concerns failing mail)."""
    requested = discovery.requested
    if requested is None or requested is Policy.NONE:
        return requested, None
    if discovery.mode is Mode.RFC9989 and record.t:
        return requested.one_level_below(), Override.POLICY_TEST_MODE
    if (discovery.mode is Mode.RFC7489 and record.pct < 100 and sample is not None
            and sample * 100 >= record.pct):
        return requested.one_level_below(), Override.SAMPLED_OUT
    return requested, None


_BADNESS = {Result.FAIL: 0, Result.TEMPERROR: 1, Result.PERMERROR: 2, Result.PASS: 3,
            Result.NONE: 4}


def decisive(results: Sequence[DmarcResult]) -> DmarcResult:
    """The result that decides the handling of a message with several Author
    Domains: RFC 9989 §11.5 (after RFC 7489 §6.6.1) "apply the most strict policy
    selected among the checks that fail"; then temperror, permerror, pass, none."""
    if not results:
        raise ValueError("no results")

    def key(r: DmarcResult) -> tuple[int, int]:
        strict = r.policy.strictness if r.policy is not None else -1
        return _BADNESS.get(r.result, 5), -strict

    return min(results, key=key)
