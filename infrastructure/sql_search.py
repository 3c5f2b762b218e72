"""Compiles a search AST into a WHERE fragment: AND/OR/NOT in SQL, each leaf by the backend."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from projections.search import And, Node, Not, Term, parse

Fragment = tuple[str, list[Any]]
# (term, columns searched) -> the backend's fragment for one leaf
Leaf = Callable[[Term, list[str]], Fragment]

# search fields of each listing: field -> column (None: the listing has no such field)
TASK_FIELDS: dict[str, str | None] = {
    "title": "title",
    "description": "description",
    "tags": "tags",
}
PROJECT_FIELDS: dict[str, str | None] = {
    "title": "name",
    "description": "description",
    "tags": None,
}


def search_fragment(text: str | None, fields: dict[str, str | None], leaf: Leaf) -> Fragment | None:
    """None when the text asks for nothing. Raises SearchSyntaxError on malformed text."""
    node = parse(text)
    return None if node is None else _compile(node, fields, leaf)


def _compile(node: Node, fields: dict[str, str | None], leaf: Leaf) -> Fragment:
    if isinstance(node, Term):
        if node.field is None:
            return leaf(node, [c for c in fields.values() if c is not None])
        column = fields[node.field]
        return leaf(node, [column]) if column is not None else ("1 = 0", [])
    if isinstance(node, Not):
        inner, params = _compile(node.item, fields, leaf)
        return f"(NOT {inner})", params
    joiner = " AND " if isinstance(node, And) else " OR "
    compiled = [_compile(item, fields, leaf) for item in node.items]
    return (
        "(" + joiner.join(sql for sql, _ in compiled) + ")",
        [p for _, params in compiled for p in params],
    )
