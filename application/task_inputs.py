"""Turning request values into domain values (priority words, durations, dependency checks)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from application.store import Store
from domain.errors import RuleViolationError
from domain.task import Task
from domain.values import Actor, Priority, TaskStatus

MAX_GRAPH = 1_000


def priority(value: int | str) -> Priority:
    try:
        return Priority.parse(value)
    except ValueError as error:
        raise RuleViolationError(str(error), field="priority") from None


def duration(value: float | str | None) -> float | None:
    """Seconds from a number or from seed 000's ``HH:MM:SS``."""
    if value is None or isinstance(value, (int, float)):
        return None if value is None else float(value)
    hours, minutes, seconds = (int(part) for part in value.split(":"))
    if minutes > 59 or seconds > 59:
        raise RuleViolationError("duration must be HH:MM:SS", field="estimated_duration")
    return float(hours * 3600 + minutes * 60 + seconds)


def dependency(store: Store, ref: str, team_id: str) -> Task:
    """A dependency must be a live task of the same team."""
    return store.load_live(Task, ref, team_id, "task")


def reaches(store: Store, start: Task, target: UUID, team_id: str) -> bool:
    """Whether ``start`` depends, directly or through others, on ``target``."""
    seen: set[str] = set()
    frontier = list(start.dependencies)
    while frontier:
        current = frontier.pop()
        if current == str(target):
            return True
        if current in seen:
            continue
        seen.add(current)
        if len(seen) > MAX_GRAPH:
            raise RuleViolationError("dependency graph too large", limit=MAX_GRAPH)
        task = store.find(Task, UUID(current), team_id)
        if task is not None:
            frontier.extend(task.dependencies)
    return False


def unmet_dependencies(store: Store, task: Task) -> list[str]:
    """Dependencies not completed yet; a deleted dependency no longer blocks."""
    unmet = []
    for dep_id in task.dependencies:
        dep = store.find(Task, UUID(dep_id), task.team_id)
        if dep is not None and not dep.deleted and dep.status != TaskStatus.COMPLETED.value:
            unmet.append(dep_id)
    return unmet


TASK_DEFAULTS: dict[str, Any] = {
    "description": "",
    "priority": int(Priority.NORMAL),
    "tags": [],
    "metadata": {},
    "assigned_to": None,
    "estimated_duration": None,
    "slug": None,
    "dependencies": [],
    "repository_url": None,
    "base_branch": None,
    "ticket_id": None,
    "ticket_summary": None,
    "test_command": None,
}


def new_task(by: Actor, project_id: str, title: str, **fields: Any) -> Task:
    """A new task of the caller's team; fields not given take their defaults."""
    return Task(
        team_id=by.team_id,
        project_id=project_id,
        title=title,
        actor=by.id,
        request_id=by.request_id,
        **(TASK_DEFAULTS | fields),
    )
