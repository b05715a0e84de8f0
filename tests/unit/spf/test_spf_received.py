"""Received-SPF (RFC 7208 §9.1) and the Authentication-Results entry (RFC 8601 §2.7.2)."""

from __future__ import annotations

import re

import pytest

from mailseal.authres.format import format_value
from mailseal.authres.model import AuthenticationResults
from mailseal.authres.parse import parse_value
from mailseal.results import Result
from mailseal.spf import Identity, SpfResult, method_result, received_spf_field
from mailseal.spf.received import received_spf_value


def result(word: Result, **kw: str | None) -> SpfResult:
    fields: dict[str, str | None] = {"mechanism": None, "problem": None}
    fields.update(kw)
    return SpfResult(word, Identity.MAILFROM, "example.com", "myname@example.com", "192.0.2.1",
                     "foo.example.com", mechanism=fields["mechanism"], problem=fields["problem"])


def test_rfc_example_shape() -> None:
    value = received_spf_value(result(Result.PASS, mechanism="ip4:192.0.2.0/24"),
                               "mybox.example.org")
    assert value == (
        "pass (mybox.example.org: domain of myname@example.com designates 192.0.2.1 as "
        "permitted sender) client-ip=192.0.2.1; envelope-from=\"myname@example.com\"; "
        "helo=foo.example.com; receiver=mybox.example.org; identity=mailfrom; "
        "mechanism=\"ip4:192.0.2.0/24\";")


@pytest.mark.parametrize(("word", "phrase"), [
    (Result.FAIL, "does not designate 192.0.2.1 as permitted sender"),
    (Result.SOFTFAIL, "transitioning domain of"),
    (Result.NEUTRAL, "192.0.2.1 is neither permitted nor denied by domain of"),
    (Result.NONE, "does not designate permitted sender hosts"),
    (Result.TEMPERROR, "error in processing during lookup"),
    (Result.PERMERROR, "permanent error in processing"),
])
def test_comments(word: Result, phrase: str) -> None:
    value = received_spf_value(result(word, problem="why"), "mx.example")
    assert value.startswith(f"{word} (mx.example: ") and phrase in value
    assert ('problem=why;' in value) == (word in (Result.TEMPERROR, Result.PERMERROR))


def test_hostile_text_is_quoted_and_kept_on_few_lines() -> None:
    r = SpfResult(Result.FAIL, Identity.HELO, "x.example", 'a(b)"c\\d\r\n@x.example',
                  "2001:db8::1", "bad helo\x00", mechanism="-all")
    field = received_spf_field(r, "mx.example")
    assert field.endswith(b"\r\n") and b"\x00" not in field and b"\r\n\r\n" not in field
    lines = field.decode("ascii").split("\r\n")[:-1]
    assert all(len(line) <= 78 for line in lines) and all(ln[0] == " " for ln in lines[1:])
    unfolded = field.decode("ascii").replace("\r\n ", " ")
    assert 'client-ip="2001:db8::1";' in unfolded and "\\(b\\)" in unfolded
    assert re.search(r"envelope-from=\"[^\r\n]*\";", unfolded)
    assert received_spf_field(r, fold=None).count(b"\r\n") == 1


def test_authentication_results_entry_round_trips() -> None:
    entries = (
        method_result(result(Result.PASS)),
        method_result(result(Result.TEMPERROR, problem="TXT lookup of example.com failed")),
        method_result(SpfResult(Result.NONE, Identity.HELO, "mx.example.org",
                                "postmaster@mx.example.org", "192.0.2.1", "mx.example.org")),
    )
    ar = AuthenticationResults("mx.receiver.example", None, entries)
    text = format_value(ar)
    assert "spf=pass smtp.mailfrom=myname@example.com" in text
    assert "smtp.helo=mx.example.org" in text
    assert parse_value(text) == ar
