"""The task projection: evolves a TaskRow with one event, one event type per method."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import msgspec

from domain.task import Task
from domain.values import Priority, rfc3339
from projections.rows import TaskRow

Handler = Callable[["TaskProjection", TaskRow, Any], dict[str, Any] | None]


def _seconds_between(started: str | None, completed: str | None) -> float | None:
    if started is None or completed is None:
        return None
    delta = datetime.fromisoformat(completed) - datetime.fromisoformat(started)
    return round(delta.total_seconds(), 3)


class TaskProjection:
    """``evolve`` answers the row after the event, or None once the task is deleted."""

    def evolve(self, row: TaskRow | None, event: Any, position: int) -> TaskRow | None:
        if isinstance(event, Task.Created):
            return self.created(event, position)
        if row is None:
            return None  # the task is gone (deleted earlier): nothing more to show
        handler = HANDLERS.get(type(event))
        if handler is None:
            return row
        changes = handler(self, row, event)
        if changes is None:
            return None
        changes |= {
            "updated_at": rfc3339(event.timestamp),
            "version": event.originator_version,
            "position": position,
        }
        evolved = msgspec.structs.replace(row, **changes)
        actual = _seconds_between(evolved.started_at, evolved.completed_at)
        if actual != evolved.actual_duration:
            evolved = msgspec.structs.replace(evolved, actual_duration=actual)
        return evolved

    def created(self, e: Any, position: int) -> TaskRow:
        return TaskRow(
            id=str(e.originator_id),
            slug=e.slug,
            project_id=e.project_id,
            title=e.title,
            description=e.description,
            status="pending",
            priority=Priority(e.priority).label,
            progress_percentage=0,
            estimated_duration=e.estimated_duration,
            actual_duration=None,
            assigned_to=e.assigned_to,
            created_by=e.actor,
            created_at=rfc3339(e.timestamp) or "",
            updated_at=rfc3339(e.timestamp) or "",
            started_at=None,
            completed_at=None,
            tags=list(e.tags),
            metadata=dict(e.metadata),
            dependencies=list(e.dependencies),
            repository_url=e.repository_url,
            base_branch=e.base_branch,
            ticket_id=e.ticket_id,
            ticket_summary=e.ticket_summary,
            test_command=e.test_command,
            attempt=0,
            execution_id=None,
            cancel_requested=False,
            result=None,
            version=e.originator_version,
            team_id=e.team_id,
            position=position,
        )

    def updated(self, row: TaskRow, e: Any) -> dict[str, Any]:
        return {k: v for k, v in e.changes.items() if k in TaskRow.__struct_fields__}

    def tags_added(self, row: TaskRow, e: Any) -> dict[str, Any]:
        return {"tags": row.tags + [t for t in e.tags if t not in row.tags]}

    def tags_removed(self, row: TaskRow, e: Any) -> dict[str, Any]:
        return {"tags": [t for t in row.tags if t not in e.tags]}

    def assigned(self, row: TaskRow, e: Any) -> dict[str, Any]:
        return {"assigned_to": e.assigned_to}

    def priority_set(self, row: TaskRow, e: Any) -> dict[str, Any]:
        return {"priority": Priority(e.priority).label}

    def slug_changed(self, row: TaskRow, e: Any) -> dict[str, Any]:
        return {"slug": e.slug}

    def status_changed(self, row: TaskRow, e: Any) -> dict[str, Any]:
        finished = e.new in ("completed", "cancelled")
        return {"status": e.new, "completed_at": rfc3339(e.at) if finished else None}

    def deleted(self, row: TaskRow, e: Any) -> None:
        return None

    def dependency_added(self, row: TaskRow, e: Any) -> dict[str, Any]:
        return {"dependencies": [*row.dependencies, e.task_id]}

    def dependency_removed(self, row: TaskRow, e: Any) -> dict[str, Any]:
        return {"dependencies": [d for d in row.dependencies if d != e.task_id]}

    def execution_requested(self, row: TaskRow, e: Any) -> dict[str, Any]:
        return {
            "status": "queued",
            "execution_id": e.execution_id,
            "attempt": e.attempt,
            "priority": Priority(e.priority).label,
            "cancel_requested": False,
            "started_at": None,
            "completed_at": None,
            "result": None,
        }

    def cancelled(self, row: TaskRow, e: Any) -> dict[str, Any]:
        return {"status": "cancelled", "completed_at": rfc3339(e.at)}

    def cancel_requested(self, row: TaskRow, e: Any) -> dict[str, Any]:
        return {"cancel_requested": True}

    def execution_started(self, row: TaskRow, e: Any) -> dict[str, Any]:
        return {"status": "running", "started_at": rfc3339(e.at)}

    def review_requested(self, row: TaskRow, e: Any) -> dict[str, Any]:
        result = getattr(e, "result", None)  # events from before it carried one: keep the row's
        return {"status": "awaiting_approval"} | ({"result": dict(result)} if result else {})

    def execution_finished(self, row: TaskRow, e: Any) -> dict[str, Any]:
        changes: dict[str, Any] = {
            "status": e.outcome,
            "result": dict(e.result),
            "completed_at": rfc3339(e.at),
        }
        if e.outcome == "completed":
            changes["progress_percentage"] = 100
        return changes

    def work_approved(self, row: TaskRow, e: Any) -> dict[str, Any]:
        return {"status": "completed", "progress_percentage": 100, "completed_at": rfc3339(e.at)}

    def work_rejected(self, row: TaskRow, e: Any) -> dict[str, Any]:
        return {
            "status": "queued",
            "execution_id": e.execution_id,
            "attempt": e.attempt,
            "result": None,
            "started_at": None,
            "completed_at": None,
        }


HANDLERS: dict[type, Handler] = {
    Task.Updated: TaskProjection.updated,
    Task.TagsAdded: TaskProjection.tags_added,
    Task.TagsRemoved: TaskProjection.tags_removed,
    Task.Assigned: TaskProjection.assigned,
    Task.PrioritySet: TaskProjection.priority_set,
    Task.SlugChanged: TaskProjection.slug_changed,
    Task.StatusChanged: TaskProjection.status_changed,
    Task.Deleted: TaskProjection.deleted,
    Task.DependencyAdded: TaskProjection.dependency_added,
    Task.DependencyRemoved: TaskProjection.dependency_removed,
    Task.ExecutionRequested: TaskProjection.execution_requested,
    Task.Cancelled: TaskProjection.cancelled,
    Task.CancelRequested: TaskProjection.cancel_requested,
    Task.ExecutionStarted: TaskProjection.execution_started,
    Task.ReviewRequested: TaskProjection.review_requested,
    Task.ExecutionFinished: TaskProjection.execution_finished,
    Task.WorkApproved: TaskProjection.work_approved,
    Task.WorkRejected: TaskProjection.work_rejected,
}
