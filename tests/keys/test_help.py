"""Every key command has ``--help`` with an example (run in-process: no DNS, no files)."""

from __future__ import annotations

import pytest

from mailseal.frontends.cli.main import main


@pytest.mark.parametrize("command", [["genkey"], ["dns-record"], ["testkey"], ["rotate"],
                                     ["keys", "list"]])
def test_help_has_an_example(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*command, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"Usage: mailseal {' '.join(command)} [OPTIONS]")
    assert f"Example:\n    mailseal {' '.join(command)} " in out
