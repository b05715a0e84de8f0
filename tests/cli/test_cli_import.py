"""``mailseal import-opendkim --check`` with relative key files."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

from mailseal.keystore import generate_key, write_private_key

Cli = Callable[..., subprocess.CompletedProcess[bytes]]


def test_check_reads_relative_key_files_beside_opendkim_conf(cli: Cli, tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    (etc / "keys").mkdir(parents=True)
    write_private_key(etc / "keys" / "mail.private", generate_key("ed25519"))
    conf = etc / "opendkim.conf"
    conf.write_text("Domain example.com\nSelector mail\nKeyFile keys/mail.private\n")
    proc = cli("import-opendkim", "--check", conf, cwd=tmp_path)  # not the conf's folder
    assert proc.returncode == 0, proc.stderr.decode()
    assert b"keys/mail.private" in proc.stdout
