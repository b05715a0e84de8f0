"""DKIM verification (RFC 6376 §6): sign with mailseal, judge with a fixed DNS table.

This is a unit test of the pure judge: the resolver is a dict (tests/unit/conftest.py);
real DNS is covered by the integration tests.
"""

from __future__ import annotations

import asyncio
import base64
import re
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from mailseal import api
from mailseal.dkim.keys import SigningKey
from mailseal.dkim.reasons import Reason
from mailseal.dkim.sign import SignSpec
from mailseal.dkim.verify import DkimResult, Verifier, VerifyPolicy
from mailseal.dns.types import Answer, Status
from mailseal.message import split_message
from mailseal.results import Result

NOW = 1_700_000_000
DOMAIN = "example.com"
KEY_NAME = "sel._domainkey.example.com"
MSG = (b"From: Joe SixPack <joe@example.com>\r\n"
       b"To: Suzie Q <suzie@shopping.example.net>\r\n"
       b"Subject: Is dinner ready?\r\n"
       b"Date: Fri, 11 Jul 2003 21:00:37 -0700 (PDT)\r\n"
       b"Message-ID: <20030712040037.46341.5F8J@example.com>\r\n"
       b"\r\n"
       b"Hi.\r\n\r\nWe lost the game.  Are you hungry yet?\r\n\r\nJoe.\r\n")

Table = Callable[..., object]
Record = Callable[..., bytes]


@pytest.fixture(params=["rsa", "ed25519"])
def key(request: pytest.FixtureRequest, rsa_key: SigningKey, ed_key: SigningKey) -> SigningKey:
    return rsa_key if request.param == "rsa" else ed_key


def spec(key: SigningKey, **kw: object) -> SignSpec:
    args: dict[str, object] = {"domain": DOMAIN, "selector": "sel", "key": key}
    args.update(kw)
    return SignSpec(**args)  # type: ignore[arg-type]


def signed(key: SigningKey, message: bytes = MSG, **kw: object) -> bytes:
    return b"".join(api.sign_specs(message, [spec(key, **kw)], now=NOW)) + message


def check(message: bytes, dns: object, *, now: int = NOW,
          policy: VerifyPolicy | None = None) -> list[DkimResult]:
    return api.verify(message, dns=dns, policy=policy, now=now)  # type: ignore[arg-type]


def one(message: bytes, dns: object, **kw: object) -> DkimResult:
    results = check(message, dns, **kw)  # type: ignore[arg-type]
    assert len(results) == 1, results
    return results[0]


def expect(result: DkimResult, reason: Reason) -> None:
    assert result.reason is reason, result.reason_text
    assert result.result is reason.result


# --- round trips -------------------------------------------------------------


@pytest.mark.parametrize("canonicalization", ["simple/simple", "simple/relaxed",
                                              "relaxed/simple", "relaxed/relaxed"])
def test_round_trip(key: SigningKey, table: Table, record: Record, canonicalization: str) -> None:
    message = signed(key, canonicalization=canonicalization)
    result = one(message, table({KEY_NAME: [record(key)]}))
    expect(result, Reason.PASS)
    assert result.ok and result.reason_text == "good signature"
    assert (result.domain, result.selector, result.identity) == (DOMAIN, "sel", "@example.com")
    assert result.algorithm == f"{key.key_type}-sha256"
    assert result.key_bits == key.bits and not result.testing and result.index == 0
    assert result.b and " " not in result.b and result.unsigned_bytes == 0
    assert result.signed_fields == ("from", "from", "subject", "date", "to", "message-id")


def test_rsa_and_ed25519_at_once(rsa_key: SigningKey, ed_key: SigningKey, table: Table,
                                 record: Record) -> None:
    fields = api.sign_specs(MSG, [spec(rsa_key, selector="rsa"), spec(ed_key, selector="ed")],
                            now=NOW)
    assert len(fields) == 2
    dns = table({"rsa._domainkey.example.com": [record(rsa_key)],
                 "ed._domainkey.example.com": [record(ed_key)]})
    results = check(b"".join(fields) + MSG, dns)
    assert [(r.result, r.selector, r.algorithm, r.index) for r in results] == [
        (Result.PASS, "rsa", "rsa-sha256", 0), (Result.PASS, "ed", "ed25519-sha256", 1)]
    assert sorted(dns.asked) == ["ed._domainkey.example.com", "rsa._domainkey.example.com"]


def test_unsigned_message_has_no_results(table: Table) -> None:
    dns = table({})
    assert check(MSG, dns) == []
    assert dns.asked == []


