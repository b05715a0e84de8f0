"""``mailseal.keys.check.evaluate`` without DNS: typed answers in, verdict lines out."""

from __future__ import annotations

import pytest

from mailseal.dkim.keys import SigningKey
from mailseal.dkim.publish import record_value
from mailseal.dns.types import Answer, Status
from mailseal.keys.check import Report, Verdict, evaluate
from mailseal.keystore import generate_key

NAME = "sel._domainkey.example.com"


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return generate_key("ed25519")


def judged(*records: bytes, key: SigningKey | None = None, ad: bool = False) -> Report:
    return evaluate(NAME, Answer(Status.OK, records, authenticated=ad), key)


def words(report: Report) -> list[str]:
    return [f"{c.verdict.name} {c.text.split(' (')[0]}" for c in report.checks]


def test_good_record(key: SigningKey) -> None:
    report = judged(record_value(key).encode(), key=key, ad=True)
    assert report.safe and report.exit_status == 0 and report.verdict is Verdict.OK
    assert report.summary() == "OK"
    assert report.record is not None and report.record.k == "ed25519"
    assert words(report) == [
        f"OK record found at {NAME}", "OK syntax valid", "OK key type ed25519",
        "OK matches the private key", "OK not in testing mode", "OK h= allows sha256",
        "OK s= allows email", "OK DNSSEC-validated"]


@pytest.mark.parametrize(("status", "expected"), [
    (Status.NXDOMAIN, f"no record at {NAME}"),
    (Status.NODATA, f"no TXT record at {NAME} (the name exists)"),
])
def test_absent(status: Status, expected: str) -> None:
    report = evaluate(NAME, Answer(status))
    assert report.exit_status == 1 and report.checks[0].text == expected
    assert report.checks[-1].verdict is Verdict.WARN  # DNSSEC, still reported


def test_temporary_failure_is_not_absent() -> None:
    report = evaluate(NAME, Answer(Status.TEMPFAIL, error="127.0.0.1:53: SERVFAIL"))
    assert report.temporary and report.exit_status == 2
    assert [c.text for c in report.checks] == ["lookup failed (temporary): 127.0.0.1:53: SERVFAIL"]
    assert report.summary() == "FAIL: lookup failed (temporary)"


def test_warnings_do_not_make_it_unsafe(key: SigningKey) -> None:
    report = judged(record_value(key, testing=True).encode(), key=key)
    assert report.safe and report.exit_status == 0 and report.verdict is Verdict.WARN
    assert report.summary() == "WARN: testing (t=y)"


def test_bare_rsa_public_key_matches(key: SigningKey) -> None:
    # p= as a bare RSAPublicKey (RFC 6376 erratum 3017) is the same key as SPKI.
    import base64

    from cryptography.hazmat.primitives import serialization

    rsa = generate_key("rsa", 1024)
    bare = rsa.private.public_key().public_bytes(serialization.Encoding.DER,
                                                 serialization.PublicFormat.PKCS1)
    report = judged(b"v=DKIM1; p=" + base64.b64encode(bare), key=rsa)
    assert "OK matches the private key" in words(report)
    assert "WARN key type rsa, 1024 bits: weak, use 2048 bits" in words(report)


def test_several_records_listed(key: SigningKey) -> None:
    value = record_value(key).encode()
    report = judged(value, b"v=spf1 -all")
    first = report.checks[0]
    assert first.verdict is Verdict.FAIL and first.short == "2 TXT records"
    assert first.details == (f"[1] {value.decode()}", "[2] v=spf1 -all")
    assert first.lines()[1] == f"     [1] {value.decode()}"


def test_no_version_tag_is_noted(key: SigningKey) -> None:
    report = judged(record_value(key).removeprefix("v=DKIM1; ").encode())
    assert report.safe
    assert report.checks[1].text == "syntax valid (no v=DKIM1; recommended first tag)"
