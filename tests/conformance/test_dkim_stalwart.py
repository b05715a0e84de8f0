"""Stalwart mail-auth's DKIM files (``stalwart-mail-auth/dkim/``) and the DKIM
signatures of its ARC message ``arc/001.txt`` (the ARC chain itself is out of scope).

Each file is DNS lines ("name value"), an empty line, then the message with LF line
endings. Stalwart's test verifies every file at one clock, ``verification_time_unix``.
"""

from __future__ import annotations

import asyncio
import io
from pathlib import Path
from typing import Any

import pytest
from conformance.support import (
    ServeZones,
    dkimpy_verify,
    load_json,
    resolver,
    root_zone,
    suite_dir,
    verdicts,
)
from dnsserver import ZoneServer

import mailseal
from mailseal.api import verify_file
from mailseal.message import to_crlf

SUITE = suite_dir("stalwart-mail-auth")
EXPECTED = load_json(SUITE / "expected.json")
CLOCK = EXPECTED["dkim"]["verification_time_unix"]
PASS = ("pass", "PASS")

#: Where mailseal disagrees with Stalwart: file → (mailseal's results at the suite's
#: clock, why, a clock at which mailseal's result is pass).
DISAGREEMENTS: dict[str, tuple[list[tuple[str, str]], str, int]] = {
    "dkim/004.txt": (
        [("permerror", "FUTURE_TIMESTAMP")],
        "t=1667862801 is 19137 s after the suite's single clock (1667843664). RFC 6376 "
        "§3.5 (t=): 'Implementations MAY ignore signatures that have a timestamp in the "
        "future'; mailseal does, beyond VerifyPolicy.clock_skew (300 s). Stalwart's test "
        "passes it at that clock, so Stalwart accepts a t= 5 h ahead.",
        1667862801,
    ),
}


def read_case(path: Path, *, crlf: bool = True) -> tuple[dict[str, list[str]], bytes]:
    """(TXT records by name, message): split at the first empty line (README); the
    message's LF line endings are made CRLF unless ``crlf`` is false."""
    dns_part, _, message = path.read_bytes().partition(b"\n\n")
    records: dict[str, list[str]] = {}
    for line in dns_part.decode("ascii").splitlines():
        name, _, value = line.partition(" ")
        records.setdefault(name, []).append(value)
    return records, to_crlf(message) if crlf else message


def _id(case: dict[str, Any]) -> str:
    return str(case["file"])


@pytest.mark.parametrize("case", EXPECTED["dkim"]["cases"], ids=_id)
def test_verify(case: dict[str, Any], serve_zones: ServeZones) -> None:
    records, message = read_case(SUITE / case["file"])
    server: ZoneServer = serve_zones(root_zone(records))
    results = mailseal.verify(message, dns=resolver(server), now=CLOCK)
    sigs = case["signatures"]
    assert case["expect"] == "pass (all signatures)"
    assert [(r.domain, r.selector, r.algorithm) for r in results] == [
        (s["d"], s["s"], s["a"]) for s in sigs]
    if case["file"] in DISAGREEMENTS:
        ours, _why, passes_at = DISAGREEMENTS[case["file"]]
        assert verdicts(results) == ours
        again = mailseal.verify(message, dns=resolver(server), now=passes_at)
        assert verdicts(again) == [PASS] * len(sigs)
    else:
        assert verdicts(results) == [PASS] * len(sigs)
    # The streaming path (as the milter feeds it): the LF file in 7-byte chunks.
    _, raw = read_case(SUITE / case["file"], crlf=False)
    streamed = asyncio.run(verify_file(io.BytesIO(raw), dns=resolver(server), now=CLOCK,
                                       chunk_size=7))
    assert verdicts(streamed) == verdicts(results)
    # dkimpy has no clock parameter: at today's date 005 (x=1667930064) is expired.
    expired = case["file"] == "dkim/005.txt"
    assert dkimpy_verify(message, server, len(sigs)) == [not expired] * len(sigs)


def test_expired_with_todays_clock(serve_zones: ServeZones) -> None:
    """005 carries x=1667930064: "expired" with today's clock (README). RFC 6376 §3.5
    (x=): signatures MAY be considered invalid past the expiration; mailseal: permerror."""
    records, message = read_case(SUITE / "dkim/005.txt")
    results = mailseal.verify(message, dns=resolver(serve_zones(root_zone(records))))
    assert verdicts(results) == [("permerror", "EXPIRED")]


def test_dkim_signatures_of_arc_message(serve_zones: ServeZones) -> None:
    """arc/001.txt: 'ARC pass; 2 of the 3 DKIM signatures pass (the stalw.art one
    fails: body changed in transit)'. No x= tags, so today's clock, as Stalwart's test."""
    case = EXPECTED["arc"]["cases"][0]
    assert case["file"] == "arc/001.txt" and case["expect_some_dkim"] == "pass"
    records, message = read_case(SUITE / case["file"])
    server = serve_zones(root_zone(records))
    results = mailseal.verify(message, dns=resolver(server))
    assert [(r.domain, *v) for r, v in zip(results, verdicts(results), strict=True)] == [
        ("ietf.org", *PASS), ("ietf.org", *PASS), ("stalw.art", "fail", "BODY_HASH_MISMATCH")]
    assert dkimpy_verify(message, server, 3) == [True, True, False]
