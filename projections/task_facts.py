"""The task facts behind a project's analytics (docs/analytics.md): one row per task, kept up to
date from the task's own events and from the questions and checkpoints it waits on, so an
analytics answer sums a project's rows and never reads the log.

Every time is the event's ``timestamp``, which the event store stamps when the server records the
event: a client can set none of them (an estimate, ``estimated_duration``, is only compared with).
A row says when the task was created and first picked up (its first ``ExecutionStarted``), when its
current execution started, when and how it last finished (completed, failed, timed_out or
cancelled; none while it is queued or running again), how long a completed execution took (start
to completion, or to approval when the work waited for a review), how many executions started and
how many failed (the last failure's reason kept), and how long it waited on people: each question
and checkpoint from the moment it was asked to its answer, decision or withdrawal, and finished
work from its review request to its approval, rejection or cancel.

The fold is pure and runs event by event, so a rebuild in any batches gives the same rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

import msgspec

from domain.hitl import Checkpoint, HitlItem, Question
from domain.task import Task
from domain.values import TaskStatus, rfc3339
from projections.costs import agent_of

REASON_LENGTH = 200
FAILED = frozenset({TaskStatus.FAILED.value, TaskStatus.TIMED_OUT.value})
REVIEW = "review:"  # the key of a finished execution's review among a task's open waits


class TaskFact(msgspec.Struct, kw_only=True):
    """One task's row (``tw_task_facts``). Times are RFC 3339 UTC text, durations seconds."""

    task_id: str
    team_id: str
    project_id: str
    created_at: str
    created_day: str  # YYYY-MM-DD, UTC
    created_by: str
    assigned_to: str | None = None
    metadata_agent: str | None = None  # the task's ``agent`` metadata
    agent: str  # projections/costs.py ``agent_of``: the request's, else the metadata's
    estimated_duration: float | None = None
    first_started_at: str | None = None
    pickup_seconds: float | None = None  # created to first started
    started_at: str | None = None  # the current execution's start
    finished_at: str | None = None
    finished_day: str | None = None
    outcome: str | None = None  # completed, failed, timed_out, cancelled; None while active
    duration_seconds: float | None = None  # the completed execution's, start to completion
    executions: int = 0  # executions started
    failures: int = 0  # executions (or queued requests) that failed or timed out
    last_failure_reason: str | None = None
    waits: int = 0  # waits on people that ended
    wait_seconds: float = 0.0  # their time, summed
    open_waits: dict[str, str] = msgspec.field(default_factory=dict)  # key: since


Fold = Callable[[TaskFact, Any], None]


def _at(event: Any) -> datetime:
    moment: datetime = event.timestamp
    return moment.astimezone(UTC)


def _seconds(since: str, until: datetime) -> float:
    return round((until - datetime.fromisoformat(since)).total_seconds(), 6)


def created(e: Any) -> TaskFact:
    at = _at(e)
    agent = (e.metadata or {}).get("agent")
    return TaskFact(
        task_id=str(e.originator_id),
        team_id=e.team_id,
        project_id=e.project_id,
        created_at=rfc3339(at) or "",
        created_day=at.date().isoformat(),
        created_by=e.actor,
        assigned_to=e.assigned_to,
        metadata_agent=str(agent) if agent else None,
        agent=agent_of({"agent": agent}, None),
        estimated_duration=e.estimated_duration,
    )


def updated(f: TaskFact, e: Any) -> None:
    changes = e.changes
    if "estimated_duration" in changes:
        f.estimated_duration = changes["estimated_duration"]
    if "metadata" in changes:
        agent = (changes["metadata"] or {}).get("agent")
        f.metadata_agent = str(agent) if agent else None
        if f.executions == 0 and f.outcome is None:  # no request named its agent yet
            f.agent = agent_of({"agent": agent}, None)


def assigned(f: TaskFact, e: Any) -> None:
    f.assigned_to = e.assigned_to


def requested(f: TaskFact, e: Any) -> None:
    f.agent = agent_of({"agent": (e.options or {}).get("agent") or f.metadata_agent}, None)
    _reopened(f)


def rejected(f: TaskFact, e: Any) -> None:
    _close(f, _review_key(f), _at(e))
    _reopened(f)


def _reopened(f: TaskFact) -> None:
    f.finished_at = f.finished_day = f.outcome = None
    f.duration_seconds = None


def started(f: TaskFact, e: Any) -> None:
    at = rfc3339(_at(e))
    f.started_at = at
    f.executions += 1
    if f.first_started_at is None:
        f.first_started_at = at
        f.pickup_seconds = _seconds(f.created_at, _at(e))


def finished(f: TaskFact, e: Any) -> None:
    _finish(f, e.outcome, _at(e), e.result or {})


def expired(f: TaskFact, e: Any) -> None:
    _finish(f, TaskStatus.TIMED_OUT.value, _at(e), {"error": "queue time-to-live expired"})


