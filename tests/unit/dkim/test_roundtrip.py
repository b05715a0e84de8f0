"""Sign → verify round trips on random messages (Hypothesis), both algorithms, every
canonicalization. Keys are made once per run (tests/unit/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import given, settings
from hypothesis import strategies as st

from mailseal import api
from mailseal.dkim.keys import SigningKey
from mailseal.dkim.reasons import Reason
from mailseal.dkim.sign import SignSpec

NOW = 1_700_000_000
KEY_NAME = "sel._domainkey.example.com"

WORDS = st.text(alphabet=st.sampled_from(list("abcXYZ09.,;:=<>@()!\"'é ")), max_size=12)
FOLD = st.sampled_from(["", " ", "\t", "  ", "\r\n\t", "\r\n ", " \r\n  "])


@st.composite
def header_value(draw: st.DrawFn) -> bytes:
    parts = draw(st.lists(st.tuples(FOLD, WORDS), max_size=5))
    return ("".join(f + w for f, w in parts)).encode("utf-8")


FIELD_NAMES = st.sampled_from(["Subject", "To", "Cc", "Date", "Message-ID", "Reply-To",
                               "X-Mailer", "subject", "TO", "Content-Type", "Received"])
BODY = st.lists(st.sampled_from([b" ", b"\t", b"\r", b"\n", b"\r\n", b"a", "é".encode(), b".",
                                 b"\r\n\r\n", b"--"]), max_size=60).map(b"".join)


@st.composite
def messages(draw: st.DrawFn) -> bytes:
    fields = draw(st.lists(st.tuples(FIELD_NAMES, header_value()), max_size=6))
    at = draw(st.integers(0, len(fields)))
    fields.insert(at, ("From", draw(header_value())))
    head = b"".join(n.encode() + b":" + v + b"\r\n" for n, v in fields)
    return head + b"\r\n" + draw(BODY)


CANONS = st.sampled_from(["simple/simple", "simple/relaxed", "relaxed/simple",
                          "relaxed/relaxed"])


def round_trip(key: SigningKey, table: Callable[..., object], record: Callable[..., bytes],
               message: bytes, canonicalization: str, body_length: bool) -> None:
    spec = SignSpec(domain="example.com", selector="sel", key=key,
                    canonicalization=canonicalization, body_length=body_length)
    signed = b"".join(api.sign_specs(message, [spec], now=NOW)) + message
    dns = table({KEY_NAME: [record(key)]})
    [result] = api.verify(signed, dns=dns, now=NOW)  # type: ignore[arg-type]
    assert result.reason is Reason.PASS, (result.reason_text, signed)
    [changed] = api.verify(signed + b"\r\nx\r\n", dns=dns, now=NOW)  # type: ignore[arg-type]
    expected = Reason.PARTIAL_BODY if body_length else Reason.BODY_HASH_MISMATCH
    assert changed.reason is expected, (changed.reason_text, signed)


@settings(max_examples=50, deadline=None)
@given(messages(), CANONS, st.booleans())
def test_rsa_round_trip(rsa_key: SigningKey, table: Callable[..., object],
                        record: Callable[..., bytes], message: bytes, canonicalization: str,
                        body_length: bool) -> None:
    round_trip(rsa_key, table, record, message, canonicalization, body_length)


@settings(max_examples=50, deadline=None)
@given(messages(), CANONS, st.booleans())
def test_ed25519_round_trip(ed_key: SigningKey, table: Callable[..., object],
                            record: Callable[..., bytes], message: bytes, canonicalization: str,
                            body_length: bool) -> None:
    round_trip(ed_key, table, record, message, canonicalization, body_length)
