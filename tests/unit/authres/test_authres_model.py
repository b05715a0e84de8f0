"""The value model: normalisation and refusal of unwritable values."""

from __future__ import annotations

import pytest

from mailseal.authres import AuthenticationResults, MethodResult, Property
from mailseal.results import Result


def test_keywords_are_lower_cased_and_results_typed() -> None:
    r = MethodResult("DKIM", "PASS", properties=(Property("Header", "D", "Example.COM"),))
    assert r.method == "dkim"
    assert r.result is Result.PASS
    assert r.properties == (Property("header", "d", "Example.COM"),)
    assert r.properties[0].value == "Example.COM"  # values keep their case


def test_unknown_result_word_stays_str() -> None:
    r = MethodResult("x-new", "Maybe-Later")
    assert r.result == "maybe-later"
    assert not isinstance(r.result, Result)


def test_result_equals_plain_string() -> None:
    assert MethodResult("spf", "softfail") == MethodResult("spf", Result.SOFTFAIL)
    assert MethodResult("spf", "softfail").result == "softfail"


def test_properties_become_a_tuple() -> None:
    r = MethodResult("spf", "pass", properties=[Property("smtp", "mailfrom", "a")])  # type: ignore[arg-type]
    assert isinstance(r.properties, tuple)
    hash(r)


@pytest.mark.parametrize(
    "build",
    [
        lambda: MethodResult("dk im", "pass"),
        lambda: MethodResult("dkim-", "pass"),
        lambda: MethodResult("", "pass"),
        lambda: MethodResult("dkim", "pa=ss"),
        lambda: MethodResult("dkim", "pass", version=-1),
        lambda: MethodResult("dkim", "pass", version=10**9),
        lambda: MethodResult("dkim", "pass", reason="a\r\nInjected: yes"),
        lambda: MethodResult("dkim", "pass", comment="nul\x00"),
        lambda: Property("header", "d.x", "v"),
        lambda: Property("header", "d", "line\nbreak"),
        lambda: AuthenticationResults("", None, ()),
        lambda: AuthenticationResults("mx\r\n", None, ()),
        lambda: AuthenticationResults("mx", -1, ()),
        lambda: AuthenticationResults("\ud800", None, ()),
    ],
)
def test_unwritable_values_are_refused(build: object) -> None:
    assert callable(build)
    with pytest.raises(ValueError):
        build()
