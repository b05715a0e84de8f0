"""``mailseal rotate`` end to end: start → finish refused while DNS does not serve the
new record → record published → finish switches the configuration (every other byte
kept) → ``config check`` passes → ``--status`` says what is left to do. And the ways
it must refuse: no roll-over started, two at once, no such entry, a changed config."""

from __future__ import annotations

import json
import re
import shutil
import stat
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from dnsserver import ZoneServer
from keys.support import DOMAIN, GenKey, genkey, one_line_error, run_cli, txt, zone

CONFIG = """\
# mailseal test configuration: these comments must survive a roll-over
[server]
authserv_id = "mx.keys.test"    # trailing comment

[dns]
nameservers = ["{dns}"]
timeout = 2.0

[[keys]]                        # the RSA key
name = "main"
domain = "keys.test"
selector   = "2026-01"          # aligned, with a comment
file = "keys/2026-01.private"   # relative to this file

[[keys]]
name = "other"
domain = "other.test"
selector = "s1"
file = '{other}'

[signing]
rules = [
  {{ match = "*@keys.test", keys = ["main"] }},   # [[keys]] in a comment
  {{ match = "*@other.test", keys = ["other"] }},
]
"""


@dataclass
class Setup:
    config: Path
    text: str  # the configuration as written
    old: GenKey
    server: ZoneServer

    def rotate(self, *args: object) -> tuple[int, str, str]:
        proc = run_cli("rotate", "-c", self.config, *args)
        return proc.returncode, proc.stdout, proc.stderr


