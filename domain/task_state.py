"""A task's state as one frozen value, and how each of its events evolves it.

This is the single definition of what a task looks like: the Task aggregate folds its events
through these functions (``domain.task.evolve``), and so does the task projection, which builds its
listing row from the same state. Two copies of the rules drifted apart before (a rejected attempt
kept ``cancel_requested`` in the listing only); one fold cannot.

The functions are pure: they return a new state and never change the one they are given, nor its
lists and dicts (replay and the projection may hold on to an earlier state).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from domain.usage import COST_DIGITS
from domain.values import Priority, TaskStatus, rfc3339

# The usage totals of a task: the token counts of ``domain.usage.Usage`` added up, the computed
# and the reported cost, the models used. ``cache_creation_tokens`` is the older name of
# ``cache_write_tokens`` (the same number), kept for clients that read it.
COUNTED = (
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "requests",
)
NO_USAGE: dict[str, Any] = {
    **dict.fromkeys(COUNTED, 0),
    "cache_creation_tokens": 0,
    "cost_usd": 0.0,
    "reported_cost_usd": 0.0,
    "models": [],
}


def no_usage() -> dict[str, Any]:
    return {**NO_USAGE, "models": []}


@dataclass(frozen=True, kw_only=True)
class TaskState:
    """Everything the task's events have said, as of ``version``."""

    id: str
    team_id: str
    project_id: str
    title: str
    description: str
    priority: int
    tags: list[str]
    metadata: dict[str, Any]
    assigned_to: str | None
    estimated_duration: float | None
    slug: str | None
    dependencies: list[str]
    repository_url: str | None
    base_branch: str | None
    ticket_id: str | None
    ticket_summary: str | None
    test_command: str | None
    created_by: str
    created_at: datetime
    updated_at: datetime
    version: int
    status: str = TaskStatus.PENDING.value
    progress_percentage: int = 0
    deleted: bool = False
    deleted_reason: str | None = None
    attempt: int = 0
    execution_id: str | None = None
    execution_options: dict[str, Any] = field(default_factory=dict)
    cancel_requested: bool = False
    started_at: datetime | None = None
    completed_at: datetime | None = None
    result: dict[str, Any] | None = None
    last_reason: str | None = None
    approved: bool = False
    worker_id: str | None = None  # holds the current execution's lease
    lease_until: datetime | None = None
    waiting_on: str | None = None  # the question or checkpoint the agent waits for
    phases: list[dict[str, Any]] = field(default_factory=list)
    usage: dict[str, Any] = field(default_factory=no_usage)


STATE_FIELDS = frozenset(f.name for f in dataclasses.fields(TaskState))
_DEFAULTS = {
    f.name: f.default for f in dataclasses.fields(TaskState) if f.default is not dataclasses.MISSING
}
_FACTORIES = tuple(
    (f.name, f.default_factory)
    for f in dataclasses.fields(TaskState)
    if f.default_factory is not dataclasses.MISSING
)


def new_state(**values: Any) -> TaskState:
    """``TaskState(**values)``, less the frozen dataclass's ``object.__setattr__`` per field
    (half the cost of a create's fold, in the aggregate and again in the projection). The
    caller gives every field without a default (``created``, ``projections.tasks.state_of``;
    tests/unit/test_task_fold.py checks both against the constructor)."""
    state = object.__new__(TaskState)
    fields = {**_DEFAULTS, **{name: make() for name, make in _FACTORIES}, **values}
    object.__setattr__(state, "__dict__", fields)
    return state


def _with(state: TaskState, **changes: Any) -> TaskState:
    """A copy of ``state`` with ``changes``; ``state`` itself is left as it was.

    What ``dataclasses.replace`` does, less its per-field checks (this state has no
    ``__post_init__`` and no init-only fields), which made it the fold's main cost: every event of
    every task goes through here, live, on replay and in the projection.
    """
    evolved = object.__new__(TaskState)
    object.__setattr__(evolved, "__dict__", {**state.__dict__, **changes})
    return evolved


def stamped(state: TaskState, event: Any) -> TaskState:
    """What every event changes: the version and the time of the last change."""
    return _with(state, updated_at=event.timestamp, version=event.originator_version)


# ---- one function per event ------------------------------------------------------------------


