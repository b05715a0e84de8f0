"""StaticResolver from a table and from zone files, and its parity with the real thing."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import dns.exception
import pytest
from dnsserver import ZoneServer

from mailseal.dns.resolver import DnsResolver
from mailseal.dns.static import StaticResolver
from mailseal.dns.types import Answer, FullResolver, Status

StartServer = Callable[..., ZoneServer]


def run(awaitable: Awaitable[Answer[Any]]) -> Answer[Any]:
    async def wrapper() -> Answer[Any]:
        return await awaitable

    return asyncio.run(wrapper())


TABLE: dict[str, Any] = {
    "example.com": "v=spf1 -all",
    "Multi.Example.COM.": ["one", b"two"],
    "gone.example.com": "NXDOMAIN",
    "flaky.example.com": "TEMPFAIL",
    "literal.example.com": b"NXDOMAIN",
    "mail.example.com": {
        "A": "192.0.2.25",
        "AAAA": ["2001:db8::25", "2001:db8::26"],
        "TXT": "TEMPFAIL",
    },
    "mx.example.com": {"MX": [(10, "Mail.Example.com."), "20 backup.example.net"]},
    "nullmx.example.com": {"MX": (0, ".")},
    "alias.example.com": {"CNAME": "example.com."},
    "loop.example.com": {"CNAME": "loop.example.com"},
    "sel._domainkey.deep.example.org": "v=DKIM1; p=",
    "192.0.2.25": {"PTR": "mail.example.com"},
    "2001:db8::25": {"PTR": ["mail.example.com."]},
}


def test_it_is_a_full_resolver() -> None:
    assert isinstance(StaticResolver.from_records({}), FullResolver)  # runtime_checkable


def test_txt_forms_and_special_values() -> None:
    resolver = StaticResolver.from_records(TABLE)
    assert run(resolver.txt("example.com.")) == Answer(Status.OK, (b"v=spf1 -all",))
    assert run(resolver.txt("multi.example.com")).records == (b"one", b"two")
    assert run(resolver.txt("gone.example.com")) == Answer(Status.NXDOMAIN)
    assert run(resolver.txt("nowhere.example.com")) == Answer(Status.NXDOMAIN)
    assert run(resolver.txt("literal.example.com")).records == (b"NXDOMAIN",)
    flaky = run(resolver.txt("flaky.example.com"))
    assert flaky.status is Status.TEMPFAIL and flaky.error
    assert run(resolver.addresses("flaky.example.com", 4)).status is Status.TEMPFAIL
    assert run(resolver.txt("mail.example.com")).status is Status.TEMPFAIL  # per type


def test_other_types_and_nodata() -> None:
    resolver = StaticResolver.from_records(TABLE)
    assert run(resolver.addresses("MAIL.example.com", 4)).records == ("192.0.2.25",)
    assert run(resolver.addresses("mail.example.com", 6)).records == (
        "2001:db8::25",
        "2001:db8::26",
    )
    assert run(resolver.mx("mx.example.com")).records == (
        (10, "Mail.Example.com"),  # names in data keep their case
        (20, "backup.example.net"),
    )
    assert run(resolver.mx("nullmx.example.com")).records == ((0, "."),)
    assert run(resolver.ptr("192.0.2.25")).records == ("mail.example.com",)
    assert run(resolver.ptr("2001:db8::25")).records == ("mail.example.com",)
    assert run(resolver.ptr("192.0.2.26")).status is Status.NXDOMAIN
    assert run(resolver.ptr("bogus")) == Answer(Status.NXDOMAIN, error="invalid address")
    assert run(resolver.mx("example.com")) == Answer(Status.NODATA)
    # An empty non-terminal exists (RFC 8020): NODATA, not NXDOMAIN.
    assert run(resolver.txt("deep.example.org")) == Answer(Status.NODATA)
    assert run(resolver.txt("x.deep.example.org")) == Answer(Status.NXDOMAIN)


def test_cname_is_followed_and_loops_end() -> None:
    resolver = StaticResolver.from_records(TABLE)
    assert run(resolver.txt("alias.example.com")).records == (b"v=spf1 -all",)
    assert run(resolver.txt("loop.example.com")).status is Status.TEMPFAIL


def test_invalid_names_and_authenticated_flag() -> None:
    resolver = StaticResolver.from_records(TABLE, authenticated=True)
    assert run(resolver.txt("a" * 64 + ".com")) == Answer(Status.NXDOMAIN, error="invalid name")
    assert run(resolver.txt("example.com")).authenticated
    assert run(resolver.txt("nowhere.example.com")).authenticated
    with pytest.raises(ValueError):
        asyncio.run(resolver.addresses("example.com", 5))


@pytest.mark.parametrize(
    "table",
    [
        {"a..example": "x"},
        {"example.com": {"SRV": "x"}},
        {"example.com": {"A": "2001:db8::1"}},
        {"example.com": {"AAAA": "192.0.2.1"}},
        {"example.com": {"MX": "ten mail.example.com"}},
    ],
)
def test_bad_tables_are_rejected(table: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        StaticResolver.from_records(table)


ZONE_FILE = """\
$ORIGIN example.com.
$TTL 3600
@          IN SOA  ns hostmaster ( 2026010101 3600 600
                                   86400 300 )
