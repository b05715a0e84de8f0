"""DMARC record parsing (RFC 9989 §4.7-§4.8, RFC 7489 §6.3), errors reported."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailseal.dmarc.record import (
    MAX_ERRORS,
    MAX_URIS,
    AlignmentMode,
    DmarcRecord,
    Mode,
    NotDmarc,
    Policy,
    Psd,
    parse_record,
)


def rec(text: str | bytes, mode: Mode = Mode.RFC9989) -> DmarcRecord:
    parsed = parse_record(text, mode)
    assert isinstance(parsed, DmarcRecord), parsed
    return parsed


def test_minimal_record_has_defaults() -> None:
    r = rec("v=DMARC1; p=none")
    assert (r.p, r.sp, r.np, r.adkim, r.aspf, r.fo, r.psd, r.t) == (
        Policy.NONE, None, None, AlignmentMode.RELAXED, AlignmentMode.RELAXED, ("0",),
        Psd.UNKNOWN, False)
    assert r.errors == () and r.ignored == () and r.effective() is r


def test_every_tag() -> None:
    r = rec("v=DMARC1; p=reject; sp=quarantine; np=none; adkim=s; aspf=s; fo=1:d:s; "
            "rua=mailto:a@example.com, mailto:b@example.net!10m; ruf=mailto:f@example.com; "
            "psd=n; t=y")
    assert (r.p, r.sp, r.np) == (Policy.REJECT, Policy.QUARANTINE, Policy.NONE)
    assert (r.adkim, r.aspf, r.psd, r.t) == (AlignmentMode.STRICT, AlignmentMode.STRICT,
                                             Psd.NO, True)
    assert r.fo == ("1", "d", "s")
    assert r.rua == ("mailto:a@example.com", "mailto:b@example.net!10m")
    assert r.ruf == ("mailto:f@example.com",)


@pytest.mark.parametrize("text", [
    "v=DMARC1;p=reject", "v = DMARC1 ; p = reject ;", "v=DMARC1;\tp=reject;",
    "  v=DMARC1; p=reject  ", "v=DMARC1; p=Reject", "v=DMARC1; p=REJECT;;",
])
def test_whitespace_and_value_case(text: str) -> None:
    # §4.8: *WSP around "=" and ";"; keyword values are ABNF literals, case-insensitive.
    assert rec(text).p is Policy.REJECT


@pytest.mark.parametrize(("text", "why"), [
    ("", "v="), ("p=reject; v=DMARC1", "v="), ("v=DMARC2; p=reject", "DMARC1"),
    ("v=dmarc1; p=reject", "DMARC1"), ("v=DMARC1x; p=reject", "DMARC1"),
    ("V=DMARC1; p=reject", "v="), ("v=spf1 -all", "DMARC1"), ("some other txt", "v="),
])
def test_not_dmarc(text: str, why: str) -> None:
    # §4.7 "v": must be first, value case-sensitive "DMARC1", else ignore the record.
    parsed = parse_record(text)
    assert isinstance(parsed, NotDmarc) and why in parsed.reason


@pytest.mark.parametrize(("tag", "value"), [
    ("adkim", "bob"), ("aspf", "x"), ("psd", "maybe"), ("t", "yes"), ("fo", "0:1"),
    ("fo", "2"), ("fo", "d:d"),
])
def test_bad_optional_tag_falls_back_to_default(tag: str, value: str) -> None:
    # §4.8: "Syntax errors in the remainder of the record MUST be discarded in favor of
    # default values": the record stays usable, the error is reported.
    r = rec(f"v=DMARC1; p=reject; {tag}={value}")
    default = DmarcRecord(Mode.RFC9989)
    assert getattr(r, tag) == getattr(default, tag)
    assert [e.tag for e in r.errors] == [tag]
    assert r.effective() is r


@pytest.mark.parametrize("text", [
    "v=DMARC1", "v=DMARC1; p=bob", "v=DMARC1; p=n", "v=DMARC1; p=none; sp=bob",
    "v=DMARC1; p=none; np=maybe", "v=DMARC1; p=reject; p=none", "v=DMARC1; p=",
])
def test_invalid_policy_without_rua_means_no_processing(text: str) -> None:
    # §4.10.1: no valid p, or an invalid sp/np, and no valid rua: no DMARC processing.
    assert rec(text).effective() is None


def test_invalid_policy_with_rua_acts_as_p_none() -> None:
    r = rec("v=DMARC1; p=bogus; sp=reject; rua=mailto:d@example.com")
    applied = r.effective()
    assert applied is not None
    assert (applied.p, applied.sp, applied.np) == (Policy.NONE, None, None)
    assert rec("v=DMARC1; rua=ftp://x.example").effective() is not None
    assert rec("v=DMARC1; rua=not a uri").effective() is None


def test_removed_tags_are_ignored_in_9989_mode() -> None:
    # RFC 9989 §9.3 lists pct, rf, ri as historic: ignored, never validated.
    r = rec("v=DMARC1; p=reject; pct=0; rf=bob; ri=bob")
    assert r.pct == 100 and r.rf == ("afrf",) and r.ri == 86400
    assert r.ignored == ("pct", "rf", "ri")
    assert all("RFC 9989" in e.reason for e in r.errors)
    assert r.effective() is r


def test_7489_mode_reads_pct_rf_ri_and_ignores_np_psd_t() -> None:
    r = rec("v=DMARC1; p=reject; pct=25; rf=afrf; ri=3600; np=none; psd=y; t=y", Mode.RFC7489)
    assert (r.pct, r.rf, r.ri) == (25, ("afrf",), 3600)
    assert (r.np, r.psd, r.t) == (None, Psd.UNKNOWN, False)
    assert r.ignored == ("np", "psd", "t") and r.errors == ()


@pytest.mark.parametrize(("tag", "value"), [("pct", "500"), ("pct", "-1"), ("pct", "1e2"),
                                            ("rf", "bob"), ("ri", "bob"), ("ri", "99999999999")])
def test_7489_bad_values_default(tag: str, value: str) -> None:
    r = rec(f"v=DMARC1; p=none; {tag}={value}", Mode.RFC7489)
    assert getattr(r, tag) == getattr(DmarcRecord(Mode.RFC7489), tag)
    assert [e.tag for e in r.errors] == [tag] and r.effective() is r


def test_unknown_and_malformed_tags() -> None:
    r = rec("v=DMARC1; p=none; foo=bar; buzz=happy; noequals; 9x=1; rua=mailto:a@b.example")
    assert r.ignored == ("foo", "buzz")
    assert [e.tag for e in r.errors] == ["", "9x"]
    assert r.p is Policy.NONE and r.rua == ("mailto:a@b.example",)


def test_duplicate_non_policy_tag_uses_default() -> None:
    r = rec("v=DMARC1; p=none; adkim=s; adkim=s")
    assert r.adkim is AlignmentMode.RELAXED and "duplicate" in r.errors[0].reason


def test_uri_case_is_kept_and_bad_uris_reported() -> None:
    r = rec("v=DMARC1; p=none; rua=mailto:DMARC-Reports@Example.COM, nope, mailto:x@y.example")
    assert r.rua == ("mailto:DMARC-Reports@Example.COM", "mailto:x@y.example")
    assert [(e.tag, e.value) for e in r.errors] == [("rua", "nope")]


def test_bytes_and_eight_bit_values() -> None:
    assert rec(b"v=DMARC1; p=quarantine").p is Policy.QUARANTINE
    r = rec("v=DMARC1; p=none; rua=mailto:dmarc@bücher.example".encode())
    assert r.rua == () and r.errors and r.effective() is r


# -- hostile records ------------------------------------------------------------------


def test_huge_record_keeps_bounded_diagnostics() -> None:
    text = ("v=DMARC1; p=reject; " + "; ".join("x" * (i % 50 + 1) for i in range(20000))
            + "; " + "; ".join("abc" + "d" * i + "=y" for i in range(5000)))
    r = rec(text)
    assert r.p is Policy.REJECT
    assert len(r.errors) == MAX_ERRORS + 1 and len(r.ignored) == MAX_ERRORS


def test_many_uris_are_bounded() -> None:
    uris = ",".join(f"mailto:r{i}@example.com" for i in range(1000))
    assert len(rec(f"v=DMARC1; p=none; rua={uris}").rua) == MAX_URIS


def test_control_characters_in_values() -> None:
    r = rec("v=DMARC1; p=reject\x00; sp=none\x7f; rua=mailto:a@b\x01.example")
    assert r.effective() is None  # p and sp invalid, rua invalid
    assert {e.tag for e in r.errors} == {"p", "sp", "rua"}


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="v=DMARC1;pPsnr \t\r\n=:,!\x00é", max_size=80))
def test_fuzz_never_raises(text: str) -> None:
    parsed = parse_record(text)
    if isinstance(parsed, DmarcRecord):
        parsed.effective()
        assert all(str(e) for e in parsed.errors)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=120))
def test_fuzz_bytes(data: bytes) -> None:
    parse_record(b"v=DMARC1; " + data, Mode.RFC7489)
