"""Aggregate reporting data: every DMARC evaluation kept in SQLite, and the RFC 9990
report for one Policy Domain and period built from them.

RFC 9989 §5.3.7: results "MUST be preserved for eventual presentation back to the
Domain Owner". :func:`evaluation` turns a :class:`~mailseal.dmarc.evaluate.DmarcResult`
and the message's envelope into a row (pure); :class:`ReportStore` keeps rows in a
SQLite file (safe to share between threads; WAL, so ``mailseal dmarc report`` can
read while a daemon writes); :func:`aggregate` groups rows into report records
(pure). Rendering the XML is ``reportxml.render``.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from types import TracebackType
from typing import Any

from mailseal.dmarc.evaluate import DmarcResult, Override
from mailseal.dmarc.record import AlignmentMode, Mode
from mailseal.dmarc.reportxml import (
    AggregateReport,
    DkimAuth,
    OverrideReason,
    PolicyPublished,
    ReportRecord,
    SpfAuth,
)
from mailseal.results import Result

#: RFC 9990 §3.1.3: "no more than 100 signatures for a given row".
MAX_DKIM_PER_ROW = 100
#: Bound on the distinct error texts carried in one report's metadata.
MAX_REPORT_ERRORS = 20
SCHEMA_VERSION = 1


@dataclass(frozen=True, slots=True)
class Evaluation:
    """One message's DMARC evaluation for one Author Domain, as stored."""

    time: int  # seconds since the epoch
    source_ip: str
    header_from: str
    result: str  # pass fail none temperror permerror
    policy_domain: str | None  # None: no record applied (nothing to report)
    policy: PolicyPublished | None
    disposition: str  # what was done: none / pass / quarantine / reject
    dkim_aligned: bool
    spf_aligned: bool
    envelope_from: str | None = None  # MAIL FROM domain ("" for the null reverse-path)
    envelope_to: str | None = None  # a RCPT TO domain
    reasons: tuple[OverrideReason, ...] = ()
    dkim: tuple[DkimAuth, ...] = ()  # every DKIM signature checked
    spf: SpfAuth | None = None  # the MAIL FROM SPF result
    errors: tuple[str, ...] = ()  # problems in the policy record


def evaluation(result: DmarcResult, *, time: int, source_ip: str,
               envelope_from: str | None = None, envelope_to: str | None = None,
               dkim: Sequence[DkimAuth] = (), spf: SpfAuth | None = None,
               disposition: str | None = None,
               reasons: Sequence[OverrideReason] = ()) -> Evaluation:
    """The row for ``result``. ``dkim``/``spf``: the DKIM and SPF results as checked,
    uninterpreted (RFC 9990 §3.1.1.14). ``disposition``: what the receiver did when
    that differs from what DMARC asked (then give ``reasons``, RFC 9990 §3.1.1.12:
    e.g. ``local_policy`` while enforcement is off, ``trusted_forwarder``)."""
    record = result.record
    policy = None
    if record is not None and record.p is not None and result.policy_domain:
        policy = PolicyPublished(
            domain=result.policy_domain, p=record.p.value,
            sp=record.sp.value if record.sp else None,
            np=record.np.value if record.np and result.mode is Mode.RFC9989 else None,
            adkim=record.adkim.value, aspf=record.aspf.value, fo=":".join(record.fo),
            testing=("y" if record.t else "n") if result.mode is Mode.RFC9989 else None,
            discovery_method="treewalk" if result.mode is Mode.RFC9989 else "psl")
    why = list(reasons)
    if result.override is not None:
        auto = _override_reason(result)
        if all(r.type != auto.type for r in why):
            why.insert(0, auto)
    return Evaluation(
        time=time, source_ip=source_ip, header_from=result.header_from,
        result=result.result.value, policy_domain=result.policy_domain if policy else None,
        policy=policy, disposition=disposition or result.disposition,
        dkim_aligned=result.dkim_aligned, spf_aligned=result.spf_aligned,
        envelope_from=envelope_from, envelope_to=envelope_to, reasons=tuple(why),
        dkim=tuple(_by_priority(result, dkim)), spf=spf,
        errors=tuple(str(e) for e in record.errors) if record else ())


def _override_reason(result: DmarcResult) -> OverrideReason:
    if result.override is Override.POLICY_TEST_MODE:
        return OverrideReason("policy_test_mode", "t=y")
    pct = result.record.pct if result.record else 100
    # RFC 9990 dropped "sampled_out" with pct; "other" with a comment says it.
    return OverrideReason("other", f"sampled out (pct={pct})")


