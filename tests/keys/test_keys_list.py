"""``mailseal keys list``: one row per configured key with its type, size, file mode,
age and a compact DNS verdict (the testkey checks), broken keys included."""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from dnsserver import ZoneServer
from keys.support import DOMAIN, GenKey, one_line_error, run_cli, txt, zone

HEADER = ["NAME", "DOMAIN", "SELECTOR", "TYPE", "BITS", "MODE", "AGE", "DNS"]


def entry(name: str, selector: str, file: Path) -> str:
    return (f'[[keys]]\nname = "{name}"\ndomain = "{DOMAIN}"\nselector = "{selector}"\n'
            f'file = "{file}"\n\n')


def rows(stdout: str) -> dict[str, list[str]]:
    """The table as {name: cells}; cells split on runs of two or more spaces."""
    lines = stdout.splitlines()
    assert re.split(r"  +", lines[0]) == HEADER, lines[0]
    table = {}
    for line in lines[1:]:
        if line.startswith("FAIL "):
            continue
        cells = re.split(r"  +", line)
        table[cells[0]] = cells
    return table


def test_every_key_with_its_problems(tmp_path: Path, rsa_key: GenKey, ed_key: GenKey,
                                     other_rsa_key: GenKey,
                                     zone_server: Callable[..., ZoneServer]) -> None:
    loose = tmp_path / "loose.private"
    shutil.copyfile(other_rsa_key.private, loose)
    loose.chmod(0o644)
    ed_file = tmp_path / "ed.private"
    shutil.copyfile(ed_key.private, ed_file)
    ed_file.chmod(0o600)
    old = time.time() - 40 * 86400
    os.utime(ed_file, (old, old))
    config = tmp_path / "mailseal.toml"
    config.write_text(entry("good", rsa_key.selector, rsa_key.private)
                      + entry("ed", ed_key.selector, ed_file)
                      + entry("unpublished", "nowhere", rsa_key.private)
                      + entry("loose", "other", loose)
                      + entry("gone", "gone", tmp_path / "gone.private"))
    # ed's record is the RSA key's: served, but not matching.
    server = zone_server(zone(rsa_key.bind, txt("ed", rsa_key.value),
                              txt("other", other_rsa_key.value)))
    proc = run_cli("keys", "list", "-c", config, "--dns", server.address)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    table = rows(proc.stdout)
    assert table["good"] == ["good", DOMAIN, "rsa2048", "rsa", "2048", "0600 OK", "0 d",
                             "WARN: not DNSSEC-validated"]
    assert table["ed"][3:] == ["ed25519", "256", "0600 OK", "40 d",
                               "FAIL: does not match"]
    assert table["unpublished"][-1] == "FAIL: no record"
    assert table["loose"][3:6] == ["rsa", "2048", "0644 FAIL"]
    assert table["gone"][3:] == ["?", "?", "missing FAIL", "-", "FAIL: no record"]
    problems = [line for line in proc.stdout.splitlines() if line.startswith("FAIL ")]
    assert problems == [
        f"FAIL loose: {loose}: private key is accessible by group or others (mode 0644); "
        f"run: chmod 600 {loose}",
        f"FAIL gone: {tmp_path / 'gone.private'}: No such file or directory",
    ]


def test_all_good_and_validated(tmp_path: Path, rsa_key: GenKey, ed_key: GenKey,
                                zone_server: Callable[..., ZoneServer]) -> None:
    server = zone_server(zone(rsa_key.bind, ed_key.bind), set_ad=True)
    config = tmp_path / "mailseal.toml"
    config.write_text(f'[dns]\nnameservers = ["{server.address}"]\n\n'
                      + entry("rsa", rsa_key.selector, rsa_key.private)
                      + entry("ed", ed_key.selector, ed_key.private))
    proc = run_cli("keys", "list", "-c", config)  # the nameserver from the config
    assert proc.returncode == 0, proc.stdout
    assert [cells[-1] for cells in rows(proc.stdout).values()] == ["OK", "OK"]


def test_no_dns(tmp_path: Path, rsa_key: GenKey) -> None:
    config = tmp_path / "mailseal.toml"
    config.write_text(entry("rsa", rsa_key.selector, rsa_key.private))
    proc = run_cli("keys", "list", "-c", config, "--no-dns")
    assert proc.returncode == 0
    assert rows(proc.stdout)["rsa"][-1] == "not checked"


def test_temporary_dns_failure(tmp_path: Path, rsa_key: GenKey, dns: ZoneServer) -> None:
    dns.servfail.add(f"rsa2048._domainkey.{DOMAIN}")
    config = tmp_path / "mailseal.toml"
    config.write_text(entry("rsa", rsa_key.selector, rsa_key.private))
    proc = run_cli("keys", "list", "-c", config, "--dns", dns.address)
    assert proc.returncode == 2
    assert rows(proc.stdout)["rsa"][-1] == "FAIL: lookup failed (temporary)"


def test_bad_config_is_one_line(tmp_path: Path) -> None:
    config = tmp_path / "mailseal.toml"
    config.write_text('[[keys]]\nname = "x"\n')
    message = one_line_error(run_cli("keys", "list", "-c", config))
    assert message.startswith(f"{config}: keys[0].domain: ")
    message = one_line_error(run_cli("keys", "list", "-c", tmp_path / "none.toml"))
    assert message == f"{tmp_path / 'none.toml'}: cannot read: No such file or directory"
