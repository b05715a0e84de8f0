"""The loopback test server itself, checked with dnspython's synchronous client."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

import dns.exception
import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest
from dnsserver import ZoneServer, make_zone

StartServer = Callable[..., ZoneServer]

ZONE = make_zone(
    "example.com",
    """
    @            TXT   "root"
    a.b          TXT   "deep"
    alias        CNAME target
    target       TXT   "at the target"
    out          CNAME elsewhere.example.org.
    mail         A     192.0.2.25
    """
    + "".join(f'    big      TXT   "{letter * 250}"\n' for letter in "uvwxyz"),
    minimum=60,
)


def ask(
    server: ZoneServer, name: str, rdtype: str = "TXT", *, tcp: bool = False, edns: int = -1
) -> dns.message.Message:
    query = dns.message.make_query(name, rdtype, use_edns=edns, payload=1232)
    if tcp:
        return dns.query.tcp(query, "127.0.0.1", timeout=2, port=server.port)
    return dns.query.udp(query, "127.0.0.1", timeout=2, port=server.port)


def test_answers_authoritatively_over_udp_and_tcp_on_one_port(zone_server: StartServer) -> None:
    server = zone_server(ZONE)
    assert server.address == f"127.0.0.1:{server.port}"
    for tcp in (False, True):
        response = ask(server, "example.com", tcp=tcp)
        assert response.rcode() == dns.rcode.NOERROR
        assert response.flags & dns.flags.AA
        assert [rd.strings for rd in response.answer[0]] == [(b"root",)]
    assert server.count("example.com") == 2
    assert server.count("EXAMPLE.com.", "txt", tcp=True) == 1


def test_nxdomain_and_nodata_carry_the_soa_with_the_negative_ttl(
    zone_server: StartServer,
) -> None:
    server = zone_server(ZONE)
    for name, rdtype, rcode in [
        ("missing.example.com", "TXT", dns.rcode.NXDOMAIN),
        ("mail.example.com", "TXT", dns.rcode.NOERROR),  # NODATA
        ("b.example.com", "TXT", dns.rcode.NOERROR),  # empty non-terminal (RFC 8020)
    ]:
        response = ask(server, name, rdtype)
        assert response.rcode() == rcode
        assert response.answer == []
        (soa,) = response.authority
        assert soa.rdtype == dns.rdatatype.SOA
        assert soa.ttl == 60  # RFC 2308 §3: min(SOA TTL 300, MINIMUM 60)


def test_cname_is_chased_inside_the_zone_and_left_to_the_client_outside(
    zone_server: StartServer,
) -> None:
    server = zone_server(ZONE)
    response = ask(server, "alias.example.com")
    assert [rrset.rdtype for rrset in response.answer] == [
        dns.rdatatype.CNAME,
        dns.rdatatype.TXT,
    ]
    response = ask(server, "out.example.com")
    assert [rrset.rdtype for rrset in response.answer] == [dns.rdatatype.CNAME]
    assert response.rcode() == dns.rcode.NOERROR


def test_truncates_over_udp_and_answers_in_full_over_tcp(zone_server: StartServer) -> None:
    server = zone_server(ZONE)
    plain = ask(server, "big.example.com")  # no EDNS: 512 octets (RFC 1035 §4.2.1)
    assert plain.flags & dns.flags.TC and plain.answer == []
    with_edns = ask(server, "big.example.com", edns=0)  # 1232 is still too small
    assert with_edns.flags & dns.flags.TC
    full = ask(server, "big.example.com", tcp=True)
    assert not full.flags & dns.flags.TC
    assert len(full.answer[0]) == 6


def test_udp_limit_caps_the_edns_size(zone_server: StartServer) -> None:
    zone = make_zone("example.com", f'k TXT "{"k" * 250}" "{"k" * 250}" "{"k" * 200}"')
    server = zone_server(zone, udp_limit=512)
    assert ask(server, "k.example.com", edns=0).flags & dns.flags.TC
    unlimited = zone_server(zone)
    assert not ask(unlimited, "k.example.com", edns=0).flags & dns.flags.TC


def test_servfail_drop_and_refused(zone_server: StartServer) -> None:
    server = zone_server(ZONE)
    server.servfail.add("example.com")
    assert ask(server, "example.com").rcode() == dns.rcode.SERVFAIL
    assert ask(server, "example.org").rcode() == dns.rcode.REFUSED
    server.drop.add("mail.example.com")
    query = dns.message.make_query("mail.example.com", "A")
    with pytest.raises(dns.exception.Timeout):
        dns.query.udp(query, "127.0.0.1", timeout=0.2, port=server.port)
    assert server.count("mail.example.com", "A") == 1


def test_ad_bit_on_request(zone_server: StartServer) -> None:
    assert ask(zone_server(ZONE, set_ad=True), "example.com").flags & dns.flags.AD
    assert not ask(zone_server(ZONE), "example.com").flags & dns.flags.AD


def test_several_zones_and_set_zone(zone_server: StartServer) -> None:
    server = zone_server(ZONE, make_zone("sub.example.com", '@ TXT "child"'))
    assert ask(server, "sub.example.com").answer[0][0].strings == (b"child",)
    server.set_zone(make_zone("example.com", '@ TXT "replaced"'))
    assert ask(server, "example.com").answer[0][0].strings == (b"replaced",)
    assert ask(server, "sub.example.com").rcode() == dns.rcode.NXDOMAIN


def test_a_zone_without_soa_gets_one() -> None:
    with ZoneServer("$ORIGIN example.net.\nhost 60 IN A 192.0.2.1\n") as server:
        response = ask(server, "nothing.example.net")
        assert response.rcode() == dns.rcode.NXDOMAIN
        assert response.authority[0].rdtype == dns.rdatatype.SOA


def test_keeps_serving_a_tcp_connection_and_survives_garbage(zone_server: StartServer) -> None:
    server = zone_server(ZONE)
    with socket.create_connection(("127.0.0.1", server.port), timeout=2) as conn:
        for name in ("example.com", "target.example.com"):
            wire = dns.message.make_query(name, "TXT").to_wire()
            conn.sendall(len(wire).to_bytes(2, "big") + wire)
            size = int.from_bytes(conn.recv(2), "big")
            data = b""
            while len(data) < size:
                data += conn.recv(size - len(data))
            assert dns.message.from_wire(data).rcode() == dns.rcode.NOERROR
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.sendto(b"\x00garbage", ("127.0.0.1", server.port))
    assert ask(server, "example.com").rcode() == dns.rcode.NOERROR


def test_stop_is_prompt_idempotent_and_frees_the_port() -> None:
    server = ZoneServer(ZONE).start()
    port = server.port
    with pytest.raises(RuntimeError):
        server.start()
    started = time.monotonic()
    server.stop()
    server.stop()
    assert time.monotonic() - started < 1.0
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0
