"""Body hashing for several signatures at once: each distinct canonicalization is
computed once, and each distinct (canonicalization, hash, l=) is hashed once."""

from __future__ import annotations

from mailseal.dkim.canonical import HASHES, BodyCanonicalizer, Canon, HashSink


class BodyHashes:
    """Feed the body once; read the digest for any (canon, hash, limit) registered."""

    def __init__(self) -> None:
        self._sinks: dict[tuple[Canon, str, int | None], HashSink] = {}
        self._canonicalizers: dict[Canon, BodyCanonicalizer] | None = None

    def add(self, canon: Canon, hash_name: str, limit: int | None = None) -> HashSink:
        key = (canon, hash_name, limit)
        if key not in self._sinks:
            if self._canonicalizers is not None:
                raise RuntimeError("BodyHashes.add after the body was fed")
            self._sinks[key] = HashSink(HASHES[hash_name](), limit)
        return self._sinks[key]

    def _start(self) -> dict[Canon, BodyCanonicalizer]:
        by_canon: dict[Canon, list[HashSink]] = {}
        for (canon, _, _), sink in self._sinks.items():
            by_canon.setdefault(canon, []).append(sink)
        self._canonicalizers = {c: BodyCanonicalizer(c, s) for c, s in by_canon.items()}
        return self._canonicalizers

    def feed(self, chunk: bytes) -> None:
        canonicalizers = self._canonicalizers
        if canonicalizers is None:
            canonicalizers = self._start()
        for c in canonicalizers.values():
            c.feed(chunk)

    def finish(self) -> None:
        canonicalizers = self._canonicalizers
        if canonicalizers is None:
            canonicalizers = self._start()
        for c in canonicalizers.values():
            c.finish()

    def get(self, canon: Canon, hash_name: str, limit: int | None = None) -> HashSink:
        return self._sinks[(canon, hash_name, limit)]


def body_hash(body: bytes, canon: Canon, hash_name: str = "sha256",
              limit: int | None = None) -> bytes:
    """One-shot body hash, for tests and small callers."""
    hashes = BodyHashes()
    sink = hashes.add(canon, hash_name, limit)
    hashes.feed(body)
    hashes.finish()
    return sink.digest()
