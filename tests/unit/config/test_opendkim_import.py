"""Migrating from OpenDKIM: opendkim.conf + KeyTable + SigningTable + InternalHosts."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from mailseal.config.load import build_config
from mailseal.config.opendkim import ImportError_, import_opendkim
from mailseal.keystore import generate_key, write_private_key


def _setup(tmp_path: Path, conf: str) -> Path:
    write_private_key(tmp_path / "mail.private", generate_key("ed25519"))
    (tmp_path / "KeyTable").write_text(
        f"mail._domainkey.example.com example.com:mail:{tmp_path / 'mail.private'}\n"
        f"# a comment\nsub example.org:s1:{tmp_path / 'mail.private'}\n")
    (tmp_path / "SigningTable").write_text(
        "*@example.com mail._domainkey.example.com\n*.example.org sub\n")
    (tmp_path / "TrustedHosts").write_text("127.0.0.1\n::1\nlocalhost\n10.0.0.0/8\n")
    path = tmp_path / "opendkim.conf"
    path.write_text(conf.replace("DIR", str(tmp_path)))
    return path


CONF = """\
Syslog yes
Mode sv
Socket inet:8891@localhost
KeyTable refile:DIR/KeyTable
SigningTable refile:DIR/SigningTable
InternalHosts DIR/TrustedHosts
Canonicalization relaxed/relaxed
OversignHeaders From,Subject
MustBeSigned Subject
On-BadSignature reject
On-DNSError tempfail
MinimumKeyBits 2048
AuthservID mx.example.com
"""


def test_keytable_signingtable_setup_becomes_an_equivalent_config(tmp_path: Path) -> None:
    result = import_opendkim(_setup(tmp_path, CONF))
    config = build_config(tomllib.loads(result.toml), "imported")
    s = config.settings
    assert [(k.name, k.domain, k.selector) for k in s.keys] == [
        ("mail._domainkey.example.com", "example.com", "mail"), ("sub", "example.org", "s1")]
    assert [(r.match, r.keys) for r in s.signing.rules] == [
        ("*@example.com", ("mail._domainkey.example.com",)), ("*.example.org", ("sub",))]
    assert s.signing.internal_hosts == ("127.0.0.1", "::1", "10.0.0.0/8")
    assert s.signing.canonicalization == "relaxed/relaxed"
    assert s.signing.oversign == ("from", "subject")
    assert s.verify.on_bad_signature.action == "reject"
    assert s.verify.minimum_key_bits == 2048 and s.verify.must_be_signed == ("subject",)
    assert s.listeners[0].address == "inet:127.0.0.1:8891"
    assert config.authserv_id == "mx.example.com"
    # What was not carried over is said, not dropped silently.
    assert "not imported: syslog" in result.notes
    assert "localhost" in result.toml.splitlines()[1]


def test_single_key_setup(tmp_path: Path) -> None:
    conf = ("Domain example.com\nSelector mail\nKeyFile DIR/mail.private\n"
            "Socket local:/run/opendkim/opendkim.sock\n")
    result = import_opendkim(_setup(tmp_path, conf))
    s = build_config(tomllib.loads(result.toml), "imported").settings
    assert s.listeners[0].address == "unix:/run/opendkim/opendkim.sock"
    assert [(r.match, r.keys) for r in s.signing.rules] == [("*@example.com",
                                                             ("example.com-mail",))]


@pytest.mark.parametrize(("conf", "message"), [
    ("Socket inet:bogus\n", "Socket 'inet:bogus'"),
    ("On-BadSignature maybe\n", "unknown action 'maybe'"),
    ("KeyTable DIR/missing\n", "No such file"),
    ("Mode\n", "Mode has no value"),
])
def test_errors_name_the_problem(tmp_path: Path, conf: str, message: str) -> None:
    with pytest.raises(ImportError_, match=message):
        import_opendkim(_setup(tmp_path, conf))
