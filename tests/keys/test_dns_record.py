"""``mailseal dns-record`` for keys made by mailseal, by opendkim-genkey and by openssl,
in every format. The public key data is checked against independent sources: the
record opendkim-genkey wrote, and ``openssl pkey -pubout``."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from dnsserver import ZoneServer
from interop.peers import find_program, unavailable
from keys.support import (
    DOMAIN,
    GenKey,
    one_line_error,
    openssl_key,
    quoted_strings,
    run_cli,
    zone,
)

from mailseal.dkim.publish import tinydns_record
from mailseal.dkim.record import parse_key_record


def dns_record(key: Path, selector: str, *options: object) -> str:
    proc = run_cli("dns-record", "-k", key, "-d", DOMAIN, "-s", selector, *options)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    return proc.stdout


def openssl_public(openssl: str, key: Path) -> bytes:
    """The public key as OpenSSL writes it: SubjectPublicKeyInfo DER."""
    return subprocess.run([openssl, "pkey", "-in", str(key), "-pubout", "-outform", "DER"],
                          capture_output=True, check=True, timeout=30).stdout


@pytest.fixture(scope="module")
def foreign_keys(openssl: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Keys as other tools write them (modes set to 0600 where the tool did not)."""
    folder = tmp_path_factory.mktemp("foreign")
    return {
        "genrsa": openssl_key(openssl, folder / "genrsa.pem", "genrsa", "2048"),
        "genrsa-traditional": openssl_key(openssl, folder / "trad.pem", "genrsa",
                                          "-traditional", "2048"),
        "genpkey-rsa": openssl_key(openssl, folder / "genpkey-rsa.pem", "genpkey",
                                   "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"),
        "genpkey-ed25519": openssl_key(openssl, folder / "genpkey-ed.pem", "genpkey",
                                       "-algorithm", "ed25519"),
    }


@pytest.mark.parametrize("tool", ["genrsa", "genrsa-traditional", "genpkey-rsa",
                                  "genpkey-ed25519"])
def test_openssl_keys(foreign_keys: dict[str, Path], openssl: str, tool: str) -> None:
    key = foreign_keys[tool]
    bind = dns_record(key, "sel")
    strings = quoted_strings(bind)
    assert all(len(s.encode()) <= 255 for s in strings)
    record = parse_key_record("".join(strings))
    spki = openssl_public(openssl, key)
    # Ed25519: p= is the raw key (RFC 8463 §4.2), the last 32 octets of the SPKI.
    assert record.p == (spki[-32:] if record.k == "ed25519" else spki)
    assert record.k == ("ed25519" if "ed25519" in tool else "rsa")


def test_opendkim_genkey_key_gives_opendkims_own_record(tmp_path: Path) -> None:
    program = find_program("opendkim-genkey")
    if program is None:
        unavailable("opendkim-genkey not installed (Debian: opendkim-tools)")
    subprocess.run([program, "-d", DOMAIN, "-s", "od", "-D", str(tmp_path)], check=True,
                   timeout=60, capture_output=True)
    theirs = "".join(quoted_strings((tmp_path / "od.txt").read_text()))
    ours = dns_record(tmp_path / "od.private", "od", "--format", "value").strip()
    # opendkim-genkey writes "v=DKIM1; h=sha256; k=rsa; p=…": the same p= either way.
    assert ours.partition("p=")[2] == theirs.partition("p=")[2]
    with_hash = dns_record(tmp_path / "od.private", "od", "--format", "value",
                           "--hash", "sha256")
    assert parse_key_record(with_hash).h == parse_key_record(theirs).h == ("sha256",)


def test_value_format_is_one_unbroken_line(rsa_key: GenKey) -> None:
    out = dns_record(rsa_key.private, rsa_key.selector, "--format", "value")
    assert out == rsa_key.value + "\n"
    assert '"' not in out and len(out) > 255


def test_bind_format_matches_genkey_file_and_takes_a_ttl(rsa_key: GenKey) -> None:
    assert dns_record(rsa_key.private, rsa_key.selector) == rsa_key.bind
    with_ttl = dns_record(rsa_key.private, rsa_key.selector, "--ttl", "300")
    assert with_ttl.startswith(f"rsa2048._domainkey.{DOMAIN}. 300 IN TXT (")


def test_json_format(rsa_key: GenKey) -> None:
    data = json.loads(dns_record(rsa_key.private, rsa_key.selector, "--format", "json"))
    assert set(data) == {"name", "type", "ttl", "value", "strings"}
    assert (data["name"], data["type"], data["ttl"]) == (f"rsa2048._domainkey.{DOMAIN}",
                                                         "TXT", 3600)
    assert data["value"] == rsa_key.value == "".join(data["strings"])
    assert all(len(s.encode()) <= 255 for s in data["strings"])


def test_tinydns_format(rsa_options_key: GenKey) -> None:
    line = dns_record(rsa_options_key.private, "options", "--format", "tinydns", "--ttl", "600",
                      "--hash", "sha256").strip()
    name, text, ttl = line.split(":")
    assert (name, ttl) == (f"'options._domainkey.{DOMAIN}", "600")
    unescaped = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), text)
    assert unescaped == dns_record(rsa_options_key.private, "options", "--format", "value",
                                   "--hash", "sha256").strip()


def test_tinydns_escapes_colons_and_unprintables() -> None:
    line = tinydns_record("s._domainkey.example.com.", "h=sha1:sha256; n=a\\b\x01é", 60)
    assert line == ("'s._domainkey.example.com:h=sha1\\072sha256; n=a\\134b\\001"
                    "\\303\\251:60")


def test_revoked_record(rsa_key: GenKey) -> None:
    out = dns_record(rsa_key.private, rsa_key.selector, "--revoked", "--format", "value")
    assert out == "v=DKIM1; k=rsa; p=\n"


def test_printed_record_served_passes_testkey(foreign_keys: dict[str, Path],
                                              zone_server: Callable[..., ZoneServer]) -> None:
    key = foreign_keys["genpkey-rsa"]
    server = zone_server(zone(dns_record(key, "sel")))
    proc = run_cli("testkey", "-d", DOMAIN, "-s", "sel", "-k", key, "--dns", server.address)
    assert proc.returncode == 0, proc.stdout


def test_loose_key_file_is_refused(rsa_key: GenKey, tmp_path: Path) -> None:
    loose = tmp_path / "loose.pem"
    loose.write_bytes(rsa_key.private.read_bytes())
    loose.chmod(0o640)
    message = one_line_error(run_cli("dns-record", "-k", loose, "-d", DOMAIN, "-s", "x"))
    assert message == (f"{loose}: private key is accessible by group or others (mode 0640); "
                       f"run: chmod 600 {loose}")


def test_missing_or_bad_key_file(tmp_path: Path) -> None:
    message = one_line_error(run_cli("dns-record", "-k", tmp_path / "none", "-d", DOMAIN,
                                     "-s", "x"))
    assert message.startswith(f"{tmp_path / 'none'}: cannot read private key")
    junk = tmp_path / "junk.pem"
    junk.write_text("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    junk.chmod(0o600)
    message = one_line_error(run_cli("dns-record", "-k", junk, "-d", DOMAIN, "-s", "x"))
    assert message.startswith(f"{junk}: not a valid PEM private key")
