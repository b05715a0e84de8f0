"""Stalwart's DMARC aggregate reports (``stalwart-mail-auth/dmarc-feedback/``): five
XML reports and five report e-mails (zip or gzip attachments), read with mailseal's
report parser and compared with Stalwart's own parse (the ``.json`` twins: a
reference for values, not a format; its enum words are capitalized)."""

from __future__ import annotations

import email
import email.policy
import gzip
import io
import zipfile
from pathlib import Path
from typing import Any

import pytest
from conformance.support import load_json, suite_dir

from mailseal.dmarc.reportxml import AggregateReport, parse

SUITE = suite_dir("stalwart-mail-auth") / "dmarc-feedback"
FILES = sorted(p for p in SUITE.iterdir() if p.suffix in (".xml", ".eml"))


def attachment(path: Path) -> bytes:
    """The report XML inside a report e-mail (RFC 9990 §3.2.2: gzip; zip in practice)."""
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    for part in message.walk():
        name = part.get_filename() or ""
        if name.endswith((".zip", ".gz", ".xml")):
            data = part.get_payload(decode=True)
            assert isinstance(data, bytes)
            if name.endswith(".zip"):
                with zipfile.ZipFile(io.BytesIO(data)) as archive:
                    return archive.read(archive.namelist()[0])
            return gzip.decompress(data) if name.endswith(".gz") else data
    raise AssertionError(f"{path.name}: no report attachment")


def lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_report(path: Path) -> None:
    data = path.read_bytes() if path.suffix == ".xml" else attachment(path)
    report: AggregateReport = parse(data)
    ref = load_json(path.with_suffix(".json"))
    meta, published = ref["report_metadata"], ref["policy_published"]
    assert (report.org_name, report.email, report.report_id) == (
        meta["org_name"], meta["email"], meta["report_id"])
    assert (report.begin, report.end) == (meta["date_range"]["begin"], meta["date_range"]["end"])
    assert report.policy.domain == published["domain"]
    assert report.policy.p == lower(published["p"])
    assert len(report.records) == len(ref["record"])
    for ours, theirs in zip(report.records, ref["record"], strict=True):
        row = theirs["row"]
        evaluated = row["policy_evaluated"]
        assert (ours.source_ip, ours.count) == (row["source_ip"], row["count"])
        assert (ours.disposition, ours.dkim, ours.spf) == (
            lower(evaluated["disposition"]), lower(evaluated["dkim"]), lower(evaluated["spf"]))
        assert [r.comment for r in ours.reasons] == [r["comment"] for r in evaluated["reason"]]
        assert ours.header_from == theirs["identifiers"]["header_from"]
        if theirs["identifiers"]["envelope_from"]:
            assert ours.envelope_from == theirs["identifiers"]["envelope_from"]
        auth = theirs["auth_results"]
        assert [(d.domain, d.selector, d.result) for d in ours.dkim_auth] == [
            (d["domain"], d["selector"] or "", lower(d["result"])) for d in auth["dkim"]]
        assert [(s.domain, s.result) for s in ours.spf_auth] == [
            (s["domain"], lower(s["result"])) for s in auth["spf"]]


def test_all_reports_are_read() -> None:
    assert len(FILES) == 10
