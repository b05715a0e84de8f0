"""``opendkim-testkey`` (OpenDKIM's own key checker) accepts the key/record pairs that
``mailseal genkey`` makes, the record served by the loopback DNS server as written in
SELECTOR.txt; and it rejects a record of another key, so the check is real."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from dnsserver import ZoneServer
from interop.peers import find_program, unavailable
from keys.support import DOMAIN, GenKey, txt, zone

# libunbound (OpenDKIM's resolver) will not query 127.0.0.1 by default, and answers for
# the RFC 6761 test. zone itself (docs/testing.md).
UNBOUND_CONF = 'server:\n  do-not-query-localhost: no\n  local-zone: "test." nodefault\n'


@pytest.fixture
def testkey(tmp_path: Path) -> Callable[[ZoneServer, GenKey], subprocess.CompletedProcess[str]]:
    program = find_program("opendkim-testkey")
    if program is None:
        unavailable("opendkim-testkey not installed (Debian: opendkim-tools)")
    unbound = tmp_path / "unbound.conf"
    unbound.write_text(UNBOUND_CONF)

    def run(server: ZoneServer, key: GenKey) -> subprocess.CompletedProcess[str]:
        conf = tmp_path / "opendkim.conf"
        # Keys under /tmp: OpenDKIM refuses keys in folders others may write to unless
        # RequireSafeKeys is off.
        conf.write_text(f"Syslog no\nRequireSafeKeys no\nNameservers 127.0.0.1@{server.port}\n"
                        f"ResolverConfiguration {unbound}\n")
        return subprocess.run([program, "-d", DOMAIN, "-s", key.selector, "-k",
                               str(key.private), "-vvv", "-x", str(conf)],
                              capture_output=True, text=True, timeout=30, check=False)

    return run


# opendkim-testkey reads RSA keys only ("EVP_PKEY_get1_RSA() failed" for Ed25519).
@pytest.mark.parametrize("which", ["rsa_key", "rsa_options_key"])
def test_opendkim_testkey_accepts_genkey_pairs(
        zone_server: Callable[..., ZoneServer], which: str, request: pytest.FixtureRequest,
        testkey: Callable[[ZoneServer, GenKey], subprocess.CompletedProcess[str]]) -> None:
    key: GenKey = request.getfixturevalue(which)
    server = zone_server(zone(key.bind))
    proc = testkey(server, key)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "key OK" in out
    assert server.count(f"{key.selector}._domainkey.{DOMAIN}") >= 1


def test_opendkim_testkey_rejects_another_keys_record(
        zone_server: Callable[..., ZoneServer], rsa_key: GenKey, other_rsa_key: GenKey,
        testkey: Callable[[ZoneServer, GenKey], subprocess.CompletedProcess[str]]) -> None:
    server = zone_server(zone(txt(rsa_key.selector, other_rsa_key.value)))
    proc = testkey(server, rsa_key)
    assert proc.returncode != 0
    assert "keys do not match" in proc.stdout + proc.stderr
