"""dkimpy 1.1.8's test data (``dkim-dkimpy/``): pre-signed messages and sign→verify
round trips over every key encoding dkimpy's tests use. The ARC vectors of the same
folder are out of scope here (ARC has its own suite).

dkimpy reports a boolean, so its "fail" covers RFC 8601 ``fail`` and ``permerror``
alike; mailseal's exact result for each case is pinned in ``OURS``.
"""

from __future__ import annotations

from typing import Any

import dkim
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
from mailseal.api import sign_specs
from mailseal.dkim.keys import load_key
from mailseal.dkim.sign import SignError, SignSpec
from mailseal.message import split_message, to_crlf

SUITE = suite_dir("dkim-dkimpy")
CASES = load_json(SUITE / "cases.json")
ZONES = load_json(SUITE / "dns-zones.json")["zones"]

PASS = ("pass", "PASS")

#: mailseal's result per pre-signed case (file@zone), one per signature.
OURS: dict[str, list[tuple[str, str]]] = {
    "test2.message@test_dkim:dnsfunc": [PASS],
    "rfc6376.signed.msg@test_dkim:dnsfunc5": [PASS, PASS],
    # RFC 6376 §6.1.2: a key record that cannot be decoded is PERMFAIL (permerror).
    "rfc6376.signed.rsa.msg@test_dkim:dnsfunc6": [("permerror", "KEY_SYNTAX")],
    # The case's note: "with zone test_dkim:dnsfunc5 the same file passes".
    "rfc6376.signed.rsa.msg@test_dkim:dnsfunc5": [PASS],
    "rfc6376.signed.no_t.msg@test_dkim:dnsfunc5": [("fail", "SIGNATURE_MISMATCH")],
    # RFC 6376 §3.5: d= is a domain-name; §6.1.1: a malformed signature is PERMFAIL.
    "test.message.baddomain@test_dkim:dnsfunc7": [("permerror", "SYNTAX")],
    "ed25519test2.msg@test_dkim_ed25519:dnsfunc": [PASS],
}

#: mailseal's result for the sign→verify cases dkimpy expects to fail (by zone).
SIGN_FAILS: dict[str, tuple[str, str]] = {
    # "v=DKIM1:" — RFC 6376 §3.6.1: v= must be "DKIM1"; the record is unusable.
    "test_dkim:dnsfunc3": ("permerror", "KEY_SYNTAX"),
    # k=ed25519-sha256 — RFC 6376 §3.6.1 / RFC 8463 §4.2: not a key type.
    "test_dkim:dnsfunc4": ("permerror", "KEY_SYNTAX"),
    # s=tlsrpt — RFC 6376 §3.6.1: the service type must include "email" or "*".
    "test_dkim_tlsrpt:dnsfunc6": ("permerror", "KEY_SERVICE"),
}


def zone_records(zone: str) -> dict[str, list[str]]:
    records = {}
    for name, rec in ZONES[zone].items():
        value = rec["txt"] if "txt" in rec else (SUITE / rec["txt_from_file"]).read_text()
        records[name] = [value.removesuffix("\n")]
    return records


@pytest.fixture(scope="module")
def serve(serve_zones: ServeZones) -> Any:
    return lambda zone: serve_zones(root_zone(zone_records(zone)))


def read_message(path: str) -> bytes:
    # The README: most files use LF; convert to CRLF (as dkimpy's tests do).
    return to_crlf((SUITE / path).read_bytes())


PRESIGNED = [*CASES["verify_presigned"],
             {"file": "data/rfc6376.signed.rsa.msg", "zone": "test_dkim:dnsfunc5",
              "expect": ["pass"]}]


def _presigned_id(case: dict[str, Any]) -> str:
    return f"{case['file'].removeprefix('data/')}@{case['zone']}"


