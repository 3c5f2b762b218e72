"""The board as of a moment: a project's tasks as they stood at a position or a time, replayed
from the event store (docs/audit.md, "The board as of a moment").

The read model says only which tasks to replay (``tw_task_members``: created by then and not
deleted by then, deleted ones included). Their events are read from the store in a few queries
of at most ``CHUNK`` tasks each, folded with the one task fold (``domain.task.evolve``) and
rendered as the listing renders its rows (``projections.tasks.row_of``), then filtered, sorted
and paged as the listing is (``projections.task_filter``). The cost is a replay: proportional to
the events of the project's tasks alive then, so a project with more than ``MAX_TASKS`` of them
is refused (422) rather than replayed for minutes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec
from eventsourcing.utils import get_topic

from application.errors import NotFoundError
from application.store import Store
from domain.project import Project
from domain.task import Task, TaskState, evolve
from domain.task_state import represent
from domain.values import rfc3339
from projections.read_model import ReadModel
from projections.rows import TaskQuery, page_of
from projections.task_filter import select
from projections.tasks import row_of

MAX_TASKS = 10_000  # tasks replayed by one request at most
CHUNK = 500  # tasks whose events one query reads
TASK_TOPICS = sorted(
    get_topic(v) for v in vars(Task).values() if isinstance(v, type) and issubclass(v, Task.Event)
)

Moment = int | datetime  # a position in the log, or a time


class BoardTooLargeError(Exception):
    """More tasks than one replay may fold."""

    def __init__(self, count: int, limit: int) -> None:
        super().__init__(f"as_of replays at most {limit} tasks; the project has more")
        self.count = count
        self.limit = limit


def project_tasks_as_of(
    store: Store, read_model: ReadModel, ref: str, team_id: str, at: Moment, q: TaskQuery
) -> dict[str, Any]:
    """A page of the project's tasks as they stood at ``at``, with the listing's filters."""
    project_id = store.resolve(ref, team_id, "project")
    store.load(Project, project_id, team_id, "project")  # deleted since: still the team's
    ids = read_model.task_ids_at(team_id, str(project_id), at, MAX_TASKS + 1)
    if len(ids) > MAX_TASKS:
        raise BoardTooLargeError(len(ids), MAX_TASKS)
    states = replay(store, team_id, [UUID(i) for i in ids], at)
    rows = [row_of(s, p) for s, p in states.values() if not s.deleted]
    chosen = select(rows, msgspec.structs.replace(q, project_id=str(project_id)))
    start = (q.page - 1) * q.page_size
    page = page_of(chosen[start : start + q.page_size], len(chosen), q.page, q.page_size)
    data: dict[str, Any] = msgspec.to_builtins(page)
    data["as_of"] = _as_of(at)
    return data


def replay(
    store: Store, team_id: str, ids: list[UUID], at: Moment
) -> dict[str, tuple[TaskState, int]]:
    """Each task's state folded from its events up to ``at``, and the position of the last one
    (a task created after is absent)."""
    states: dict[str, tuple[TaskState, int]] = {}
    upto = at if isinstance(at, int) else None
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        found = store.events_of_many(chunk, team_id, limit=2**62, topics=TASK_TOPICS, upto=upto)
        for position, event in found:
            if isinstance(at, datetime) and event.timestamp > at:
                continue
            key = str(event.originator_id)
            if key in states:
                states[key] = (evolve(states[key][0], event), position)
            elif isinstance(event, Task.Created):
                states[key] = (evolve(None, event), position)
    return states


def task_as_of(store: Store, ref: str, team_id: str, at: Moment) -> dict[str, Any]:
    """One task as it stood at ``at``; deleted since, or deleted then, it still answers."""
    task_id = store.resolve(ref, team_id, "task")
    store.placed_first(task_id, team_id, "task")
    found = replay(store, team_id, [task_id], at).get(str(task_id))
    if found is None:
        raise NotFoundError("task", ref)
    state = found[0]
    data = represent(state)
    data["as_of"] = _as_of(at)
    data["deleted"] = state.deleted
    return data


def _as_of(at: Moment) -> str | int | None:
    return at if isinstance(at, int) else rfc3339(at)
