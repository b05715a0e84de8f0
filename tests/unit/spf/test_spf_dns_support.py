"""What the SPF suites need from the DNS layer: the ZoneServer's ``drop_types`` and
``shuffle`` hooks, and the resolver's cache key for plain names."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from dnsserver import ZoneServer, make_zone
from hypothesis import given
from hypothesis import strategies as st

from mailseal.dns.resolver import DnsResolver, plain_key, to_name
from mailseal.dns.types import Status

ZONE = make_zone("example.com", """
    @ IN TXT "v=spf1 -all"
    @ IN A 192.0.2.1
""")
REVERSE = make_zone("2.0.192.in-addr.arpa", "\n".join(
    f"1 IN PTR h{i}.example.com." for i in range(1, 9)))


def test_drop_one_type_only(zone_server: Callable[..., ZoneServer]) -> None:
    server = zone_server(ZONE)
    server.drop_types.add(("example.com", "TXT"))
    resolver = DnsResolver([server.address], timeout=0.3)

    async def both() -> tuple[Status, Status]:
        return ((await resolver.txt("example.com")).status,
                (await resolver.addresses("example.com", 4)).status)

    assert asyncio.run(both()) == (Status.TEMPFAIL, Status.OK)


def test_zone_order_when_not_shuffled(zone_server: Callable[..., ZoneServer]) -> None:
    server = zone_server(ZONE, REVERSE)
    server.shuffle = False
    for _ in range(5):
        answer = asyncio.run(DnsResolver([server.address]).ptr("192.0.2.1"))
        assert [name.split(".")[0] for name in answer.records] == [f"h{i}" for i in range(1, 9)]


LABEL = st.text(alphabet="abcXYZ019-_", min_size=1, max_size=63)


@given(st.lists(LABEL, min_size=1, max_size=6), st.booleans())
def test_plain_key_is_the_canonical_text(labels: list[str], dot: bool) -> None:
    name = ".".join(labels) + ("." if dot else "")
    qname = to_name(name)
    assert plain_key(name) == (qname.canonicalize().to_text() if qname else None)


def test_plain_key_limits() -> None:
    longest = ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 61])  # 253 characters
    assert plain_key(longest) == longest + "." and to_name(longest) is not None
    assert plain_key(longest + "d") is None and to_name(longest + "d") is None
    assert plain_key("a b.example") is None and to_name("a b.example") is not None
