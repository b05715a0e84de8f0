"""DKIM key records (RFC 6376 §3.6.1, RFC 8463 §4.2)."""

from __future__ import annotations

import base64
import contextlib

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from hypothesis import given
from hypothesis import strategies as st

from mailseal.dkim.keys import SigningKey
from mailseal.dkim.record import KeyRecord, KeyRecordError, decode_public_key, parse_key_record


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@pytest.fixture(scope="module")
def rsa_pub(rsa1024_key: SigningKey) -> rsa.RSAPublicKey:
    pub = rsa1024_key.private.public_key()
    assert isinstance(pub, rsa.RSAPublicKey)
    return pub


@pytest.fixture(scope="module")
def spki(rsa_pub: rsa.RSAPublicKey) -> str:
    return b64(rsa_pub.public_bytes(serialization.Encoding.DER,
                                    serialization.PublicFormat.SubjectPublicKeyInfo))


@pytest.fixture(scope="module")
def ed_raw(ed_key: SigningKey) -> str:
    return b64(ed_key.public_data())


def test_minimal_rsa_record_and_defaults(spki: str, rsa_pub: rsa.RSAPublicKey) -> None:
    rec = parse_key_record(f"p={spki}")
    assert isinstance(rec, KeyRecord)
    assert rec.v is None and rec.h is None and rec.n is None
    assert rec.k == "rsa"  # §3.6.1: k= defaults to rsa
    assert rec.s == ("*",) and rec.t == ()
    assert isinstance(rec.key, rsa.RSAPublicKey)
    assert rec.key.public_numbers() == rsa_pub.public_numbers()
    assert rec.bits == 1024
    assert rec.allows_hash("sha256") and rec.allows_hash("sha1") and rec.allows_email()
    assert not rec.testing and not rec.strict


def test_full_record(spki: str) -> None:
    rec = parse_key_record(
        f"v=DKIM1; h=sha256; k=RSA; n=notes here; s=email; t=y:s; p={spki}".encode())
    assert (rec.v, rec.h, rec.k, rec.n, rec.s, rec.t) == (
        "DKIM1", ("sha256",), "rsa", "notes here", ("email",), ("y", "s"))
    assert rec.testing and rec.strict


def test_bare_rsa_public_key_accepted(rsa_pub: rsa.RSAPublicKey) -> None:
    """Erratum 3017: some signers publish a bare RSAPublicKey (PKCS#1), not SPKI."""
    pkcs1 = rsa_pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    rec = parse_key_record(f"v=DKIM1; k=rsa; p={b64(pkcs1)}")
    assert isinstance(rec.key, rsa.RSAPublicKey)
    assert rec.key.public_numbers() == rsa_pub.public_numbers()


def test_large_bare_rsa_key_accepted(rsa_key: SigningKey) -> None:
    """A 2048-bit PKCS#1 key needs a long-form DER length when wrapped."""
    pub = rsa_key.private.public_key()
    assert isinstance(pub, rsa.RSAPublicKey)
    pkcs1 = pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    assert parse_key_record(f"p={b64(pkcs1)}").bits == 2048


def test_ed25519_raw_key(ed_raw: str, ed_key: SigningKey) -> None:
    """RFC 8463 §4.2: p= is the raw 32-byte public key."""
    rec = parse_key_record(f"v=DKIM1; k=ed25519; p={ed_raw}")
    assert isinstance(rec.key, ed25519.Ed25519PublicKey)
    assert rec.key.public_bytes_raw() == ed_key.public_data()
    assert rec.bits == 256


def test_rfc8463_published_ed25519_key() -> None:
    rec = parse_key_record(b"v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=")
    assert rec.k == "ed25519"


def test_p_may_be_folded_or_split_with_whitespace(spki: str) -> None:
    folded = " ".join(spki[i : i + 60] for i in range(0, len(spki), 60))
    assert parse_key_record(f"v=DKIM1; p={folded}").bits == 1024


@pytest.mark.parametrize(("h", "sha256", "sha1"), [
    ("sha256", True, False), ("sha1", False, True), ("sha1:SHA256", True, True),
    ("sha512", False, False),
])
def test_hash_restriction(spki: str, h: str, sha256: bool, sha1: bool) -> None:
    rec = parse_key_record(f"h={h}; p={spki}")
    assert (rec.allows_hash("sha256"), rec.allows_hash("sha1")) == (sha256, sha1)