def test_lf_only_copy_verifies(key: SigningKey, table: Table, record: Record) -> None:
    message = signed(key, canonicalization="simple/simple")
    expect(one(message.replace(b"\r\n", b"\n"), table({KEY_NAME: [record(key)]})), Reason.PASS)


def test_relaxed_survives_refolding_and_trailing_whitespace(key: SigningKey, table: Table,
                                                            record: Record) -> None:
    message = signed(key, canonicalization="relaxed/relaxed")
    changed = (message.replace(b"Subject: Is dinner ready?", b"subject:  Is\r\n\tdinner ready? ")
               .replace(b"Hi.\r\n", b"Hi. \t\r\n") + b"\r\n\r\n")
    dns = table({KEY_NAME: [record(key)]})
    expect(one(changed, dns), Reason.PASS)
    strict = signed(key, canonicalization="simple/simple")
    expect(one(strict.replace(b"Hi.\r\n", b"Hi. \r\n"), dns), Reason.BODY_HASH_MISMATCH)
    expect(one(strict.replace(b"Subject: Is", b"Subject:  Is"), dns), Reason.SIGNATURE_MISMATCH)
    expect(one(strict + b"\r\n\r\n", dns), Reason.PASS)  # §3.4.3: trailing empty lines ignored


def test_d_is_looked_up_lower_cased(ed_key: SigningKey, table: Table, record: Record) -> None:
    dns = table({KEY_NAME: [record(ed_key)]})
    expect(one(signed(ed_key, domain="Example.COM"), dns), Reason.PASS)
    assert dns.asked == [KEY_NAME]


# --- what a change breaks --------------------------------------------------------


def test_body_change_is_a_body_hash_mismatch(key: SigningKey, table: Table,
                                             record: Record) -> None:
    message = signed(key).replace(b"hungry", b"thirsty")
    expect(one(message, table({KEY_NAME: [record(key)]})), Reason.BODY_HASH_MISMATCH)


def test_header_change_is_a_signature_mismatch(key: SigningKey, table: Table,
                                               record: Record) -> None:
    message = signed(key).replace(b"Subject: Is dinner", b"Subject: Was dinner")
    expect(one(message, table({KEY_NAME: [record(key)]})), Reason.SIGNATURE_MISMATCH)


def test_wrong_key_is_a_signature_mismatch(rsa_key: SigningKey, rsa1024_key: SigningKey,
                                           table: Table, record: Record) -> None:
    expect(one(signed(rsa_key), table({KEY_NAME: [record(rsa1024_key)]})),
           Reason.SIGNATURE_MISMATCH)


def test_tampered_b_is_a_signature_mismatch(ed_key: SigningKey, table: Table,
                                            record: Record) -> None:
    message = signed(ed_key)
    found = re.search(rb"[ \t]b=", message)
    assert found is not None
    at = found.end()
    flipped = message[:at] + (b"B" if message[at:at + 1] != b"B" else b"C") + message[at + 1:]
    expect(one(flipped, table({KEY_NAME: [record(ed_key)]})), Reason.SIGNATURE_MISMATCH)


@pytest.mark.parametrize("where", ["top", "bottom"])
def test_added_from_breaks_the_signature(key: SigningKey, table: Table, record: Record,
                                         where: str) -> None:
    """RFC 6376 §8.15: From is oversigned, so a second From added anywhere breaks it."""
    message = signed(key)
    evil = b"From: Evil <evil@example.net>\r\n"
    message = evil + message if where == "top" else message.replace(b"\r\n\r\n", b"\r\n" + evil
                                                                     + b"\r\n", 1)
    expect(one(message, table({KEY_NAME: [record(key)]})), Reason.SIGNATURE_MISMATCH)


def test_added_subject_breaks_an_oversigned_signature(key: SigningKey, table: Table,
                                                      record: Record) -> None:
    dns = table({KEY_NAME: [record(key)]})
    evil = b"Subject: Buy now\r\n"
    plain = signed(key)
    over = signed(key, oversign=("from", "subject"))
    # Added at the bottom, a field is the instance h= picks (§5.4.2): always breaks.
    expect(one(plain.replace(b"\r\n\r\n", b"\r\n" + evil + b"\r\n", 1), dns),
           Reason.SIGNATURE_MISMATCH)
    # Added at the top, only an oversigned Subject notices.
    expect(one(evil + plain, dns), Reason.PASS)
    expect(one(evil + over, dns), Reason.SIGNATURE_MISMATCH)
    expect(one(over, dns), Reason.PASS)


# --- optional tags -------------------------------------------------------------------


