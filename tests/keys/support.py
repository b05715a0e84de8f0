"""Helpers for the key-lifecycle tests: run the CLI, build zones, read BIND lines."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dnsserver import make_zone

CLI = (sys.executable, "-m", "mailseal.frontends.cli.main")
ERROR_PREFIX = "mailseal: error: "
DOMAIN = "keys.test"

Run = Callable[..., subprocess.CompletedProcess[str]]


def run_cli(*args: object, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``mailseal ARGS``; stdout and stderr as text."""
    env = {k: v for k, v in os.environ.items() if k != "MAILSEAL_CONFIG"}
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=60, check=False)


def one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    """The error contract: exit 2, one stderr line ``mailseal: error: …``; its text."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith(ERROR_PREFIX), proc.stderr
    return proc.stderr.removeprefix(ERROR_PREFIX).rstrip("\n")


def quoted_strings(bind: str) -> list[str]:
    """The character strings of a BIND TXT line."""
    return re.findall(r'"([^"]*)"', bind)


def record_value(bind: str) -> str:
    """The TXT value a resolver sees: the strings joined (RFC 6376 §3.6.2.2)."""
    return "".join(quoted_strings(bind))


def txt(selector: str, *values: str) -> str:
    """Zone lines: one TXT record per value at SELECTOR._domainkey, each value cut into
    strings of at most 255 octets."""
    lines = []
    for value in values:
        strings = " ".join(f'"{value[i:i + 255]}"' for i in range(0, len(value), 255)) or '""'
        lines.append(f"{selector}._domainkey TXT {strings}")
    return "\n".join(lines)


def zone(*records: str) -> str:
    return make_zone(DOMAIN, "\n".join(records))


@dataclass(frozen=True)
class GenKey:
    """A key made by ``mailseal genkey``: its files and the BIND line it wrote."""

    selector: str
    private: Path
    record_file: Path

    @property
    def bind(self) -> str:
        return self.record_file.read_text()

    @property
    def value(self) -> str:
        return record_value(self.bind)


def genkey(folder: Path, selector: str, *options: object) -> GenKey:
    proc = run_cli("genkey", "-d", DOMAIN, "-s", selector, "--directory", folder, *options)
    assert proc.returncode == 0, proc.stderr
    return GenKey(selector, folder / f"{selector}.private", folder / f"{selector}.txt")


def openssl_key(openssl: str, path: Path, command: str, *args: str) -> Path:
    """A key written by ``openssl COMMAND -out PATH ARGS``, then set to mode 0600."""
    subprocess.run([openssl, command, "-out", str(path), *args], check=True,
                   capture_output=True, timeout=60)
    path.chmod(0o600)
    return path
