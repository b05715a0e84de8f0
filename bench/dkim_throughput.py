"""How fast is the DKIM engine, next to dkimpy and next to the raw primitives?

Run: ``.venv/bin/python bench/dkim_throughput.py [--quick]``

Everything is measured in this one process and run, so the ratios compare like
with like: mailseal and dkimpy sign and verify the same messages with the same
keys; key lookups are served from an in-process table for both (mailseal: a
resolver object with ``async def txt``, dkimpy: a ``dnsfunc`` over the same dict),
so the figures are "with the key cached". mailseal also keeps the parsed key (a
process-wide memo keyed by the record's text, as a server does) while dkimpy decodes
and loads it on every call: one cell clears that memo before every message and is
printed beside the cached figure. The raw ceilings are RSA-2048 and
Ed25519 through ``cryptography`` directly, and ``hashlib.sha256``.

Every measured result is checked: a signature made must verify (with mailseal
and with dkimpy), a verification must say pass, a body hash must equal dkimpy's.
A broken path raises ``BenchError`` instead of printing a number.

Each cell is timed with ``time.perf_counter`` over enough calls to last at least
0.5 s (``--quick``: 0.2 s), once per round; the cells run round after round (3, or
2 with ``--quick``) and each figure is the cell's best round. The two sides of each
target ratio run back to back within a round. On a shared machine the best round
is the least disturbed one; the targets table shows the per-round spread too.

The 50 MiB streamed-verify memory check runs ``api.verify_file`` in a child
process started by a small launcher process: on Linux a child spawned by a big
parent inherits the parent's RSS high-water mark across exec, so the launcher
keeps ``RUSAGE_CHILDREN`` honest.

The output is Markdown (pipe tables), ready for docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime
import hashlib
import importlib.metadata
import json
import math
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dkim  # type: ignore[import-untyped]
import dkim.canonicalization  # type: ignore[import-untyped]
import nacl.signing
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.backends.openssl.backend import backend as openssl_backend
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa, utils

from mailseal import api
from mailseal.dkim.bodyhash import BodyHashes, body_hash
from mailseal.dkim.canonical import Canon
from mailseal.dkim.keys import SigningKey
from mailseal.dkim.sign import DEFAULT_OVERSIGNED, Signer, SignSpec, signed_header_names
from mailseal.dkim.verify import _parse_cached
from mailseal.dns.types import Answer, Status
from mailseal.message import split_message
from mailseal.results import Result

DOMAIN = "example.com"
RSA_SELECTOR = "rsa2026"
ED_SELECTOR = "ed2026"
ED_SEED = bytes(range(32))  # fixed: Ed25519 signatures are then byte-exact across runs
CHUNK = 1 << 16  # the engine's body chunk size (api.iter_chunks, verify_file)
KIB, MIB = 1024, 1024 * 1024
SIZES = (("4 KiB", 4 * KIB), ("180 KiB", 180 * KIB), ("5 MiB", 5 * MIB))
STREAM_SIZE = 50 * MIB

TARGET_SIGN_OF_RAW = 0.85  # sign 4 KiB rsa-sha256 vs raw RSA-2048 sign
TARGET_VERIFY_VS_DKIMPY = 3.0  # verify 4 KiB, key cached
TARGET_CANON_ORDINARY = 0.25  # relaxed body canon + sha256 vs raw sha256
TARGET_CANON_WHITESPACE = 0.05
TARGET_STREAM_RSS_MIB = 64


class BenchError(AssertionError):
    """A measured path gave a wrong result; its figures would be worthless."""


def check(condition: bool, what: str) -> None:
    if not condition:
        raise BenchError(what)


# --- fixtures ---------------------------------------------------------------------


class TableResolver:
    """The key records from a dict: DNS "with the key cached"."""

    def __init__(self, records: dict[str, bytes]) -> None:
        self._records = records

    async def txt(self, name: str) -> Answer[bytes]:
        record = self._records.get(name.rstrip(".").lower())
        if record is None:
            return Answer(Status.NXDOMAIN)
        return Answer(Status.OK, (record,))


def dkimpy_dnsfunc(records: dict[str, bytes]) -> Callable[..., bytes | None]:
    def dnsfunc(name: bytes | str, timeout: float = 5) -> bytes | None:
        text = name.decode("ascii") if isinstance(name, bytes) else name
        return records.get(text.rstrip(".").lower())

    return dnsfunc


class Keys:
    def __init__(self) -> None:
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ed = ed25519.Ed25519PrivateKey.from_private_bytes(ED_SEED)
        self.rsa_pem = self.rsa.private_bytes(  # PKCS#1, what dkimpy reads
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption())
        self.ed_seed_b64 = base64.b64encode(ED_SEED)  # dkimpy's Ed25519 key format
        rsa_spki = self.rsa.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        ed_raw = self.ed.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.records = {
            f"{RSA_SELECTOR}._domainkey.{DOMAIN}":
                b"v=DKIM1; k=rsa; p=" + base64.b64encode(rsa_spki),
            f"{ED_SELECTOR}._domainkey.{DOMAIN}":
                b"v=DKIM1; k=ed25519; p=" + base64.b64encode(ed_raw),
        }


HEADER = (
    "Return-Path: <alice@example.com>\r\n"
    "Received: from mail.example.com (mail.example.com [192.0.2.10])\r\n"
    "\tby mx.example.net (Postfix) with ESMTPS id 4QX1Z26bGmz9sT\r\n"
    "\tfor <bob@example.net>; Tue, 10 Nov 2026 09:14:03 +0000 (UTC)\r\n"
    "Received: from [10.0.0.5] (unknown [198.51.100.7])\r\n"
    "\t(Authenticated sender: alice)\r\n"
    "\tby mail.example.com (Postfix) with ESMTPSA id 9F2C01A04B\r\n"
    "\tfor <bob@example.net>; Tue, 10 Nov 2026 09:14:01 +0000 (UTC)\r\n"
    "Message-ID: <20261110091401.4f2a9c17@mail.example.com>\r\n"
    "Date: Tue, 10 Nov 2026 09:14:01 +0000\r\n"
    "MIME-Version: 1.0\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Thunderbird/128.4.0\r\n"
    "Content-Language: en-GB\r\n"
    "From: Alice Example <alice@example.com>\r\n"
    "To: Bob Recipient <bob@example.net>\r\n"
    "Cc: Carol Third <carol@example.org>,\r\n Dave Fourth <dave@example.org>\r\n"
    "Subject: Re: Quarterly figures for review ({label})\r\n"
    "In-Reply-To: <20261109171255.77aa01@mail.example.net>\r\n"
    "References: <20261109171255.77aa01@mail.example.net>\r\n"
    "Content-Type: text/plain; charset=UTF-8; format=flowed\r\n"
    "Content-Transfer-Encoding: 7bit\r\n"
    "\r\n"
)

_VOCABULARY = (
    "the of and to in is that for it as with was on be by this are or from at which "
    "but not have an they you were their one all we can has there been if more when "
    "will would who so no report figures quarter revenue budget review team meeting "
    "project schedule customer order delivery invoice account market growth cost "
    "please thanks attached draft final version update question answer agree number "
    "week month year today tomorrow morning afternoon office server network mail "
    "message list policy change plan result estimate compare previous current next"
)
WORDS = _VOCABULARY.split()


def _paragraph(rng: random.Random) -> bytes:
    """Wrapped prose: sentences of common words, lines of at most 72 characters,
    now and then a quoted reply line."""
    words: list[str] = []
    for _ in range(rng.randint(2, 6)):
        sentence = [rng.choice(WORDS) for _ in range(rng.randint(6, 18))]
        sentence[0] = sentence[0].capitalize()
        words.extend(sentence)
        words[-1] += rng.choice(".....?!")
    lines, line = [], ""
    for word in words:
        if line and len(line) + 1 + len(word) > 72:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    lines.append(line)
    if rng.random() < 0.15:
        lines = ["> " + x for x in lines]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")


def _whitespace_line(rng: random.Random) -> bytes:
    """Short words between runs of mixed spaces and tabs, ending in whitespace;
    many lines blank or whitespace only; now and then a long whitespace run."""
    r = rng.random()
    if r < 0.2:
        return b"\r\n"
    if r < 0.35:
        return _ws_run(rng, 1, 12) + b"\r\n"
    parts = []
    for _ in range(rng.randint(3, 12)):
        parts.append(_ws_run(rng, 1, 12))
        parts.append(rng.choice((b"a", b"of", b"to", b"the", b"x", b"ok", b"hi")))
    if rng.random() < 0.05:
        parts.append(_ws_run(rng, 200, 2000))
    parts.append(_ws_run(rng, 1, 8))
    return b"".join(parts) + b"\r\n"


def _ws_run(rng: random.Random, low: int, high: int) -> bytes:
    return bytes(rng.choice(b" \t") for _ in range(rng.randint(low, high)))


def body_blocks(size: int, kind: str = "prose", seed: int = 1) -> Iterator[bytes]:
    """A deterministic CRLF body of about ``size`` bytes, yielded in blocks of whole
    lines. Built from a pool of generated pieces drawn at random, so 50 MiB is fast."""
    rng = random.Random(seed)
    make = _paragraph if kind == "prose" else _whitespace_line
    pool = [make(rng) for _ in range(1500)]
    written = 0
    block: list[bytes] = []
    block_len = 0
    while True:
        piece = rng.choice(pool)
        if written + len(piece) > size:
            break
        block.append(piece)
        block_len += len(piece)
        written += len(piece)
        if block_len >= CHUNK:
            yield b"".join(block)
            block, block_len = [], 0
    if kind == "prose":
        block.append(b"-- \r\nAlice\r\n")  # a signature block ends the text
    if block:
        yield b"".join(block)


def make_message(label: str, size: int) -> bytes:
    header = HEADER.format(label=label).encode("ascii")
    return header + b"".join(body_blocks(size - len(header)))


# --- measuring --------------------------------------------------------------------


def measure(batch: Callable[[int], list[Any]], min_time: float) -> tuple[float, list[Any]]:
    """Calls per second of ``batch(n)`` (which makes n calls and returns their
    results), over a final batch lasting at least ``min_time``; plus its results."""
    n = 1
    while True:
        t0 = time.perf_counter()
        results = batch(n)
        dt = time.perf_counter() - t0
        if dt >= min_time:
            return n / dt, results
        n = max(n + 1, min(n * 100, math.ceil(n * min_time * 1.2 / max(dt, 1e-9))))


def repeat(fn: Callable[[], Any]) -> Callable[[int], list[Any]]:
    return lambda n: [fn() for _ in range(n)]


@dataclass
class Cell:
    """One measured figure: a batch to time, a check of its results, a unit scale
    (1 for calls/s; bytes per call / 1e6 for MB/s); one rate per round."""

    name: str
    batch: Callable[[int], list[Any]]
    check: Callable[[list[Any]], None]
    scale: float = 1.0
    rates: list[float] = field(default_factory=list)

    @property
    def best(self) -> float:
        return max(self.rates)


class Bench:
    """Holds the keys, the resolvers and the cells. ``run`` measures every cell once
    per round, round after round, and keeps each cell's best: on a shared machine the
    best of interleaved rounds is the figure least disturbed by neighbours, and the
    two sides of every ratio were measured minutes, not seconds, apart at worst."""

    def __init__(self, min_time: float, rounds: int) -> None:
        self.min_time = min_time
        self.rounds = rounds
        self.keys = Keys()
        self.resolver = TableResolver(self.keys.records)
        self.dnsfunc = dkimpy_dnsfunc(self.keys.records)
        self.now = int(time.time())
        self.loop = asyncio.new_event_loop()
        self.rsa_key = SigningKey(self.keys.rsa, "bench RSA-2048")
        self.ed_key = SigningKey(self.keys.ed, "bench Ed25519")
        self.cells: dict[str, Cell] = {}

    def add(self, name: str, batch: Callable[[int], list[Any]],
            check_results: Callable[[list[Any]], None], scale: float = 1.0) -> None:
        batch(1)  # warm-up, and a first failure shows before any timing
        self.cells[name] = Cell(name, batch, check_results, scale)

    def measure_first(self, names: Sequence[str]) -> None:
        """Measure these cells first in each round, back to back in this order: the two
        sides of each target ratio are then timed seconds apart, not minutes."""
        first = {name: self.cells[name] for name in names}
        self.cells = first | {k: v for k, v in self.cells.items() if k not in first}

    def run(self, progress: Callable[[str], None]) -> None:
        for r in range(self.rounds):
            for cell in self.cells.values():
                per_s, results = measure(cell.batch, self.min_time)
                cell.check(results)
                cell.rates.append(per_s * cell.scale)
            progress(f"round {r + 1}/{self.rounds} done")

    def __getitem__(self, name: str) -> Cell:
        return self.cells[name]

    # correctness oracles

    def ms_pass(self, message: bytes) -> bool:
        results = self.loop.run_until_complete(
            api.verify_async(message, dns=self.resolver, now=self.now))
        return len(results) == 1 and results[0].result is Result.PASS

    def dkimpy_pass(self, message: bytes) -> bool:
        return bool(dkim.verify(message, dnsfunc=self.dnsfunc))

    def check_signed(self, signed: bytes, what: str) -> None:
        check(self.ms_pass(signed), f"{what}: mailseal does not verify the signature made")
        check(self.dkimpy_pass(signed), f"{what}: dkimpy does not verify the signature made")

    # cells

    def ms_sign(self, name: str, message: bytes, key: SigningKey, selector: str,
                canon: str) -> None:
        def one() -> bytes:
            return api.sign(message, domain=DOMAIN, selector=selector, key=key,
                            canonicalization=canon, now=self.now)

        def check_fields(fields: list[bytes]) -> None:
            check(all(f == fields[0] for f in fields), f"{name}: signatures differ")
            self.check_signed(fields[0] + message, name)

        self.add(name, repeat(one), check_fields)

    def dkimpy_sign(self, name: str, message: bytes, privkey: bytes, selector: str,
                    canon: str, algorithm: bytes) -> None:
        head, body = canon.encode("ascii").split(b"/")
        parsed, _ = split_message(message)
        # The same h= as mailseal's (its defaults, From oversigned), so both hash the same.
        names = [n.encode("ascii") for n in signed_header_names(parsed, None, DEFAULT_OVERSIGNED)]

        def one() -> bytes:
            signed: bytes = dkim.sign(
                message, selector.encode("ascii"), DOMAIN.encode("ascii"), privkey,
                canonicalize=(head, body), include_headers=names, signature_algorithm=algorithm)
            return signed

        def check_fields(fields: list[bytes]) -> None:
            for f in {fields[0], fields[-1]}:
                self.check_signed(f + message, name)

        self.add(name, repeat(one), check_fields)

    def ms_verify(self, name: str, signed: bytes, *, cold: bool = False) -> None:
        """``cold``: the parsed-key memo (``verify._parse_cached``, process-wide, keyed
        by the record's text) is cleared before every message, so each one decodes and
        loads the key as dkimpy does on every call."""
        async def run(n: int) -> list[Any]:
            out = []
            for _ in range(n):
                if cold:
                    _parse_cached.cache_clear()
                out.append(await api.verify_async(signed, dns=self.resolver, now=self.now))
            return out

        def check_results(results: list[Any]) -> None:
            check(all(len(r) == 1 and r[0].result is Result.PASS for r in results),
                  f"{name}: mailseal verification is not pass")

        self.add(name, lambda n: self.loop.run_until_complete(run(n)), check_results)

    def dkimpy_verify(self, name: str, signed: bytes) -> None:
        def check_results(results: list[Any]) -> None:
            check(all(r is True for r in results), f"{name}: dkimpy verification is not pass")

        self.add(name, repeat(lambda: dkim.verify(signed, dnsfunc=self.dnsfunc)), check_results)


# --- the questions ----------------------------------------------------------------


def add_raw(b: Bench, sha_body: bytes) -> None:
    """The ceilings: RSA-2048 and Ed25519 over a 32-byte digest, SHA-256 of 5 MiB."""
    digest = hashlib.sha256(b"header hash input").digest()
    prehashed = utils.Prehashed(hashes.SHA256())
    rsa_pub = b.keys.rsa.public_key()
    ed_pub = b.keys.ed.public_key()
    rsa_sig = b.keys.rsa.sign(digest, padding.PKCS1v15(), prehashed)
    ed_sig = b.keys.ed.sign(digest)

    def verify_bad(which: str) -> None:
        if which == "rsa":
            rsa_pub.verify(rsa_sig, digest[::-1], padding.PKCS1v15(), prehashed)
        else:
            ed_pub.verify(ed_sig, digest[::-1])

    for which in ("rsa", "ed25519"):
        try:
            verify_bad(which)
        except InvalidSignature:
            continue
        raise BenchError("raw verify accepts a signature over another digest")

    def rsa_ok(sigs: list[bytes]) -> None:
        check(all(s == rsa_sig for s in sigs), "raw RSA sign: wrong signature")

    def ed_ok(sigs: list[bytes]) -> None:
        check(all(s == ed_sig for s in sigs), "raw Ed25519 sign: wrong signature")

    def verified(results: list[None]) -> None:
        pass  # verify() raises InvalidSignature on failure, which ends the run

    b.add("raw rsa sign",
          repeat(lambda: b.keys.rsa.sign(digest, padding.PKCS1v15(), prehashed)), rsa_ok)
    b.add("raw rsa verify",
          repeat(lambda: rsa_pub.verify(rsa_sig, digest, padding.PKCS1v15(), prehashed)),
          verified)
    b.add("raw ed sign", repeat(lambda: b.keys.ed.sign(digest)), ed_ok)
    b.add("raw ed verify", repeat(lambda: ed_pub.verify(ed_sig, digest)), verified)
    nacl_key = nacl.signing.SigningKey(ED_SEED)
    b.add("nacl ed sign", repeat(lambda: nacl_key.sign(digest).signature), ed_ok)
    b.add("nacl ed verify", repeat(lambda: nacl_key.verify_key.verify(digest, ed_sig)),
          lambda r: check(all(x == digest for x in r), "PyNaCl verify: wrong result"))
    expected = hashlib.sha256(sha_body).digest()
    b.add("raw sha256", repeat(lambda: hashlib.sha256(sha_body).digest()),
          lambda r: check(all(d == expected for d in r), "sha256: wrong digest"),
          scale=len(sha_body) / 1e6)


CANONS = ("relaxed/simple", "relaxed/relaxed")


def add_rsa(b: Bench, messages: Sequence[tuple[str, bytes]]) -> None:
    for label, message in messages:
        for canon in CANONS:
            what = f"rsa {canon} {label}"
            b.ms_sign(f"ms sign {what}", message, b.rsa_key, RSA_SELECTOR, canon)
            b.dkimpy_sign(f"py sign {what}", message, b.keys.rsa_pem, RSA_SELECTOR, canon,
                          b"rsa-sha256")
            # Both verify the same message, signed by mailseal.
            signed = api.sign(message, domain=DOMAIN, selector=RSA_SELECTOR, key=b.rsa_key,
                              canonicalization=canon, now=b.now) + message
            b.ms_verify(f"ms verify {what}", signed)
            b.dkimpy_verify(f"py verify {what}", signed)
            if canon == "relaxed/simple" and label == "4 KiB":
                b.ms_verify(f"ms verify cold {what}", signed, cold=True)


def add_ed25519(b: Bench, message: bytes) -> None:
    canon = "relaxed/simple"
    b.ms_sign("ms sign ed", message, b.ed_key, ED_SELECTOR, canon)
    b.dkimpy_sign("py sign ed", message, b.keys.ed_seed_b64, ED_SELECTOR, canon,
                  b"ed25519-sha256")
    signed = api.sign(message, domain=DOMAIN, selector=ED_SELECTOR, key=b.ed_key,
                      canonicalization=canon, now=b.now) + message
    b.ms_verify("ms verify ed", signed)
    b.dkimpy_verify("py verify ed", signed)


def add_canon(b: Bench, name: str, body: bytes) -> None:
    """Relaxed body canonicalization + sha256 through BodyHashes, fed in the engine's
    chunk size (the chunks are cut beforehand: slicing is not what is measured)."""
    chunks = [body[i : i + CHUNK] for i in range(0, len(body), CHUNK)]
    expected = hashlib.sha256(dkim.canonicalization.Relaxed.canonicalize_body(body)).digest()
    check(body_hash(body, Canon.RELAXED) == expected, f"{name}: body hash differs from dkimpy's")

    def one() -> bytes:
        hashes_ = BodyHashes()
        sink = hashes_.add(Canon.RELAXED, "sha256")
        for chunk in chunks:
            hashes_.feed(chunk)
        hashes_.finish()
        return sink.digest()

    def same(digests: list[bytes]) -> None:
        check(all(d == expected for d in digests), f"{name}: body hash differs from dkimpy's")

    b.add(f"ms canon {name}", repeat(one), same, scale=len(body) / 1e6)
    b.add(f"py canon {name}", repeat(
        lambda: hashlib.sha256(dkim.canonicalization.Relaxed.canonicalize_body(body)).digest()),
        same, scale=len(body) / 1e6)


# --- memory: 50 MiB streamed verify in a child ------------------------------------

LAUNCHER = """
import json, resource, subprocess, sys
done = subprocess.run(sys.argv[1:], capture_output=True, text=True)
print(json.dumps({"rc": done.returncode, "stdout": done.stdout, "stderr": done.stderr[-2000:],
                  "maxrss_kib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))
"""

BASELINE_CHILD = "import mailseal.api; print('{}')"

VERIFY_CHILD = """
import asyncio, json, resource, sys, time
from mailseal import api
from mailseal.dns.types import Answer, Status
records = json.loads(sys.argv[2])

class TableResolver:
    async def txt(self, name):
        record = records.get(name.rstrip(".").lower())
        return Answer(Status.OK, (record.encode(),)) if record else Answer(Status.NXDOMAIN)

t0 = time.perf_counter()
with open(sys.argv[1], "rb") as fh:
    results = asyncio.run(api.verify_file(fh, dns=TableResolver(), now=int(sys.argv[3])))
elapsed = time.perf_counter() - t0
print(json.dumps({"results": [r.result.value for r in results], "seconds": elapsed,
                  "self_maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def run_child(code: str, *args: str) -> dict[str, Any]:
    """Run ``python -c code args`` under a fresh launcher; its RUSAGE_CHILDREN is the
    child's peak RSS alone."""
    done = subprocess.run([sys.executable, "-c", LAUNCHER, sys.executable, "-c", code, *args],
                          capture_output=True, text=True, check=True)
    report: dict[str, Any] = json.loads(done.stdout)
    check(report["rc"] == 0, f"memory child failed: {report['stderr']}")
    report["out"] = json.loads(report["stdout"])
    return report


def stream_memory(b: Bench) -> dict[str, Any]:
    """Sign a 50 MiB message (streamed: never whole in this process either), write it
    twice (CRLF, as on the wire; LF, as in a Maildir), and verify each file in a child."""
    header = HEADER.format(label="50 MiB").encode("ascii")
    fields, _ = split_message(header)
    signer = Signer(fields, [SignSpec(domain=DOMAIN, selector=RSA_SELECTOR, key=b.rsa_key)])
    size = STREAM_SIZE - len(header)
    for block in body_blocks(size, seed=5):
        signer.feed(block)
    (signature,) = signer.finish(b.now)
    records = json.dumps({k: v.decode("ascii") for k, v in b.keys.records.items()})
    out: dict[str, Any] = {"baseline_kib": run_child(BASELINE_CHILD)["maxrss_kib"]}
    with tempfile.TemporaryDirectory(prefix="mailseal-bench-") as tmp:
        for eol in ("CRLF", "LF"):
            path = Path(tmp) / f"50mib-{eol}.eml"
            with open(path, "wb") as fh:
                for block in (signature + header, *body_blocks(size, seed=5)):
                    fh.write(block if eol == "CRLF" else block.replace(b"\r\n", b"\n"))
            report = run_child(VERIFY_CHILD, str(path), records, str(b.now))
            check(report["out"]["results"] == ["pass"],
                  f"streamed verify of the {eol} file is not pass: {report['out']['results']}")
            out[eol] = {"mib": path.stat().st_size / MIB, "kib": report["maxrss_kib"],
                        "self_kib": report["out"]["self_maxrss_kib"],
                        "seconds": report["out"]["seconds"],
                        "mbs": path.stat().st_size / 1e6 / report["out"]["seconds"]}
    return out


# --- report -----------------------------------------------------------------------


def machine() -> list[str]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.partition(":")[2].strip()
                break
    except OSError:
        pass
    return [
        f"- date: {datetime.datetime.now(datetime.UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- CPU: {model}; nproc {len(os.sched_getaffinity(0))} (os.cpu_count {os.cpu_count()})",
        f"- Python {platform.python_version()} ({platform.python_implementation()}), "
        f"{platform.system()} {platform.release()} {platform.machine()}",
        f"- cryptography {importlib.metadata.version('cryptography')}, "
        f"{openssl_backend.openssl_version_text()}",
        f"- dkimpy {importlib.metadata.version('dkimpy')}, "
        f"PyNaCl {importlib.metadata.version('pynacl')}",
    ]


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    out = ["| " + " | ".join(head) + " |",
           "|" + "|".join("---" if i == 0 else "---:" for i in range(len(head))) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def per_round(b: Bench, num: str, den: str) -> tuple[float, float]:
    """The lowest and highest ratio of two cells measured in the same round."""
    ratios = [x / y for x, y in zip(b[num].rates, b[den].rates, strict=True)]
    return min(ratios), max(ratios)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="about 0.2 s per cell and 2 rounds, instead of 0.5 s and 3")
    args = parser.parse_args(argv)
    b = Bench(0.2, 2) if args.quick else Bench(0.5, 3)
    started = time.perf_counter()

    def progress(text: str) -> None:
        print(f"  [{time.perf_counter() - started:5.0f} s] {text}", file=sys.stderr)

    messages = [(label, make_message(label, size)) for label, size in SIZES]
    ordinary = b"".join(body_blocks(5 * MIB, seed=2))
    spaces = b"".join(body_blocks(5 * MIB, kind="whitespace", seed=3))
    add_raw(b, ordinary)
    add_rsa(b, messages)
    add_ed25519(b, messages[0][1])
    add_canon(b, "ordinary", ordinary)
    add_canon(b, "whitespace", spaces)
    b.measure_first([
        "ms sign rsa relaxed/simple 4 KiB", "raw rsa sign", "ms sign rsa relaxed/relaxed 4 KiB",
        "ms verify rsa relaxed/simple 4 KiB", "py verify rsa relaxed/simple 4 KiB",
        "ms verify rsa relaxed/relaxed 4 KiB", "py verify rsa relaxed/relaxed 4 KiB",
        "ms canon ordinary", "raw sha256", "ms canon whitespace",
    ])
    progress(f"{len(b.cells)} cells set up and checked; measuring")
    b.run(progress)
    mem = stream_memory(b)
    progress("memory check done")

    cmd = ".venv/bin/python bench/dkim_throughput.py" + (" --quick" if args.quick else "")
    print(f"Command: `{cmd}` — each figure is the best of {b.rounds} interleaved rounds "
          f"of at least {b.min_time} s; {time.perf_counter() - started:.0f} s in all.\n")
    print("\n".join(machine()) + "\n")

    def rate(name: str, digits: int = 0) -> str:
        return f"{b[name].best:,.{digits}f}"

    print("Raw ceilings (cryptography on OpenSSL; hashlib):\n")
    print(table(["primitive", "rate"], [
        ["RSA-2048 PKCS#1 v1.5 sign (SHA-256 prehashed)", rate("raw rsa sign") + " /s"],
        ["RSA-2048 verify", rate("raw rsa verify") + " /s"],
        ["Ed25519 sign (a 32-byte digest)", rate("raw ed sign") + " /s"],
        ["Ed25519 verify", rate("raw ed verify") + " /s"],
        ["Ed25519 sign, PyNaCl (dkimpy's)", rate("nacl ed sign") + " /s"],
        ["Ed25519 verify, PyNaCl (dkimpy's)", rate("nacl ed verify") + " /s"],
        ["hashlib.sha256 of a 5 MiB buffer", rate("raw sha256") + " MB/s"],
    ]) + "\n")

    def ratio(num: str, den: str) -> str:
        return f"{b[num].best / b[den].best:.1f}x"

    def share(num: str, den: str) -> str:
        return f"{b[num].best / b[den].best:.0%}"

    print("rsa-sha256 with RSA-2048, messages per second (verify: key cached). "
          "Both verify the same mailseal-signed message.\n")
    rows = []
    for label, _ in messages:
        for canon in CANONS:
            w = f"rsa {canon} {label}"
            rows.append([label, canon, rate(f"ms sign {w}"), rate(f"py sign {w}", 1),
                         ratio(f"ms sign {w}", f"py sign {w}"),
                         share(f"ms sign {w}", "raw rsa sign"),
                         rate(f"ms verify {w}"), rate(f"py verify {w}", 1),
                         ratio(f"ms verify {w}", f"py verify {w}"),
                         share(f"ms verify {w}", "raw rsa verify")])
    print(table(["message", "c=", "sign mailseal", "sign dkimpy", "ratio", "% raw sign",
                 "verify mailseal", "verify dkimpy", "ratio", "% raw verify"], rows) + "\n")

    cold = "rsa relaxed/simple 4 KiB"
    print(f"Verify without the parsed-key memo (cleared before every message, so mailseal "
          f"decodes and loads the key each time, as dkimpy does): {rate(f'ms verify cold {cold}')}"
          f"/s, {ratio(f'ms verify cold {cold}', f'py verify {cold}')} dkimpy "
          f"(4 KiB, relaxed/simple; with the memo: "
          f"{ratio(f'ms verify {cold}', f'py verify {cold}')}).\n")

    print("ed25519-sha256, 4 KiB message, relaxed/simple, messages per second:\n")
    print(table(["", "mailseal", "dkimpy", "mailseal/dkimpy", "raw (cryptography)",
                 "mailseal % raw"], [
        ["sign", rate("ms sign ed"), rate("py sign ed"), ratio("ms sign ed", "py sign ed"),
         rate("raw ed sign"), share("ms sign ed", "raw ed sign")],
        ["verify", rate("ms verify ed"), rate("py verify ed"),
         ratio("ms verify ed", "py verify ed"), rate("raw ed verify"),
         share("ms verify ed", "raw ed verify")],
    ]) + "\n")

    print("Relaxed body canonicalization + sha256 of a 5 MiB body (mailseal: BodyHashes fed "
          "64 KiB chunks; dkimpy: Relaxed.canonicalize_body + hashlib):\n")
    print(table(["body", "mailseal", "% raw sha256", "dkimpy", "mailseal/dkimpy"], [
        [label, rate(f"ms canon {key}") + " MB/s",
         f"{b[f'ms canon {key}'].best / b['raw sha256'].best:.1%}",
         rate(f"py canon {key}") + " MB/s", ratio(f"ms canon {key}", f"py canon {key}")]
        for key, label in (("ordinary", "ordinary prose"),
                           ("whitespace", "whitespace-heavy"))]) + "\n")

    print(f"Streamed verify of a {mem['CRLF']['mib']:.0f} MiB message (api.verify_file in a "
          "child process started by a launcher; peak RSS from the launcher's RUSAGE_CHILDREN, "
          "the child's own RUSAGE_SELF beside it):\n")
    base = mem["baseline_kib"]
    print(table(["child", "peak RSS", "delta over import", "RUSAGE_SELF", "wall time"], [
        ["imports mailseal, nothing else", f"{base / KIB:.1f} MiB", "", "", ""]] + [
        [f"verify_file, {eol} file (result: pass)", f"{m['kib'] / KIB:.1f} MiB",
         f"{(m['kib'] - base) / KIB:+.1f} MiB", f"{m['self_kib'] / KIB:.1f} MiB",
         f"{m['seconds']:.2f} s ({m['mbs']:,.0f} MB/s)"]
        for eol, m in ((eol, mem[eol]) for eol in ("CRLF", "LF"))]) + "\n")

    def target(text: str, num: str, den: str, goal: float, pct: bool) -> list[str]:
        value = b[num].best / b[den].best
        low, high = per_round(b, num, den)
        shown = (f"{value:.1%} (rounds {low:.1%}–{high:.1%})" if pct
                 else f"{value:.2f}x (rounds {low:.2f}–{high:.2f}x)")
        return [text, shown, verdict(value >= goal)]

    peak = max(mem["CRLF"]["kib"], mem["LF"]["kib"]) / KIB
    w4 = "rsa {} 4 KiB"
    print("Targets:\n")
    print(table(["target", "measured (best; range over rounds)", ""], [
        target(f"sign 4 KiB rsa-sha256 relaxed/simple >= {TARGET_SIGN_OF_RAW:.0%} of raw "
               "RSA-2048 sign", "ms sign " + w4.format("relaxed/simple"), "raw rsa sign",
               TARGET_SIGN_OF_RAW, True),
        target(f"sign 4 KiB rsa-sha256 relaxed/relaxed >= {TARGET_SIGN_OF_RAW:.0%} of raw "
               "RSA-2048 sign", "ms sign " + w4.format("relaxed/relaxed"), "raw rsa sign",
               TARGET_SIGN_OF_RAW, True),
        target(f"verify 4 KiB rsa-sha256 relaxed/simple (key cached) >= "
               f"{TARGET_VERIFY_VS_DKIMPY:.0f}x dkimpy", "ms verify " + w4.format("relaxed/simple"),
               "py verify " + w4.format("relaxed/simple"), TARGET_VERIFY_VS_DKIMPY, False),
        target(f"verify 4 KiB rsa-sha256 relaxed/relaxed (key cached) >= "
               f"{TARGET_VERIFY_VS_DKIMPY:.0f}x dkimpy",
               "ms verify " + w4.format("relaxed/relaxed"),
               "py verify " + w4.format("relaxed/relaxed"), TARGET_VERIFY_VS_DKIMPY, False),
        target(f"relaxed body canon + sha256, ordinary 5 MiB >= {TARGET_CANON_ORDINARY:.0%} "
               "of raw sha256", "ms canon ordinary", "raw sha256", TARGET_CANON_ORDINARY, True),
        target(f"relaxed body canon + sha256, whitespace-heavy 5 MiB >= "
               f"{TARGET_CANON_WHITESPACE:.0%} of raw sha256", "ms canon whitespace",
               "raw sha256", TARGET_CANON_WHITESPACE, True),
        [f"50 MiB streamed verify: peak RSS < {TARGET_STREAM_RSS_MIB} MiB",
         f"{peak:.1f} MiB (the higher of CRLF/LF; {peak - base / KIB:+.1f} MiB over import)",
         verdict(peak < TARGET_STREAM_RSS_MIB)],
    ]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