def cancelled(f: TaskFact, e: Any) -> None:
    _close(f, _review_key(f), _at(e))
    _finish(f, TaskStatus.CANCELLED.value, _at(e), {})


def status_changed(f: TaskFact, e: Any) -> None:
    """A person's move: completed or cancelled by hand (no execution duration), or back to
    pending."""
    if e.new in (TaskStatus.COMPLETED.value, TaskStatus.CANCELLED.value):
        _finish(f, e.new, _at(e), {}, timed=False)
    elif e.new == TaskStatus.PENDING.value:
        _reopened(f)


def review_requested(f: TaskFact, e: Any) -> None:
    f.open_waits = {**f.open_waits, _review_key(f): rfc3339(_at(e)) or ""}


def approved(f: TaskFact, e: Any) -> None:
    _close(f, _review_key(f), _at(e))
    _finish(f, TaskStatus.COMPLETED.value, _at(e), {})


def _review_key(f: TaskFact) -> str:
    return f"{REVIEW}{f.executions}"


def _finish(
    f: TaskFact, outcome: str, at: datetime, result: dict[str, Any], *, timed: bool = True
) -> None:
    f.outcome = outcome
    f.finished_at = rfc3339(at)
    f.finished_day = at.date().isoformat()
    completed = outcome == TaskStatus.COMPLETED.value
    f.duration_seconds = (
        _seconds(f.started_at, at) if completed and timed and f.started_at else None
    )
    if outcome in FAILED:
        f.failures += 1
        f.last_failure_reason = failure_reason(outcome, result)


def failure_reason(outcome: str, result: dict[str, Any]) -> str:
    """What the result says went wrong: its error, else its exit code, else the outcome."""
    error = result.get("error")
    if isinstance(error, str) and error.strip():
        return error.strip()[:REASON_LENGTH]
    code = result.get("exit_code")
    if isinstance(code, int) and not isinstance(code, bool):
        return f"exit code {code}"
    return outcome


def wait_opened(f: TaskFact, e: Any) -> None:
    f.open_waits = {**f.open_waits, str(e.originator_id): rfc3339(_at(e)) or ""}


def wait_closed(f: TaskFact, e: Any) -> None:
    _close(f, str(e.originator_id), _at(e))


def _close(f: TaskFact, key: str, at: datetime) -> None:
    since = f.open_waits.get(key)
    if since is None:
        return
    f.open_waits = {k: v for k, v in f.open_waits.items() if k != key}
    f.waits += 1
    f.wait_seconds = round(f.wait_seconds + _seconds(since, at), 6)


FOLDS: dict[type, Fold] = {
    Task.Updated: updated,
    Task.Assigned: assigned,
    Task.ExecutionRequested: requested,
    Task.WorkRejected: rejected,
    Task.ExecutionStarted: started,
    Task.ExecutionFinished: finished,
    Task.ExpiredInQueue: expired,
    Task.Cancelled: cancelled,
    Task.StatusChanged: status_changed,
    Task.ReviewRequested: review_requested,
    Task.WorkApproved: approved,
    Question.Asked: wait_opened,
    Checkpoint.Requested: wait_opened,
    Question.Answered: wait_closed,
    Checkpoint.Approved: wait_closed,
    Checkpoint.Rejected: wait_closed,
    HitlItem.Withdrawn: wait_closed,  # an experience was never opened: nothing to close
}


def task_of(event: Any) -> str | None:
    """The task a fact event is about; None for any other event (and an old HITL event that
    does not name its task)."""
    if isinstance(event, Task.Event):
        if type(event) in FOLDS or isinstance(event, Task.Created | Task.Deleted):
            return str(event.originator_id)
        return None
    if isinstance(event, HitlItem.Event) and _fold_of(event) is not None:
        task_id = getattr(event, "task_id", None)
        return str(task_id) if task_id else None
    return None


def _fold_of(event: Any) -> Fold | None:
    for cls in type(event).__mro__:  # a subclass's Withdrawn is HitlItem's
        fold = FOLDS.get(cls)
        if fold is not None:
            return fold
    return None


def evolve_facts(
    events: Iterable[tuple[int, Any]], loaded: dict[str, TaskFact]
) -> dict[str, TaskFact | None]:
    """The rows the events change (None: the task was deleted), folded in order from the loaded
    rows; an event of a task without a row (deleted, or created before the log was placed) is
    passed over."""
    live: dict[str, TaskFact | None] = {}
    for _, event in events:
        key = task_of(event)
        if key is None:
            continue
        fact = live[key] if key in live else loaded.get(key)
        if isinstance(event, Task.Created):
            live[key] = created(event)
        elif isinstance(event, Task.Deleted):
            live[key] = None
        elif fact is not None:
            fact = live[key] = msgspec.structs.replace(fact) if key not in live else fact
            fold = _fold_of(event)
            if fold is not None:
                fold(fact, event)
    return live
