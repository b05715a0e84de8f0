"""Aggregate reporting: evaluations in SQLite, grouping, RFC 9990 XML valid against
the schema (tests/data/dmarc-aggregate-2.0.xsd, see its header for the source), the
parser, and ``mailseal dmarc report``."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import xmlschema

from mailseal.dmarc.check import check_dmarc
from mailseal.dmarc.evaluate import DmarcResult
from mailseal.dmarc.record import Mode
from mailseal.dmarc.report import Evaluation, ReportStore, aggregate, evaluation
from mailseal.dmarc.reportxml import (
    NAMESPACE,
    AggregateReport,
    DkimAuth,
    OverrideReason,
    ReportParseError,
    SpfAuth,
    parse,
    render,
)
from mailseal.frontends.cli.main import main

XSD = Path(__file__).resolve().parents[2] / "data" / "dmarc-aggregate-2.0.xsd"
Table = Callable[[Mapping[str, Any]], Any]
DAY = 1793491200  # 2026-11-01T00:00:00Z


@pytest.fixture(scope="module")
def schema() -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(str(XSD))


def result(table: Table, record: str, author: str, dkim: Sequence[str] = (),
           mode: Mode = Mode.RFC9989) -> DmarcResult:
    zone = {"_dmarc.example.com": [record.encode()]}
    return asyncio.run(check_dmarc(author, table(zone), dkim_domains=dkim, mode=mode))


def sample_evaluations(table: Table) -> list[Evaluation]:
    passing = result(table, "v=DMARC1; p=reject; rua=mailto:d@example.com", "example.com",
                     ["example.com"])
    failing = result(table, "v=DMARC1; p=reject; t=y; adkim=bogus", "mail.example.com")
    dkim = (DkimAuth("other.example", "s2", "pass"), DkimAuth("example.com", "s1", "pass"),
            DkimAuth("example.com", "old", "fail", "body hash did not verify"))
    spf = SpfAuth("example.com", "pass")
    rows = [evaluation(passing, time=DAY + 10 * i, source_ip="192.0.2.1",
                       envelope_from="example.com", dkim=dkim, spf=spf) for i in range(3)]
    rows.append(evaluation(failing, time=DAY + 100, source_ip="2001:db8::25",
                           envelope_from="", envelope_to="example.net",
                           spf=SpfAuth("mail.example.com", "fail", human_result="no match")))
    rows.append(evaluation(failing, time=DAY + 200, source_ip="198.51.100.7",
                           disposition="none",
                           reasons=[OverrideReason("local_policy", "enforcement is off")]))
    return rows


def test_evaluation_row(table: Table) -> None:
    rows = sample_evaluations(table)
    assert rows[0].disposition == "pass" and rows[0].dkim_aligned
    # RFC 9990 §3.1.3 order: aligned passes first, then other passes, then failures.
    assert [d.selector for d in rows[0].dkim] == ["s1", "s2", "old"]
    assert rows[3].disposition == "quarantine"  # t=y: one level below reject
    assert rows[3].reasons == (OverrideReason("policy_test_mode", "t=y"),)
    assert rows[3].errors and rows[3].policy is not None and rows[3].policy.testing == "y"
    assert [r.type for r in rows[4].reasons] == ["policy_test_mode", "local_policy"]
    assert rows[4].disposition == "none"


def test_store_round_trip_and_period(table: Table, tmp_path: Path) -> None:
    rows = sample_evaluations(table)
    none = evaluation(result(table, "v=DMARC1; p=none", "example.org"), time=DAY,
                      source_ip="192.0.2.9")
    with ReportStore(tmp_path / "dmarc.db") as store:
        for row in [*rows, none]:
            store.record(row)
        assert store.evaluations("Example.COM.", DAY, DAY + 86400) == rows
        assert store.evaluations("example.com", DAY + 11, DAY + 200) == rows[2:4]
        assert store.evaluations("example.org", 0, 2**40) == []  # no record: no domain


def test_store_from_threads(table: Table, tmp_path: Path) -> None:
    row = sample_evaluations(table)[0]
    with ReportStore(tmp_path / "dmarc.db") as store:

        def work() -> None:
            for _ in range(50):
                store.record(row)

        workers = [threading.Thread(target=work) for _ in range(4)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        assert len(store.evaluations("example.com", 0, 2**40)) == 200


def build(table: Table) -> AggregateReport:
    report = aggregate(sample_evaluations(table), policy_domain="example.com", begin=DAY,
                       end=DAY + 86400, org_name="mx.example.net", email="postmaster@example.net",
                       generator="mailseal test")
    assert report is not None
    return report


def test_aggregate_groups_identical_rows(table: Table) -> None:
    report = build(table)
    assert [(r.source_ip, r.count, r.disposition, r.dkim, r.spf) for r in report.records] == [
        ("192.0.2.1", 3, "pass", "pass", "fail"),
        ("2001:db8::25", 1, "quarantine", "fail", "fail"),
        ("198.51.100.7", 1, "none", "fail", "fail")]
    assert report.policy.domain == "example.com" and report.policy.testing == "y"
    assert report.report_id == f"example.com.{DAY}.{DAY + 86400}"
    assert any("adkim" in e for e in report.errors)
    assert aggregate([], policy_domain="example.com", begin=0, end=1, org_name="o",
                     email="e") is None


def test_xml_is_valid_against_the_schema(table: Table, schema: xmlschema.XMLSchema) -> None:
    xml = render(build(table))
    schema.validate(xml.decode())
    assert xml.startswith(b"<?xml") and NAMESPACE.encode() in xml


def test_xml_in_7489_mode_is_valid(table: Table, schema: xmlschema.XMLSchema) -> None:
    r = result(table, "v=DMARC1; p=reject; pct=50", "example.com", mode=Mode.RFC7489)
    row = evaluation(r, time=DAY, source_ip="192.0.2.1", dkim=(DkimAuth("x.example", "s",
                                                                         "fail"),))
    report = aggregate([row], policy_domain="example.com", begin=DAY, end=DAY + 1,
                       org_name="o", email="e@example.net")
    assert report is not None and report.policy.discovery_method == "psl"
    schema.validate(render(report).decode())


def test_parse_render_round_trip(table: Table) -> None:
    report = build(table)
    assert parse(render(report)) == report


@pytest.mark.parametrize("data", [
    b"", b"<feedback>", b"<other/>", b'<!DOCTYPE x [<!ENTITY a "b">]><feedback/>',
    b"<feedback><report_metadata/></feedback>",
])
def test_parse_rejects(data: bytes) -> None:
    with pytest.raises(ReportParseError):
        parse(data)


def test_render_needs_a_record(table: Table) -> None:
    with pytest.raises(ValueError):
        render(AggregateReport("o", "e", "r", 0, 1, build(table).policy, ()))


# -- the command line -------------------------------------------------------------------


def test_cli_report(table: Table, tmp_path: Path, capfdbinary: pytest.CaptureFixture[bytes],
                    schema: xmlschema.XMLSchema) -> None:
    db = tmp_path / "dmarc.db"
    with ReportStore(db) as store:
        for row in sample_evaluations(table):
            store.record(row)
    status = main(["dmarc", "report", "--db", str(db), "--domain", "example.com",
                   "--since", "2026-11-01", "--until", "2026-11-02T00:00:00Z",
                   "--org-name", "Example Receiver", "--email", "dmarc@example.net"])
    out = capfdbinary.readouterr().out
    assert status == 0
    schema.validate(out.decode())
    report = parse(out)
    assert (report.org_name, report.begin, report.end) == ("Example Receiver", DAY,
                                                           DAY + 86400)
    assert sum(r.count for r in report.records) == 5


def test_cli_report_empty_period(table: Table, tmp_path: Path,
                                 capfd: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "dmarc.db"
    ReportStore(db).close()
    assert main(["dmarc", "report", "--db", str(db), "--domain", "example.com",
                 "--since", "1793491200", "--until", "1793491300"]) == 1
    assert "no DMARC evaluations" in capfd.readouterr().err
    assert main(["dmarc", "report", "--db", str(db), "--domain", "example.com",
                 "--since", "yesterday"]) == 2
