"""The execution projections: queue rows, HITL items and output chunks, evolved from events.

Pure functions, one event type each: given the current row (None if there is none) and an event,
each answers the row after it (None: there is no row any more). No I/O: a view loads the rows a
batch touches, evolves them here (projections/batch.py) and writes the result once.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import msgspec

from domain.hitl import Checkpoint, Experience, HitlItem, Question
from domain.output import OutputChunk
from domain.task import Task
from domain.values import Priority, TaskStatus, rfc3339
from projections.execution_rows import HitlRow, OutputRow, QueueRow
from projections.rows import TaskRow

IN_FLIGHT = frozenset({TaskStatus.QUEUED.value, TaskStatus.RUNNING.value})


def epoch(moment: datetime) -> float:
    """Epoch seconds; a naive time is taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _epoch_or_none(moment: datetime | None) -> float | None:
    return None if moment is None else epoch(moment)


# ---- the queue ---------------------------------------------------------------------------------


class QueueContext(msgspec.Struct, frozen=True, kw_only=True):
    """What a queue row takes from outside the queue: the task's row after the event, the options
    of the task's last execution request (a rejected attempt runs with them again), the event's
    position."""

    task: TaskRow | None
    options: dict[str, Any]
    position: int


QueueHandler = Callable[[QueueRow | None, Any, QueueContext], QueueRow | None]


def _queued_row(
    task: TaskRow,
    execution_id: str,
    attempt: int,
    priority: int,
    requested_at: float,
    not_before: float | None,
    options: dict[str, Any],
    position: int,
) -> QueueRow:
    ttl = options.get("queue_ttl")
    return QueueRow(
        task_id=task.id,
        team_id=task.team_id,
        project_id=task.project_id,
        execution_id=execution_id,
        state=TaskStatus.QUEUED.value,
        priority=priority,
        attempt=attempt,
        requested_at=requested_at,
        not_before=requested_at if not_before is None else float(not_before),
        expires_at=requested_at + float(ttl) if ttl else None,
        agent=options.get("agent"),
        position=position,
    )


def execution_requested(row: QueueRow | None, e: Any, ctx: QueueContext) -> QueueRow | None:
    """A new execution waits in the queue, as of the event's time."""
    if ctx.task is None:
        return None
    options = dict(e.options)
    return _queued_row(
        ctx.task,
        e.execution_id,
        e.attempt,
        int(e.priority),
        epoch(e.timestamp),
        options.get("not_before"),
        options,
        ctx.position,
    )


def work_rejected(row: QueueRow | None, e: Any, ctx: QueueContext) -> QueueRow | None:
    """Rejected work is queued again, at the task's priority, with its last request's options
    (time-to-live from now, agent); a backoff of the earlier request does not carry over."""
    if ctx.task is None:
        return None
    return _queued_row(
        ctx.task,
        e.execution_id,
        e.attempt,
        int(Priority[ctx.task.priority.upper()]),
        epoch(e.timestamp),
        None,
        ctx.options,
        ctx.position,
    )


def priority_set(row: QueueRow | None, e: Any, ctx: QueueContext) -> QueueRow | None:
    """A queued execution moves with its task's priority; a running one keeps what it had."""
    if row is None or row.state != TaskStatus.QUEUED.value:
        return row
    return msgspec.structs.replace(row, priority=int(e.priority), position=ctx.position)


def execution_started(row: QueueRow | None, e: Any, ctx: QueueContext) -> QueueRow | None:
    if row is None:
        return None
    return msgspec.structs.replace(
        row,
        state=TaskStatus.RUNNING.value,
        worker_id=e.worker_id,
        lease_until=_epoch_or_none(e.lease_until),
        position=ctx.position,
    )


def lease_renewed(row: QueueRow | None, e: Any, ctx: QueueContext) -> QueueRow | None:
    if row is None:
        return None
    return msgspec.structs.replace(row, lease_until=epoch(e.until), position=ctx.position)


def status_changed(row: QueueRow | None, e: Any, ctx: QueueContext) -> QueueRow | None:
    """A person's move (a queued task back to pending, say) ends the execution in flight."""
    return row if e.new in IN_FLIGHT else None


def execution_ended(row: QueueRow | None, e: Any, ctx: QueueContext) -> QueueRow | None:
    """In review, finished, cancelled, expired in the queue or deleted: nothing is in flight."""
    return None


QUEUE_HANDLERS: dict[type, QueueHandler] = {
    Task.ExecutionRequested: execution_requested,
    Task.WorkRejected: work_rejected,
    Task.PrioritySet: priority_set,
    Task.ExecutionStarted: execution_started,
    Task.LeaseRenewed: lease_renewed,
    Task.StatusChanged: status_changed,
    Task.ReviewRequested: execution_ended,
    Task.ExecutionFinished: execution_ended,
    Task.Cancelled: execution_ended,
    Task.ExpiredInQueue: execution_ended,
    Task.Deleted: execution_ended,
}


