"""``mailseal config init``, ``mailseal config check`` and ``mailseal postfix-config``:
the files written and their modes, the DNS record printed (published as printed, it
verifies), and configuration errors as one line naming the file, the key and the reason."""

from __future__ import annotations

import re
import shutil
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from dnsserver import ZoneServer, make_zone

from mailseal.dkim.keys import load_key
from mailseal.dkim.record import parse_key_record

Cli = Callable[..., Any]
ErrorOf = Callable[[Any], str]


def test_init_writes_config_and_key_and_prints_a_record_that_works(
        cli: Cli, error_of: ErrorOf, zone_server: Callable[..., ZoneServer], message: bytes,
        dkimpy_verifies: Callable[[bytes, ZoneServer], bool], tmp_path: Path) -> None:
    folder = tmp_path / "etc"
    proc = cli("config", "init", "--directory", folder, "-d", "example.com", "-s", "sel")
    out = proc.stdout.decode()
    assert (proc.returncode, proc.stderr) == (0, b""), out
    config, keyfile = folder / "mailseal.toml", folder / "keys" / "example.com" / "sel.private"
    assert out.startswith(f"wrote {config} and {keyfile} (mode 0600)\n")
    assert stat.S_IMODE(keyfile.stat().st_mode) == 0o600
    assert config.is_file()

    # The record: one BIND line, TXT strings of at most 255 octets (RFC 1035 §3.3.14)
    # that, joined (RFC 6376 §3.6.2.2), are the key record of the key written.
    record = out.partition("Publish in DNS:\n\n")[2]
    assert record.startswith("sel._domainkey.example.com. IN TXT (")
    strings = re.findall(r'"([^"]*)"', record)
    assert len(strings) > 1
    assert all(len(s.encode()) <= 255 for s in strings)
    parsed = parse_key_record("".join(strings))
    key = load_key(keyfile)
    assert (parsed.k, parsed.bits, parsed.p) == ("rsa", 2048, key.public_data())

    # Published as printed, it verifies what the key signs (dkimpy reading it over DNS).
    server = zone_server(make_zone("example.com", record))
    signed = cli("sign", "-d", "example.com", "-s", "sel", "-k", keyfile, stdin=message)
    assert signed.returncode == 0
    assert dkimpy_verifies(signed.stdout, server)

    check = cli("config", "check", config)
    assert check.returncode == 0
    assert check.stdout.decode().startswith(
        f"{config}: OK — 1 key(s), 2 signing rule(s), 1 listener(s), authserv-id ")

    # A second run refuses to overwrite, and leaves both files alone.
    before = config.read_bytes(), keyfile.read_bytes()
    again = cli("config", "init", "--directory", folder, "-d", "example.com", "-s", "sel")
    assert error_of(again) == f"{config} exists; not overwriting it"
    assert (config.read_bytes(), keyfile.read_bytes()) == before


KEY_AND_RULE = """\
[server]
authserv_id = "mx.test"

[[listeners]]
kind = "milter"
address = "inet:127.0.0.1:10025"

[[keys]]
name = "ex"
domain = "example.com"
selector = "rsa"
file = "rsa.private"

[signing]
rules = [{ match = "*@example.com", keys = ["ex"] }]
"""


@pytest.fixture
def config_dir(tmp_path: Path, keys: dict[str, Any]) -> Path:
    """A folder with a copy of the RSA key (mode 0600) next to where configs go."""
    shutil.copy2(keys["rsa_file"], tmp_path / "rsa.private")
    return tmp_path


def test_check_ok(cli: Cli, config_dir: Path) -> None:
    path = config_dir / "mailseal.toml"
    path.write_text(KEY_AND_RULE)
    proc = cli("config", "check", path)
    assert (proc.returncode, proc.stderr) == (0, b"")
    assert proc.stdout.decode() == (f"{path}: OK — 1 key(s), 1 signing rule(s), "
                                    "1 listener(s), authserv-id mx.test\n")


