"""RFC 6376 Appendix A/C and RFC 8463 Appendix A examples (``rfc-examples/``).

The key records are served from the suite's own zone files (``rfc6376-C-as-printed
.zone``, ``rfc8463-A.2.zone``), plus the one ``dns.json`` name they do not hold:
``brisbane._domainkey.example.com``, where the A.2 signature (d=example.com) looks.
"""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from conformance.support import (
    ServeZones,
    dkimpy_verify,
    load_json,
    resolver,
    root_zone,
    suite_dir,
    verdicts,
)
from dnsserver import ZoneServer

import mailseal
from mailseal.dkim.bodyhash import body_hash
from mailseal.dkim.canonical import Canon
from mailseal.dkim.keys import load_key
from mailseal.message import split_message

SUITE = suite_dir("rfc-examples")
CASES = load_json(SUITE / "cases.json")
DNS = load_json(SUITE / "dns.json")["TXT"]

# The zone files carry no $TTL (and the RFC 8463 one no $ORIGIN); a loader supplies
# those defaults, as a name server's configuration would.
ZONE_FILES = {
    "rfc6376-C-as-printed.zone": ("$TTL 300\n", "_domainkey.example.org"),
    "rfc8463-A.2.zone": ("$TTL 300\n$ORIGIN football.example.com.\n", "football.example.com"),
}


def _covered(name: str) -> bool:
    return any(name == origin or name.endswith("." + origin) for _, origin in ZONE_FILES.values())


@pytest.fixture(scope="module")
def server(serve_zones: ServeZones) -> ZoneServer:
    files = [prefix + (SUITE / f).read_text() for f, (prefix, _) in ZONE_FILES.items()]
    rest = {name: [value] for name, value in DNS.items() if not _covered(name)}
    return serve_zones(root_zone(rest), *files)


def test_zone_files_agree_with_dns_json(server: ZoneServer) -> None:
    """What the zone files serve is what dns.json says (multi-string TXT joined)."""
    import asyncio

    res = resolver(server)

    async def fetch_all() -> dict[str, list[bytes]]:
        return {name: list((await res.txt(name)).records) for name in DNS}

    served = asyncio.run(fetch_all())
    assert served == {name: [value.encode("ascii")] for name, value in DNS.items()}
    assert sum(map(_covered, DNS)) == 3  # three names come from the zone files


@pytest.mark.parametrize("case", CASES["cases"], ids=lambda c: c["file"])
def test_verify(case: dict[str, object], server: ZoneServer) -> None:
    message = (SUITE / str(case["file"])).read_bytes()
    results = mailseal.verify(message, dns=resolver(server))
    sigs = case["signatures"]
    assert isinstance(sigs, list)
    assert [r.result.value for r in results] == [s["expect"] for s in sigs], verdicts(results)
    assert [(r.domain, r.selector, r.algorithm) for r in results] == [
        (s["d"], s["s"], s["a"]) for s in sigs]
    # Independent oracle on the same wire data.
    assert dkimpy_verify(message, server, len(sigs)) == [s["expect"] == "pass" for s in sigs]


@pytest.mark.parametrize(("file", "canon"), [
    (file, canon) for file in CASES["bodies"] for canon in ("simple", "relaxed")
], ids=lambda v: str(v))
def test_body_hash(file: str, canon: str) -> None:
    _, body = split_message((SUITE / file).read_bytes())
    expected = CASES["bodies"][file][f"{canon}_body_sha256_b64"]
    assert base64.b64encode(body_hash(body, Canon(canon))).decode() == expected


SIGNING = [
    ("rfc6376-C-rsa.private.pem", "example.org", "brisbane"),
    ("rfc8463-A.1-ed25519.seed.b64", "football.example.com", "brisbane"),
    ("rfc8463-A.1-rsa.private.pem", "football.example.com", "test"),
]


@pytest.mark.parametrize("canon", ["simple/simple", "relaxed/relaxed"])
@pytest.mark.parametrize(("key", "domain", "selector"), SIGNING, ids=[k for k, *_ in SIGNING])
def test_sign_then_verify(key: str, domain: str, selector: str, canon: str,
                          server: ZoneServer) -> None:
    """Each appendix key signs A.1; mailseal and dkimpy both verify against the
    published record (which also proves the private and public halves match)."""
    message = (SUITE / "rfc6376-A.1-unsigned.eml").read_bytes()
    signed = mailseal.sign(message, domain=domain, selector=selector,
                           key=load_key(Path(SUITE / key), check_mode=False),
                           canonicalization=canon) + message
    results = mailseal.verify(signed, dns=resolver(server))
    assert verdicts(results) == [("pass", "PASS")]
    assert dkimpy_verify(signed, server, 1) == [True]
