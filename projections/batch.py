"""One batch of events evolved in memory: the rows it touches and the activity it records.

A view loads the rows a batch affects, hands them here, and writes the result once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgspec

from domain.naming import public_name
from domain.project import Project
from domain.task import Task
from domain.values import rfc3339
from projections.projects import ProjectProjection
from projections.rows import ActivityRow, ProjectRow, TaskRow
from projections.tasks import TaskProjection

event_name = public_name


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
    position: int = 0


def affected_ids(events: list[tuple[int, Any]]) -> tuple[set[str], set[str]]:
    """The task ids and the project ids a batch touches."""
    tasks = {str(e.originator_id) for _, e in events if isinstance(e, Task.Event)}
    projects = {str(e.originator_id) for _, e in events if isinstance(e, Project.Event)}
    return tasks, projects


def evolve_batch(
    events: list[tuple[int, Any]],
    tasks: dict[str, TaskRow],
    projects: dict[str, ProjectRow],
) -> Changes:
    """Evolves the loaded rows with every event in order; events of other kinds are skipped."""
    changes = Changes(position=max(p for p, _ in events))
    task_projection, project_projection = TaskProjection(), ProjectProjection()
    live_tasks: dict[str, TaskRow | None] = dict(tasks)
    live_projects: dict[str, ProjectRow | None] = dict(projects)
    for position, event in events:
        if isinstance(event, Task.Event):
            key = str(event.originator_id)
            before = live_tasks.get(key)
            after = task_projection.evolve(before, event, position)
            live_tasks[key] = changes.tasks[key] = after
            if after is None and before is not None:
                changes.deleted_tasks.add(key)
            _record_task(changes, position, event, after or before)
        elif isinstance(event, Project.Event):
            key = str(event.originator_id)
            before_project = live_projects.get(key)
            after_project = project_projection.evolve(before_project, event, position)
            live_projects[key] = changes.projects[key] = after_project
            _record_project(changes, position, event, after_project or before_project)
    if changes.deleted_tasks:
        changes.activity = [
            a for a in changes.activity if a.row.task_id not in changes.deleted_tasks
        ]
    return changes


def _record_task(changes: Changes, position: int, event: Any, row: TaskRow | None) -> None:
    if row is None:
        return
    entry = ActivityRow(
        position=position,
        timestamp=rfc3339(event.timestamp) or "",
        action=event_name(event),
        task_id=row.id,
        task_title=row.title,
        actor=getattr(event, "actor", None),
    )
    changes.activity.append(Activity(team_id=row.team_id, project_id=row.project_id, row=entry))


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
