"""The library API: sign and verify whole messages or streams.

This is the thin glue between the pure DKIM core and DNS; the pipeline and the
front ends use the same pieces.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import BinaryIO

from mailseal.dkim.keys import SigningKey, load_key
from mailseal.dkim.reasons import Reason
from mailseal.dkim.sign import DEFAULT_OVERSIGNED, Signer, SignError, SignSpec
from mailseal.dkim.verify import DkimResult, Verifier, VerifyPolicy
from mailseal.dns.types import Answer, Resolver
from mailseal.message import (
    MAX_HEADER_BYTES,
    CrlfStream,
    HeaderField,
    MessageError,
    iter_chunks,
    split_message,
    to_crlf,
)

KeyArg = SigningKey | str | os.PathLike[str]


def sign(
    message: bytes,
    *,
    domain: str,
    selector: str,
    key: KeyArg,
    algorithm: str = "",
    canonicalization: str = "relaxed/simple",
    headers: Sequence[str] | None = None,
    oversign: Sequence[str] = DEFAULT_OVERSIGNED,
    identity: str | None = None,
    timestamp: bool = True,
    expire_after: int | None = None,
    body_length: bool = False,
    copy_headers: bool = False,
    now: int | None = None,
) -> bytes:
    """Sign ``message`` and return the DKIM-Signature field to prepend (ending in CRLF).

    ``algorithm`` defaults to rsa-sha256 for an RSA key and ed25519-sha256 for an
    Ed25519 key. Raises ``SignError`` (no From, several From, bad algorithm) and
    ``KeyFileError`` (unreadable or unsafe key file).
    """
    spec = SignSpec(
        domain=domain, selector=selector,
        key=key if isinstance(key, SigningKey) else load_key(key),
        algorithm=algorithm, canonicalization=canonicalization,
        headers=tuple(headers) if headers is not None else None,
        oversign=tuple(oversign), identity=identity, timestamp=timestamp,
        expire_after=expire_after, body_length=body_length, copy_headers=copy_headers,
    )
    return b"".join(sign_specs(message, [spec], now=now))


def sign_specs(message: bytes, specs: Iterable[SignSpec], *, now: int | None = None) -> list[bytes]:
    """Sign with several specs in one pass over the body (e.g. RSA and Ed25519)."""
    try:
        fields, body = split_message(message)
    except MessageError as exc:
        raise SignError(f"cannot sign: {exc}") from None
    signer = Signer(fields, specs)
    for chunk in iter_chunks(body):
        signer.feed(chunk)
    return signer.finish(int(time.time()) if now is None else now)


async def verify_async(
    message: bytes,
    *,
    dns: Resolver | None = None,
    policy: VerifyPolicy | None = None,
    now: int | None = None,
) -> list[DkimResult]:
    """Verify every DKIM signature of ``message`` (up to ``policy.max_signatures``)."""
    try:
        fields, body = split_message(message)
    except MessageError as exc:
        return [limits_result(str(exc))]

    async def chunks() -> AsyncIterator[bytes]:
        for chunk in iter_chunks(body):
            yield chunk

    return await verify_parts(fields, chunks(), dns=dns, policy=policy, now=now)


def verify(
    message: bytes,
    *,
    dns: Resolver | None = None,
    policy: VerifyPolicy | None = None,
    now: int | None = None,
) -> list[DkimResult]:
    """Blocking form of ``verify_async``."""
    return asyncio.run(verify_async(message, dns=dns, policy=policy, now=now))


async def verify_parts(
    fields: Sequence[HeaderField],
    body: AsyncIterator[bytes],
    *,
    dns: Resolver | None = None,
    policy: VerifyPolicy | None = None,
    now: int | None = None,
) -> list[DkimResult]:
    """Verify a message given as parsed fields and a stream of CRLF body chunks."""
    verifier = Verifier(fields, policy)
    async for chunk in body:
        verifier.feed(chunk)
    verifier.finish_body()
    resolver = dns if dns is not None else default_resolver()
    names = verifier.key_names()
    answers = await asyncio.gather(*(resolver.txt(name) for name in names))
    lookup: dict[str, Answer[bytes]] = dict(zip(names, answers, strict=True))
    return verifier.judge(lookup, int(time.time()) if now is None else now)


async def verify_file(
    stream: BinaryIO,
    *,
    dns: Resolver | None = None,
    policy: VerifyPolicy | None = None,
    now: int | None = None,
    chunk_size: int = 1 << 16,
) -> list[DkimResult]:
    """Verify a message read from a binary file without holding its body in memory."""
    try:
        fields, rest = read_header(stream)
    except MessageError as exc:
        return [limits_result(str(exc))]
    crlf = CrlfStream()

    async def chunks() -> AsyncIterator[bytes]:
        if rest:
            yield crlf.feed(rest)
        while block := stream.read(chunk_size):
            yield crlf.feed(block)

    return await verify_parts(fields, chunks(), dns=dns, policy=policy, now=now)


def read_header(stream: BinaryIO) -> tuple[list[HeaderField], bytes]:
    """Read the header section from ``stream``; return the fields and the body bytes
    read past it (CRLF already). Bounded by MAX_HEADER_BYTES: the split and its
    limits are ``split_message``'s, so a file and the same bytes agree."""
    buf = b""
    while True:
        block = stream.read(1 << 16)
        buf += block
        data = to_crlf(buf)
        if not block or data.startswith(b"\r\n") or b"\r\n\r\n" in data \
                or len(buf) > MAX_HEADER_BYTES:
            return split_message(data)


def limits_result(detail: str) -> DkimResult:
    return DkimResult(Reason.MESSAGE_LIMITS.result, Reason.MESSAGE_LIMITS, detail, "", "", "", "")


def default_resolver() -> Resolver:
    from mailseal.dns.resolver import DnsResolver

    return DnsResolver()