@pytest.mark.parametrize("identity", ["joe@sub.example.com", "j\u00e9 o;e=x@example.com"])
def test_identity(key: SigningKey, table: Table, record: Record, identity: str) -> None:
    result = one(signed(key, identity=identity), table({KEY_NAME: [record(key)]}))
    expect(result, Reason.PASS)
    assert result.identity == identity


def test_z_tag_signed_and_verified(key: SigningKey, table: Table, record: Record) -> None:
    message = signed(key, copy_headers=True)
    assert b"z=From:Joe=20SixPack" in message.replace(b"\r\n\t", b"")
    expect(one(message, table({KEY_NAME: [record(key)]})), Reason.PASS)


def test_expiry(key: SigningKey, table: Table, record: Record) -> None:
    """RFC 6376 §6.1.1 x=; with clock_skew (300 s) of tolerance."""
    message = signed(key, expire_after=60)
    dns = table({KEY_NAME: [record(key)]})
    expect(one(message, dns, now=NOW + 60 + 300), Reason.PASS)
    result = one(message, dns, now=NOW + 60 + 301)
    expect(result, Reason.EXPIRED)
    assert result.detail == f"x={NOW + 60}"
    expect(one(message, dns, now=NOW + 61, policy=VerifyPolicy(clock_skew=0)), Reason.EXPIRED)


def test_timestamp_in_the_future(key: SigningKey, table: Table, record: Record) -> None:
    message = signed(key)
    dns = table({KEY_NAME: [record(key)]})
    expect(one(message, dns, now=NOW - 300), Reason.PASS)
    expect(one(message, dns, now=NOW - 301), Reason.FUTURE_TIMESTAMP)


def test_partial_body_is_policy(key: SigningKey, table: Table, record: Record) -> None:
    """l= leaves appended content unsigned: not a plain pass (RFC 6376 §8.2)."""
    message = signed(key, body_length=True) + b"Click here: http://evil.example/\r\n"
    dns = table({KEY_NAME: [record(key)]})
    result = one(message, dns)
    expect(result, Reason.PARTIAL_BODY)
    assert result.result is Result.POLICY and not result.ok
    assert result.unsigned_bytes == len(b"Click here: http://evil.example/\r\n")
    assert result.key_bits == key.bits
    assert one(message, dns, policy=VerifyPolicy(partial_body=Result.FAIL)).result is Result.FAIL
    whole = one(signed(key, body_length=True), dns)
    expect(whole, Reason.PASS)
    assert whole.unsigned_bytes == 0


def test_l_beyond_the_body(key: SigningKey, table: Table, record: Record) -> None:
    """§6.1.3: l= larger than the body: the signature does not verify."""
    message = signed(key, body_length=True).replace(b"\r\n\r\nJoe.\r\n", b"\r\n")
    result = one(message, table({KEY_NAME: [record(key)]}))
    expect(result, Reason.BODY_LENGTH)


# --- the key record ---------------------------------------------------------------


def test_testing_flag_is_reported(key: SigningKey, table: Table, record: Record) -> None:
    result = one(signed(key), table({KEY_NAME: [record(key, "t=y; ")]}))
    expect(result, Reason.PASS)
    assert result.testing


def test_key_too_small(rsa1024_key: SigningKey, table: Table, record: Record) -> None:
    """RFC 8301 §3.2 sets 1024 bits as the floor; a site may ask for more."""
    message = signed(rsa1024_key)
    dns = table({KEY_NAME: [record(rsa1024_key)]})
    expect(one(message, dns), Reason.PASS)
    result = one(message, dns, policy=VerifyPolicy(min_key_bits=2048))
    expect(result, Reason.KEY_TOO_SMALL)
    assert result.key_bits == 1024


def test_key_under_1024_bits_is_never_valid(ed_key: SigningKey, table: Table) -> None:
    """RFC 8301 §3.2: verifiers MUST NOT consider keys of less than 1024 bits valid.
    (No such key can be generated here: a 512-bit public key is built from numbers.)"""
    small = rsa.RSAPublicNumbers(65537, (1 << 511) + 24691).public_key()
    der = small.public_bytes(serialization.Encoding.DER,
                             serialization.PublicFormat.SubjectPublicKeyInfo)
    rsa_record = b"v=DKIM1; p=" + base64.b64encode(der)
    message = signed(ed_key).replace(b"a=ed25519-sha256", b"a=rsa-sha256")
    result = one(message, table({KEY_NAME: [rsa_record]}))
    expect(result, Reason.KEY_TOO_SMALL)
    assert result.key_bits == 512


