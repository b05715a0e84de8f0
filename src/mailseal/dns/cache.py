"""A TTL-aware, size-bounded cache of DNS answers, positive and negative.

The resolver decides the TTL of each answer from the response (the smallest TTL of
the answer RRsets; for a negative answer the SOA rule of RFC 2308 §5); the cache
applies the caps and evicts the least recently used entry when full. The clock is
injected so tests can move time without sleeping.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from mailseal.dns.types import Answer, Status

CacheKey = tuple[str, int]  # (lower-case absolute name, RR type code)

# RFC 2308 §5: negative answers are cached for min(SOA TTL, SOA MINIMUM), and
# "values of one to three hours have been found to work well"; we cap at three hours.
DEFAULT_MAX_NEGATIVE_TTL = 3 * 3600.0
# RFC 8767 §4 suggests capping positive TTLs at 7 days; one day keeps key rotation
# visible sooner and is what most validators use.
DEFAULT_MAX_TTL = 86400.0


class DnsCache:
    """Answers keyed by (name, type), each kept until its TTL runs out.

    ``hits`` and ``misses`` count :meth:`get` outcomes. TEMPFAIL answers are kept for
    ``tempfail_ttl`` seconds (0 by default: never kept), so a transient failure is
    retried on the next message rather than remembered.
    """

    def __init__(
        self,
        max_entries: int = 10_000,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_ttl: float = DEFAULT_MAX_TTL,
        max_negative_ttl: float = DEFAULT_MAX_NEGATIVE_TTL,
        tempfail_ttl: float = 0.0,
    ) -> None:
        if max_entries < 0:
            raise ValueError("max_entries must be >= 0")
        self.max_entries = max_entries
        self.max_ttl = max_ttl
        self.max_negative_ttl = max_negative_ttl
        self.tempfail_ttl = tempfail_ttl
        self.hits = 0
        self.misses = 0
        self._clock = clock
        self._entries: OrderedDict[CacheKey, tuple[float, Answer[Any]]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: CacheKey) -> Answer[Any] | None:
        """The cached answer for ``key``, or ``None`` if absent or expired."""
        entry = self._entries.get(key)
        if entry is not None:
            expires, answer = entry
            if self._clock() < expires:
                self._entries.move_to_end(key)
                self.hits += 1
                return answer
            del self._entries[key]
        self.misses += 1
        return None

    def put(self, key: CacheKey, answer: Answer[Any], ttl: float) -> None:
        """Keep ``answer`` for ``ttl`` seconds, capped by its kind.

        A TTL of zero means "use only for this transaction" (RFC 1035 §3.2.1), so such
        answers are not stored; the resolver passes 0 for a negative answer without an
        SOA, which RFC 2308 §5 says SHOULD NOT be cached.
        """
        if answer.status is Status.TEMPFAIL:
            ttl = self.tempfail_ttl
        elif answer.status is Status.OK:
            ttl = min(ttl, self.max_ttl)
        else:
            ttl = min(ttl, self.max_negative_ttl)
        if ttl <= 0 or self.max_entries == 0:
            self._entries.pop(key, None)
            return
        self._entries[key] = (self._clock() + ttl, answer)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        """Forget every entry (the counters are kept)."""
        self._entries.clear()