def evolve_queue(row: QueueRow | None, event: Any, ctx: QueueContext) -> QueueRow | None:
    """The task's queue row after the event. Other task events (the agent waits on a person and
    resumes, progress, usage) leave it as it is: an agent process still holds the execution."""
    handler = QUEUE_HANDLERS.get(type(event))
    return row if handler is None else handler(row, event, ctx)


# ---- HITL items --------------------------------------------------------------------------------

HitlHandler = Callable[[HitlRow | None, Any, int], HitlRow | None]


def _item(e: Any, kind: str, data: dict[str, Any], position: int) -> HitlRow:
    return HitlRow(
        id=str(e.originator_id),
        kind=kind,
        team_id=e.team_id,
        project_id=e.project_id,
        task_id=e.task_id,
        execution_id=e.execution_id,
        status="pending",
        created_at=rfc3339(e.timestamp) or "",
        decided_at=None,
        decided_by=None,
        deadline=_epoch_or_none(getattr(e, "deadline", None)),
        data=data,
        position=position,
    )


def question_asked(row: HitlRow | None, e: Any, position: int) -> HitlRow:
    data = {"question": e.question, "options": list(e.options), "default": e.default}
    return _item(e, "question", data, position)


def checkpoint_requested(row: HitlRow | None, e: Any, position: int) -> HitlRow:
    data = {"action": e.action, "description": e.description, "data": dict(e.data)}
    return _item(e, "checkpoint", data, position)


def experience_proposed(row: HitlRow | None, e: Any, position: int) -> HitlRow:
    data = {"title": e.title, "content": e.content, "tags": list(e.tags)}
    return _item(e, "experience", data, position)


def _decided(row: HitlRow | None, e: Any, status: str, data: dict[str, Any]) -> HitlRow | None:
    """The item keeps its place (the position it was created at): newest first means created."""
    if row is None:
        return None
    return msgspec.structs.replace(
        row,
        status=status,
        decided_at=rfc3339(e.timestamp),
        decided_by=e.actor,
        data=row.data | data,
    )


def question_answered(row: HitlRow | None, e: Any, position: int) -> HitlRow | None:
    return _decided(row, e, "answered", {"response": e.response, "by_default": e.by_default})


def checkpoint_approved(row: HitlRow | None, e: Any, position: int) -> HitlRow | None:
    return _decided(row, e, "approved", {"reason": e.reason, "by_default": e.by_default})


def checkpoint_rejected(row: HitlRow | None, e: Any, position: int) -> HitlRow | None:
    return _decided(row, e, "rejected", {"reason": e.reason, "by_default": e.by_default})


def experience_approved(row: HitlRow | None, e: Any, position: int) -> HitlRow | None:
    return _decided(row, e, "approved", {"reason": e.reason})


def experience_rejected(row: HitlRow | None, e: Any, position: int) -> HitlRow | None:
    return _decided(row, e, "rejected", {"reason": e.reason})


def item_withdrawn(row: HitlRow | None, e: Any, position: int) -> HitlRow | None:
    return _decided(row, e, "withdrawn", {"reason": e.reason})


HITL_HANDLERS: dict[type, HitlHandler] = {
    Question.Asked: question_asked,
    Checkpoint.Requested: checkpoint_requested,
    Experience.Proposed: experience_proposed,
    Question.Answered: question_answered,
    Checkpoint.Approved: checkpoint_approved,
    Checkpoint.Rejected: checkpoint_rejected,
    Experience.Approved: experience_approved,
    Experience.Rejected: experience_rejected,
    HitlItem.Withdrawn: item_withdrawn,
}


def evolve_hitl(row: HitlRow | None, event: Any, position: int) -> HitlRow | None:
    """The item after the event (None while there is no item to change)."""
    for cls in type(event).__mro__:  # a subclass's Withdrawn is handled as HitlItem's
        handler = HITL_HANDLERS.get(cls)
        if handler is not None:
            return handler(row, event, position)
    return row


def is_creation(event: Any) -> bool:
    """A HITL event that makes its item from nothing (no row needs loading for it)."""
    return isinstance(event, Question.Asked | Checkpoint.Requested | Experience.Proposed)


# ---- output ------------------------------------------------------------------------------------


class OutputEntry(msgspec.Struct, frozen=True, kw_only=True):
    """An output row with the team it is stored under."""

    team_id: str
    row: OutputRow


def chunk_written(e: Any, position: int) -> OutputEntry:
    row = OutputRow(
        position=position,
        task_id=e.task_id,
        execution_id=e.execution_id,
        seq=e.seq,
        stream=e.stream,
        text=e.text,
        timestamp=rfc3339(e.timestamp) or "",
    )
    return OutputEntry(team_id=e.team_id, row=row)


def is_output(event: Any) -> bool:
    return isinstance(event, OutputChunk.Written)
