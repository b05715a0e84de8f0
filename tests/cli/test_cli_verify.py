"""``mailseal verify``: exit status 0 (every message passes), 1 (one fails or is unsigned),
2 (temporary DNS error, usage error); text and JSON reports; messages from stdin, several
files, an mbox file and a Maildir folder; keys from the loopback DNS server or, offline,
from a zone file."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from dnsserver import ZoneServer

Cli = Callable[..., Any]
Sign = Callable[..., bytes]


def lf(message: bytes) -> bytes:
    return message.replace(b"\r\n", b"\n")


def tamper(signed: bytes) -> bytes:
    tampered = signed.replace(b"noon", b"one")
    assert tampered != signed
    return tampered


def write(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_several_files_all_pass(cli: Cli, dns: ZoneServer, sign: Sign, message: bytes,
                                tmp_path: Path) -> None:
    rsa = write(tmp_path, "rsa.eml", sign(message, "rsa"))
    ed = write(tmp_path, "ed.eml", sign(lf(message), "ed", canonicalization="relaxed/relaxed"))
    proc = cli("verify", "--dns", dns.address, "--authserv-id", "mx.test", rsa, ed)
    out = proc.stdout.decode()
    assert (proc.returncode, proc.stderr) == (0, b""), out
    lines = out.splitlines()
    assert lines[0] == f"{rsa}:"
    assert lines[1].split() == ["pass", "d=example.com", "s=rsa", "a=rsa-sha256",
                                "(good", "signature,", "2048-bit", "key)"]
    assert f"\n{ed}:\n  pass      d=example.com s=ed a=ed25519-sha256 " in out
    # One Authentication-Results field per message, with our authserv-id (RFC 8601 §2.2).
    assert out.count("  Authentication-Results: mx.test;") == 2
    assert out.count("dkim=pass") == 2


def test_one_unsigned_message_gives_1(cli: Cli, dns: ZoneServer, sign: Sign, message: bytes,
                                      tmp_path: Path) -> None:
    good = write(tmp_path, "good.eml", sign(message))
    plain = write(tmp_path, "plain.eml", message)
    proc = cli("verify", "--dns", dns.address, "--authserv-id", "mx.test", good, plain)
    out = proc.stdout.decode()
    assert proc.returncode == 1, out
    assert (f"{plain}:\n  none     no DKIM signature\n"
            '  Authentication-Results: mx.test; dkim=none reason="no signatures"\n') in out


def test_tampered_message_fails_with_body_hash_reason(cli: Cli, dns: ZoneServer, sign: Sign,
                                                      message: bytes, tmp_path: Path) -> None:
    good = write(tmp_path, "good.eml", sign(message))
    bad = write(tmp_path, "bad.eml", tamper(sign(message)))
    proc = cli("verify", "--dns", dns.address, good, bad)
    out = proc.stdout.decode()
    assert proc.returncode == 1, out
    report = out[out.index(f"{bad}:"):]
    assert "  fail      d=example.com s=rsa a=rsa-sha256 (body hash did not verify" in report
    assert 'dkim=fail (2048-bit key) reason="body hash did not verify"' in report


@pytest.mark.parametrize(("tampered", "status"), [(False, 0), (True, 1)])
def test_quiet_prints_nothing(cli: Cli, zone_file: Path, sign: Sign, message: bytes,
                              tmp_path: Path, tampered: bool, status: int) -> None:
    signed = sign(message)
    path = write(tmp_path, "msg.eml", tamper(signed) if tampered else signed)
    proc = cli("verify", "-q", "--dns-file", zone_file, path)
    assert (proc.returncode, proc.stdout, proc.stderr) == (status, b"", b"")


def test_dns_timeout_is_temperror_and_status_2(cli: Cli, dns: ZoneServer, sign: Sign,
                                               message: bytes, tmp_path: Path) -> None:
    dns.drop.add("rsa._domainkey.example.com")
    dropped = write(tmp_path, "dropped.eml", sign(message, "rsa"))
    good = write(tmp_path, "good.eml", sign(message, "ed"))
    plain = write(tmp_path, "plain.eml", message)
    proc = cli("verify", "--dns", dns.address, "--timeout", "0.5", good, plain, dropped)
    out = proc.stdout.decode()
    # A temporary error outranks a failure: the MTA must be able to answer 4xx.
    assert proc.returncode == 2, out
    report = out[out.index(f"{dropped}:"):]
    assert "  temperror d=example.com s=rsa a=rsa-sha256 (" in report
    assert "dkim=temperror" in report
    assert dns.count("rsa._domainkey.example.com") >= 1


def test_offline_zone_file(cli: Cli, zone_file: Path, sign: Sign, message: bytes) -> None:
    proc = cli("verify", "--dns-file", zone_file, "--authserv-id", "mx.test",
               stdin=sign(lf(message), "ed"))
    out = proc.stdout.decode()
    assert (proc.returncode, proc.stderr) == (0, b""), out
    assert out.startswith("<stdin>:\n  pass      d=example.com s=ed a=ed25519-sha256 ")


def test_json_reports_one_object_per_message(cli: Cli, zone_file: Path, sign: Sign,
                                             message: bytes, tmp_path: Path) -> None:
    good = write(tmp_path, "good.eml", sign(message, "rsa"))
    bad = write(tmp_path, "bad.eml", tamper(sign(message, "ed")))
    proc = cli("verify", "--json", "--dns-file", zone_file, "--authserv-id", "mx.test",
               good, bad)
    assert proc.returncode == 1
    first, second = (json.loads(line) for line in proc.stdout.decode().splitlines())
    assert (first["message"], first["result"]) == (str(good), "pass")
    [sig] = first["signatures"]
    assert (sig["result"], sig["domain"], sig["selector"], sig["algorithm"], sig["key_bits"]) \
        == ("pass", "example.com", "rsa", "rsa-sha256", 2048)
    assert first["authentication_results"].startswith("Authentication-Results: mx.test;")
    assert "dkim=pass" in first["authentication_results"]
    assert (second["message"], second["result"]) == (str(bad), "fail")
    [sig] = second["signatures"]
    assert (sig["result"], sig["domain"], sig["selector"]) == ("fail", "example.com", "ed")
    assert 'reason="body hash did not verify"' in second["authentication_results"]


#: The first body line starts with "From " and the second with ">From ": in an mboxrd
#: file each gets one more ">", which the reader must take off again.
MBOX_BODY_LINES = (b'From the start, this line began with "From ".\n',
                   b'>From here on, a quoted "From " line.\n')


def test_mbox_file_with_escaped_from_lines(cli: Cli, dns: ZoneServer, sign: Sign,
                                           tmp_path: Path) -> None:
    first = sign(b"From: Alice <alice@example.com>\nTo: bob@example.org\n"
                 b"Subject: mbox one\nMessage-ID: <mbox-1@example.com>\n\nHi,\n\n"
                 + b"".join(MBOX_BODY_LINES), "rsa", canonicalization="simple/simple")
    second = sign(b"From: Alice <alice@example.com>\nTo: bob@example.org\n"
                  b"Subject: mbox two\n\nSecond message.\n", "ed")
    escaped = first
    for line in MBOX_BODY_LINES:
        escaped = escaped.replace(line, b">" + line)
    assert escaped.count(b"\n>From the start") == 1 and escaped.count(b"\n>>From here") == 1
    mbox = write(tmp_path, "archive.mbox",
                 b"From alice@example.com Mon Nov 23 05:00:00 2026\n" + escaped + b"\n"
                 + b"From alice@example.com Mon Nov 23 05:01:00 2026\n" + second + b"\n")
    proc = cli("verify", "--dns", dns.address, mbox)
    out = proc.stdout.decode()
    assert (proc.returncode, proc.stderr) == (0, b""), out
    assert f"{mbox}:1:\n  pass      d=example.com s=rsa " in out
    assert f"{mbox}:2:\n  pass      d=example.com s=ed " in out
    assert out.count(":\n  ") == 2  # two messages, no third made of a body line


def test_maildir_reads_cur_and_new_only(cli: Cli, dns: ZoneServer, sign: Sign, message: bytes,
                                        tmp_path: Path) -> None:
    maildir = tmp_path / "Maildir"
    seen = write(maildir, "cur/1700000000.M1P1.host:2,S", sign(message, "rsa"))
    fresh = write(maildir, "new/1700000001.M2P2.host", sign(lf(message), "ed"))
    write(maildir, "tmp/1700000002.M3P3.host", message)  # being delivered: not a message yet
    proc = cli("verify", "--dns", dns.address, maildir)
    out = proc.stdout.decode()
    assert (proc.returncode, proc.stderr) == (0, b""), out
    labels = [line for line in out.splitlines() if not line.startswith(" ")]
    assert labels == [f"{seen}:", f"{fresh}:"]


@pytest.mark.parametrize(("make", "expected"), [
    pytest.param(lambda tmp: tmp / "absent.eml", "absent.eml: no such file or directory",
                 id="missing-file"),
    pytest.param(lambda tmp: tmp, "not a Maildir (no cur/ or new/)", id="plain-folder"),
])
def test_unreadable_input_is_one_error_line(cli: Cli, error_of: Callable[[Any], str],
                                            zone_file: Path, tmp_path: Path,
                                            make: Callable[[Path], Path], expected: str) -> None:
    path = make(tmp_path)
    text = error_of(cli("verify", "--dns-file", zone_file, path))
    assert text.startswith(str(path)) and text.endswith(expected)


USAGE_ERRORS = [
    pytest.param(["--dns", "127.0.0.1:53", "--dns-file", "{zone}"],
                 "--dns and --dns-file exclude each other", id="dns-and-dns-file"),
    pytest.param(["--dns", "not a server"], "--dns not a server: bad nameserver",
                 id="bad-dns-value"),
]


@pytest.mark.parametrize(("options", "reason"), USAGE_ERRORS)
def test_usage_errors_are_one_error_line(cli: Cli, error_of: Callable[[Any], str],
                                         zone_file: Path, options: list[str],
                                         reason: str) -> None:
    proc = cli("verify", *(o.format(zone=zone_file) for o in options), stdin=b"")
    assert reason in error_of(proc)


def test_timeout_must_be_positive(cli: Cli, error_of: Callable[[Any], str], dns: ZoneServer,
                                  sign: Sign, message: bytes) -> None:
    proc = cli("verify", "--dns", dns.address, "--timeout", "0", stdin=sign(message))
    assert "--timeout" in error_of(proc)
    assert dns.count("rsa._domainkey.example.com") == 0
