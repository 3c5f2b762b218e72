"""One batch of events evolved in memory: the rows it touches and the activity it records.

A view loads the rows a batch affects, hands them here, and writes the result once: task and project
rows, activity, and the execution rows (queue, HITL items, output; projections/execution.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import msgspec

from domain.hitl import HitlItem
from domain.naming import public_name
from domain.project import Project
from domain.task import Task, TaskState
from domain.values import rfc3339
from projections.costs import add_usage
from projections.execution import (
    QUEUE_HANDLERS,
    OutputEntry,
    QueueContext,
    chunk_written,
    evolve_hitl,
    evolve_queue,
    is_creation,
    is_output,
)
from projections.execution_rows import HitlRow, QueueRow
from projections.projects import ProjectProjection
from projections.rows import ActivityRow, ProjectRow, TaskRow
from projections.tasks import evolve_state, row_of, state_of

event_name = public_name
# an aggregate's id as text, once per id rather than once per event and use (a batch names a
# few aggregates many times over)
id_text: Callable[[Any], str] = lru_cache(maxsize=4096)(str)


class Activity(msgspec.Struct, frozen=True, kw_only=True):
    """An activity row with the scope it is stored under."""

    team_id: str
    project_id: str
    row: ActivityRow


@dataclass
class Changes:
    """What a batch changed. A row mapped to None was deleted."""

    tasks: dict[str, TaskRow | None] = field(default_factory=dict)
    projects: dict[str, ProjectRow | None] = field(default_factory=dict)
    activity: list[Activity] = field(default_factory=list)
    deleted_tasks: set[str] = field(default_factory=set)
    queue: dict[str, QueueRow | None] = field(default_factory=dict)  # by task id
    options: dict[str, dict[str, Any] | None] = field(default_factory=dict)  # by task id
    hitl: dict[str, HitlRow] = field(default_factory=dict)
    output: list[OutputEntry] = field(default_factory=list)
    # the cost rollup rows the batch adds to, summed (projections/costs.py ``add_usage``)
    costs: dict[tuple[str, ...], list[int]] = field(default_factory=dict)
    position: int = 0


@dataclass
class ExecutionRows:
    """The execution rows a batch starts from: queue rows and the options of the last execution
    request by task id, HITL items by id."""

    queue: dict[str, QueueRow] = field(default_factory=dict)
    options: dict[str, dict[str, Any]] = field(default_factory=dict)
    hitl: dict[str, HitlRow] = field(default_factory=dict)


@dataclass
class ExecutionKeys:
    """What to load for a batch: queue rows, request options (for rejected work), HITL items."""

    queue: set[str] = field(default_factory=set)
    options: set[str] = field(default_factory=set)
    hitl: set[str] = field(default_factory=set)


def affected_ids(events: list[tuple[int, Any]]) -> tuple[set[str], set[str]]:
    """The task ids and the project ids a batch touches."""
    tasks = {id_text(e.originator_id) for _, e in events if isinstance(e, Task.Event)}
    projects = {id_text(e.originator_id) for _, e in events if isinstance(e, Project.Event)}
    return tasks, projects


def execution_keys(events: list[tuple[int, Any]]) -> ExecutionKeys:
    """The execution rows a batch needs loaded (a new item or chunk needs nothing loaded)."""
    keys = ExecutionKeys()
    for _, e in events:
        if isinstance(e, Task.Event):
            key = id_text(e.originator_id)
            keys.queue.add(key)
            if isinstance(e, Task.WorkRejected | Task.UsageRecorded):  # usage: its agent
                keys.options.add(key)
        elif isinstance(e, HitlItem.Event) and not is_creation(e):
            keys.hitl.add(id_text(e.originator_id))
    return keys


def evolve_batch(
    events: list[tuple[int, Any]],
    tasks: dict[str, TaskRow],
    projects: dict[str, ProjectRow],
    execution: ExecutionRows | None = None,
) -> Changes:
    """Evolves the loaded rows with every event in order; events of other kinds are skipped.

    A task's row is turned into its state (``projections/tasks.py:state_of``) at its first event
    in the batch, folded with each event by the aggregate's own fold, and rendered as a row once,
    after the batch (or when the queue needs it), which is what ``TaskProjection.evolve`` does
    event by event."""
    changes = Changes(position=max(p for p, _ in events))
    project_projection = ProjectProjection()
    live_tasks: dict[str, TaskState | None] = {}
    last_position: dict[str, int] = {}
    live_projects: dict[str, ProjectRow | None] = dict(projects)
    live = _LiveExecution(execution or ExecutionRows(), changes)
    for position, event in events:
        if isinstance(event, Task.Event):
            key = id_text(event.originator_id)
            if key in live_tasks:
                before = live_tasks[key]
            else:
                loaded = tasks.get(key)
                before = None if loaded is None else state_of(loaded)
            after = evolve_state(before, event)
            live_tasks[key], last_position[key] = after, position
            if after is None and before is not None:
                changes.deleted_tasks.add(key)
            state = after or before
            _record_task(changes, position, event, state)
            live.task_event(position, event, key, state)
            if isinstance(event, Task.UsageRecorded):
                add_usage(changes.costs, event, live.options.get(key), state, key)
        elif isinstance(event, Project.Event):
            key = id_text(event.originator_id)
            before_project = live_projects.get(key)
            after_project = project_projection.evolve(before_project, event, position)
            live_projects[key] = changes.projects[key] = after_project
            _record_project(changes, position, event, after_project or before_project)
        elif isinstance(event, HitlItem.Event):
            live.hitl_event(position, event)
        elif is_output(event):
            changes.output.append(chunk_written(event, position))
    for key, state in live_tasks.items():
        changes.tasks[key] = _row(state, last_position[key])
    if changes.deleted_tasks:
        changes.activity = [
            a for a in changes.activity if a.row.task_id not in changes.deleted_tasks
        ]
    return changes


def _row(state: TaskState | None, position: int) -> TaskRow | None:
    return None if state is None else row_of(state, position)


def _record_task(changes: Changes, position: int, event: Any, task: TaskState | None) -> None:
    if task is None:
        return
    entry = ActivityRow(
        position=position,
        timestamp=rfc3339(event.timestamp) or "",
        action=event_name(event),
        task_id=task.id,
        task_title=task.title,
        actor=getattr(event, "actor", None),
    )
    changes.activity.append(Activity(team_id=task.team_id, project_id=task.project_id, row=entry))


def _record_project(changes: Changes, position: int, event: Any, row: ProjectRow | None) -> None:
    if row is None:
        return
    entry = ActivityRow(
        position=position,
        timestamp=rfc3339(event.timestamp) or "",
        action=event_name(event),
        task_id=None,
        task_title=None,
        actor=getattr(event, "actor", None),
    )
    changes.activity.append(Activity(team_id=row.team_id, project_id=row.id, row=entry))


class _LiveExecution:
    """The execution rows as of the event being applied, and what the batch changed."""

    def __init__(self, loaded: ExecutionRows, changes: Changes) -> None:
        self.queue: dict[str, QueueRow | None] = dict(loaded.queue)
        self.options: dict[str, dict[str, Any] | None] = dict(loaded.options)
        self.hitl: dict[str, HitlRow | None] = dict(loaded.hitl)
        self.changes = changes

    def task_event(self, position: int, event: Any, key: str, task: TaskState | None) -> None:
        """``key`` is the task's id, ``task`` its state after the event, rendered as a row only
        for the events the queue follows (``evolve_queue`` leaves the queue row as it is for
        the others)."""
        if isinstance(event, Task.ExecutionRequested):
            self.options[key] = self.changes.options[key] = dict(event.options)
        elif isinstance(event, Task.Deleted):
            self.options[key] = self.changes.options[key] = None
        if type(event) not in QUEUE_HANDLERS:
            return
        before = self.queue.get(key)
        context = QueueContext(
            task=_row(task, position), options=self.options.get(key) or {}, position=position
        )
        after = evolve_queue(before, event, context)
        if after is not before:
            self.queue[key] = self.changes.queue[key] = after

    def hitl_event(self, position: int, event: Any) -> None:
        key = id_text(event.originator_id)
        after = evolve_hitl(self.hitl.get(key), event, position)
        if after is not None:
            self.hitl[key] = self.changes.hitl[key] = after