@pytest.mark.parametrize(("s", "email"), [
    ("*", True), ("email", True), ("email:tlsrpt", True), ("tlsrpt", False), ("EMAIL", True),
    ("tlsrpt : *", True),
])
def test_service_types(spki: str, s: str, email: bool) -> None:
    assert parse_key_record(f"s={s}; p={spki}").allows_email() is email


@pytest.mark.parametrize(("t", "testing", "strict"), [
    ("y", True, False), ("s", False, True), ("y:s", True, True), ("Y", True, False),
    ("x", False, False), ("", False, False),
])
def test_flags(spki: str, t: str, testing: bool, strict: bool) -> None:
    rec = parse_key_record(f"t={t}; p={spki}")
    assert (rec.testing, rec.strict) == (testing, strict)


@pytest.mark.parametrize("text", ["v=DKIM1; p=", "p=", "v=DKIM1; k=rsa; p= ", "p=\r\n\t; n=x"])
def test_empty_p_is_revoked(text: str) -> None:
    """§3.6.1: "An empty value means that this public key has been revoked"."""
    with pytest.raises(KeyRecordError) as err:
        parse_key_record(text)
    assert err.value.revoked


@pytest.mark.parametrize(("text", "match"), [
    ("k=rsa; v=DKIM1; p={spki}", "invalid v="),  # §3.6.1: v= MUST be first
    ("v=DKIM2; p={spki}", "invalid v="),
    ("v=dkim1; p={spki}", "invalid v="),
    ("v=spf1 -all", "invalid v="),
    ("v=DKIM1; k=rsa", "no p= tag"),
    ("", "no p= tag"),
    ("v=DKIM1; k=dsa; p={spki}", "unknown key type"),
    ("v=DKIM1; k=ed448; p={ed}", "unknown key type"),
    ("v=DKIM1; p=!!notbase64!!", "not valid base64"),
    ("v=DKIM1; p=abc", "not valid base64"),
    ("v=DKIM1; p=AAAA", "not a valid public key"),
    ("v=DKIM1; k=rsa; p={ed}", "not a valid public key"),
    ("v=DKIM1; k=ed25519; p={spki}", "expected 32"),
    ("v=DKIM1; k=ed25519; p={ed_spki}", "expected 32"),  # SPKI-wrapped Ed25519: not allowed
    ("v=DKIM1; k=rsa; p={ed_spki}", "not an RSA key"),
    ("v=DKIM1; p={spki}; p={spki}", "duplicate"),
    ("v=DKIM1; n=caf\u00e9; p={spki}", "invalid character"),
    ("just text", "without '='"),
])
def test_rejections(spki: str, ed_raw: str, ed_key: SigningKey, text: str, match: str) -> None:
    ed_spki = b64(ed_key.private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo))
    with pytest.raises(KeyRecordError, match=match) as err:
        parse_key_record(text.format(spki=spki, ed=ed_raw, ed_spki=ed_spki).encode())
    assert not err.value.revoked


def test_ed25519_short_key() -> None:
    with pytest.raises(KeyRecordError, match="31 bytes"):
        decode_public_key("ed25519", b"\x01" * 31)


RECORD_PARTS = st.sampled_from(
    ["\r", "\n", "\t", ":", ";", "=", " ", "a", "b", "v=DKIM1", "k=rsa", "k=ed25519", "p=",
     "p=AAAA", "h=sha256", "t=y", "s=email", "p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="])


@given(st.lists(RECORD_PARTS, max_size=30))
def test_parse_raises_only_key_record_error(parts: list[str]) -> None:
    with contextlib.suppress(KeyRecordError):
        parse_key_record("".join(parts))


@given(st.binary(max_size=300), st.sampled_from(["rsa", "ed25519", "x"]))
def test_decode_public_key_raises_only_key_record_error(data: bytes, k: str) -> None:
    with contextlib.suppress(KeyRecordError):
        decode_public_key(k, data)


@given(st.data())
def test_damaged_keys_raise_only_key_record_error(rsa_pub: rsa.RSAPublicKey,
                                                  data: st.DataObject) -> None:
    der = bytearray(rsa_pub.public_bytes(
        serialization.Encoding.DER,
        data.draw(st.sampled_from([serialization.PublicFormat.SubjectPublicKeyInfo,
                                   serialization.PublicFormat.PKCS1]))))
    for _ in range(data.draw(st.integers(1, 4))):
        der[data.draw(st.integers(0, len(der) - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(der)))
    with contextlib.suppress(KeyRecordError):
        decode_public_key("rsa", bytes(der[:cut]))
