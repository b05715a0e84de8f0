"""mailseal.api: whole messages and streams, and the limits on attacker-controlled input.

``verify`` (bytes) and ``verify_file`` (a stream) must agree on every message: same
results, same limits.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable

import pytest

from mailseal import api
from mailseal.dkim.keys import SigningKey
from mailseal.dkim.reasons import Reason
from mailseal.dkim.sign import SignError, SignSpec
from mailseal.dkim.verify import DkimResult, VerifyPolicy
from mailseal.message import MAX_HEADER_BYTES, MAX_HEADER_FIELDS, split_message
from mailseal.results import Result

NOW = 1_700_000_000
KEY_NAME = "sel._domainkey.example.com"
MSG = (b"From: Joe <joe@example.com>\r\nTo: Suzie <suzie@example.net>\r\nSubject: dinner\r\n"
       b"\r\nHi.\r\n\r\nWe lost the game.  Are you hungry yet?\r\n\r\nJoe.\r\n")

Table = Callable[..., object]
Record = Callable[..., bytes]


def signed(key: SigningKey, message: bytes = MSG, **kw: object) -> bytes:
    args: dict[str, object] = {"domain": "example.com", "selector": "sel", "key": key}
    args.update(kw)
    return b"".join(api.sign_specs(message, [SignSpec(**args)], now=NOW)) + message  # type: ignore[arg-type]


class Trickle(io.RawIOBase):
    """A stream whose reads return a few bytes at a time (a pipe, a slow socket)."""

    def __init__(self, data: bytes, sizes: list[int]) -> None:
        self._data = data
        self._sizes = sizes
        self._at = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        n = self._sizes.pop(0) if self._sizes else size
        n = min(n, size) if size >= 0 else n
        out = self._data[self._at : self._at + n]
        self._at += len(out)
        return out


def from_file(stream: io.RawIOBase | io.BytesIO, dns: object, **kw: object) -> list[DkimResult]:
    return asyncio.run(api.verify_file(stream, dns=dns, now=NOW, **kw))  # type: ignore[arg-type]


def summary(results: list[DkimResult]) -> list[tuple[Result, Reason, str]]:
    return [(r.result, r.reason, r.domain) for r in results]


# --- verify_file ---------------------------------------------------------------


def test_verify_file_passes(ed_key: SigningKey, table: Table, record: Record) -> None:
    message = signed(ed_key)
    dns = table({KEY_NAME: [record(ed_key)]})
    assert [r.result for r in from_file(io.BytesIO(message), dns)] == [Result.PASS]
    lf = message.replace(b"\r\n", b"\n")
    assert [r.result for r in from_file(io.BytesIO(lf), dns)] == [Result.PASS]


@pytest.mark.parametrize("canonicalization", ["simple/simple", "relaxed/relaxed"])
def test_verify_file_any_read_split(ed_key: SigningKey, table: Table, record: Record,
                                    canonicalization: str) -> None:
    """STYLE habit 1 at the stream level: the first read cut at every offset, then
    small reads; LF-only input too (a CR LF pair may be split between reads)."""
    message = signed(ed_key, canonicalization=canonicalization)
    dns = table({KEY_NAME: [record(ed_key)]})

    async def run_all() -> None:
        for data in (message, message.replace(b"\r\n", b"\n")):
            for first in range(1, len(data) + 1):  # a read of 0 bytes is EOF
                stream = Trickle(data, [first, 3, 1, 7])
                results = await api.verify_file(stream, dns=dns, now=NOW,  # type: ignore[arg-type]
                                                chunk_size=5)
                assert [r.reason for r in results] == [Reason.PASS], (first, results)

    asyncio.run(run_all())


@pytest.mark.parametrize("data", [
    b"", b"\r\n", b"\n\n", b"From: a\r\n", b"From: a", b"From: a\r\n\r\n", b"\r\nbody only\r\n",
    b"no colon at all", b"\r", b"From: a\r\n\r", b"From: a\n\nbody\n",
    b"From: a\r", b"From: a\r\r\n",  # a CR at the end of a header-only message is kept
])
def test_read_header_agrees_with_split_message(data: bytes) -> None:
    expected = split_message(data)
    assert api.read_header(io.BytesIO(data)) == expected
    for first in range(1, len(data) + 1):
        fields, rest = api.read_header(Trickle(data, [first] + [1] * len(data)))
        assert fields == expected[0], first
        # what was read past the header is CRLF already; the rest comes later
        assert expected[1].startswith(rest), first


# --- limits --------------------------------------------------------------------


def many_fields(n: int) -> bytes:
    return b"".join(b"X-%d: v\r\n" % i for i in range(n)) + b"From: a@example.com\r\n\r\nbody\r\n"


def test_too_many_fields(table: Table) -> None:
    message = many_fields(MAX_HEADER_FIELDS)  # 1,001 with From
    results = api.verify(message, dns=table({}), now=NOW)
    assert summary(results) == [(Result.PERMERROR, Reason.MESSAGE_LIMITS, "")]
    assert "more than 1000 header fields" in results[0].reason_text
    assert summary(from_file(io.BytesIO(message), table({}))) == summary(results)
    assert api.verify(many_fields(MAX_HEADER_FIELDS - 1), dns=table({}), now=NOW) == []


def test_header_too_large(table: Table) -> None:
    message = b"From: a@example.com\r\nX-Big: " + b"a" * (2 * MAX_HEADER_BYTES) + b"\r\n\r\nbody\r\n"
    results = api.verify(message, dns=table({}), now=NOW)
    assert summary(results) == [(Result.PERMERROR, Reason.MESSAGE_LIMITS, "")]
    assert summary(from_file(io.BytesIO(message), table({}))) == summary(results)


def test_unterminated_header_too_large(table: Table) -> None:
    message = b"From: a@example.com\r\nX-Big: " + b"a" * (2 * MAX_HEADER_BYTES)
    assert [r.reason for r in api.verify(message, dns=table({}))] == [Reason.MESSAGE_LIMITS]
    assert [r.reason for r in from_file(io.BytesIO(message), table({}))] == [
        Reason.MESSAGE_LIMITS]


SIG = b"DKIM-Signature: v=1; a=rsa-sha256; d=example.com; s=sel; h=from; bh=AAAA; b=AAAA\r\n"


def crlf_header_just_over_the_limit() -> bytes:
    head = SIG + b"From: a@example.com\r\nX-Pad: "
    head += b"a" * (MAX_HEADER_BYTES + 10 - len(head))
    return head + b"\r\n\r\nbody\r\n"


def lf_header_over_the_limit_once_made_crlf() -> bytes:
    """Under the limit as read (LF-only), over it once every LF is a CRLF."""
    head = SIG.replace(b"\r\n", b"\n") + b"From: a@example.com\nX-Folded: a\n"
    lines = (MAX_HEADER_BYTES - len(head)) // 3 - 100
    head += b" a\n" * lines
    assert len(head) < MAX_HEADER_BYTES < len(head) + lines
    return head + b"\nbody\n"


def lf_header_only_over_the_limit_once_made_crlf() -> bytes:
    """The same header, and no body: the message ends inside the header."""
    return lf_header_over_the_limit_once_made_crlf().removesuffix(b"\nbody\n")


OVER_THE_LIMIT = [
    pytest.param(crlf_header_just_over_the_limit, id="crlf-10-bytes-over"),
    pytest.param(lf_header_over_the_limit_once_made_crlf, id="lf-folded"),
    pytest.param(lf_header_only_over_the_limit_once_made_crlf, id="lf-folded-no-body"),
]


@pytest.mark.parametrize("make", OVER_THE_LIMIT)
def test_verify_and_verify_file_refuse_a_header_over_the_limit(
        table: Table, make: Callable[[], bytes]) -> None:
    message = make()
    assert [r.reason for r in api.verify(message, dns=table({}), now=NOW)] == [
        Reason.MESSAGE_LIMITS]
    assert [r.reason for r in from_file(io.BytesIO(message), table({}))] == [
        Reason.MESSAGE_LIMITS]


def test_signing_refuses_a_message_past_the_limits(ed_key: SigningKey) -> None:
    with pytest.raises(SignError, match="more than 1000 header fields"):
        signed(ed_key, many_fields(MAX_HEADER_FIELDS))


def test_max_signatures_bound(ed_key: SigningKey, table: Table, record: Record) -> None:
    specs = [SignSpec(domain="example.com", selector="sel", key=ed_key) for _ in range(20)]
    message = b"".join(api.sign_specs(MSG, specs, now=NOW)) + MSG
    dns = table({KEY_NAME: [record(ed_key)]})
    assert [r.result for r in api.verify(message, dns=dns, now=NOW)] == [Result.PASS] * 8
    results = api.verify(message, dns=dns, now=NOW, policy=VerifyPolicy(max_signatures=2))
    assert [r.index for r in results] == [0, 1]
    assert [r.index for r in from_file(io.BytesIO(message), dns,
                                       policy=VerifyPolicy(max_signatures=2))] == [0, 1]


def test_limits_result_shape() -> None:
    result = api.limits_result("too big")
    assert (result.result, result.reason, result.detail) == (
        Result.PERMERROR, Reason.MESSAGE_LIMITS, "too big")
    assert result.reason_text == "message exceeds verification limits: too big"
