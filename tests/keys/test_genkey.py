"""``mailseal genkey``: the files it writes, the record it prints, its refusals — and
its records read back by our parser, by dkimpy and by Mail::DKIM, served over the
loopback DNS where the peer looks keys up itself."""

from __future__ import annotations

import stat
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import dkim
import pytest
from conformance.support import dkimpy_dnsfunc
from dnsserver import ZoneServer
from interop.peers import KeySet, MailDkim, unavailable
from keys.support import DOMAIN, GenKey, one_line_error, quoted_strings, run_cli, zone

import mailseal
from mailseal.dkim.keys import load_key
from mailseal.dkim.record import parse_key_record

MESSAGE = (b"From: Alice <alice@keys.test>\r\nTo: Bob <bob@example.org>\r\n"
           b"Subject: new key\r\nDate: Mon, 23 Nov 2026 05:00:00 +0000\r\n"
           b"Message-ID: <genkey-1@keys.test>\r\n\r\nSigned with a fresh key.\r\n")

# Mail::DKIM's own record checks (Mail::DKIM::PublicKey: version, key type, p= loads in
# OpenSSL, s= allows email; then h= allows sha256). Prints "ok BITS [testing]".
MAIL_DKIM_CHECK = r"""
use Mail::DKIM::PublicKey;
my $k = Mail::DKIM::PublicKey->parse($ARGV[0]);
$k->check;
$k->check_hash_algorithm("sha256");
printf "ok %d%s\n", $k->cork->size * 8, $k->testing ? " testing" : "";
"""


def mail_dkim_reads(value: str) -> str:
    proc = subprocess.run(["perl", "-e", MAIL_DKIM_CHECK, value], capture_output=True,
                          text=True, timeout=30, check=False)
    if proc.returncode != 0 and "Can't locate Mail/DKIM" in proc.stderr:
        unavailable("Mail::DKIM not available (Debian: libmail-dkim-perl)")
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_writes_key_and_record(rsa_key: GenKey) -> None:
    assert stat.S_IMODE(rsa_key.private.stat().st_mode) == 0o600
    bind = rsa_key.bind
    assert bind.startswith(f'rsa2048._domainkey.{DOMAIN}. IN TXT ( "v=DKIM1; k=rsa; "\n')
    assert bind.endswith('" )\n')
    strings = quoted_strings(bind)
    assert len(strings) == 3  # "v=DKIM1; k=rsa; " and p= in two pieces
    assert all(len(s.encode()) <= 255 for s in strings)
    record = parse_key_record(rsa_key.value)
    key = load_key(rsa_key.private)
    assert (record.k, record.bits, record.p) == ("rsa", 2048, key.public_data())
    assert rsa_key.private.read_bytes().startswith(b"-----BEGIN RSA PRIVATE KEY-----")


def test_prints_bind_line_and_web_form(tmp_path: Path) -> None:
    proc = run_cli("genkey", "-d", DOMAIN, "-s", "web", "--directory", tmp_path)
    assert proc.returncode == 0 and proc.stderr == ""
    out = proc.stdout
    bind = (tmp_path / "web.txt").read_text()
    value = "".join(quoted_strings(bind))
    assert bind in out + "\n"
    assert "  host:  web._domainkey " in out
    assert "  type:  TXT\n" in out
    assert f"  value: {value}\n" in out
    assert f"mailseal testkey -d {DOMAIN} -s web -k {tmp_path / 'web.private'}" in out


def test_refuses_to_overwrite(rsa_key: GenKey) -> None:
    before = rsa_key.private.read_bytes()
    proc = run_cli("genkey", "-d", DOMAIN, "-s", rsa_key.selector,
                   "--directory", rsa_key.private.parent)
    message = one_line_error(proc)
    assert message.startswith(f"{rsa_key.private}: exists; refusing to overwrite")
    assert rsa_key.private.read_bytes() == before


def test_default_selector_is_the_month_then_suffixed(tmp_path: Path) -> None:
    months = {datetime.now(UTC).strftime("%Y-%m")}
    for _ in range(2):
        proc = run_cli("genkey", "-d", DOMAIN, "-t", "ed25519", "--directory", tmp_path)
        assert proc.returncode == 0, proc.stderr
    months.add(datetime.now(UTC).strftime("%Y-%m"))
    names = sorted(p.name for p in tmp_path.iterdir())
    assert any(names == [f"{m}-2.private", f"{m}-2.txt", f"{m}.private", f"{m}.txt"]
               for m in months), names


