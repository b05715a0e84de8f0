"""Hostile input: verification answers a list of results — never an uncaught
exception — in bounded time and bounded memory.

Memory: ``verify_file`` streams, so its peak (tracemalloc) stays small whatever the
body size; ``verify`` on bytes holds the message itself, so what is bounded there is
the growth beyond the input size.
"""

from __future__ import annotations

import asyncio
import io
import random
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailseal import api
from mailseal.dkim.keys import SigningKey
from mailseal.dkim.reasons import Reason
from mailseal.dkim.sign import SignSpec
from mailseal.dkim.verify import DkimResult
from mailseal.results import Result

NOW = 1_700_000_000
MB = 1 << 20
SECONDS = 5.0  # per verification, generous for slow CI machines
STREAM_PEAK = 64 * MB  # verify_file, whatever the message size
GROWTH = 32 * MB  # verify(bytes): allocations beyond the input itself

KEY_NAME = "sel._domainkey.example.com"
SIG = (b"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.com; s=sel;"
       b" h=from; bh=AAAA; b=AAAA\r\n")


@dataclass
class Case:
    message: bytes
    expect: list[Reason] | None  # None: any list of results


def sign(key: SigningKey, message: bytes, **kw: object) -> bytes:
    args: dict[str, object] = {"domain": "example.com", "selector": "sel", "key": key}
    args.update(kw)
    return b"".join(api.sign_specs(message, [SignSpec(**args)], now=NOW)) + message  # type: ignore[arg-type]


@dataclass
class Measured:
    results: list[DkimResult]
    seconds: float
    peak: int


def measure(run: Callable[[], list[DkimResult]]) -> Measured:
    tracemalloc.start()
    try:
        start = time.perf_counter()
        results = run()
        seconds = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return Measured(results, seconds, peak)


def check_bytes(case: Case, dns: object) -> None:
    m = measure(lambda: api.verify(case.message, dns=dns, now=NOW))  # type: ignore[arg-type]
    check_measured(m, case)
    assert m.peak < len(case.message) + GROWTH, f"peak {m.peak / MB:.1f} MiB"


def check_file(case: Case, dns: object) -> None:
    m = measure(lambda: asyncio.run(api.verify_file(  # type: ignore[arg-type]
        io.BytesIO(case.message), dns=dns, now=NOW)))
    check_measured(m, case)
    assert m.peak < STREAM_PEAK, f"peak {m.peak / MB:.1f} MiB"


def check_measured(m: Measured, case: Case) -> None:
    assert isinstance(m.results, list)
    assert all(isinstance(r, DkimResult) for r in m.results)
    assert m.seconds < SECONDS, m.seconds
    if case.expect is not None:
        assert [r.reason for r in m.results] == case.expect


def check_both(case: Case, dns: object) -> None:
    check_bytes(case, dns)
    check_file(case, dns)


@pytest.fixture(scope="module")
def dns(table: Callable[..., object], record: Callable[..., bytes], ed_key: SigningKey) -> object:
    return table({KEY_NAME: [record(ed_key)]})


def test_ten_thousand_header_fields(dns: object) -> None:
    message = b"".join(b"X-%d: v\r\n" % i for i in range(10_000)) + b"From: a@example.com\r\n\r\nx\r\n"
    check_both(Case(SIG + message, [Reason.MESSAGE_LIMITS]), dns)


def test_one_megabyte_header_line(ed_key: SigningKey, dns: object) -> None:
    message = b"From: a@example.com\r\nX-Long: " + b"a" * 1_000_000 + b"\r\n\r\nbody\r\n"
    check_both(Case(sign(ed_key, message, headers=("from", "x-long")), [Reason.PASS]), dns)


def test_header_line_past_the_limit(dns: object) -> None:
    message = SIG + b"From: a@example.com\r\nX-Long: " + b"a" * (3 * MB) + b"\r\n\r\nbody\r\n"
    check_both(Case(message, [Reason.MESSAGE_LIMITS]), dns)


def test_thousand_entries_in_h(ed_key: SigningKey, dns: object) -> None:
    names = tuple(f"x-absent-{i}" for i in range(1_000))
    message = sign(ed_key, b"From: a@example.com\r\n\r\nbody\r\n", headers=names, oversign=names)
    assert message.count(b"x-absent-") == 1_000
    check_both(Case(message, [Reason.PASS]), dns)
    tampered = message.replace(b"\r\n\r\nbody", b"\r\nX-Absent-7: added\r\n\r\nbody")
    check_both(Case(tampered, [Reason.SIGNATURE_MISMATCH]), dns)


def test_thousand_from_in_h(dns: object) -> None:
    h = b":".join([b"from"] * 1_000)
    message = (b"DKIM-Signature: v=1; a=ed25519-sha256; d=example.com; s=sel; h=" + h
               + b"; bh=AAAA; b=AAAA\r\n" + b"From: a@example.com\r\n" * 500 + b"\r\nbody\r\n")
    check_both(Case(message, [Reason.BODY_HASH_MISMATCH]), dns)


