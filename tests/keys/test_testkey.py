"""``mailseal testkey`` end to end against the loopback DNS server: one line per check
with its verdict word, exit 0 only when it is safe to sign with the key."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest
from dnsserver import ZoneServer
from keys.support import DOMAIN, GenKey, one_line_error, openssl_key, run_cli, txt, zone

from mailseal.dkim.keys import load_key
from mailseal.dkim.publish import record_value


def run_testkey(server: ZoneServer, selector: str, key: Path | None = None,
            *options: object) -> tuple[int, list[str]]:
    args: list[object] = ["testkey", "-d", DOMAIN, "-s", selector, "--dns", server.address,
                          "--timeout", "1"]
    if key is not None:
        args += ["-k", key]
    proc = run_cli(*args, *options)
    assert proc.stderr == "", proc.stderr
    return proc.returncode, proc.stdout.splitlines()


def verdict(lines: list[str], pattern: str) -> str:
    """The verdict word of the one line whose text matches ``pattern``."""
    found = [line.split(" ", 1)[0] for line in lines if re.search(pattern, line)]
    assert len(found) == 1, (pattern, lines)
    return found[0]


def test_published_genkey_record_split_in_strings_is_safe(dns: ZoneServer,
                                                          rsa_key: GenKey) -> None:
    # The .txt written by genkey, pasted into the zone as is: several strings.
    assert rsa_key.bind.count('"') >= 4
    dns.set_zone(zone(rsa_key.bind))
    status, lines = run_testkey(dns, rsa_key.selector, rsa_key.private)
    assert status == 0, lines
    assert verdict(lines, rf"record found at rsa2048\._domainkey\.{DOMAIN} ") == "OK"
    assert verdict(lines, "syntax valid") == "OK"
    assert verdict(lines, "key type rsa, 2048 bits") == "OK"
    assert verdict(lines, f"matches the private key {rsa_key.private}") == "OK"
    assert verdict(lines, "not in testing mode") == "OK"
    assert verdict(lines, "h= allows sha256") == "OK"
    assert verdict(lines, "s= allows email") == "OK"
    assert verdict(lines, "not DNSSEC-validated") == "WARN"  # a warning leaves the exit status 0
    assert lines[-1] == "result: OK - safe to sign with this key (1 warning)"
    assert all(line.split(" ", 1)[0] in ("OK", "WARN", "FAIL", "result:") for line in lines)
    assert len(lines) == 9


def test_without_key_file_the_match_is_not_checked(dns: ZoneServer, ed_key: GenKey) -> None:
    dns.set_zone(zone(ed_key.bind))
    status, lines = run_testkey(dns, ed_key.selector)
    assert status == 0, lines
    assert verdict(lines, "key type ed25519") == "OK"
    assert not any("matches" in line for line in lines)


def test_ed25519_record_matches_its_key(dns: ZoneServer, ed_key: GenKey) -> None:
    dns.set_zone(zone(ed_key.bind))
    status, lines = run_testkey(dns, ed_key.selector, ed_key.private)
    assert status == 0, lines
    assert verdict(lines, "matches the private key") == "OK"


def test_dnssec_validated_answer(zone_server: object, rsa_key: GenKey) -> None:
    server = zone_server(zone(rsa_key.bind), set_ad=True)  # type: ignore[operator]
    status, lines = run_testkey(server, rsa_key.selector, rsa_key.private)
    assert status == 0
    assert verdict(lines, "^OK   DNSSEC-validated") == "OK"
    assert lines[-1] == "result: OK - safe to sign with this key"


def test_record_missing(dns: ZoneServer, rsa_key: GenKey) -> None:
    status, lines = run_testkey(dns, rsa_key.selector, rsa_key.private)
    assert status == 1
    assert lines[0] == f"FAIL no record at rsa2048._domainkey.{DOMAIN}"
    assert lines[-1] == "result: FAIL - not safe to sign with this key"


def test_name_without_txt_record(dns: ZoneServer, rsa_key: GenKey) -> None:
    dns.set_zone(zone("rsa2048._domainkey A 192.0.2.1"))
    status, lines = run_testkey(dns, rsa_key.selector, rsa_key.private)
    assert status == 1
    assert lines[0] == f"FAIL no TXT record at rsa2048._domainkey.{DOMAIN} (the name exists)"


@pytest.mark.parametrize("failure", ["servfail", "drop"])
def test_temporary_failure_has_its_own_exit_status(dns: ZoneServer, rsa_key: GenKey,
                                                   failure: str) -> None:
    dns.set_zone(zone(rsa_key.bind))
    getattr(dns, failure).add(f"rsa2048._domainkey.{DOMAIN}")
    status, lines = run_testkey(dns, rsa_key.selector, rsa_key.private)
    assert status == 2, lines
    assert lines[0].startswith("FAIL lookup failed (temporary)")
    assert lines[-1].startswith("result: UNKNOWN")


def test_testing_flag_warns_but_is_safe(dns: ZoneServer, rsa_key: GenKey) -> None:
    value = record_value(load_key(rsa_key.private), testing=True)
    dns.set_zone(zone(txt("rsa2048", value)))
    status, lines = run_testkey(dns, rsa_key.selector, rsa_key.private)
    assert status == 0
    assert verdict(lines, r"testing mode \(t=y\)") == "WARN"


def test_revoked_record(dns: ZoneServer, rsa_key: GenKey) -> None:
    dns.set_zone(zone(txt("rsa2048", "v=DKIM1; k=rsa; p=")))
    status, lines = run_testkey(dns, rsa_key.selector, rsa_key.private)
    assert status == 1
    assert verdict(lines, r"key revoked \(empty p=\)") == "FAIL"


def test_record_of_another_key(dns: ZoneServer, rsa_key: GenKey,
                               other_rsa_key: GenKey) -> None:
    dns.set_zone(zone(txt("rsa2048", other_rsa_key.value)))
    status, lines = run_testkey(dns, rsa_key.selector, rsa_key.private)
    assert status == 1
    assert verdict(lines, "does not match the private key") == "FAIL"
    assert verdict(lines, "key type rsa, 2048 bits") == "OK"


def test_record_of_another_key_type(dns: ZoneServer, rsa_key: GenKey, ed_key: GenKey) -> None:
    dns.set_zone(zone(txt("rsa2048", ed_key.value)))
    status, lines = run_testkey(dns, rsa_key.selector, rsa_key.private)
    assert status == 1
    assert verdict(lines, "the record is k=ed25519, the private key is rsa") == "FAIL"


def test_truncated_base64(dns: ZoneServer, rsa_key: GenKey) -> None:
    dns.set_zone(zone(txt("rsa2048", rsa_key.value[:-7])))
    status, lines = run_testkey(dns, rsa_key.selector, rsa_key.private)
    assert status == 1
    assert "FAIL syntax invalid: p= is not valid base64" in lines


def test_truncated_key_data(dns: ZoneServer, rsa_key: GenKey) -> None:
    # Valid base64 of a DER structure cut short: the key itself cannot be read.
    p = base64.b64decode(rsa_key.value.partition("p=")[2])
    cut = base64.b64encode(p[:200]).decode()
    dns.set_zone(zone(txt("rsa2048", f"v=DKIM1; k=rsa; p={cut}")))
    status, lines = run_testkey(dns, rsa_key.selector, rsa_key.private)
    assert status == 1
    assert verdict(lines, "syntax invalid: p= is not a valid public key") == "FAIL"


def test_512_bit_key_fails(dns: ZoneServer, rsa512_file: Path) -> None:
    dns.set_zone(zone(txt("small", record_value(load_key(rsa512_file)))))
    status, lines = run_testkey(dns, "small", rsa512_file)
    assert status == 1
    assert verdict(lines, "key type rsa, 512 bits: too small") == "FAIL"
    assert verdict(lines, "matches the private key") == "OK"


def test_1024_bit_key_warns(dns: ZoneServer, openssl: str, tmp_path: Path) -> None:
    key = openssl_key(openssl, tmp_path / "k1024.pem", "genrsa", "1024")
    dns.set_zone(zone(txt("k1024", record_value(load_key(key)))))
    status, lines = run_testkey(dns, "k1024", key)
    assert status == 0
    assert verdict(lines, "key type rsa, 1024 bits: weak") == "WARN"


def test_two_dkim_records_at_one_name(dns: ZoneServer, rsa_key: GenKey,
                                      other_rsa_key: GenKey) -> None:
    dns.set_zone(zone(txt("rsa2048", rsa_key.value, other_rsa_key.value)))
    status, lines = run_testkey(dns, rsa_key.selector, rsa_key.private)
    assert status == 1
    assert lines[0].startswith(f"FAIL 2 TXT records at rsa2048._domainkey.{DOMAIN}")
    # Both listed, indented under the line, each cut short.
    assert lines[1].startswith("     [1] v=DKIM1; k=rsa; p=MII") and lines[1].endswith("…")
    assert lines[2].startswith("     [2] v=DKIM1; k=rsa; p=MII")


@pytest.mark.parametrize(("record", "expected"), [
    ("h=sha1", "FAIL h=sha1 does not allow sha256"),
    ("h=sha1:sha256", "OK   h= allows sha256 (sha1:sha256)"),
    ("s=tlsrpt", "FAIL s=tlsrpt does not allow email"),
    ("s=email", "OK   s= allows email (email)"),
])
def test_hash_and_service_restrictions(dns: ZoneServer, rsa_key: GenKey, record: str,
                                       expected: str) -> None:
    dns.set_zone(zone(txt("rsa2048", rsa_key.value.replace("k=rsa; ", f"k=rsa; {record}; "))))
    status, lines = run_testkey(dns, rsa_key.selector, rsa_key.private)
    assert any(line.startswith(expected) for line in lines), lines
    assert status == (1 if expected.startswith("FAIL") else 0)


def test_loose_key_file_is_refused(dns: ZoneServer, rsa_key: GenKey, tmp_path: Path) -> None:
    loose = tmp_path / "loose.private"
    loose.write_bytes(rsa_key.private.read_bytes())
    loose.chmod(0o644)
    proc = run_cli("testkey", "-d", DOMAIN, "-s", "rsa2048", "-k", loose, "--dns", dns.address)
    message = one_line_error(proc)
    assert str(loose) in message and f"chmod 600 {loose}" in message