def created(e: Any) -> TaskState:
    return new_state(
        id=str(e.originator_id),
        team_id=e.team_id,
        project_id=e.project_id,
        title=e.title,
        description=e.description,
        priority=e.priority,
        tags=list(e.tags),
        metadata=dict(e.metadata),
        assigned_to=e.assigned_to,
        estimated_duration=e.estimated_duration,
        slug=e.slug,
        dependencies=list(e.dependencies),
        repository_url=e.repository_url,
        base_branch=e.base_branch,
        ticket_id=e.ticket_id,
        ticket_summary=e.ticket_summary,
        test_command=e.test_command,
        created_by=e.actor,
        created_at=e.timestamp,
        updated_at=e.timestamp,
        version=e.originator_version,
    )


def updated(s: TaskState, e: Any) -> TaskState:
    return _with(s, **{k: v for k, v in e.changes.items() if k in STATE_FIELDS})


def tags_added(s: TaskState, e: Any) -> TaskState:
    return _with(s, tags=s.tags + [t for t in e.tags if t not in s.tags])


def tags_removed(s: TaskState, e: Any) -> TaskState:
    return _with(s, tags=[t for t in s.tags if t not in e.tags])


def assigned(s: TaskState, e: Any) -> TaskState:
    return _with(s, assigned_to=e.assigned_to)


def priority_set(s: TaskState, e: Any) -> TaskState:
    return _with(s, priority=e.priority)


def slug_changed(s: TaskState, e: Any) -> TaskState:
    return _with(s, slug=e.slug)


def deleted(s: TaskState, e: Any) -> TaskState:
    return _with(s, deleted=True, deleted_reason=e.reason)


def dependency_added(s: TaskState, e: Any) -> TaskState:
    return _with(s, dependencies=[*s.dependencies, e.task_id])


def dependency_removed(s: TaskState, e: Any) -> TaskState:
    return _with(s, dependencies=[d for d in s.dependencies if d != e.task_id])


def status_changed(s: TaskState, e: Any) -> TaskState:
    finished = e.new in (TaskStatus.COMPLETED.value, TaskStatus.CANCELLED.value)
    return _with(s, status=e.new, last_reason=e.reason, completed_at=e.at if finished else None)


def execution_requested(s: TaskState, e: Any) -> TaskState:
    return _with(
        s,
        status=TaskStatus.QUEUED.value,
        execution_id=e.execution_id,
        attempt=e.attempt,
        priority=e.priority,
        execution_options=dict(e.options),
        cancel_requested=False,
        started_at=None,
        completed_at=None,
        result=None,
        approved=False,
    )


def cancelled(s: TaskState, e: Any) -> TaskState:
    return _with(s, status=TaskStatus.CANCELLED.value, last_reason=e.reason, completed_at=e.at)


def cancel_requested(s: TaskState, e: Any) -> TaskState:
    return _with(s, cancel_requested=True, last_reason=e.reason)


def execution_started(s: TaskState, e: Any) -> TaskState:
    return _with(
        s,
        status=TaskStatus.RUNNING.value,
        started_at=e.at,
        worker_id=e.worker_id,
        lease_until=getattr(e, "lease_until", None),  # events from before leases have none
        phases=[],
        waiting_on=None,
    )


def lease_renewed(s: TaskState, e: Any) -> TaskState:
    return _with(s, lease_until=e.until)


def progress_reported(s: TaskState, e: Any) -> TaskState:
    if e.percentage is None:
        return s
    return _with(s, progress_percentage=e.percentage)


def phase_changed(s: TaskState, e: Any) -> TaskState:
    phases = [dict(p) for p in s.phases]
    known = next((p for p in phases if p["name"] == e.name), None)
    if known is None:
        known = {"name": e.name, "status": e.status, "started_at": e.at, "finished_at": None}
        phases.append(known)
    if e.status == "started" and known["status"] != "started":  # begun again
        known["started_at"], known["finished_at"] = e.at, None
    known["status"] = e.status
    if e.status != "started":
        known["finished_at"] = e.at
    return _with(s, phases=phases)