def copy_key(made: GenKey, folder: Path, selector: str) -> GenKey:
    """A session key under another name (cheaper than making one per test)."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    private, record = folder / f"{selector}.private", folder / f"{selector}.txt"
    shutil.copyfile(made.private, private)
    private.chmod(0o600)
    record.write_text(made.bind.replace(f"{made.selector}._domainkey", f"{selector}._domainkey"))
    return GenKey(selector, private, record)


@pytest.fixture
def setup(tmp_path: Path, dns: ZoneServer, rsa_key: GenKey, ed_key: GenKey) -> Setup:
    etc = tmp_path / "etc"
    old = copy_key(rsa_key, etc / "keys", "2026-01")
    other = copy_key(ed_key, tmp_path / "other", "s1")
    text = CONFIG.format(dns=dns.address, other=other.private)
    config = etc / "mailseal.toml"
    config.write_text(text)
    dns.set_zone(zone(old.bind))
    return Setup(config, text, old, dns)


def new_selector(stdout: str) -> str:
    found = re.search(r"\(selector (\S+), rsa, mode 0600\)", stdout)
    assert found, stdout
    return found.group(1)


def test_full_rotation(setup: Setup) -> None:
    months = {datetime.now(UTC).strftime("%Y-%m")}
    status, out, err = setup.rotate("-d", DOMAIN)
    assert status == 0, err
    new = new_selector(out)
    months.add(datetime.now(UTC).strftime("%Y-%m"))
    assert new in months  # the default selector: this month
    new_key = setup.config.parent / "keys" / f"{new}.private"
    new_txt = new_key.with_suffix(".txt")
    assert stat.S_IMODE(new_key.stat().st_mode) == 0o600
    assert new_txt.read_text() in out + "\n"  # the record to publish, as in NEW.txt
    assert f"  host:  {new}._domainkey" in out
    assert f"mailseal rotate -c {setup.config} -d {DOMAIN} --finish" in out
    assert setup.config.read_text() == setup.text  # nothing switched yet

    # The state beside the configuration.
    states = list((setup.config.parent / "rotation").glob("*.json"))
    assert len(states) == 1
    state = json.loads(states[0].read_text())
    assert {k: state[k] for k in ("domain", "key_name", "old_selector", "new_selector",
                                  "step")} == {"domain": DOMAIN, "key_name": "main",
                                               "old_selector": "2026-01",
                                               "new_selector": new, "step": "started"}
    assert state["old_file"] == str(setup.old.private)
    assert state["new_file"] == str(new_key)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", state["created"])

    # A second roll-over of the same key while this one runs is refused.
    status, _, err = setup.rotate("-d", DOMAIN)
    assert status == 2 and "already in progress" in err and f"new selector {new}" in err

    status, out, _ = setup.rotate("--status")
    assert status == 0
    assert f"main ({DOMAIN}): 2026-01 -> {new}: IN PROGRESS, started " in out

    # Step two before the record is published: refused, config untouched.
    status, out, err = setup.rotate("-d", DOMAIN, "--finish")
    assert status == 2
    assert f"FAIL no record at {new}._domainkey.{DOMAIN}" in out
    assert err.startswith(f"mailseal: error: not switching to {new}: ")
    assert setup.config.read_text() == setup.text

    # A record that is not the new key's (say, the old one pasted again): refused.
    setup.server.set_zone(zone(setup.old.bind, txt(new, setup.old.value)))
    status, out, err = setup.rotate("-d", DOMAIN, "--finish")
    assert status == 2 and "FAIL does not match the new key" in out
    assert setup.config.read_text() == setup.text

    # Published as printed: the switch happens.
    setup.server.set_zone(zone(setup.old.bind, new_txt.read_text()))
    status, out, err = setup.rotate("-d", DOMAIN, "--finish")
    assert status == 0, out + err
    assert "OK   matches the new key" in out
    assert f"main now signs with selector {new}" in out
    assert "systemctl reload mailseal-milter" in out and "kill -HUP" in out
    assert f'2026-01._domainkey.{DOMAIN}. IN TXT "v=DKIM1; k=rsa; p="' in out
    assert "Keep the OLD record 2026-01._domainkey.keys.test published" in out
    assert "at least 7 days" in out

    # Only the two values changed; every other byte (comments, spacing) is as it was.
    expected = (setup.text
                .replace('selector   = "2026-01"', f'selector   = "{new}"')
                .replace('file = "keys/2026-01.private"', f'file = "keys/{new}.private"'))
    assert setup.config.read_text() == expected
    proc = run_cli("config", "check", setup.config)
    assert proc.returncode == 0, proc.stderr

    status, out, _ = setup.rotate("--status")
    assert status == 0
    assert f"main ({DOMAIN}): 2026-01 -> {new}: DONE, switched " in out
    assert f"keep 2026-01._domainkey.{DOMAIN} published as it is until " in out
    assert '"v=DKIM1; k=rsa; p="' in out

    # Finished: nothing left to finish.
    status, _, err = setup.rotate("-d", DOMAIN, "--finish")
    assert status == 2 and "no roll-over in progress for main" in err

    # The new key in the table, served and matching.
    proc = run_cli("keys", "list", "-c", setup.config)
    line = next(x for x in proc.stdout.splitlines() if x.startswith("main "))
    assert f" {new} " in line and line.endswith("WARN: not DNSSEC-validated")


def test_finish_without_start(setup: Setup) -> None:
    status, out, err = setup.rotate("-d", DOMAIN, "--finish")
    assert one_line_error_of(status, out, err) == (
        f"no roll-over in progress for main ({DOMAIN}); start one with: "
        f"mailseal rotate -c {setup.config} -d {DOMAIN}")


def one_line_error_of(status: int, out: str, err: str) -> str:
    assert out == ""
    from subprocess import CompletedProcess

    return one_line_error(CompletedProcess([], status, out, err))


def test_no_such_entry(setup: Setup) -> None:
    status, out, err = setup.rotate("-d", "nowhere.test")
    assert one_line_error_of(status, out, err) == (
        f"{setup.config}: no [[keys]] entry for nowhere.test "
        "(configured domains: keys.test, other.test)")
    status, out, err = setup.rotate("-d", DOMAIN, "--key", "nope")
    assert "no [[keys]] entry named 'nope' for keys.test" in one_line_error_of(status, out, err)


def test_domain_with_two_entries_needs_key_name(setup: Setup) -> None:
    second = genkey(setup.config.parent / "keys", "ed", "-t", "ed25519")
    text = setup.text.replace("[signing]", f'[[keys]]\nname = "main-ed"\ndomain = "{DOMAIN}"\n'
                              f'selector = "ed"\nfile = "{second.private}"\n\n[signing]')
    setup.config.write_text(text)
    status, out, err = setup.rotate("-d", DOMAIN)
    assert one_line_error_of(status, out, err) == (
        f"{setup.config}: 2 [[keys]] entries for {DOMAIN} (main, main-ed); "
        "choose one with --key NAME")
    status, out, _ = setup.rotate("-d", DOMAIN, "--key", "main-ed", "--selector", "ed2")
    assert status == 0 and "(selector ed2, ed25519, mode 0600)" in out


def test_abort_then_start_again(setup: Setup) -> None:
    status, out, _ = setup.rotate("-d", DOMAIN, "--selector", "next", "--type", "ed25519")
    assert status == 0 and "(selector next, ed25519, mode 0600)" in out
    status, out, _ = setup.rotate("-d", DOMAIN, "--abort")
    assert status == 0 and "gave up the roll-over of main to next" in out
    status, out, _ = setup.rotate("--status")
    assert "main (keys.test): 2026-01 -> next: ABORTED" in out
    # The abandoned selector's key file still exists: the next one must differ.
    status, out, err = setup.rotate("-d", DOMAIN, "--selector", "next")
    assert status == 2 and "next.private: exists; refusing to overwrite" in err
    status, out, _ = setup.rotate("-d", DOMAIN, "-t", "ed25519")
    assert status == 0, out
    assert setup.config.read_text() == setup.text


def test_finish_refuses_when_config_changed_meanwhile(setup: Setup) -> None:
    status, out, _ = setup.rotate("-d", DOMAIN, "--selector", "next", "-t", "ed25519")
    assert status == 0
    setup.config.write_text(setup.text.replace('file = "keys/2026-01.private"',
                                               'file = "keys/next.private"')
                            .replace('"2026-01"', '"next"'))
    status, out, err = setup.rotate("-d", DOMAIN, "--finish")
    assert "now has selector next, not 2026-01 as when the roll-over started" in \
        one_line_error_of(status, out, err)


def test_finish_on_temporary_dns_failure(setup: Setup) -> None:
    status, out, _ = setup.rotate("-d", DOMAIN, "--selector", "next", "-t", "ed25519")
    assert status == 0
    setup.server.servfail.add(f"next._domainkey.{DOMAIN}")
    status, out, err = setup.rotate("-d", DOMAIN, "--finish")
    assert status == 2 and out.splitlines()[1].startswith("FAIL lookup failed (temporary)")
    assert "failed temporarily; try again" in err
    assert setup.config.read_text() == setup.text


def test_refuses_a_config_with_an_unsafe_key(setup: Setup) -> None:
    setup.old.private.chmod(0o644)
    status, out, err = setup.rotate("-d", DOMAIN)
    message = one_line_error_of(status, out, err)
    assert "private key is accessible by group or others (mode 0644)" in message
    assert f"chmod 600 {setup.old.private}" in message


def test_status_without_rollovers_and_usage(setup: Setup) -> None:
    status, out, _ = setup.rotate("--status")
    assert (status, out) == (0, f"no roll-overs recorded in {setup.config.parent / 'rotation'}\n")
    status, _, err = setup.rotate()
    assert status == 2 and "-d/--domain is required" in err
    status, _, err = setup.rotate("-d", DOMAIN, "--finish", "--abort")
    assert status == 2 and "exclude each other" in err
    state = setup.config.parent / "rotation"
    state.mkdir()
    (state / "main-x.json").write_text('{"domain": "keys.test"}')
    status, out, err = setup.rotate("--status")
    assert one_line_error_of(status, out, err).startswith(
        f"{state / 'main-x.json'}: unreadable roll-over state (")
