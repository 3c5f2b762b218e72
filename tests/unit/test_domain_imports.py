"""The domain imports the standard library and ``eventsourcing.domain`` only (STYLE.md)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

DOMAIN = Path(__file__).resolve().parents[2] / "domain"
ALLOWED_THIRD_PARTY = frozenset({"eventsourcing.domain"})
MODULES = sorted(DOMAIN.rglob("*.py"))


def imported_modules(source: str) -> list[tuple[int, str]]:
    """Every absolute module an import statement names, with its line; relative ones as ``.x``."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                found.append((node.lineno, "." * node.level + (node.module or "")))
            else:
                found.append((node.lineno, node.module or ""))
    return found


def is_allowed(module: str) -> bool:
    if module.startswith("."):
        return True  # a sibling domain module
    top = module.split(".", maxsplit=1)[0]
    if top == "domain" or top == "__future__" or top in sys.stdlib_module_names:
        return True
    return any(module == m or module.startswith(m + ".") for m in ALLOWED_THIRD_PARTY)


def test_there_are_domain_modules_to_check() -> None:
    assert len(MODULES) >= 4


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_a_domain_module_imports_only_the_stdlib_and_eventsourcing_domain(path: Path) -> None:
    forbidden = [
        f"{path.name}:{line}: {module}"
        for line, module in imported_modules(path.read_text())
        if not is_allowed(module)
    ]
    assert forbidden == []


def test_the_check_refuses_a_third_party_or_outer_layer_import() -> None:
    source = (
        "import msgspec\n"
        "from eventsourcing.application import Application\n"
        "from application.store import Store\n"
        "import eventsourcing\n"
    )
    refused = [m for _, m in imported_modules(source) if not is_allowed(m)]
    assert refused == ["msgspec", "eventsourcing.application", "application.store", "eventsourcing"]


def test_the_check_accepts_the_stdlib_and_eventsourcing_domain() -> None:
    source = (
        "from __future__ import annotations\n"
        "import uuid\n"
        "from datetime import datetime\n"
        "from eventsourcing.domain import Aggregate, event\n"
        "from domain.errors import DomainError\n"
        "def f():\n"
        "    import json\n"
    )
    assert all(is_allowed(m) for _, m in imported_modules(source))