def test_rsa_sha1_needs_policy(rsa_key: SigningKey, table: Table, record: Record) -> None:
    """RFC 8301 §3.1: rsa-sha1 signatures MUST NOT be considered valid."""
    message = signed(rsa_key, algorithm="rsa-sha1", allow_sha1=True)
    dns = table({KEY_NAME: [record(rsa_key)]})
    result = one(message, dns)
    expect(result, Reason.WEAK_ALGORITHM)
    assert result.algorithm == "rsa-sha1"
    assert dns.asked == []  # not worth a lookup
    expect(one(message, dns, policy=VerifyPolicy(allow_sha1=True)), Reason.PASS)


@pytest.mark.parametrize(("extra", "identity", "reason"), [
    ("h=sha1; ", None, Reason.KEY_HASH_NOT_ALLOWED),
    ("h=sha256; ", None, Reason.PASS),
    ("s=tlsrpt; ", None, Reason.KEY_SERVICE),
    ("s=email:tlsrpt; ", None, Reason.PASS),
    ("t=s; ", "joe@sub.example.com", Reason.KEY_STRICT_IDENTITY),
    ("t=s; ", "joe@example.com", Reason.PASS),
    ("t=s; ", None, Reason.PASS),
])
def test_record_restrictions(key: SigningKey, table: Table, record: Record, extra: str,
                             identity: str | None, reason: Reason) -> None:
    result = one(signed(key, identity=identity), table({KEY_NAME: [record(key, extra)]}))
    expect(result, reason)


def test_key_type_mismatch(rsa_key: SigningKey, ed_key: SigningKey, table: Table,
                           record: Record) -> None:
    expect(one(signed(rsa_key), table({KEY_NAME: [record(ed_key)]})), Reason.KEY_TYPE_MISMATCH)
    expect(one(signed(ed_key), table({KEY_NAME: [record(rsa_key)]})), Reason.KEY_TYPE_MISMATCH)


def test_revoked_key(key: SigningKey, table: Table) -> None:
    expect(one(signed(key), table({KEY_NAME: [b"v=DKIM1; p="]})), Reason.KEY_REVOKED)


@pytest.mark.parametrize("records", [
    [b"v=spf1 -all"], [b"hello world"], [b"v=DKIM1; k=rsa; p=AAAA"], [b"v=DKIM1; p=!!"],
])
def test_unusable_record(key: SigningKey, table: Table, records: list[bytes]) -> None:
    expect(one(signed(key), table({KEY_NAME: records})), Reason.KEY_SYNTAX)


@pytest.mark.parametrize("junk", [b"v=spf1 -all", b"v=DKIM1; p=", b"garbage", b"v=DKIM1; p=AAAA"])
def test_several_records_one_good(key: SigningKey, table: Table, record: Record,
                                  junk: bytes) -> None:
    """§6.1.2: with several records at the name, the verifier may try each."""
    expect(one(signed(key), table({KEY_NAME: [junk, record(key)]})), Reason.PASS)
    expect(one(signed(key), table({KEY_NAME: [record(key), junk]})), Reason.PASS)


def test_records_past_max_key_records_are_not_tried(key: SigningKey, table: Table,
                                                    record: Record) -> None:
    dns = table({KEY_NAME: [b"junk", record(key)]})
    expect(one(signed(key), dns, policy=VerifyPolicy(max_key_records=1)), Reason.KEY_SYNTAX)


@pytest.mark.parametrize("b", ["AAAA", "A" * 400])
def test_b_of_the_wrong_length_is_a_signature_mismatch(key: SigningKey, table: Table,
                                                       record: Record, b: str) -> None:
    message = re.sub(rb"([ \t]b=)[^;]*?(\r\n)(?=[^\t ])", rb"\g<1>" + b.encode() + rb"\2",
                     signed(key), count=1)
    assert f"b={b}\r\n".encode() in message
    expect(one(message, table({KEY_NAME: [record(key)]})), Reason.SIGNATURE_MISMATCH)


# --- DNS outcomes ------------------------------------------------------------------


def test_dns_tempfail_is_temperror(key: SigningKey, table: Table) -> None:
    """A temporary error stays temporary: the MTA must answer 4xx (STYLE "avoid")."""
    result = one(signed(key), table({KEY_NAME: Status.TEMPFAIL}))
    expect(result, Reason.KEY_DNS_ERROR)
    assert result.result is Result.TEMPERROR and KEY_NAME in result.detail


@pytest.mark.parametrize("status", [Status.NXDOMAIN, Status.NODATA])
def test_no_key_is_permerror(key: SigningKey, table: Table, status: Status) -> None:
    result = one(signed(key), table({KEY_NAME: status}))
    expect(result, Reason.KEY_NOT_FOUND)
    assert status.value in result.detail


