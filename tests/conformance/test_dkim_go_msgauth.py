"""go-msgauth's DKIM vectors (``dkim-go-msgauth/``): four verification files and two
byte-exact signing outputs (rsa-sha256 and ed25519-sha256, t=424242)."""

from __future__ import annotations

import base64
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
from mailseal.api import sign_specs
from mailseal.dkim.crypto import sign_digest
from mailseal.dkim.headers import header_digest
from mailseal.dkim.keys import load_key
from mailseal.dkim.sign import SignSpec
from mailseal.dkim.signature import Signature, parse_signature
from mailseal.dkim.verify import VerifyPolicy
from mailseal.message import HeaderField, split_message
from mailseal.tagvalue import parse_tag_list

SUITE = suite_dir("dkim-go-msgauth")
CASES = load_json(SUITE / "cases.json")
DNS = load_json(SUITE / "dns.json")["TXT"]


@pytest.fixture(scope="module")
def server(serve_zones: ServeZones) -> ZoneServer:
    return serve_zones(root_zone(DNS))


def signatures(message: bytes) -> list[Signature]:
    fields, _ = split_message(message)
    parsed = [parse_signature(f, i) for i, f in enumerate(fields)
              if f.lname == b"dkim-signature"]
    assert all(isinstance(s, Signature) for s in parsed)
    return [s for s in parsed if isinstance(s, Signature)]


def _case_id(case: dict[str, Any]) -> str:
    return str(case["file"]).removeprefix("verify-").removesuffix(".eml")


@pytest.mark.parametrize("case", CASES["verify"], ids=_case_id)
def test_verify(case: dict[str, Any], server: ZoneServer) -> None:
    message = (SUITE / case["file"]).read_bytes()
    expected = case["signatures"]
    # "fail with this dns.json (...)": the first word is the result.
    want = [s["result"].split()[0] for s in expected]
    results = mailseal.verify(message, dns=resolver(server))
    assert [r.result.value for r in results] == want, verdicts(results)
    assert dkimpy_verify(message, server, len(want)) == [w == "pass" for w in want]
    # The signature fields as go-msgauth's tests read them.
    for sig, result, exp in zip(signatures(message), results, expected, strict=True):
        assert (result.domain, result.selector) == (exp["d"], exp["s"])
        if "a" in exp:
            assert result.algorithm == exp["a"]
        if "c" in exp:
            assert f"{sig.c[0]}/{sig.c[1]}" == exp["c"]
        if "auid" in exp:
            assert result.identity == exp["auid"]
        if "t" in exp:
            assert sig.t == exp["t"]
        if "signed_headers" in exp:
            assert list(sig.h) == exp["signed_headers"]


def test_too_many_signatures_capped_like_go_msgauth(server: ZoneServer) -> None:
    """go-msgauth stops after MaxVerifications (2) signatures. That is a local policy
    (RFC 6376 §6.1 lets a verifier limit the signatures it checks); mailseal's default
    cap is 8, so above all 3 pass; with the cap set to 2, the third is not evaluated."""
    message = (SUITE / "verify-too-many-signatures.eml").read_bytes()
    capped = mailseal.verify(message, dns=resolver(server),
                             policy=VerifyPolicy(max_signatures=2))
    assert verdicts(capped) == [("pass", "PASS")] * 2


def _sign_id(case: dict[str, Any]) -> str:
    return str(case["options"]["a"])


def _tags(field: HeaderField) -> dict[str, str]:
    return parse_tag_list(field.value)


@pytest.mark.parametrize("case", CASES["sign"], ids=_sign_id)
def test_signing_vector(case: dict[str, Any], server: ZoneServer) -> None:
    """The expected output verifies; mailseal's own signature over the same input has
    the same bh= and h= (plus From oversigned, mailseal's fixed policy); and signing the
    expected field's exact layout with mailseal's primitives gives go-msgauth's b=."""
    opts = case["options"]
    message = (SUITE / case["input"]).read_bytes()
    expected_msg = (SUITE / case["expected_output"]).read_bytes()
    key = load_key(SUITE / case["key"], check_mode=False)

    # 1. The expected file verifies, with both verifiers.
    assert verdicts(mailseal.verify(expected_msg, dns=resolver(server))) == [("pass", "PASS")]
    assert dkimpy_verify(expected_msg, server, 1) == [True]

    # 2. mailseal signs the input: same body hash, same header list (case-folded)
    #    except that mailseal always oversigns From (RFC 6376 §8.15).
    spec = SignSpec(domain=opts["d"], selector=opts["s"], key=key, algorithm=opts["a"],
                    canonicalization=opts["c"], headers=tuple(opts["h"].split(":")))
    ours = sign_specs(message, [spec], now=opts["t"])[0]
    ours_fields, _ = split_message(ours + message)
    expected_fields, _ = split_message(expected_msg)
    ours_tags, exp_tags = _tags(ours_fields[0]), _tags(expected_fields[0])
    assert ours_tags["bh"] == exp_tags["bh"]
    assert (ours_tags["a"], ours_tags["c"], ours_tags["d"], ours_tags["s"], ours_tags["t"]) == (
        exp_tags["a"], exp_tags["c"], exp_tags["d"], exp_tags["s"], exp_tags["t"])
    ours_h = ours_tags["h"].lower().split(":")
    ours_h.remove("from")  # the oversigning entry
    assert ours_h == exp_tags["h"].lower().split(":")
    assert verdicts(mailseal.verify(ours + message, dns=resolver(server))) == [("pass", "PASS")]
    assert dkimpy_verify(ours + message, server, 1) == [True]

    # 3. Byte-exact b=: mailseal's Signer cannot emit go-msgauth's layout (tag order
    #    a, bh, c, d, h, s, t, v, b and its folding), so sign that exact field (b=
    #    emptied, RFC 6376 §3.7) with mailseal's canonicalization, hash and key code.
    (sig,) = signatures(expected_msg)
    input_fields, _ = split_message(message)
    digest = header_digest(input_fields, sig.h, sig.c[0], sig.hash_name, sig.b_stripped_field())
    assert base64.b64encode(sign_digest(key.private, sig.hash_name, digest)).decode() == (
        "".join(exp_tags["b"].split()))
