"""The historic author-domain signing policies, evaluated for information only.

- ADSP (RFC 5617, Historic since 2013): ``_adsp._domainkey.<Author Domain>`` with
  ``dkim=unknown|all|discardable``.
- DomainKeys sender signing policy (RFC 4870 §3.6, Historic): ``_domainkey.<domain>``
  with ``o=~`` (signs some mail, the default) or ``o=-`` (signs all mail), ``t=y``
  (testing).

Both are reported (``dkim-adsp=…`` in Authentication-Results) and never enforced
here; docs/policies.md says why. The verdict functions are pure; ``check_adsp`` and
``check_dk_policy`` are coroutines over the injected resolver.

ADSP record grammar (RFC 5617 §4.2.1), a DKIM tag=value list (RFC 6376 §3.2)::

    adsp-dkim-tag = %x64.6b.69.6d *WSP "=" *WSP
                    ("unknown" / "all" / "discardable" / x-adsp-dkim-tag)

"Any other values are treated as unknown"; records without the ``dkim`` tag or not
in the syntax are ignored (treated as absent).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from mailseal.dmarc.discover import normalize_domain
from mailseal.dns.types import Answer, Resolver, Status
from mailseal.tagvalue import TagListError, parse_tag_list


class Practice(enum.StrEnum):
    """RFC 5617 §4.2.1 Outbound Signing Practices."""

    UNKNOWN = "unknown"  # the domain might sign some or all email
    ALL = "all"  # all mail from the domain is signed with an Author Domain Signature
    DISCARDABLE = "discardable"  # ... and unsigned mail may be discarded


class AdspResult(enum.StrEnum):
    """RFC 5617 §5.4 ``dkim-adsp`` result words (RFC 8601 registry)."""

    NONE = "none"  # no ADSP record
    PASS = "pass"  # an Author Domain Signature verified
    UNKNOWN = "unknown"  # none verified; practice "unknown"
    FAIL = "fail"  # none verified; practice "all"
    DISCARD = "discard"  # none verified; practice "discardable"
    NXDOMAIN = "nxdomain"  # the Author Domain does not exist
    TEMPERROR = "temperror"
    PERMERROR = "permerror"


@dataclass(frozen=True, slots=True)
class AdspVerdict:
    result: AdspResult
    domain: str  # the Author Domain
    practice: Practice | None = None  # the published practice, when a record was read
    detail: str = ""


def parse_adsp(text: str | bytes) -> Practice | None:
    """The practice a record publishes; None when it is not an ADSP record."""
    try:
        tags = parse_tag_list(text)
    except (TagListError, UnicodeDecodeError):
        return None
    value = tags.get("dkim")
    if value is None:
        return None
    try:
        return Practice(value.lower())
    except ValueError:
        return Practice.UNKNOWN  # §4.2.1: other values are treated as "unknown"


def adsp_verdict(domain: str, signed: bool, exists: bool | None,
                 answer: Answer[bytes] | None) -> AdspVerdict:
    """RFC 5617 §4.3 from what the lookups gave. ``signed``: an Author Domain
    Signature (a valid DKIM signature whose ``d=`` is the Author Domain, §2.7)."""
    if signed:
        return AdspVerdict(AdspResult.PASS, domain, detail="author domain signature verified")
    if exists is None:
        return AdspVerdict(AdspResult.TEMPERROR, domain, detail="domain scope query failed")
    if not exists:
        # §4.3 step 1: an Author Domain that does not exist is out of scope.
        return AdspVerdict(AdspResult.NXDOMAIN, domain, detail="author domain does not exist")
    if answer is None or answer.status is Status.TEMPFAIL:
        return AdspVerdict(AdspResult.TEMPERROR, domain, detail="ADSP record query failed")
    practices = [p for p in (parse_adsp(txt) for txt in answer.records) if p is not None]
    if not practices:
        return AdspVerdict(AdspResult.NONE, domain, detail="no ADSP record")
    if len(practices) > 1:
        # §4.3 step 2: more than one record leaves the result undefined.
        return AdspVerdict(AdspResult.PERMERROR, domain, detail="several ADSP records")
    practice = practices[0]
    word = {Practice.UNKNOWN: AdspResult.UNKNOWN, Practice.ALL: AdspResult.FAIL,
            Practice.DISCARDABLE: AdspResult.DISCARD}[practice]
    return AdspVerdict(word, domain, practice, detail=f"dkim={practice.value}")


async def check_adsp(author_domain: str, resolver: Resolver, *,
                     dkim_domains: Iterable[str] = ()) -> AdspVerdict:
    """ADSP for one Author Domain. ``dkim_domains``: ``d=`` of the signatures that
    verified. No lookup is made when an Author Domain Signature verified."""
    domain = normalize_domain(author_domain)
    if domain is None:
        return AdspVerdict(AdspResult.PERMERROR, author_domain, detail="not a domain name")
    if domain in _names(dkim_domains):
        return adsp_verdict(domain, True, True, None)
    # §4.3 step 1: "The type of the query can be of any type".
    scope = await resolver.txt(domain)
    exists = None if scope.status is Status.TEMPFAIL else scope.status is not Status.NXDOMAIN
    answer = await resolver.txt(f"_adsp._domainkey.{domain}") if exists else None
    return adsp_verdict(domain, False, exists, answer)


class DkPolicyResult(enum.StrEnum):
    NONE = "none"  # no policy record
    PASS = "pass"  # the domain signed the message
    NEUTRAL = "neutral"  # not signed; the domain signs some mail (o=~)
    FAIL = "fail"  # not signed; the domain says it signs all mail (o=-)
    TEMPERROR = "temperror"


@dataclass(frozen=True, slots=True)
class DkPolicyVerdict:
    result: DkPolicyResult
    domain: str  # the sending domain (RFC 4870: Sender, else From)
    signs_all: bool = False  # o=-
    testing: bool = False  # t=y
    detail: str = ""


def dk_policy_verdict(domain: str, signed: bool, answer: Answer[bytes] | None) -> DkPolicyVerdict:
    """RFC 4870 §3.6 from the policy lookup (None: not looked up, message signed)."""
    if signed:
        return DkPolicyVerdict(DkPolicyResult.PASS, domain, detail="signed by the domain")
    if answer is None or answer.status is Status.TEMPFAIL:
        return DkPolicyVerdict(DkPolicyResult.TEMPERROR, domain, detail="policy query failed")
    policies = [tags for tags in (_dk_tags(txt) for txt in answer.records) if tags is not None]
    if len(policies) != 1:
        why = "no DomainKeys policy" if not policies else "several policy records, ignored"
        return DkPolicyVerdict(DkPolicyResult.NONE, domain, detail=why)
    tags = policies[0]
    signs_all = tags.get("o", "~").strip() == "-"
    testing = tags.get("t", "").strip().lower() == "y"
    result = DkPolicyResult.FAIL if signs_all else DkPolicyResult.NEUTRAL
    detail = "o=-: the domain signs all mail" if signs_all else "o=~: the domain signs some mail"
    return DkPolicyVerdict(result, domain, signs_all, testing, detail)


def _dk_tags(text: bytes) -> dict[str, str] | None:
    try:
        tags = parse_tag_list(text)
    except (TagListError, UnicodeDecodeError):
        return None
    # A key record published at the bare _domainkey name is not a policy record.
    return None if "p" in tags or "k" in tags else tags


async def check_dk_policy(sending_domain: str, resolver: Resolver, *,
                          signed_domains: Iterable[str] = ()) -> DkPolicyVerdict:
    """The DomainKeys policy of the sending domain. ``signed_domains``: the domains
    of the DomainKeys or DKIM signatures that verified."""
    domain = normalize_domain(sending_domain)
    if domain is None:
        return DkPolicyVerdict(DkPolicyResult.NONE, sending_domain, detail="not a domain name")
    if domain in _names(signed_domains):
        return dk_policy_verdict(domain, True, None)
    return dk_policy_verdict(domain, False, await resolver.txt(f"_domainkey.{domain}"))


def _names(domains: Iterable[str]) -> Sequence[str]:
    return [n for n in (normalize_domain(d) for d in domains) if n is not None]
