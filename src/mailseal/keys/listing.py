"""``mailseal keys list``: what each configured key is and how its file looks.

Reads the settings without loading the keys the way ``load_config`` does (which stops
at the first unsafe file), so every key is shown, a broken one with its problem.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mailseal.config.load import config_relative
from mailseal.config.model import KeyEntry, Settings
from mailseal.dkim.keys import KeyFileError, SigningKey, check_permissions, load_key


@dataclass(frozen=True, slots=True)
class KeyFile:
    entry: KeyEntry
    path: Path
    key: SigningKey | None  # None: missing or unreadable (see problem)
    mode: int | None  # permission bits; None: no such file
    mtime: float | None
    problem: str = ""  # why the key cannot be used, if it cannot

    @property
    def mode_ok(self) -> bool:
        return self.mode is not None and not self.mode & 0o077

    def mode_text(self) -> str:
        if self.mode is None:
            return "missing FAIL"
        return f"{self.mode:04o} {'OK' if self.mode_ok else 'FAIL'}"

    def age_text(self, now: float) -> str:
        if self.mtime is None:
            return "-"
        days = int((now - self.mtime) // 86400)
        return f"{max(days, 0)} d"


def inspect_keys(settings: Settings, config_path: str | Path) -> list[KeyFile]:
    return [_inspect(entry, Path(config_relative(str(config_path), entry.file)))
            for entry in settings.keys]


def _inspect(entry: KeyEntry, path: Path) -> KeyFile:
    try:
        st = os.stat(path)
    except OSError as exc:
        return KeyFile(entry, path, None, None, None, f"{path}: {exc.strerror}")
    mode = stat.S_IMODE(st.st_mode)
    problem = ""
    try:
        check_permissions(path, st.st_mode)
    except KeyFileError as exc:
        problem = str(exc)
    try:
        key: SigningKey | None = load_key(path, check_mode=False)
    except KeyFileError as exc:
        key, problem = None, str(exc)
    return KeyFile(entry, path, key, mode, st.st_mtime, problem)


def format_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Columns aligned with two spaces; the last column is not padded."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header) - 1)]
    lines = []
    for row in [header, *rows]:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    return lines
