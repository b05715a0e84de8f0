"""DnsResolver against the loopback ZoneServer: outcomes, transports, coalescing."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from dnsserver import ZoneServer, make_zone

from mailseal.dns.resolver import DnsResolver, parse_nameserver, system_nameservers
from mailseal.dns.types import Answer, FullResolver, Status

StartServer = Callable[..., ZoneServer]

# A 4096-bit RSA public key is 550 octets; base64 makes it 736 characters.
KEY_4096 = "v=DKIM1; k=rsa; p=" + "MIICIjANBgkqhkiG9w0BAQEFAAOCAg8AMIICCgKCAgEA" + "Q" * 692
KEY_STRINGS = " ".join(f'"{KEY_4096[i : i + 255]}"' for i in range(0, len(KEY_4096), 255))

ZONE = make_zone(
    "example.com",
    f"""
    @                  TXT   "v=spf1 " "ip4:192.0.2.0/24 " "-all"
    multi              TXT   "first"
    multi              TXT   "second"
    sel._domainkey     TXT   ( {KEY_STRINGS} )
    alias              CNAME sel._domainkey
    mail               A     192.0.2.25
    mail               AAAA  2001:db8::25
    @                  MX    10 mail
    @                  MX    20 backup.example.net.
    nullmx             MX    0 .
    """,
)
REVERSE = make_zone("2.0.192.in-addr.arpa", "25 PTR mail.example.com.\n26 PTR mail.example.com.\n")
REVERSE6 = make_zone(
    "8.b.d.0.1.0.0.2.ip6.arpa",
    "5.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0 PTR mail.example.com.\n",
)


def resolver_for(*servers: ZoneServer, timeout: float = 2.0) -> DnsResolver:
    return DnsResolver([server.address for server in servers], timeout=timeout)


def txt(resolver: DnsResolver, name: str) -> Answer[bytes]:
    return asyncio.run(resolver.txt(name))


def test_it_is_a_full_resolver() -> None:
    assert isinstance(DnsResolver(["127.0.0.1:53"]), FullResolver)  # runtime_checkable


def test_multi_string_txt_is_joined(zone_server: StartServer) -> None:
    answer = txt(resolver_for(zone_server(ZONE)), "example.com")
    assert answer == Answer(Status.OK, (b"v=spf1 ip4:192.0.2.0/24 -all",))


def test_several_txt_records(zone_server: StartServer) -> None:
    answer = txt(resolver_for(zone_server(ZONE)), "multi.example.com.")
    assert answer.ok and sorted(answer.records) == [b"first", b"second"]


def test_nxdomain_nodata_servfail_timeout(zone_server: StartServer) -> None:
    server = zone_server(ZONE)
    server.servfail.add("broken.example.com")
    server.drop.add("silent.example.com")
    resolver = resolver_for(server, timeout=0.3)
    assert txt(resolver, "missing.example.com").status is Status.NXDOMAIN
    assert txt(resolver, "mail.example.com").status is Status.NODATA
    broken = txt(resolver, "broken.example.com")
    assert broken.status is Status.TEMPFAIL
    assert broken.error == f"{server.address}: SERVFAIL"
    started = time.monotonic()
    silent = txt(resolver, "silent.example.com")
    assert time.monotonic() - started < 1.0
    assert silent.status is Status.TEMPFAIL and "no answer within" in silent.error


def test_tcp_fallback_for_a_4096_bit_key(zone_server: StartServer) -> None:
    # The server caps UDP at 512 octets like BIND's max-udp-size, below our EDNS size.
    server = zone_server(ZONE, udp_limit=512)
    answer = txt(resolver_for(server), "sel._domainkey.example.com")
    assert answer.records == (KEY_4096.encode(),)
    assert server.count("sel._domainkey.example.com", tcp=True) == 1


def test_tcp_fallback_beyond_the_edns_payload(zone_server: StartServer) -> None:
    records = "".join(f'big TXT "{letter * 250}"\n' for letter in "uvwxyz")
    server = zone_server(make_zone("example.org", records))
    answer = txt(resolver_for(server), "big.example.org")
    assert sorted(answer.records) == [letter.encode() * 250 for letter in "uvwxyz"]
    assert server.count("big.example.org", tcp=True) == 1


def test_cname_chain_is_followed(zone_server: StartServer) -> None:
    answer = txt(resolver_for(zone_server(ZONE)), "alias.example.com")
    assert answer.records == (KEY_4096.encode(),)


def test_cname_chain_across_zones(zone_server: StartServer) -> None:
    other = make_zone("example.org", "link CNAME alias.example.com.\n")
    answer = txt(resolver_for(zone_server(ZONE, other)), "link.example.org")
    assert answer.records == (KEY_4096.encode(),)


def test_ad_bit_is_reported(zone_server: StartServer) -> None:
    assert txt(resolver_for(zone_server(ZONE, set_ad=True)), "example.com").authenticated
    assert txt(resolver_for(zone_server(ZONE, set_ad=True)), "nope.example.com").authenticated
    assert not txt(resolver_for(zone_server(ZONE)), "example.com").authenticated


@pytest.mark.parametrize(
    "name",
    ["a" * 64 + ".example.com", ".".join(["a" * 62] * 4) + ".example", "a..example.com", "."],
)
def test_impossible_names_are_nxdomain_without_a_query(zone_server: StartServer, name: str) -> None:
    server = zone_server(ZONE)
    assert txt(resolver_for(server), name) == Answer(Status.NXDOMAIN, error="invalid name")
    assert sum(server.queries.values()) == 0


def test_longest_valid_name_is_asked(zone_server: StartServer) -> None:
    server = zone_server(ZONE)
    name = ".".join(["a" * 63] * 3 + ["b" * 49]) + ".example.com"  # 253 octets
    assert len(name) == 253
    assert txt(resolver_for(server), name) == Answer(Status.NXDOMAIN)
    assert server.count(name) == 1


def test_addresses_mx_ptr(zone_server: StartServer) -> None:
    resolver = resolver_for(zone_server(ZONE, REVERSE, REVERSE6))

    async def lookups() -> list[Answer[Any]]:
        return [
            await resolver.addresses("mail.example.com", 4),
            await resolver.addresses("mail.example.com", 6),
            await resolver.mx("example.com"),
            await resolver.mx("nullmx.example.com"),
            await resolver.ptr("192.0.2.25"),
            await resolver.ptr("2001:db8::25"),
            await resolver.ptr("192.0.2.99"),
            await resolver.ptr("not an address"),
            await resolver.addresses("example.com", 4),
        ]

    a, aaaa, mx, nullmx, ptr4, ptr6, no_ptr, bad_ip, no_a = asyncio.run(lookups())
    assert a.records == ("192.0.2.25",)
    assert aaaa.records == ("2001:db8::25",)
    assert sorted(mx.records) == [(10, "mail.example.com"), (20, "backup.example.net")]
    assert nullmx.records == ((0, "."),)  # RFC 7505 null MX
    assert ptr4.records == ("mail.example.com",)
    assert ptr6.records == ("mail.example.com",)
    assert no_ptr.status is Status.NXDOMAIN
    assert bad_ip == Answer(Status.NXDOMAIN, error="invalid address")
    assert no_a.status is Status.NODATA


def test_bad_family_is_a_bug() -> None:
    with pytest.raises(ValueError):
        asyncio.run(DnsResolver(["127.0.0.1"]).addresses("example.com", 5))


def test_next_nameserver_after_servfail_and_dead_server(zone_server: StartServer) -> None:
    failing = zone_server(ZONE)
    failing.servfail.add("example.com")
    good = zone_server(ZONE)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{probe.getsockname()[1]}"
    resolver = DnsResolver([failing.address, dead, good.address], timeout=1.0)
    assert txt(resolver, "example.com").ok
    assert failing.count("example.com") == 1 and good.count("example.com") == 1


def test_all_nameservers_failing_is_tempfail_with_every_reason(zone_server: StartServer) -> None:
    first, second = zone_server(ZONE), zone_server(ZONE)
    first.servfail.add("example.com")
    second.drop.add("example.com")
    answer = txt(DnsResolver([first.address, second.address], timeout=0.3), "example.com")
    assert answer.status is Status.TEMPFAIL
    assert answer.error.startswith(f"{first.address}: SERVFAIL; {second.address}: no answer")


def test_refused_is_tempfail(zone_server: StartServer) -> None:
    answer = txt(resolver_for(zone_server(ZONE)), "example.org")
    assert answer.status is Status.TEMPFAIL and answer.error.endswith("REFUSED")


def test_concurrent_identical_lookups_share_one_query(zone_server: StartServer) -> None:
    server = zone_server(ZONE)
    resolver = resolver_for(server)

    async def many() -> list[Answer[bytes]]:
        return await asyncio.gather(*(resolver.txt("EXAMPLE.com") for _ in range(5)))

    answers = asyncio.run(many())
    assert len(set(answers)) == 1 and answers[0].ok
    assert server.count("example.com") == 1


def test_a_cancelled_waiter_does_not_cancel_the_others(zone_server: StartServer) -> None:
    server = zone_server(ZONE)
    server.drop.add("example.com")
    resolver = resolver_for(server, timeout=0.3)

    async def scenario() -> Answer[bytes]:
        first = asyncio.ensure_future(resolver.txt("example.com"))
        second = asyncio.ensure_future(resolver.txt("example.com"))
        await asyncio.sleep(0.05)
        first.cancel()
        server.drop.clear()
        return await second

    answer = asyncio.run(scenario())
    assert answer.status is Status.TEMPFAIL  # the shared query ran to its own timeout
    assert server.count("example.com") == 1


def test_nameserver_syntax() -> None:
    assert parse_nameserver("192.0.2.1") == ("192.0.2.1", 53)
    assert parse_nameserver("127.0.0.1:5353") == ("127.0.0.1", 5353)
    assert parse_nameserver("[::1]:5353") == ("::1", 5353)
    assert parse_nameserver("[::1]") == ("::1", 53)
    assert parse_nameserver("2001:db8::1") == ("2001:db8::1", 53)
    for bad in ("dns.example", "127.0.0.1:0", "127.0.0.1:x", "[::1", "[::1]x", "1.2.3.4:99999"):
        with pytest.raises(ValueError):
            parse_nameserver(bad)
    with pytest.raises(TypeError):
        DnsResolver("127.0.0.1")


def test_system_nameservers(tmp_path: Path) -> None:
    conf = tmp_path / "resolv.conf"
    conf.write_text(
        "# comment\nsearch example.com\nnameserver 192.0.2.53\nnameserver ::1\nnameserver bogus\n"
    )
    assert system_nameservers(str(conf)) == (("192.0.2.53", 53), ("::1", 53))
    conf.write_text("options ndots:2\n")
    assert system_nameservers(str(conf)) == (("127.0.0.1", 53),)
    assert system_nameservers(str(tmp_path / "absent")) == (("127.0.0.1", 53),)
    assert DnsResolver().nameservers == system_nameservers()
