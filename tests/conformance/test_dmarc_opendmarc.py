"""OpenDMARC's library test tables (``dmarc-opendmarc/opendmarc-vectors.json``, 45
cases): record parsing, alignment, From-domain extraction, organizational domain.

These are OpenDMARC's behaviours. Where mailseal follows RFC 9989 / RFC 7489
instead, ``PARSE_DISAGREE`` and ``ALIGN_DISAGREE`` give mailseal's answer and the
reason (also in docs/conformance.md); the tests assert mailseal's side.
"""

from __future__ import annotations

from typing import Any

import pytest
from conformance.support import load_json, suite_dir

from mailseal.dmarc.discover import (
    DiscoveryStatus,
    PolicyDiscovery,
    normalize_domain,
    psl_org_domain,
)
from mailseal.dmarc.evaluate import Identifiers, author_domains, evaluate
from mailseal.dmarc.record import DmarcRecord, Mode, Policy, parse_record

VECTORS: dict[str, Any] = load_json(suite_dir("dmarc-opendmarc") / "opendmarc-vectors.json")

_DEFAULTS = ("RFC 9989 §4.8 (RFC 7489 §6.3 likewise): syntax errors in tags other than v "
             "and p are discarded in favour of the default; the record stays in force and "
             "the error is reported")
#: case number → (mailseal: record in force?, why)
PARSE_DISAGREE: dict[int, tuple[bool, str]] = {
    5: (False, "RFC 9989 §4.8 dmarc-request is none/quarantine/reject; 'n' is no policy, "
               "and without rua §4.10.1 means no DMARC processing"),
    10: (True, _DEFAULTS), 11: (True, _DEFAULTS), 12: (True, _DEFAULTS),
    13: (True, _DEFAULTS), 14: (True, _DEFAULTS), 19: (True, _DEFAULTS),
}
#: case number → (mailseal: aligned?, why)
ALIGN_DISAGREE: dict[int, tuple[bool, str]] = {
    5: (False, "'.mac.com.' has an empty label: not a domain name (RFC 1035 §2.3.1), so it "
               "aligns with nothing; mailseal does not repair malformed identifiers"),
    6: (False, "as case 5"),
}


def cases(section: str) -> list[Any]:
    return [pytest.param(c, id=f"{section}-{c['n']}") for c in VECTORS[section]["cases"]]


@pytest.mark.parametrize("mode", [Mode.RFC9989, Mode.RFC7489])
@pytest.mark.parametrize("case", cases("record_parse"))
def test_record_parse(case: dict[str, Any], mode: Mode) -> None:
    """OpenDMARC's "valid" means: the record is in force. For mailseal that is a
    DMARC record whose ``effective()`` is not None (RFC 9989 §4.10.1)."""
    parsed = parse_record(case["record"], mode)
    in_force = isinstance(parsed, DmarcRecord) and parsed.effective() is not None
    expected = case["valid"]
    if case["n"] in PARSE_DISAGREE:
        expected = PARSE_DISAGREE[case["n"]][0]
        if expected and case["valid"] is False and isinstance(parsed, DmarcRecord):
            # The error OpenDMARC rejects the record for is reported, in 7489 mode; RFC
            # 9989 mode ignores the removed rf/ri/pct tags outright.
            assert parsed.errors, "the bad tag is reported"
    assert in_force is expected


def aligned(a: str, b: str, mode: str) -> bool:
    """Does a passing DKIM d= of ``b`` align with Author Domain ``a``? Decided by
    mailseal's evaluation in RFC 7489 mode (Organizational Domains from the PSL, as
    OpenDMARC uses)."""
    author = normalize_domain(a)
    if author is None:
        return False
    record = parse_record(f"v=DMARC1; p=none; adkim={mode[0]}", Mode.RFC7489)
    assert isinstance(record, DmarcRecord)
    found = PolicyDiscovery(author, Mode.RFC7489, DiscoveryStatus.FOUND, record, record,
                            author, org_domain=psl_org_domain(author), policy_tag="p",
                            requested=Policy.NONE)
    ids = Identifiers.of([b])
    return evaluate(found, ids, {d: psl_org_domain(d) for d in ids.dkim}).dkim_aligned


@pytest.mark.parametrize("case", cases("alignment"))
def test_alignment(case: dict[str, Any]) -> None:
    expected = ALIGN_DISAGREE.get(case["n"], (case["aligned"], ""))[0]
    assert aligned(case["domain_a"], case["domain_b"], case["mode"]) is expected


@pytest.mark.parametrize("case", cases("from_domain_extraction"))
def test_from_domain(case: dict[str, Any]) -> None:
    """mailseal returns every Author Domain; OpenDMARC's answer is the first. With two
    (cases 7, 8) RFC 9989 §11.5 has each evaluated (``check_message``)."""
    value = case["input"].encode()
    if value.lower().startswith(b"from:"):
        value = value[5:]  # case 13 includes the field name
    domains = author_domains([value])
    assert domains[0] == case["expected_domain"]
    assert len(domains) == (2 if case["n"] in (7, 8) else 1)


@pytest.mark.parametrize("case", cases("organizational_domain"))
def test_organizational_domain(case: dict[str, Any]) -> None:
    assert psl_org_domain(case["domain"]) == case["expected_org_domain"]


def test_all_cases_are_run() -> None:
    assert sum(len(VECTORS[s]["cases"]) for s in ("record_parse", "alignment",
                                                  "from_domain_extraction",
                                                  "organizational_domain")) == 45
