"""History for auditors, read from the event store itself, and state as of a moment."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate

from application.errors import NotFoundError
from application.representations import task_data
from application.store import Store, event_data
from domain.naming import public_name
from domain.task import Task
from domain.values import rfc3339


def event_name(event: Any) -> str:
    """``Task.ExecutionRequested`` -> ``task.execution_requested``."""
    return public_name(event)


def task_history(store: Store, ref: str, team_id: str) -> dict[str, Any]:
    """Every event of the task, deleted or not, with its position in the global log."""
    task_id = store.resolve(ref, team_id, "task")
    store.load(Task, task_id, team_id, "task")  # scope check: another team's task is not found
    positions = store.positions_of(task_id)
    entries = []
    for event in store.events_of(task_id, team_id):
        data = event_data(event)
        if not isinstance(event, Aggregate.Created):  # the place is the task's: said once
            for name in getattr(event, "PLACE", ()):
                data.pop(name, None)
        entries.append(
            {
                "position": positions.get(event.originator_version),
                "version": event.originator_version,
                "type": event_name(event),
                "timestamp": rfc3339(event.timestamp),
                "actor": data.pop("actor", None),
                "request_id": data.pop("request_id", None),
                "data": _jsonable(data),
            }
        )
    return {"task_id": str(task_id), "history": entries}


def task_as_of(store: Store, ref: str, team_id: str, moment: datetime) -> dict[str, Any]:
    task_id = store.resolve(ref, team_id, "task")
    store.load(Task, task_id, team_id, "task")
    task: Task | None = None
    for event in store.events_of(task_id, team_id):
        if event.timestamp > moment:
            break
        task = event.mutate(task)
    if task is None:
        raise NotFoundError("task", ref)
    data = task_data(task)
    data["as_of"] = rfc3339(moment)
    data["deleted"] = task.deleted
    return data


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return rfc3339(value)
    if isinstance(value, UUID):
        return str(value)
    return value
