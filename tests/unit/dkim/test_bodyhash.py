"""Body hashes for several signatures at once: one canonical stream per
canonicalization, one hash per (canonicalization, hash, l=)."""

from __future__ import annotations

import hashlib

import pytest

from mailseal.dkim.bodyhash import BodyHashes, body_hash
from mailseal.dkim.canonical import Canon


def test_same_key_shares_one_sink() -> None:
    hashes = BodyHashes()
    assert hashes.add(Canon.RELAXED, "sha256") is hashes.add(Canon.RELAXED, "sha256")
    assert hashes.add(Canon.RELAXED, "sha256", 3) is not hashes.add(Canon.RELAXED, "sha256")


def test_each_registered_digest() -> None:
    body = b"a  b \r\nc\r\n\r\n"
    hashes = BodyHashes()
    keys = [(Canon.SIMPLE, "sha256", None), (Canon.RELAXED, "sha256", None),
            (Canon.RELAXED, "sha1", None), (Canon.RELAXED, "sha256", 2), (Canon.SIMPLE, "sha1", 0)]
    for key in keys:
        hashes.add(*key)
    for i in range(len(body)):  # byte by byte
        hashes.feed(body[i : i + 1])
    hashes.finish()
    canonical = {Canon.SIMPLE: b"a  b \r\nc\r\n", Canon.RELAXED: b"a b\r\nc\r\n"}
    for canon, hash_name, limit in keys:
        data = canonical[canon][:limit] if limit is not None else canonical[canon]
        sink = hashes.get(canon, hash_name, limit)
        assert sink.digest() == hashlib.new(hash_name, data).digest()
        assert sink.length == len(canonical[canon])
        assert body_hash(body, canon, hash_name, limit) == sink.digest()


def test_add_after_feed_is_a_bug() -> None:
    hashes = BodyHashes()
    hashes.add(Canon.SIMPLE, "sha256")
    hashes.feed(b"x")
    with pytest.raises(RuntimeError):
        hashes.add(Canon.RELAXED, "sha256")
    hashes.add(Canon.SIMPLE, "sha256")  # already registered: fine


def test_finish_without_feed_is_an_empty_body() -> None:
    hashes = BodyHashes()
    hashes.add(Canon.SIMPLE, "sha256")
    hashes.add(Canon.RELAXED, "sha256")
    hashes.finish()
    assert hashes.get(Canon.SIMPLE, "sha256").digest() == hashlib.sha256(b"\r\n").digest()
    assert hashes.get(Canon.RELAXED, "sha256").digest() == hashlib.sha256(b"").digest()


def test_nothing_registered() -> None:
    hashes = BodyHashes()
    hashes.feed(b"abc")
    hashes.finish()
    with pytest.raises(KeyError):
        hashes.get(Canon.SIMPLE, "sha256")