@pytest.mark.parametrize("case", ["ok-without-records", "max_key_records-0"])
def test_no_usable_record_without_a_reason_is_still_a_result(ed_key: SigningKey,
                                                             record: Record, case: str) -> None:
    fields, body = split_message(signed(ed_key))
    policy = VerifyPolicy(max_key_records=0) if case == "max_key_records-0" else None
    verifier = Verifier(fields, policy)
    verifier.feed(body)
    verifier.finish_body()
    records = () if case == "ok-without-records" else (record(ed_key),)
    [result] = verifier.judge({KEY_NAME: Answer(Status.OK, records)}, NOW)
    assert result.result is Result.PERMERROR
    assert result.reason in (Reason.KEY_NOT_FOUND, Reason.KEY_SYNTAX)


def test_name_not_looked_up_is_temperror(ed_key: SigningKey) -> None:
    """judge() given no answer for a name it needed: never a silent pass or permerror."""
    fields, body = split_message(signed(ed_key))
    verifier = Verifier(fields)
    verifier.feed(body)
    verifier.finish_body()
    assert verifier.key_names() == [KEY_NAME]
    [result] = verifier.judge({}, NOW)
    expect(result, Reason.KEY_DNS_ERROR)


# --- several signatures -------------------------------------------------------------


def test_results_follow_header_order(rsa_key: SigningKey, ed_key: SigningKey, table: Table,
                                     record: Record) -> None:
    message = signed(ed_key)
    bad = b"DKIM-Signature: v=1; a=rsa-sha256; d=example.org; s=x; h=to; bh=AAAA; b=AAAA\r\n"
    message = bad + message
    results = check(message, table({KEY_NAME: [record(ed_key)]}))
    assert [(r.index, r.reason) for r in results] == [(0, Reason.FROM_NOT_SIGNED),
                                                      (1, Reason.PASS)]
    assert (results[0].domain, results[0].selector, results[0].b) == ("example.org", "x", "AAAA")


def test_max_signatures(ed_key: SigningKey, table: Table, record: Record) -> None:
    specs = [spec(ed_key, selector=f"s{i}") for i in range(10)]
    message = b"".join(api.sign_specs(MSG, specs, now=NOW)) + MSG
    dns = table({f"s{i}._domainkey.example.com": [record(ed_key)] for i in range(10)})
    results = check(message, dns, policy=VerifyPolicy(max_signatures=3))
    assert [r.selector for r in results] == ["s0", "s1", "s2"]
    assert all(r.ok for r in results) and len(dns.asked) == 3
    assert len(check(message, dns)) == 8  # the default bound


def test_one_lookup_per_key_name(ed_key: SigningKey, table: Table, record: Record) -> None:
    specs = [spec(ed_key), spec(ed_key, canonicalization="simple/simple")]
    message = b"".join(api.sign_specs(MSG, specs, now=NOW)) + MSG
    dns = table({KEY_NAME: [record(ed_key)]})
    assert [r.result for r in check(message, dns)] == [Result.PASS, Result.PASS]
    assert dns.asked == [KEY_NAME]


def test_verify_async_inside_a_running_loop(ed_key: SigningKey, table: Table,
                                            record: Record) -> None:
    async def main() -> list[DkimResult]:
        return await api.verify_async(signed(ed_key), dns=table({KEY_NAME: [record(ed_key)]}),
                                      now=NOW)
    assert [r.result for r in asyncio.run(main())] == [Result.PASS]


# --- names that need folding ------------------------------------------------------------


def test_long_domain_round_trip(ed_key: SigningKey, table: Table, record: Record) -> None:
    domain = "a" * 63 + "." + "b" * 20 + ".com"  # 88 characters, labels within 63
    message = signed(ed_key, domain=domain)
    expect(one(message, table({f"sel._domainkey.{domain}": [record(ed_key)]})), Reason.PASS)


def test_long_selector_round_trip(ed_key: SigningKey, table: Table, record: Record) -> None:
    selector = "x" * 40 + "." + "y" * 40
    message = signed(ed_key, selector=selector)
    expect(one(message, table({f"{selector}._domainkey.example.com": [record(ed_key)]})),
           Reason.PASS)


def test_long_identity_round_trip(ed_key: SigningKey, table: Table, record: Record) -> None:
    """i= is dkim-quoted-printable, which allows FWS: folding it is fine."""
    identity = "u" * 80 + "@example.com"
    result = one(signed(ed_key, identity=identity), table({KEY_NAME: [record(ed_key)]}))
    expect(result, Reason.PASS)
    assert result.identity == identity