@pytest.mark.parametrize(("text", "expected"), [
    pytest.param(KEY_AND_RULE + "bogus = 1\n", "signing.bogus: unknown setting",
                 id="unknown-setting"),
    pytest.param('[verify]\non_bad_signature = "bounce"\n',
                 "verify.on_bad_signature.action: Input should be 'accept', 'reject', "
                 "'tempfail', 'quarantine' or 'discard'", id="bad-action-word"),
    pytest.param(KEY_AND_RULE.replace('keys = ["ex"]', 'keys = ["ex", "ed"]'),
                 "signing.rules[0] names key 'ed', which no [[keys]] entry defines",
                 id="rule-names-undefined-key"),
    pytest.param(KEY_AND_RULE.replace("rsa.private", "open.private"),
                 "keys[0].file (ex): {dir}/open.private: private key is accessible by group "
                 "or others (mode 0644); run: chmod 600 {dir}/open.private", id="key-mode-0644"),
    pytest.param("[signing\nrules = []\n", "TOML syntax error: ", id="toml-syntax"),
    pytest.param(None, "cannot read: No such file or directory", id="missing-file"),
])
def test_check_errors_name_file_key_and_reason(cli: Cli, error_of: ErrorOf, config_dir: Path,
                                               text: str | None, expected: str) -> None:
    shutil.copy(config_dir / "rsa.private", config_dir / "open.private")
    (config_dir / "open.private").chmod(0o644)
    path = config_dir / "mailseal.toml"
    if text is not None:
        path.write_text(text)
    message = error_of(cli("config", "check", path))
    assert message.startswith(f"{path}: ")
    assert expected.format(dir=config_dir) in message


@pytest.mark.parametrize(("address", "queue", "expected"), [
    pytest.param("inet:127.0.0.1:10026", None, "inet:127.0.0.1:10026", id="inet"),
    pytest.param("inet:10027@127.0.0.1", None, "inet:127.0.0.1:10027", id="inet-opendkim-form"),
    pytest.param("unix:{dir}/spool/mailseal/mailseal.sock", "{dir}/spool",
                 "unix:/mailseal/mailseal.sock", id="unix-inside-queue-directory"),
    pytest.param("unix:{dir}/run/mailseal.sock", "{dir}/spool", "unix:{dir}/run/mailseal.sock",
                 id="unix-outside-queue-directory"),
])
def test_postfix_config_milter_lines(cli: Cli, tmp_path: Path, address: str, queue: str | None,
                                     expected: str) -> None:
    path = tmp_path / "mailseal.toml"
    listener = address.format(dir=tmp_path)
    path.write_text(f'[[listeners]]\nkind = "milter"\naddress = "{listener}"\n')
    options = [] if queue is None else ["--queue-directory", queue.format(dir=tmp_path)]
    proc = cli("postfix-config", "-c", path, "--mode", "milter", *options)
    assert (proc.returncode, proc.stderr) == (0, b"")
    lines = proc.stdout.decode().splitlines()
    milter = expected.format(dir=tmp_path)
    assert f"smtpd_milters = {milter}" in lines
    assert f"non_smtpd_milters = {milter}" in lines
    assert "milter_default_action = tempfail" in lines


def test_postfix_config_needs_no_readable_key(cli: Cli, tmp_path: Path) -> None:
    """It reads the listeners only: a user who may not read the 0600 keys (or a key
    not made yet) still gets the lines."""
    path = tmp_path / "mailseal.toml"
    path.write_text('[[listeners]]\nkind = "milter"\naddress = "inet:127.0.0.1:8891"\n'
                    '[[keys]]\nname = "k"\ndomain = "example.com"\nselector = "s"\n'
                    'file = "keys/not-there.private"\n')
    proc = cli("postfix-config", "-c", path, "--mode", "milter")
    assert (proc.returncode, proc.stderr) == (0, b"")
    assert "smtpd_milters = inet:127.0.0.1:8891" in proc.stdout.decode().splitlines()


def test_postfix_config_without_milter_listener(cli: Cli, error_of: ErrorOf,
                                                tmp_path: Path) -> None:
    path = tmp_path / "mailseal.toml"
    path.write_text("[dns]\ntimeout = 2.0\n")
    assert error_of(cli("postfix-config", "-c", path)) == (
        f'{path}: no [[listeners]] with kind = "milter"')


@pytest.mark.parametrize("field", ["domain", "selector"])
def test_check_refuses_key_names_that_are_not_dns_names(cli: Cli, error_of: ErrorOf,
                                                        config_dir: Path, field: str) -> None:
    path = config_dir / "mailseal.toml"
    old = 'domain = "example.com"' if field == "domain" else 'selector = "rsa"'
    path.write_text(KEY_AND_RULE.replace(old, f'{field} = "exa mple"'))
    assert error_of(cli("config", "check", path)).startswith(f"{path}: keys[0].{field}: ")


def test_init_refuses_a_domain_that_is_not_a_dns_name(cli: Cli, error_of: ErrorOf,
                                                      tmp_path: Path) -> None:
    folder = tmp_path / "etc"
    proc = cli("config", "init", "--directory", folder, "-d", "exa mple.com", "-s", "sel")
    assert "exa mple.com" in error_of(proc)
    assert not (folder / "mailseal.toml").exists()
