"""Point one ``[[keys]]`` entry of the configuration at a new selector and file.

Only the values of the entry's ``selector`` and ``file`` lines change; every other
byte of the file (comments, order, spacing, line endings) stays as it was. The edit is
proved by parsing both texts: the result must equal the original with exactly those two
values changed. The new file is then validated by loading it (key files included)
before it atomically replaces the old one.
"""

from __future__ import annotations

import contextlib
import copy
import os
import re
import tomllib
from pathlib import Path

from mailseal.config.load import ConfigError, build_config
from mailseal.config.tomltext import toml_string as quoted
from mailseal.keystore import write_temp

_HEADER = re.compile(r"[ \t]*\[")  # a table or array-of-tables header starts a block
_KEYS_HEADER = re.compile(r"[ \t]*\[\[[ \t]*keys[ \t]*\]\][ \t]*(#.*)?\r?\n?\Z")
_STRING = r"(\"(?:[^\"\\\r\n]|\\.)*\"|'[^'\r\n]*')"


class ConfigEditError(ValueError):
    """The configuration could not be edited safely; nothing was changed."""


def toml_string(value: str) -> str:
    """A path as a TOML basic string; control characters in a path are refused."""
    if any(ord(c) < 0x20 or c == "\x7f" for c in value):
        raise ConfigEditError(f"{value!r}: control characters in a path")
    return quoted(value)


def set_key_entry(text: str, index: int, *, selector: str, file: str, source: str) -> str:
    """``text`` with the ``index``-th ``[[keys]]`` entry's selector and file replaced."""
    lines = text.splitlines(keepends=True)
    headers = [i for i, line in enumerate(lines) if _KEYS_HEADER.match(line)]
    if index >= len(headers):
        raise ConfigEditError(f"{source}: keys[{index}] is not written as a [[keys]] block; "
                              "edit its selector and file by hand")
    start = headers[index] + 1
    end = next((i for i in range(start, len(lines)) if _HEADER.match(lines[i])), len(lines))
    for name, value in (("selector", selector), ("file", file)):
        pattern = re.compile(rf"([ \t]*(?:{name}|\"{name}\"|'{name}')[ \t]*=[ \t]*){_STRING}"
                             r"(?=[ \t]*(?:#.*)?\r?\n?\Z)")
        hits = [i for i in range(start, end) if pattern.match(lines[i])]
        if len(hits) != 1:
            raise ConfigEditError(f"{source}: keys[{index}]: no single '{name} = \"…\"' line "
                                  "to edit; edit the entry by hand")
        line = lines[hits[0]]
        match = pattern.match(line)
        assert match is not None
        lines[hits[0]] = match.group(1) + toml_string(value) + line[match.end():]
    edited = "".join(lines)
    _prove(text, edited, index, selector, file, source)
    return edited


def _prove(before: str, after: str, index: int, selector: str, file: str, source: str) -> None:
    try:
        old = tomllib.loads(before)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigEditError(f"{source}: TOML syntax error: {exc}") from None
    try:
        new = tomllib.loads(after)
    except tomllib.TOMLDecodeError:
        new = None
    expected = copy.deepcopy(old)
    try:
        expected["keys"][index]["selector"] = selector
        expected["keys"][index]["file"] = file
    except (KeyError, IndexError, TypeError):
        raise ConfigEditError(f"{source}: no keys[{index}] entry") from None
    if new != expected:
        raise ConfigEditError(f"{source}: could not edit keys[{index}] without touching other "
                              "settings; edit its selector and file by hand")


def replace_config(path: str | Path, text: str) -> None:
    """Validate ``text`` as the configuration at ``path`` (key files and all, relative
    paths read beside ``path`` as the daemon reads them, a symlink's link included),
    then put it in place atomically with the old file's mode (and owner, when we may)."""
    try:
        build_config(tomllib.loads(text), str(path))
    except (ConfigError, tomllib.TOMLDecodeError) as exc:
        raise ConfigEditError(f"the edited configuration does not load, left unchanged: "
                              f"{exc}") from None
    target = Path(path).resolve()  # edit the file a symlink points to, keep the link
    tmp = write_temp(target.parent, text.encode("utf-8"), target.stat().st_mode & 0o7777,
                     suffix=".toml")
    try:
        _keep_owner(tmp, target)
        os.replace(tmp, target)
    except BaseException:
        os.unlink(tmp)
        raise


def _keep_owner(tmp: str, target: Path) -> None:
    st = target.stat()
    if (st.st_uid, st.st_gid) != (os.getuid(), os.getgid()):
        # Not root: the file becomes ours, as any editor would leave it.
        with contextlib.suppress(PermissionError):
            os.chown(tmp, st.st_uid, st.st_gid)
