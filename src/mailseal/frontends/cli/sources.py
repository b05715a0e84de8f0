"""Where the CLI reads messages from: stdin, files, mbox files, Maildir folders.

mbox: messages start at lines beginning with "From " after an empty line (or at the
top); lines that read ">From ", ">>From " … lose one ">" (the mboxrd convention,
which also undoes the common mboxo escaping), so the body is what was signed.
"""

from __future__ import annotations

import io
import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

_MBOX_SEP = re.compile(rb"(?m)^From [^\n]*\n")
_MBOX_ESC = re.compile(rb"(?m)^>(>*From )")


@dataclass
class Source:
    label: str
    open: Opener


class Opener:
    def __init__(self, path: Path | None = None, data: bytes | None = None) -> None:
        self._path = path
        self._data = data

    def __call__(self) -> BinaryIO:
        if self._data is not None:
            return io.BytesIO(self._data)
        assert self._path is not None
        return open(self._path, "rb")


def iter_sources(paths: tuple[str, ...]) -> Iterator[Source]:
    """Every message named on the command line (stdin when none or "-")."""
    if not paths:
        paths = ("-",)
    for name in paths:
        if name == "-":
            yield Source("<stdin>", Opener(data=sys.stdin.buffer.read()))
            continue
        path = Path(name)
        if path.is_dir():
            yield from _maildir(path)
        elif _is_mbox(path):
            yield from _mbox(path)
        else:
            if not path.exists():
                raise FileNotFoundError(f"{name}: no such file or directory")
            yield Source(name, Opener(path=path))


def count_sources(paths: tuple[str, ...]) -> int | None:
    """How many messages, when cheap to know (for the progress bar)."""
    total = 0
    for name in paths or ("-",):
        path = Path(name)
        if name == "-":
            total += 1
        elif path.is_dir():
            total += sum(1 for _ in _maildir_files(path))
        elif _is_mbox(path):
            return None
        else:
            total += 1
    return total


def _is_mbox(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(5) == b"From "
    except OSError:
        return False


def _mbox(path: Path) -> Iterator[Source]:
    data = path.read_bytes()
    starts = [m for m in _MBOX_SEP.finditer(data)
              if m.start() == 0 or data.endswith((b"\n\n", b"\n\r\n"), 0, m.start())]
    for n, match in enumerate(starts):
        end = starts[n + 1].start() if n + 1 < len(starts) else len(data)
        message = data[match.end() : end]
        if n + 1 < len(starts):
            # the empty line before the next "From " line belongs to the mbox format
            message = message.removesuffix(b"\n").removesuffix(b"\r")
        yield Source(f"{path}:{n + 1}", Opener(data=_MBOX_ESC.sub(rb"\1", message)))


def _maildir_files(path: Path) -> Iterator[Path]:
    subdirs = [path / "cur", path / "new"]
    if not any(d.is_dir() for d in subdirs):
        raise NotADirectoryError(f"{path}: not a Maildir (no cur/ or new/)")
    for sub in subdirs:
        if sub.is_dir():
            for entry in sorted(os.scandir(sub), key=lambda e: e.name):
                if entry.is_file():
                    yield Path(entry.path)


def _maildir(path: Path) -> Iterator[Source]:
    for file in _maildir_files(path):
        yield Source(str(file), Opener(path=file))
