"""DMARC aggregate reports as values, and their XML (RFC 9990; RFC 7489 Appendix C
reports are read too). Pure: values in, bytes out, and back.

:func:`render` writes the RFC 9990 format: root ``feedback`` in the namespace
``urn:ietf:params:xml:ns:dmarc-2.0``, elements in the order the RFC's tables list
them (RFC 9990 §3.1.1). :func:`parse` reads reports from other receivers, with or
without that namespace, ignoring elements it does not know (extensions, or the
``pct`` of RFC 7489 reports); a document type declaration is refused (entity
expansion attacks, RFC 9990 §8.1).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass

NAMESPACE = "urn:ietf:params:xml:ns:dmarc-2.0"
#: Reports are attacker-supplied input too; larger ones are refused.
MAX_REPORT_BYTES = 32 * 1024 * 1024


class ReportParseError(ValueError):
    """Not an aggregate report we can read; the message says why."""


@dataclass(frozen=True, slots=True)
class PolicyPublished:
    """``policy_published`` (RFC 9990 §3.1.1.5): the record as discovered."""

    domain: str  # the DMARC Policy Domain
    p: str  # none / quarantine / reject
    sp: str | None = None
    np: str | None = None
    adkim: str | None = None  # r / s
    aspf: str | None = None
    fo: str | None = None
    testing: str | None = None  # the t= tag: y / n
    discovery_method: str | None = None  # "psl" (RFC 7489) or "treewalk" (RFC 9989)
    pct: int | None = None  # RFC 7489 reports only; never written


@dataclass(frozen=True, slots=True)
class OverrideReason:
    """``reason`` (RFC 9990 §3.1.1.12): why the disposition differs from policy."""

    type: str  # local_policy mailing_list other policy_test_mode trusted_forwarder
    comment: str | None = None


@dataclass(frozen=True, slots=True)
class DkimAuth:
    domain: str  # d=
    selector: str  # s=
    result: str  # RFC 8601 §2.7.1 word
    human_result: str | None = None


@dataclass(frozen=True, slots=True)
class SpfAuth:
    domain: str
    result: str  # RFC 8601 §2.7.2 word
    scope: str | None = "mfrom"  # RFC 9990: the only valid value
    human_result: str | None = None


@dataclass(frozen=True, slots=True)
class ReportRecord:
    """One ``record``: a row of identical outcomes from one source IP."""

    source_ip: str
    count: int
    disposition: str  # none / pass / quarantine / reject
    dkim: str  # DMARC-aligned DKIM result: pass / fail
    spf: str  # DMARC-aligned SPF result: pass / fail
    header_from: str
    envelope_from: str | None = None
    envelope_to: str | None = None
    reasons: tuple[OverrideReason, ...] = ()
    dkim_auth: tuple[DkimAuth, ...] = ()
    spf_auth: tuple[SpfAuth, ...] = ()  # RFC 9990: at most one; RFC 7489: one or more


@dataclass(frozen=True, slots=True)
class AggregateReport:
    org_name: str
    email: str
    report_id: str
    begin: int  # seconds since the epoch
    end: int
    policy: PolicyPublished
    records: tuple[ReportRecord, ...]
    extra_contact_info: str | None = None
    errors: tuple[str, ...] = ()
    generator: str | None = None
    version: str | None = "1.0"


def _q(name: str) -> str:
    return f"{{{NAMESPACE}}}{name}"


def _add(parent: ET.Element, name: str, text: object | None) -> ET.Element | None:
    if text is None:
        return None
    child = ET.SubElement(parent, _q(name))
    child.text = str(text)
    return child


def render(report: AggregateReport) -> bytes:
    """The report as an RFC 9990 XML document (UTF-8, with declaration)."""
    if not report.records:
        raise ValueError("RFC 9990 §3.1.1.2: a report has at least one record")
    root = ET.Element(_q("feedback"))
    _add(root, "version", report.version)
    meta = ET.SubElement(root, _q("report_metadata"))
    _add(meta, "org_name", report.org_name)
    _add(meta, "email", report.email)
    _add(meta, "extra_contact_info", report.extra_contact_info)
    _add(meta, "report_id", report.report_id)
    dates = ET.SubElement(meta, _q("date_range"))
    _add(dates, "begin", report.begin)
    _add(dates, "end", report.end)
    # RFC 9990 §3.1.1.3 table: "error" appears at most once.
    _add(meta, "error", "; ".join(report.errors) if report.errors else None)
    _add(meta, "generator", report.generator)
    pol = report.policy
    published = ET.SubElement(root, _q("policy_published"))
    for name in ("domain", "discovery_method", "p", "sp", "np", "fo", "adkim", "aspf",
                 "testing"):
        _add(published, name, getattr(pol, name))
    for rec in report.records:
        _render_record(ET.SubElement(root, _q("record")), rec)
    ET.indent(root)
    out = ET.tostring(root, encoding="UTF-8", xml_declaration=True,
                      default_namespace=NAMESPACE)
    assert isinstance(out, bytes)
    return out + b"\n"


def _render_record(node: ET.Element, rec: ReportRecord) -> None:
    row = ET.SubElement(node, _q("row"))
    _add(row, "source_ip", rec.source_ip)
    _add(row, "count", rec.count)
    evaluated = ET.SubElement(row, _q("policy_evaluated"))
    _add(evaluated, "disposition", rec.disposition)
    _add(evaluated, "dkim", rec.dkim)
    _add(evaluated, "spf", rec.spf)
    for reason in rec.reasons:
        elem = ET.SubElement(evaluated, _q("reason"))
        _add(elem, "type", reason.type)
        _add(elem, "comment", reason.comment)
    ids = ET.SubElement(node, _q("identifiers"))
    _add(ids, "header_from", rec.header_from)
    _add(ids, "envelope_from", rec.envelope_from)
    _add(ids, "envelope_to", rec.envelope_to)
    auth = ET.SubElement(node, _q("auth_results"))
    for dkim in rec.dkim_auth:
        elem = ET.SubElement(auth, _q("dkim"))
        for name in ("domain", "selector", "result", "human_result"):
            _add(elem, name, getattr(dkim, name))
    for spf in rec.spf_auth[:1]:
        elem = ET.SubElement(auth, _q("spf"))
        for name in ("domain", "scope", "result", "human_result"):
            _add(elem, name, getattr(spf, name))


# -- reading ----------------------------------------------------------------------


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _children(node: ET.Element, name: str) -> list[ET.Element]:
    return [child for child in node if _local(child.tag) == name]


def _text(node: ET.Element | None, name: str) -> str | None:
    if node is None:
        return None
    found = _children(node, name)
    return (found[0].text or "").strip() if found else None


def _need(node: ET.Element | None, name: str) -> str:
    value = _text(node, name)
    if value is None:
        where = _local(node.tag) if node is not None else "report"
        raise ReportParseError(f"{where}: missing <{name}>")
    return value


def _int(node: ET.Element | None, name: str) -> int:
    value = _need(node, name)
    try:
        return int(value)
    except ValueError:
        raise ReportParseError(f"<{name}> is not an integer: {value[:30]!r}") from None


def _one(node: ET.Element, name: str) -> ET.Element:
    found = _children(node, name)
    if not found:
        raise ReportParseError(f"{_local(node.tag)}: missing <{name}>")
    return found[0]


def parse(data: bytes) -> AggregateReport:
    """Read an aggregate report (RFC 9990, or RFC 7489 Appendix C)."""
    if len(data) > MAX_REPORT_BYTES:
        raise ReportParseError(f"report larger than {MAX_REPORT_BYTES} bytes")
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise ReportParseError("document type declarations are not accepted")
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise ReportParseError(f"not well-formed XML: {exc}") from None
    if _local(root.tag) != "feedback":
        raise ReportParseError(f"root element is <{_local(root.tag)}>, not <feedback>")
    meta = _one(root, "report_metadata")
    dates = _one(meta, "date_range")
    published = _one(root, "policy_published")
    pct = _text(published, "pct")
    policy = PolicyPublished(
        domain=_need(published, "domain"), p=_need(published, "p"),
        sp=_text(published, "sp"), np=_text(published, "np"),
        adkim=_text(published, "adkim"), aspf=_text(published, "aspf"),
        fo=_text(published, "fo"), testing=_text(published, "testing"),
        discovery_method=_text(published, "discovery_method"),
        pct=int(pct) if pct is not None and pct.isdigit() else None)
    return AggregateReport(
        org_name=_need(meta, "org_name"), email=_need(meta, "email"),
        report_id=_need(meta, "report_id"), begin=_int(dates, "begin"),
        end=_int(dates, "end"), policy=policy,
        records=tuple(_parse_record(node) for node in _children(root, "record")),
        extra_contact_info=_text(meta, "extra_contact_info"),
        errors=tuple(e.text.strip() for e in _children(meta, "error") if e.text),
        generator=_text(meta, "generator"), version=_text(root, "version"))


def _parse_record(node: ET.Element) -> ReportRecord:
    row = _one(node, "row")
    evaluated = _one(row, "policy_evaluated")
    ids = _one(node, "identifiers")
    auth = _children(node, "auth_results")
    auth_node = auth[0] if auth else None
    return ReportRecord(
        source_ip=_need(row, "source_ip"), count=_int(row, "count"),
        disposition=_need(evaluated, "disposition"), dkim=_need(evaluated, "dkim"),
        spf=_need(evaluated, "spf"), header_from=_need(ids, "header_from"),
        envelope_from=_text(ids, "envelope_from"), envelope_to=_text(ids, "envelope_to"),
        reasons=tuple(OverrideReason(_need(r, "type"), _text(r, "comment"))
                      for r in _children(evaluated, "reason")),
        dkim_auth=tuple(DkimAuth(_need(d, "domain"), _text(d, "selector") or "",
                                 _need(d, "result"), _text(d, "human_result"))
                        for d in (_children(auth_node, "dkim") if auth_node is not None else [])),
        spf_auth=tuple(SpfAuth(_need(s, "domain"), _need(s, "result"), _text(s, "scope"),
                               _text(s, "human_result"))
                       for s in (_children(auth_node, "spf") if auth_node is not None else [])))
