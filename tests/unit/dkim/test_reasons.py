"""The closed set of DKIM outcomes and their RFC 8601 result words."""

from __future__ import annotations

from mailseal.dkim.reasons import Reason
from mailseal.results import RESULT_RANK, Result


def test_result_words() -> None:
    special = {Reason.PASS: Result.PASS, Reason.BODY_HASH_MISMATCH: Result.FAIL,
               Reason.SIGNATURE_MISMATCH: Result.FAIL, Reason.PARTIAL_BODY: Result.POLICY,
               Reason.KEY_DNS_ERROR: Result.TEMPERROR}
    for reason in Reason:
        # RFC 8601 §2.7.1: a broken signature or key is permerror, DNS trouble temperror
        assert reason.result is special.get(reason, Result.PERMERROR), reason
        assert reason.text and reason.text == reason.text.strip()


def test_texts_are_distinct() -> None:
    assert len({r.text for r in Reason}) == len(Reason)


def test_result_rank() -> None:
    assert set(RESULT_RANK) == set(Result)
    assert sorted(RESULT_RANK.values()) == list(range(len(Result)))
    assert min(RESULT_RANK, key=RESULT_RANK.__getitem__) is Result.PASS
    assert max(RESULT_RANK, key=RESULT_RANK.__getitem__) is Result.NONE
    assert RESULT_RANK[Result.TEMPERROR] < RESULT_RANK[Result.PERMERROR]


def test_result_words_are_rfc8601_tokens() -> None:
    assert [r.value for r in Result] == ["pass", "fail", "softfail", "neutral", "none", "policy",
                                         "temperror", "permerror"]
