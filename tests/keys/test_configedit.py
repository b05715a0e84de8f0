"""Editing one ``[[keys]]`` entry keeps every other byte of the configuration, and
refuses (changing nothing) when it cannot prove the edit touched only that entry."""

from __future__ import annotations

import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mailseal.keys.configedit import ConfigEditError, replace_config, set_key_entry
from mailseal.keys.generate import default_selector
from mailseal.keystore import generate_key, write_private_key

TEXT = """\
# comment with [[keys]] in it
[[keys]]
name = "a"   # first
domain = "example.com"
selector = "old"
file = "keys/old.private"

[[ keys ]]   # second, spaced header
name = "b"
domain = "example.org"
'selector' = 'x'  # quoted key, literal string
file = 'C:\\keys\\x.private'

[signing]
rules = [{ match = "*", keys = ["a"] }]
"""


def test_only_the_two_values_change() -> None:
    edited = set_key_entry(TEXT, 0, selector="new", file="keys/new.private", source="f")
    assert edited == TEXT.replace('selector = "old"', 'selector = "new"').replace(
        'file = "keys/old.private"', 'file = "keys/new.private"')


def test_second_entry_quoted_key_and_escapes() -> None:
    edited = set_key_entry(TEXT, 1, selector="y", file='D:\\k\\"y".private', source="f")
    assert "'selector' = \"y\"  # quoted key, literal string\n" in edited
    assert 'file = "D:\\\\k\\\\\\"y\\".private"\n' in edited
    assert edited.count("\n") == TEXT.count("\n")


def test_crlf_line_endings_kept() -> None:
    crlf = TEXT.replace("\n", "\r\n")
    edited = set_key_entry(crlf, 0, selector="new", file="n.private", source="f")
    assert edited.count("\r\n") == crlf.count("\r\n") and "\n" not in edited.replace("\r\n", "")


@pytest.mark.parametrize(("text", "reason"), [
    ('keys = [{ name = "a", domain = "d", selector = "s", file = "f" }]\n',
     "is not written as a [[keys]] block"),
    ('[[keys]]\nname = "a"\ndomain = "d"\nselector = """s"""\nfile = "f"\n',
     "no single 'selector = \"…\"' line"),
    ('[[keys]]\nname = "a"\ndomain = "d"\nselector = "s"\nfile = "f"\nx = """\n'
     'selector = "s"\n"""\n', "no single 'selector"),
])
def test_refuses_what_it_cannot_prove(text: str, reason: str) -> None:
    with pytest.raises(ConfigEditError, match=reason.replace("[", r"\[").replace("]", r"\]")):
        set_key_entry(text, 0, selector="n", file="n", source="f")


def test_replace_validates_before_replacing(tmp_path: Path) -> None:
    key = write_private_key(tmp_path / "k.private", generate_key("ed25519"))
    config = tmp_path / "mailseal.toml"
    good = f'[[keys]]\nname = "a"\ndomain = "example.com"\nselector = "s"\nfile = "{key}"\n'
    config.write_text(good)
    config.chmod(0o640)
    bad = good.replace(str(key), str(tmp_path / "missing.private"))
    with pytest.raises(ConfigEditError, match=rf"does not load, left unchanged: {config}: "):
        replace_config(config, bad)
    assert config.read_text() == good
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".tmp")] == []
    replace_config(config, good.replace('"s"', '"t"'))
    assert '"t"' in config.read_text()
    assert stat.S_IMODE(config.stat().st_mode) == 0o640


def test_default_selector() -> None:
    now = datetime(2026, 11, 3, tzinfo=UTC)
    assert default_selector(now, lambda s: False) == "2026-11"
    taken = {"2026-11", "2026-11-2"}
    assert default_selector(now, taken.__contains__) == "2026-11-3"
