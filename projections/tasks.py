"""The task projection: a task's listing row is its state rendered the way the API renders it.

The row is not evolved by rules of its own. Each event is folded by ``domain.task.evolve``, the
function the Task aggregate folds its events with, and the row is built by ``represent``, the
function behind ``task_data``; so the listing and the task itself cannot disagree.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from domain.task import Task, TaskState, evolve
from domain.task_state import new_state, represent, stamped
from domain.values import Priority
from projections.rows import TaskRow

# what the row stores besides the API fields
ROW_ONLY = frozenset({"team_id", "position"})
API_FIELDS = tuple(f for f in TaskRow.__struct_fields__ if f not in ROW_ONLY)
# events whose fold changes nothing the row shows but the version and the time (usage: the task's
# usage totals, which the row leaves out): the row takes just those, as ``stamped`` gives them,
# which spares the batch the totals of every usage report (tests/unit/test_task_fold.py checks
# that the fold changes nothing else)
ROW_UNSEEN = frozenset({Task.UsageRecorded})


def row_of(state: TaskState, position: int) -> TaskRow:
    """The listing row of ``state``, as of the event at ``position``."""
    data = represent(state)
    return TaskRow(
        **{name: data[name] for name in API_FIELDS}, team_id=state.team_id, position=position
    )


def _moment(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def state_of(row: TaskRow) -> TaskState:
    """The state a row was rendered from, as far as the row shows it.

    What the row leaves out (the lease, what the agent waits on, phases, usage, the last reason,
    the approval flag, the execution options) starts from its default: no fold reads those
    fields to compute a field the row shows, so the row evolves exactly as the task does.
    """
    created_at = _moment(row.created_at)
    updated_at = _moment(row.updated_at)
    if created_at is None or updated_at is None:  # pragma: no cover - rows always have both
        raise ValueError(f"task row {row.id} has no creation or update time")
    return new_state(
        id=row.id,
        team_id=row.team_id,
        project_id=row.project_id,
        title=row.title,
        description=row.description,
        priority=int(Priority.parse(row.priority)),
        tags=list(row.tags),
        metadata=dict(row.metadata),
        assigned_to=row.assigned_to,
        estimated_duration=row.estimated_duration,
        slug=row.slug,
        dependencies=list(row.dependencies),
        repository_url=row.repository_url,
        base_branch=row.base_branch,
        ticket_id=row.ticket_id,
        ticket_summary=row.ticket_summary,
        test_command=row.test_command,
        created_by=row.created_by,
        created_at=created_at,
        updated_at=updated_at,
        version=row.version,
        status=row.status,
        progress_percentage=row.progress_percentage,
        attempt=row.attempt,
        execution_id=row.execution_id,
        cancel_requested=row.cancel_requested,
        started_at=_moment(row.started_at),
        completed_at=_moment(row.completed_at),
        result=row.result,
    )


def evolve_state(state: TaskState | None, event: Any) -> TaskState | None:
    """The state a task's row shows after ``event``: None while there is no row to show (the task
    was deleted, or this read model never saw it created)."""
    if isinstance(event, Task.Created):
        return evolve(None, event)
    if state is None:
        return None  # the task is gone (deleted earlier): nothing more to show
    if type(event) in ROW_UNSEEN:
        return stamped(state, event)
    after = evolve(state, event)
    return None if after.deleted else after


class TaskProjection:
    """``evolve`` answers the row after the event, or None once the task is deleted.

    One event at a time; ``projections/batch.py`` folds a batch the same way, turning each row
    into a state once and rendering it once."""

    def evolve(self, row: TaskRow | None, event: Any, position: int) -> TaskRow | None:
        after = evolve_state(None if row is None else state_of(row), event)
        return None if after is None else row_of(after, position)
