"""DnsCache alone, then the resolver's use of it against the loopback server."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from dnsserver import ZoneServer, make_zone

from mailseal.dns.cache import DnsCache
from mailseal.dns.resolver import DnsResolver
from mailseal.dns.types import Answer, Status

StartServer = Callable[..., ZoneServer]

OK = Answer(Status.OK, (b"v=DKIM1; p=",))
NX: Answer[bytes] = Answer(Status.NXDOMAIN)
FAIL: Answer[bytes] = Answer(Status.TEMPFAIL, error="timeout")
KEY = ("sel._domainkey.example.com.", 16)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_positive_entry_lives_for_its_ttl() -> None:
    clock = FakeClock()
    cache = DnsCache(clock=clock)
    assert cache.get(KEY) is None
    cache.put(KEY, OK, 300)
    clock.now += 299.9
    assert cache.get(KEY) == OK
    clock.now += 0.1
    assert cache.get(KEY) is None
    assert len(cache) == 0
    assert (cache.hits, cache.misses) == (1, 2)


def test_ttls_are_capped_by_kind() -> None:
    clock = FakeClock()
    cache = DnsCache(clock=clock, max_ttl=100, max_negative_ttl=10)
    cache.put(("a.", 16), OK, 10**6)
    cache.put(("b.", 16), NX, 10**6)
    clock.now += 10
    assert cache.get(("a.", 16)) == OK and cache.get(("b.", 16)) is None
    clock.now += 90
    assert cache.get(("a.", 16)) is None


def test_default_negative_cap_is_three_hours() -> None:
    clock = FakeClock()
    cache = DnsCache(clock=clock)
    cache.put(KEY, NX, 86400)
    clock.now += 3 * 3600 - 1
    assert cache.get(KEY) == NX
    clock.now += 1
    assert cache.get(KEY) is None


def test_tempfail_and_zero_ttl_are_not_kept_by_default() -> None:
    cache = DnsCache(clock=FakeClock())
    cache.put(KEY, FAIL, 300)
    cache.put(("zero.", 16), OK, 0)
    assert len(cache) == 0


def test_tempfail_can_be_kept_briefly() -> None:
    clock = FakeClock()
    cache = DnsCache(clock=clock, tempfail_ttl=5)
    cache.put(KEY, FAIL, 300)
    clock.now += 4
    assert cache.get(KEY) == FAIL
    clock.now += 1
    assert cache.get(KEY) is None


def test_a_new_answer_replaces_the_old_one() -> None:
    cache = DnsCache(clock=FakeClock())
    cache.put(KEY, OK, 300)
    cache.put(KEY, NX, 300)
    assert cache.get(KEY) == NX
    cache.put(KEY, FAIL, 0)  # not kept, and the stale answer goes too
    assert cache.get(KEY) is None


def test_least_recently_used_entry_is_evicted() -> None:
    cache = DnsCache(3, clock=FakeClock())
    for name in ("a.", "b.", "c."):
        cache.put((name, 16), OK, 300)
    assert cache.get(("a.", 16)) == OK  # a is now the most recently used
    cache.put(("d.", 16), OK, 300)
    assert len(cache) == 3
    assert cache.get(("b.", 16)) is None
    assert all(cache.get((name, 16)) == OK for name in ("a.", "c.", "d."))
    cache.clear()
    assert len(cache) == 0


def test_size_zero_disables_caching() -> None:
    cache = DnsCache(0, clock=FakeClock())
    cache.put(KEY, OK, 300)
    assert cache.get(KEY) is None


# -- the resolver and the cache --------------------------------------------------------

ZONE = make_zone(
    "example.com",
    """
    short      60   TXT    "short-lived"
    long       3600 TXT    "long-lived"
    alias      30   CNAME  long
    host       300  A      192.0.2.1
    """,
    ttl=300,
    minimum=120,
)


def lookup(resolver: DnsResolver, name: str) -> Answer[bytes]:
    return asyncio.run(resolver.txt(name))


def test_second_lookup_is_answered_from_the_cache(zone_server: StartServer) -> None:
    server = zone_server(ZONE)
    clock = FakeClock()
    resolver = DnsResolver([server.address], clock=clock)
    first = lookup(resolver, "long.example.com")
    second = lookup(resolver, "LONG.example.com.")  # same name, other spelling
    assert first == second and first.records == (b"long-lived",)
    assert server.count("long.example.com") == 1
    assert (resolver.cache.hits, resolver.cache.misses) == (1, 1)


def test_entry_expires_with_the_record_ttl(zone_server: StartServer) -> None:
    server = zone_server(ZONE)
    clock = FakeClock()
    resolver = DnsResolver([server.address], clock=clock)
    lookup(resolver, "short.example.com")
    clock.now += 59
    lookup(resolver, "short.example.com")
    assert server.count("short.example.com") == 1
    clock.now += 1
    lookup(resolver, "short.example.com")
    assert server.count("short.example.com") == 2


def test_cname_chain_uses_its_smallest_ttl(zone_server: StartServer) -> None:
    server = zone_server(ZONE)
    clock = FakeClock()
    resolver = DnsResolver([server.address], clock=clock)
    assert lookup(resolver, "alias.example.com").records == (b"long-lived",)
    clock.now += 29
    lookup(resolver, "alias.example.com")
    assert server.count("alias.example.com") == 1  # cached, CNAME and all
    clock.now += 1
    lookup(resolver, "alias.example.com")
    assert server.count("alias.example.com") == 2  # the CNAME's 30 s, not the TXT's 3600


def test_negative_answers_are_cached_for_the_soa_minimum(zone_server: StartServer) -> None:
    # RFC 2308 §5: min(SOA TTL 300, MINIMUM 120) = 120 s, for NXDOMAIN and NODATA.
    server = zone_server(ZONE)
    clock = FakeClock()
    resolver = DnsResolver([server.address], clock=clock)
    for _ in range(2):
        assert lookup(resolver, "gone.example.com").status is Status.NXDOMAIN
        assert lookup(resolver, "host.example.com").status is Status.NODATA
    assert server.count("gone.example.com") == 1 and server.count("host.example.com") == 1
    clock.now += 120
    lookup(resolver, "gone.example.com")
    lookup(resolver, "host.example.com")
    assert server.count("gone.example.com") == 2 and server.count("host.example.com") == 2


def test_temporary_failures_are_not_cached(zone_server: StartServer) -> None:
    server = zone_server(ZONE)
    server.servfail.add("long.example.com")
    resolver = DnsResolver([server.address], clock=FakeClock())
    assert lookup(resolver, "long.example.com").status is Status.TEMPFAIL
    server.servfail.clear()
    assert lookup(resolver, "long.example.com").ok
    assert server.count("long.example.com") == 2


def test_types_are_cached_apart_and_a_shared_cache_serves_two_resolvers(
    zone_server: StartServer,
) -> None:
    server = zone_server(ZONE)
    cache = DnsCache(clock=FakeClock())
    first = DnsResolver([server.address], cache=cache)
    second = DnsResolver([server.address], cache=cache)
    assert asyncio.run(first.addresses("host.example.com", 4)).records == ("192.0.2.1",)
    assert asyncio.run(second.addresses("host.example.com", 4)).records == ("192.0.2.1",)
    assert lookup(second, "host.example.com").status is Status.NODATA
    assert server.count("host.example.com", "A") == 1
    assert server.count("host.example.com", "TXT") == 1