@pytest.mark.parametrize("case", PRESIGNED, ids=_presigned_id)
def test_verify_presigned(case: dict[str, Any], serve: Any) -> None:
    server: ZoneServer = serve(case["zone"])
    message = read_message(case["file"])
    before = sum(server.queries.values())
    results = mailseal.verify(message, dns=resolver(server))
    queries = sum(server.queries.values()) - before
    assert verdicts(results) == OURS[_presigned_id(case)]
    assert [r == PASS for r in verdicts(results)] == [e == "pass" for e in case["expect"]]
    assert dkimpy_verify(message, server, len(case["expect"])) == [
        e == "pass" for e in case["expect"]]
    if "baddomain" in case["file"]:
        assert queries == 0  # rejected before any DNS query, as the case requires


def _expand(cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for case in cases:
        for canon in case.get("canon", [None]):
            out.append({**case, "canon": canon})
    return out


SIGN_CASES = _expand(CASES["sign_then_verify"])


def _sign_id(case: dict[str, Any]) -> str:
    parts = [case["input"].removeprefix("data/"), case["key"].removeprefix("data/"),
             f"{case['s']}.{case['d']}"]
    if case["canon"]:
        parts.append(case["canon"])
    if "zone" in case:
        parts.append(case["zone"])
    return "-".join(parts)


def _spec(case: dict[str, Any], message: bytes) -> SignSpec:
    headers = None
    if case["input"].endswith("message.mbox"):
        # "all headers signed" (launchpad bug 737311): every field name present.
        fields, _ = split_message(message)
        headers = tuple(dict.fromkeys(f.lname.decode() for f in fields))
    return SignSpec(domain=case["d"], selector=case["s"],
                    key=load_key(SUITE / case["key"], check_mode=False),
                    algorithm=case.get("a", ""),
                    canonicalization=case["canon"] or "relaxed/simple", headers=headers)


def _own_signatures(case: dict[str, Any]) -> list[tuple[str, str]]:
    """Results for the signatures the input already carries: message.mbox has one by
    d=kitterman.com, whose key the zone does not hold (RFC 6376 §6.1.2: NXDOMAIN is
    PERMFAIL, no key for signature)."""
    return [("permerror", "KEY_NOT_FOUND")] if case["input"].endswith("message.mbox") else []


@pytest.mark.parametrize("case", SIGN_CASES, ids=_sign_id)
def test_sign_then_verify(case: dict[str, Any], serve: Any) -> None:
    """mailseal signs; mailseal and dkimpy verify against the case's zone."""
    message = read_message(case["input"])
    if case["expect"] == "signing error":
        with pytest.raises(SignError, match="no From"):
            sign_specs(message, [_spec(case, message)])
        return
    server: ZoneServer = serve(case["zone"])
    signed = sign_specs(message, [_spec(case, message)])[0] + message
    results = mailseal.verify(signed, dns=resolver(server))
    want = PASS if case["expect"] == "pass" else SIGN_FAILS[case["zone"]]
    assert verdicts(results) == [want, *_own_signatures(case)]
    assert dkimpy_verify(signed, server, 1) == [case["expect"] == "pass"]


@pytest.mark.parametrize("case", [c for c in SIGN_CASES if c["expect"] == "pass"], ids=_sign_id)
def test_dkimpy_signs_mailseal_verifies(case: dict[str, Any], serve: Any) -> None:
    """The other direction: dkimpy signs the same input with the same key."""
    message = read_message(case["input"])
    server: ZoneServer = serve(case["zone"])
    canon = (case["canon"] or "relaxed/simple").split("/")
    signer = dkim.DKIM(message, signature_algorithm=case.get("a", "rsa-sha256").encode())
    include = None
    if case["input"].endswith("message.mbox"):
        # As dkimpy's own test for bug 737311: every field, Received included.
        signer.should_not_sign.discard(b"received")
        include = signer.all_sign_headers()
    field = signer.sign(case["s"].encode(), case["d"].encode(),
                        (SUITE / case["key"]).read_bytes(),
                        canonicalize=(canon[0].encode(), canon[1].encode()),
                        include_headers=include)
    results = mailseal.verify(field + message, dns=resolver(server))
    assert verdicts(results) == [PASS, *_own_signatures(case)]