def test_fifty_signatures(ed_key: SigningKey, table: Callable[..., object],
                          record: Callable[..., bytes]) -> None:
    specs = [SignSpec(domain="example.com", selector=f"s{i}", key=ed_key,
                      canonicalization=c)
             for i in range(25) for c in ("relaxed/relaxed", "simple/simple")]
    body = b"From: a@example.com\r\n\r\n" + b"line  of text \r\n" * 1000
    message = b"".join(api.sign_specs(body, specs, now=NOW)) + body
    dns = table({f"s{i}._domainkey.example.com": [record(ed_key)] for i in range(25)})
    check_both(Case(message, [Reason.PASS] * 8), dns)  # max_signatures = 8
    assert len(dns.asked) <= 2 * 8  # type: ignore[attr-defined]


def random_bytes(n: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(n)


@pytest.mark.parametrize("prefix", [b"", b"DKIM-Signature:", SIG, b"From: a\r\n\r\n"])
def test_binary_garbage(dns: object, prefix: bytes) -> None:
    check_both(Case(prefix + random_bytes(MB, 1), None), dns)


def test_garbage_signature_values(dns: object) -> None:
    fields = b"".join(b"DKIM-Signature:" + random_bytes(200, i).replace(b"\n", b" ") + b"\r\n"
                      for i in range(20))
    check_both(Case(fields + b"From: a@example.com\r\n\r\nx\r\n", None), dns)


def test_huge_signature_field(dns: object) -> None:
    message = (b"DKIM-Signature: v=1; a=ed25519-sha256; d=example.com; s=sel; h=from; bh=AAAA;"
               b" b=" + b"A" * 900_000 + b"\r\nFrom: a@example.com\r\n\r\nx\r\n")
    check_both(Case(message, [Reason.BODY_HASH_MISMATCH]), dns)


@pytest.fixture(scope="module")
def spaces_message(ed_key: SigningKey) -> bytes:
    head = b"From: a@example.com\r\nSubject: spaces\r\n\r\n"
    body = b" " * (20 * MB)
    fields = api.sign_specs(head + body, [
        SignSpec(domain="example.com", selector="sel", key=ed_key, canonicalization=c)
        for c in ("relaxed/relaxed", "simple/simple")], now=NOW)
    return b"".join(fields) + head + body


def test_twenty_megabytes_of_spaces(spaces_message: bytes, dns: object) -> None:
    check_both(Case(spaces_message, [Reason.PASS, Reason.PASS]), dns)


def test_a_million_empty_lines(ed_key: SigningKey, dns: object) -> None:
    body = b"\r\n" * 1_000_000
    signed = b"".join(api.sign_specs(b"From: a@example.com\r\n\r\n" + body, [
        SignSpec(domain="example.com", selector="sel", key=ed_key, canonicalization=c)
        for c in ("relaxed/relaxed", "simple/simple")], now=NOW))
    message = signed + b"From: a@example.com\r\n\r\n" + body
    check_both(Case(message, [Reason.PASS, Reason.PASS]), dns)
    check_both(Case(message + b"x", [Reason.BODY_HASH_MISMATCH] * 2), dns)


@pytest.fixture(scope="module")
def bare_lf_message(ed_key: SigningKey) -> bytes:
    return sign(ed_key, b"From: a@example.com\n\n" + b"\n" * 1_000_000)


def test_a_million_bare_lf_streamed(bare_lf_message: bytes, dns: object) -> None:
    check_file(Case(bare_lf_message, [Reason.PASS]), dns)


def test_a_million_bare_lf_in_memory(bare_lf_message: bytes, dns: object) -> None:
    """Once ~90 bytes per LF (a regex substitution): 1 MB of LFs peaked at ~90 MiB."""
    check_bytes(Case(bare_lf_message, [Reason.PASS]), dns)


def test_many_distinct_length_limits(dns: object) -> None:
    """Eight signatures, eight l= values: eight hashes of one 5 MB body."""
    sigs = b"".join(
        b"DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed; d=example.com; s=sel;"
        b" l=%d; h=from; bh=AAAA; b=AAAA\r\n" % (i * 1000) for i in range(8))
    message = sigs + b"From: a@example.com\r\n\r\n" + b"a \t b\r\n" * (MB * 5 // 7)
    check_both(Case(message, [Reason.BODY_HASH_MISMATCH] * 8), dns)


ATOMS = st.sampled_from([b"\r", b"\n", b"\t", b":", b";", b"=", b" ", b"a", b"b",
                         b"DKIM-Signature:", b"v=1", b"a=ed25519-sha256", b"d=example.com",
                         b"s=sel", b"h=from", b"bh=AAAA", b"b=AAAA", b"l=3", b"From:",
                         b"\r\n\r\n", b"\xff"])


@settings(max_examples=200, deadline=None)
@given(st.lists(ATOMS, max_size=60).map(b"".join))
def test_verify_never_raises(dns: object, message: bytes) -> None:
    """STYLE habit 11 for the whole verifier."""
    results = api.verify(message, dns=dns, now=NOW)  # type: ignore[arg-type]
    assert all(isinstance(r, DkimResult) and isinstance(r.result, Result) for r in results)
