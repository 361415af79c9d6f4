"""The house rules of the layout, checked on the source: who may import what."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


BOT_MODULES = sorted((ROOT / "bot").rglob("*.py"))
STORAGE_MODULES = sorted((ROOT / "storage").rglob("*.py"))


@pytest.mark.parametrize("path", BOT_MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_bot_reaches_redis_only_through_storage(path: Path) -> None:
    """storage/ is the only package that imports redis; bot/ uses its small surface."""
    assert "redis" not in imported_roots(path)


@pytest.mark.parametrize("path", STORAGE_MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_storage_never_imports_bot_or_telegram(path: Path) -> None:
    """storage/ knows nothing of the bot or of Telegram."""
    assert not imported_roots(path) & {"bot", "telegram"}
