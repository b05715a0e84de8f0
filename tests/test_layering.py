"""The import rule of docs/architecture.md: the protocol core never imports a front
end, the pipeline, the config or the library glue, and does no network I/O."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "mailseal"
CORE = ["dkim", "authres", "spf", "dmarc", "message.py", "tagvalue.py", "results.py",
        "address.py"]
FORBIDDEN_MAILSEAL = ("mailseal.frontends", "mailseal.pipeline", "mailseal.config", "mailseal.api")
FORBIDDEN_STDLIB = ("socket", "asyncio", "subprocess", "selectors", "logging")


def _core_files() -> list[Path]:
    files: list[Path] = []
    for entry in CORE:
        path = SRC / entry
        files.extend(sorted(path.rglob("*.py")) if path.is_dir() else [path])
    return files


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", _core_files(), ids=lambda p: str(p.relative_to(SRC)))
def test_core_module_stays_pure(path: Path) -> None:
    bad = sorted(
        name for name in _imports(path)
        if name.startswith(FORBIDDEN_MAILSEAL) or name.split(".")[0] in FORBIDDEN_STDLIB
    )
    assert not bad, f"{path.relative_to(SRC)} imports {bad}"


def test_rule_sees_core_files() -> None:
    assert len(_core_files()) > 10
