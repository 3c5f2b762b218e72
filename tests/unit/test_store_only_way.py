"""The Store is the only way to the ledger: no module of the product but ``application/store.py``
reaches through an attribute named ``ledger`` (docs/architecture.md, "The Store is the only way to
the ledger"). This walks the code and fails on any other."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("domain", "application", "projections", "infrastructure", "interfaces")
STORE = ROOT / "application" / "store.py"
MODULES = sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py") if p != STORE)


def reaches(source: str) -> list[str]:
    return [
        f"{node.lineno}: {ast.unparse(node)}"
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Attribute) and node.attr == "ledger"
    ]


def test_the_walk_finds_a_reach_through_the_ledger():
    assert reaches("position = store.ledger.max_position()\n") == [
        "1: store.ledger",
    ]
    assert reaches("position = store.max_position()\n") == []


@pytest.mark.parametrize("module", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_but_the_store_reaches_the_ledger(module: Path):
    assert reaches(module.read_text()) == []
