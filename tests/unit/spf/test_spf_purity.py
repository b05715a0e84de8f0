"""The SPF package is part of the pure core (docs/architecture.md): no front end, no
pipeline or config, no sockets, event loop, subprocess or logging."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SPF = Path(__file__).resolve().parents[3] / "src" / "mailseal" / "spf"
FORBIDDEN_MAILSEAL = ("mailseal.frontends", "mailseal.pipeline", "mailseal.config", "mailseal.api")
FORBIDDEN_STDLIB = ("socket", "asyncio", "subprocess", "selectors", "logging", "time")


def imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", sorted(SPF.glob("*.py")), ids=lambda p: p.name)
def test_spf_module_stays_pure(path: Path) -> None:
    bad = sorted(n for n in imports(path)
                 if n.startswith(FORBIDDEN_MAILSEAL) or n.split(".")[0] in FORBIDDEN_STDLIB)
    assert not bad, f"{path.name} imports {bad}"


def test_all_modules_seen() -> None:
    assert {p.name for p in SPF.glob("*.py")} >= {"record.py", "macro.py", "evaluate.py",
                                                  "received.py", "__init__.py"}
