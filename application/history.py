"""History for auditors, read from the event store itself: a task's timeline
(``application/timeline.py``), its changes field by field (seed 000's change view), and its state
as of a moment (``application/board.py``)."""

from __future__ import annotations

from typing import Any

from application.board import Moment, task_as_of
from application.store import Store
from application.timeline import TimelineQuery, display_names, jsonable, task_history
from domain.naming import public_name
from domain.task import Task, TaskState, evolve
from domain.task_state import represent
from domain.values import rfc3339

__all__ = ["Moment", "TimelineQuery", "event_name", "task_as_of", "task_changes", "task_history"]

# what every event changes, or what changes too often to be a change a person reads
UNCHANGED = frozenset({"updated_at", "version", "lease_until", "usage", "actual_duration"})


def event_name(event: Any) -> str:
    """``Task.ExecutionRequested`` -> ``task.execution_requested``."""
    return public_name(event)


def task_changes(
    store: Store, ref: str, team_id: str, after: int = 0, limit: int = 100
) -> dict[str, Any]:
    """Seed 000's change view: one entry per field an event changed (``status_changed`` for
    the status, ``created`` once with the initial fields), after position ``after``, at most
    ``limit``. Folds the task's events with the one task fold, so it reads them all."""
    task_id = store.resolve(ref, team_id, "task")
    store.placed_first(task_id, team_id, "task")
    positions = store.positions_of(task_id)
    entries: list[dict[str, Any]] = []
    state: TaskState | None = None
    for event in store.events_of(task_id, team_id):
        before, state = state, evolve(state, event)
        position = positions.get(event.originator_version, 0)
        if position > after:
            entries += _changes(before, state, event, position)
    page = entries[:limit]
    names = display_names(store, team_id, {e["user_id"] for e in page if e["user_id"]})
    for entry in page:
        entry["user_name"] = names.get(entry["user_id"]) if entry["user_id"] else None
    more = len(entries) > limit
    return {
        "task_id": str(task_id),
        "history": page,
        "next_after": page[-1]["position"] if more else None,
    }


def _changes(
    before: TaskState | None, after: TaskState, event: Any, position: int
) -> list[dict[str, Any]]:
    common = {
        "timestamp": rfc3339(event.timestamp),
        "position": position,
        "user_id": getattr(event, "actor", None),
        "type": event_name(event),
    }
    new = represent(after)
    if before is None or isinstance(event, Task.Created):
        initial = {k: v for k, v in new.items() if k not in UNCHANGED and v not in (None, [], {})}
        return [
            {"action": "created", "field": None, "old_value": None, "new_value": initial, **common}
        ]
    old = represent(before)
    return [
        {
            "action": "status_changed" if name == "status" else "updated",
            "field": name,
            "old_value": jsonable(old[name]),
            "new_value": jsonable(new[name]),
            **common,
        }
        for name in new
        if name not in UNCHANGED and old[name] != new[name]
    ]
