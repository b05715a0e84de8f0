"""The result vocabulary shared by every protocol (RFC 8601 §2.7).

Results are values, not exceptions. Each protocol has a closed set of reasons;
this module keeps the words that end up in ``Authentication-Results``.
"""

from __future__ import annotations

import enum


class Result(enum.StrEnum):
    """RFC 8601 §2.7 result words (``softfail`` is SPF only, RFC 7208 §2.6)."""

    PASS = "pass"
    FAIL = "fail"
    SOFTFAIL = "softfail"
    NEUTRAL = "neutral"
    NONE = "none"
    POLICY = "policy"
    TEMPERROR = "temperror"
    PERMERROR = "permerror"


#: How good a result is, for picking the best of several (pass best, none worst).
RESULT_RANK: dict[Result, int] = {
    Result.PASS: 0,
    Result.POLICY: 1,
    Result.NEUTRAL: 2,
    Result.TEMPERROR: 3,
    Result.SOFTFAIL: 4,
    Result.FAIL: 5,
    Result.PERMERROR: 6,
    Result.NONE: 7,
}
