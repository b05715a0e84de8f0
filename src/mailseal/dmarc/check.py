"""DMARC for one message: discovery and alignment lookups over the injected
resolver, then the pure evaluation (``evaluate.py``). The entry points for the
pipeline and the command line."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace

from publicsuffixlist import PublicSuffixList

from mailseal.dmarc.discover import MAX_QUERIES, TreeWalker, discover_policy
from mailseal.dmarc.evaluate import (
    MAX_AUTHOR_DOMAINS,
    DmarcResult,
    Identifiers,
    Reason,
    author_domains,
    evaluate,
    needs_org_domain,
)
from mailseal.dmarc.record import Mode
from mailseal.dns.types import Resolver
from mailseal.results import Result


async def check_dmarc(author_domain: str, resolver: Resolver, *,
                      dkim_domains: Iterable[str] = (), spf_domain: str | None = None,
                      mode: Mode = Mode.RFC9989, psl: PublicSuffixList | None = None,
                      sample: float | None = None,
                      walker: TreeWalker | None = None) -> DmarcResult:
    """The DMARC verdict for ``author_domain``.

    ``dkim_domains``: the ``d=`` of every DKIM signature that passed; ``spf_domain``:
    the domain SPF passed for as MAIL FROM identity (the HELO domain for a null
    reverse-path, RFC 7208 §2.4), None when SPF did not pass. ``sample``: a number
    from [0, 1) drawn by the caller (``random.random()``), for RFC 7489 ``pct``.
    """
    walker = walker or TreeWalker(resolver, mode)
    discovery = await discover_policy(author_domain, walker, psl=psl)
    ids = Identifiers.of(dkim_domains, spf_domain)
    author = discovery.author_domain
    orgs: dict[str, str | None] = {}
    need = needs_org_domain(discovery, ids)
    if need == [author] and discovery.org_domain is None:
        orgs.update(await walker.org_domains(need, psl))
        author_org = orgs[author]
        need = needs_org_domain(discovery, ids, author_org) if author_org else []
    if need:
        orgs.update(await walker.org_domains([d for d in need if d not in orgs], psl))
    result = evaluate(discovery, ids, orgs, sample=sample)
    # The alignment walks may have added queries after discovery: keep them all.
    if result.discovery is not None and len(walker.queries) > len(result.discovery.queries):
        result = replace(result, discovery=replace(result.discovery,
                                                   queries=tuple(walker.queries)))
    return result


async def check_message(from_values: Sequence[bytes], resolver: Resolver, *,
                        dkim_domains: Iterable[str] = (), spf_domain: str | None = None,
                        mode: Mode = Mode.RFC9989, psl: PublicSuffixList | None = None,
                        sample: float | None = None,
                        max_authors: int = MAX_AUTHOR_DOMAINS) -> tuple[DmarcResult, ...]:
    """One verdict per Author Domain of the From field value(s) (raw bytes, as
    received). RFC 9989 §5.3.1: with no Author Domain DMARC cannot be applied
    (permerror here, so the pipeline can act on it); with several, each is
    evaluated (§11.5) up to ``max_authors``, beyond which the evaluation would be
    incomplete (permerror). :func:`~mailseal.dmarc.evaluate.decisive` picks the
    one that decides the handling."""
    domains = author_domains(from_values)
    if not domains:
        return (DmarcResult(Result.PERMERROR, Reason.NO_AUTHOR, "", mode),)
    if len(domains) > max_authors:
        return (DmarcResult(Result.PERMERROR, Reason.TOO_MANY_AUTHORS, domains[0], mode,
                            detail=f"{len(domains)} author domains"),)
    dkim = tuple(dkim_domains)
    walker = TreeWalker(resolver, mode, max_queries=MAX_QUERIES * len(domains))
    return tuple([
        await check_dmarc(domain, resolver, dkim_domains=dkim, spf_domain=spf_domain,
                          mode=mode, psl=psl, sample=sample, walker=walker)
        for domain in domains
    ])