def _by_priority(result: DmarcResult, dkim: Sequence[DkimAuth]) -> list[DkimAuth]:
    """RFC 9990 §3.1.3: strict-aligned passes, relaxed-aligned passes, other passes,
    then failures; at most 100."""
    aligned = {a.domain: a.mode for a in result.alignments if a.method == "dkim" and a.aligned}
    author = result.header_from

    def rank(d: DkimAuth) -> int:
        if d.result != "pass":
            return 3
        name = d.domain.lower().rstrip(".")
        if name == author:
            return 0
        if name in aligned:
            return 0 if aligned[name] is AlignmentMode.STRICT else 1
        return 2

    return sorted(dkim, key=rank)[:MAX_DKIM_PER_ROW]


def _to_json(ev: Evaluation) -> str:
    return json.dumps(asdict(ev), separators=(",", ":"), sort_keys=True)


def _from_json(text: str) -> Evaluation:
    data: dict[str, Any] = json.loads(text)
    data["policy"] = PolicyPublished(**data["policy"]) if data["policy"] else None
    data["reasons"] = tuple(OverrideReason(**r) for r in data["reasons"])
    data["dkim"] = tuple(DkimAuth(**d) for d in data["dkim"])
    data["spf"] = SpfAuth(**data["spf"]) if data["spf"] else None
    data["errors"] = tuple(data["errors"])
    return Evaluation(**data)


class ReportStore:
    """Evaluations in a SQLite file (created if absent). One connection, guarded by
    a lock: callable from any thread (``asyncio.to_thread`` in the pipeline)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=10.0)
        try:
            with self._db:
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute(
                    "CREATE TABLE IF NOT EXISTS evaluations ("
                    " id INTEGER PRIMARY KEY, time INTEGER NOT NULL, policy_domain TEXT,"
                    " header_from TEXT NOT NULL, result TEXT NOT NULL, data TEXT NOT NULL)")
                self._db.execute("CREATE INDEX IF NOT EXISTS evaluations_domain_time"
                                 " ON evaluations (policy_domain, time)")
                self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except sqlite3.Error:
            self._db.close()
            raise

    def record(self, ev: Evaluation) -> None:
        with self._lock, self._db:
            self._db.execute(
                "INSERT INTO evaluations (time, policy_domain, header_from, result, data)"
                " VALUES (?, ?, ?, ?, ?)",
                (ev.time, ev.policy_domain, ev.header_from, ev.result, _to_json(ev)))

    def evaluations(self, policy_domain: str, begin: int, end: int) -> list[Evaluation]:
        """Rows for ``policy_domain`` with ``begin <= time < end``, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT data FROM evaluations WHERE policy_domain = ? AND time >= ?"
                " AND time < ? ORDER BY time, id",
                (policy_domain.lower().rstrip("."), begin, end)).fetchall()
        return [_from_json(row[0]) for row in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> ReportStore:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def aggregate(evaluations: Iterable[Evaluation], *, policy_domain: str, begin: int, end: int,
              org_name: str, email: str, report_id: str | None = None,
              extra_contact_info: str | None = None,
              generator: str | None = None) -> AggregateReport | None:
    """The RFC 9990 report for one Policy Domain (§3.1.2: one per report), or None
    when no evaluation in the period had a pass or fail to report.

    Identical outcomes from one source IP become one record with a count (§3.1.1.8).
    ``policy_published`` is the last configuration seen in the period (§3.1: "SHOULD
    note only the final configuration observed").
    """
    domain = policy_domain.lower().rstrip(".")
    counts: dict[tuple[Any, ...], int] = {}
    policy: PolicyPublished | None = None
    errors: list[str] = []
    for ev in evaluations:
        if (ev.policy_domain != domain or ev.policy is None or not begin <= ev.time < end
                or ev.result not in (Result.PASS.value, Result.FAIL.value)):
            continue
        policy = ev.policy
        for error in ev.errors:
            if error not in errors and len(errors) < MAX_REPORT_ERRORS:
                errors.append(error)
        key = (ev.source_ip, ev.disposition, "pass" if ev.dkim_aligned else "fail",
               "pass" if ev.spf_aligned else "fail", ev.header_from, ev.envelope_from,
               ev.envelope_to, ev.reasons, ev.dkim, (ev.spf,) if ev.spf else ())
        counts[key] = counts.get(key, 0) + 1
    if policy is None:
        return None
    records = tuple(
        ReportRecord(source_ip=k[0], count=n, disposition=k[1], dkim=k[2], spf=k[3],
                     header_from=k[4], envelope_from=k[5], envelope_to=k[6], reasons=k[7],
                     dkim_auth=k[8], spf_auth=k[9])
        for k, n in counts.items())
    return AggregateReport(
        org_name=org_name, email=email,
        report_id=report_id or f"{domain}.{begin}.{end}", begin=begin, end=end,
        policy=policy, records=records, extra_contact_info=extra_contact_info,
        errors=tuple(errors), generator=generator)
