"""One way to quote TOML values: whatever the text, TOML reads it back the same."""

from __future__ import annotations

import tomllib
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from mailseal.config.default import write_default_config
from mailseal.config.load import load_config
from mailseal.config.tomltext import toml_string


@given(st.text())
def test_any_text_round_trips(value: str) -> None:
    assert tomllib.loads(f"v = {toml_string(value)}\n")["v"] == value


def test_config_init_in_a_folder_with_quotes_and_backslashes(tmp_path: Path) -> None:
    folder = tmp_path / 'odd "name" \\ here'
    path, keyfile = write_default_config(folder, domain="example.com", selector="s1")
    config = load_config(path)
    assert config.keys[config.settings.keys[0].name].source == str(keyfile.resolve())