@          IN NS   ns
@          IN TXT  "v=spf1 " "mx " "-all"
sel._domainkey IN TXT ( "v=DKIM1; k=rsa; "
                        "p=MIIBIjANBgkqh"   ; comment inside the parentheses
                        "kiG9w0BAQEFAAOC" )
mail       IN A    192.0.2.25
           IN AAAA 2001:db8::25        ; same owner as the line above
@          IN MX   10 mail
www        IN CNAME EXAMPLE.com.
$ORIGIN example.org.
$TTL 60
other      TXT "in another domain"
abs.example.net. 300 IN TXT "absolute"
"""


def check_zone(resolver: StaticResolver) -> None:
    assert run(resolver.txt("example.com")).records == (b"v=spf1 mx -all",)
    assert run(resolver.txt("sel._domainkey.example.com")).records == (
        b"v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOC",
    )
    assert run(resolver.addresses("mail.example.com", 6)).records == ("2001:db8::25",)
    assert run(resolver.mx("example.com")).records == ((10, "mail.example.com"),)
    assert run(resolver.txt("www.example.com")).records == (b"v=spf1 mx -all",)
    assert run(resolver.txt("other.example.org")).records == (b"in another domain",)
    assert run(resolver.txt("abs.example.net")).records == (b"absolute",)
    assert run(resolver.txt("ns.example.com")) == Answer(Status.NXDOMAIN)
    assert run(resolver.txt("mail.example.com")) == Answer(Status.NODATA)
    assert run(resolver.txt("_domainkey.example.com")) == Answer(Status.NODATA)


def test_zone_text() -> None:
    check_zone(StaticResolver.from_zone_file(ZONE_FILE))


def test_zone_file_path(tmp_path: Path) -> None:
    path = tmp_path / "example.zone"
    path.write_text(ZONE_FILE)
    check_zone(StaticResolver.from_zone_file(path))
    check_zone(StaticResolver.from_zone_file(str(path)))


def test_origin_for_relative_names_and_soa_only_apex() -> None:
    text = '@ 300 IN SOA ns hostmaster 1 2 3 4 5\nsel._domainkey 300 IN TXT "k"\n'
    resolver = StaticResolver.from_zone_file(text, origin="example.net")
    assert run(resolver.txt("sel._domainkey.example.net")).records == (b"k",)
    assert run(resolver.txt("example.net")) == Answer(Status.NODATA)


def test_zone_syntax_errors_and_include_are_refused() -> None:
    with pytest.raises(dns.exception.SyntaxError):
        StaticResolver.from_zone_file("$ORIGIN example.com.\n@ 300 IN TXT\n")
    with pytest.raises(dns.exception.SyntaxError):
        StaticResolver.from_zone_file("$ORIGIN example.com.\n$INCLUDE /etc/passwd\n")


PARITY_ZONE = """\
$ORIGIN example.com.
$TTL 300
@ SOA ns hostmaster 1 3600 600 86400 60
@ TXT "v=spf1 " "-all"
multi TXT "a"
multi TXT "b"
a.b TXT "deep"
alias CNAME multi
mail A 192.0.2.25
@ MX 10 mail
"""


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("example.com", "txt"),
        ("multi.example.com", "txt"),
        ("alias.example.com", "txt"),
        ("b.example.com", "txt"),
        ("a.b.example.com", "txt"),
        ("missing.example.com", "txt"),
        ("mail.example.com", "txt"),
        ("mail.example.com", "a"),
        ("example.com", "mx"),
        ("example.com", "a"),
    ],
)
def test_static_and_network_resolvers_agree(zone_server: StartServer, name: str, kind: str) -> None:
    server = zone_server(PARITY_ZONE)
    resolvers: list[FullResolver] = [
        StaticResolver.from_zone_file(PARITY_ZONE),
        DnsResolver([server.address]),
    ]
    answers = []
    for resolver in resolvers:
        if kind == "txt":
            answer = run(resolver.txt(name))
        elif kind == "a":
            answer = run(resolver.addresses(name, 4))
        else:
            answer = run(resolver.mx(name))
        answers.append((answer.status, sorted(answer.records)))
    assert answers[0] == answers[1]
