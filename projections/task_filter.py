"""The task listing's filters and sort applied to rows in memory: for a board replayed from the
store (``application/board.py``), which has no table to query.

The same ``TaskQuery`` as the listing, and the same meaning as the SQL views give it
(``infrastructure/sql_views.py``): statuses any of, assignee, any of the tags, a minimum priority,
creation bounds (inclusive), seed 000's search over the fields' tokens (``projections.search``:
the parse and the tokens the views index), text sorted by code point, ties broken by id.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from domain.values import Priority, rfc3339
from projections.rows import TaskQuery, TaskRow
from projections.search import And, Node, Not, Or, Term, parse, tokens

SEARCHED = {"title": ("title",), "description": ("description",), "tags": ("tags",)}
ALL_FIELDS = ("title", "description", "tags")


def matches(row: TaskRow, q: TaskQuery, search: Node | None = None) -> bool:
    """``search``: ``parse(q.search)``, parsed once for many rows."""
    if q.status and row.status not in q.status:
        return False
    if q.project_id is not None and row.project_id != q.project_id:
        return False
    if q.assigned_to is not None and row.assigned_to != q.assigned_to:
        return False
    if q.tags and not set(q.tags) & set(row.tags):
        return False
    if q.priority is not None and int(Priority.parse(row.priority)) < q.priority:
        return False
    if q.created_after is not None and row.created_at < (rfc3339(q.created_after) or ""):
        return False
    if q.created_before is not None and row.created_at > (rfc3339(q.created_before) or ""):
        return False
    return search is None or _found(search, _fields(row))


def select(rows: list[TaskRow], q: TaskQuery) -> list[TaskRow]:
    """The rows matching ``q`` in its order (all of them: the caller pages)."""
    search = parse(q.search)
    kept = [r for r in rows if matches(r, q, search)]
    key = SORT_KEYS[q.sort]
    return sorted(kept, key=lambda r: (key(r), r.id), reverse=q.order == "desc")


SORT_KEYS: dict[str, Callable[[TaskRow], Any]] = {
    "created_at": lambda r: r.created_at,
    "updated_at": lambda r: r.updated_at,
    "priority": lambda r: int(Priority.parse(r.priority)),
    "title": lambda r: r.title,
    "status": lambda r: r.status,
}


def _fields(row: TaskRow) -> dict[str, list[str]]:
    return {
        "title": tokens(row.title),
        "description": tokens(row.description),
        "tags": tokens(" ".join(row.tags)),
    }


def _found(node: Node, fields: dict[str, list[str]]) -> bool:
    if isinstance(node, And):
        return all(_found(n, fields) for n in node.items)
    if isinstance(node, Or):
        return any(_found(n, fields) for n in node.items)
    if isinstance(node, Not):
        return not _found(node.item, fields)
    names = SEARCHED.get(node.field or "", ALL_FIELDS)
    return any(_has(fields[name], node) for name in names)


def _has(words: list[str], term: Term) -> bool:
    """The term's words adjacent in ``words``, the last one a prefix if the term says so."""
    wanted = list(term.words)
    n = len(wanted)
    for i in range(len(words) - n + 1):
        window = words[i : i + n]
        if window[:-1] != wanted[:-1]:
            continue
        last = window[-1]
        if last == wanted[-1] or (term.prefix and last.startswith(wanted[-1])):
            return True
    return False