def usage_recorded(s: TaskState, e: Any) -> TaskState:
    totals = {**s.usage, "models": list(s.usage["models"])}
    for key in COUNTED:
        totals[key] = totals[key] + (getattr(e, key) or 0)
    totals["cache_creation_tokens"] = totals["cache_write_tokens"]
    totals["cost_usd"] = round(totals["cost_usd"] + e.cost_usd, COST_DIGITS)
    reported = totals["reported_cost_usd"] + (e.reported_cost_usd or 0.0)
    totals["reported_cost_usd"] = round(reported, COST_DIGITS)
    if e.model and e.model not in totals["models"]:
        totals["models"] = [*totals["models"], e.model]
    return _with(s, usage=totals)


def input_requested(s: TaskState, e: Any) -> TaskState:
    return _with(s, status=e.status, waiting_on=e.item_id)


def resumed(s: TaskState, e: Any) -> TaskState:
    return _with(s, status=TaskStatus.RUNNING.value, waiting_on=None)


def expired_in_queue(s: TaskState, e: Any) -> TaskState:
    return _with(
        s,
        status=TaskStatus.TIMED_OUT.value,
        last_reason="queue time-to-live expired",
        completed_at=e.at,
    )


def review_requested(s: TaskState, e: Any) -> TaskState:
    result = getattr(e, "result", None)  # events from before it carried one: keep the last
    return _with(
        s,
        status=TaskStatus.AWAITING_APPROVAL.value,
        last_reason=e.summary,
        result=dict(result) if result is not None else s.result,
        worker_id=None,
        lease_until=None,
        waiting_on=None,
    )


def execution_finished(s: TaskState, e: Any) -> TaskState:
    completed = e.outcome == TaskStatus.COMPLETED.value
    return _with(
        s,
        status=e.outcome,
        result=dict(e.result),
        completed_at=e.at,
        worker_id=None,
        lease_until=None,
        waiting_on=None,
        progress_percentage=100 if completed else s.progress_percentage,
    )


def work_approved(s: TaskState, e: Any) -> TaskState:
    return _with(
        s,
        status=TaskStatus.COMPLETED.value,
        approved=True,
        last_reason=e.comment,
        progress_percentage=100,
        completed_at=e.at,
    )


def work_rejected(s: TaskState, e: Any) -> TaskState:
    return _with(
        s,
        status=TaskStatus.QUEUED.value,
        last_reason=e.reason,
        execution_id=e.execution_id,
        attempt=e.attempt,
        result=None,
        cancel_requested=False,
        started_at=None,
        completed_at=None,
    )


# ---- the API shape -------------------------------------------------------------------------


PRIORITY_LABELS = {int(p): p.label for p in Priority}


def actual_duration(state: TaskState) -> float | None:
    if state.started_at is None or state.completed_at is None:
        return None
    return round((state.completed_at - state.started_at).total_seconds(), 3)


def represent(state: TaskState) -> dict[str, Any]:
    """The task as the API shows it (seed 000 field names, RFC 3339 times, durations in
    seconds); the listing row is these fields too, less the ones only the task itself shows."""
    return {
        "id": state.id,
        "slug": state.slug,
        "project_id": state.project_id,
        "title": state.title,
        "description": state.description,
        "status": state.status,
        "priority": PRIORITY_LABELS[state.priority],
        "progress_percentage": state.progress_percentage,
        "estimated_duration": state.estimated_duration,
        "actual_duration": actual_duration(state),
        "assigned_to": state.assigned_to,
        "created_by": state.created_by,
        "created_at": rfc3339(state.created_at),
        "updated_at": rfc3339(state.updated_at),
        "started_at": rfc3339(state.started_at),
        "completed_at": rfc3339(state.completed_at),
        "tags": list(state.tags),
        "metadata": dict(state.metadata),
        "dependencies": list(state.dependencies),
        "repository_url": state.repository_url,
        "base_branch": state.base_branch,
        "ticket_id": state.ticket_id,
        "ticket_summary": state.ticket_summary,
        "test_command": state.test_command,
        "attempt": state.attempt,
        "execution_id": state.execution_id,
        "cancel_requested": state.cancel_requested,
        "result": state.result,
        "usage": {**state.usage, "models": list(state.usage["models"])},
        "waiting_on": state.waiting_on,
        "worker_id": state.worker_id,
        "lease_until": rfc3339(state.lease_until),
        "version": state.version,
    }