def test_rsa_under_1024_bits_is_refused(tmp_path: Path) -> None:
    message = one_line_error(run_cli("genkey", "-d", DOMAIN, "-s", "s", "-b", "512",
                                     "--directory", tmp_path))
    assert "512-bit RSA keys are not valid for DKIM (RFC 8301" in message
    assert list(tmp_path.iterdir()) == []


def test_rsa_1024_bits_is_warned(tmp_path: Path) -> None:
    proc = run_cli("genkey", "-d", DOMAIN, "-s", "s", "-b", "1024", "--directory", tmp_path)
    assert proc.returncode == 0
    assert proc.stderr == ("mailseal: warning: 1024-bit RSA keys are weak; RFC 8301 §3.2 "
                           "recommends 2048\n")
    assert load_key(tmp_path / "s.private").bits == 1024


def test_ed25519_ignores_bits(tmp_path: Path) -> None:
    proc = run_cli("genkey", "-d", DOMAIN, "-s", "e", "-t", "ed25519", "-b", "1024",
                   "--directory", tmp_path)
    assert proc.returncode == 0
    assert "--bits is ignored for ed25519" in proc.stderr
    key = load_key(tmp_path / "e.private")
    assert key.key_type == "ed25519"
    assert (tmp_path / "e.txt").read_text().startswith(
        f'e._domainkey.{DOMAIN}. IN TXT ( "v=DKIM1; k=ed25519; "')


def test_record_options(rsa_options_key: GenKey) -> None:
    made = rsa_options_key
    assert made.value.startswith("v=DKIM1; k=rsa; h=sha256; s=email; t=y; p=MII")
    record = parse_key_record(made.value)
    assert record.testing and record.h == ("sha256",) and record.s == ("email",)
    assert mail_dkim_reads(made.value) == "ok 2048 testing"


@pytest.mark.parametrize("args", [("-d", "bad domain", "-s", "x"), ("-d", DOMAIN, "-s", "a/b")])
def test_bad_names(tmp_path: Path, args: tuple[str, ...]) -> None:
    message = one_line_error(run_cli("genkey", *args, "--directory", tmp_path))
    assert message.startswith("invalid ")


def test_records_parse_with_dkimpy_and_mail_dkim(rsa_key: GenKey, ed_key: GenKey) -> None:
    for made in (rsa_key, ed_key):
        key = load_key(made.private)
        _pk, bits, ktag, _ = dkim.evaluate_pk(made.selector.encode(), made.value.encode())
        assert (ktag, bits) == (key.key_type.encode(), key.bits)
        assert parse_key_record(made.value).p == key.public_data()
    # Mail::DKIM 1.20230212 knows no Ed25519 (../shared/PEERS.md).
    assert mail_dkim_reads(rsa_key.value) == "ok 2048"


def test_signed_mail_verifies_with_the_published_record(
        zone_server: Callable[..., ZoneServer], rsa_key: GenKey, ed_key: GenKey,
        key_dir: Path) -> None:
    # The .txt files as a postmaster would paste them into the zone.
    server = zone_server(zone(rsa_key.bind, ed_key.bind))
    for made in (rsa_key, ed_key):
        signed = mailseal.sign(MESSAGE, domain=DOMAIN, selector=made.selector,
                               key=load_key(made.private)) + MESSAGE
        assert dkim.verify(signed, dnsfunc=dkimpy_dnsfunc(server), minkey=1024), made
    keys = KeySet(domain=DOMAIN, dns_port=server.port, rsa_selector=rsa_key.selector,
                  ed_selector=ed_key.selector, rsa_pem=rsa_key.private, ed_pem=ed_key.private,
                  ed_seed=ed_key.private, unbound_conf=key_dir / "unused")
    signed = mailseal.sign(MESSAGE, domain=DOMAIN, selector=rsa_key.selector,
                           key=load_key(rsa_key.private)) + MESSAGE
    results = MailDkim(keys, key_dir).verify(signed)
    assert [r.result for r in results] == ["pass"], results
