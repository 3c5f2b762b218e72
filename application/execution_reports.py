"""What a worker reports while it runs an execution: heartbeats, output, agent messages, the end.

Every report names the execution and the worker; a report for an execution that is no longer the
task's, or no longer held by that worker (its lease expired and was recovered), is refused, so a
worker that lost its lease cannot overwrite what happened since.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import msgspec
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError

from application.budgets import spent_notice
from application.errors import NotFoundError
from application.pricing import price_usage, reported_usage, team_table
from application.scheduler import Claim, worker_actor
from application.store import Store
from domain.errors import InvalidTransitionError
from domain.hitl import Checkpoint, Experience, HitlItem, Question
from domain.output import OutputChunk
from domain.task import Task
from domain.values import Actor, TaskStatus

OUTCOMES = {
    s.value: s
    for s in (
        TaskStatus.COMPLETED,
        TaskStatus.FAILED,
        TaskStatus.TIMED_OUT,
        TaskStatus.CANCELLED,
    )
}


class Beat(msgspec.Struct, frozen=True, kw_only=True):
    """The answer to a heartbeat: keep going, stop (cancel), or here is the person's decision."""

    lease_until: float
    cancel_requested: bool
    lost: bool = False  # the execution is no longer this worker's: stop without reporting
    reply: dict[str, Any] | None = None  # the decision on the item the agent waits for
    notice: str | None = None  # what the agent should know: its budget is spent


def _at(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def _task(store: Store, run: Claim) -> Task:
    task = store.find(Task, UUID(run.task_id), run.team_id)
    if task is None:
        raise NotFoundError("task", run.task_id)
    return task


def _held(task: Task, run: Claim) -> bool:
    return task.execution_id == run.execution_id and task.worker_id == run.worker_id


def _require_held(task: Task, run: Claim) -> None:
    if not _held(task, run):
        raise InvalidTransitionError(
            "this execution is no longer held by this worker",
            execution_id=run.execution_id,
            status=task.status,
        )


def heartbeat(store: Store, run: Claim, waiting_on: str | None, lease_seconds: float) -> Beat:
    """Renews the lease when half of it is spent (so a frequent heartbeat writes rarely), and
    answers a pending cancel and the decision on the item the agent waits for."""
    now = store.clock.time()
    task = _task(store, run)
    if not _held(task, run):
        return Beat(lease_until=0.0, cancel_requested=True, lost=True)
    lease_until = task.lease_until.timestamp() if task.lease_until else 0.0
    if lease_until - now < lease_seconds / 2:
        lease_until = now + lease_seconds
        task.renew_lease(run.execution_id, _at(lease_until), _by(run))
        store.commit(task)
    reply = _reply(store, run, waiting_on) if waiting_on else None
    return Beat(
        lease_until=lease_until,
        cancel_requested=task.cancel_requested,
        reply=reply,
        notice=spent_notice(store, run.team_id, run.project_id),
    )


def _reply(store: Store, run: Claim, item_id: str) -> dict[str, Any] | None:
    item = _item(store, run, item_id)
    if isinstance(item, Question) and item.status == "answered":
        return {"type": "answer", "question_id": item_id, "response": item.response}
    if isinstance(item, Checkpoint) and item.status in ("approved", "rejected"):
        approved = item.status == "approved"
        return {
            "type": "decision",
            "checkpoint_id": item_id,
            "approved": approved,
            "reason": item.reason,
        }
    return None


def _item(store: Store, run: Claim, item_id: str) -> HitlItem:
    try:
        item = store.find(HitlItem, UUID(item_id))
    except ValueError:
        raise NotFoundError("item", item_id) from None
    if item is None or item.execution_id != run.execution_id:
        raise NotFoundError("item", item_id)
    return item


def record_output(store: Store, run: Claim, chunks: list[tuple[int, str, str]]) -> int:
    """Stores ``(seq, stream, text)`` chunks; a chunk already stored (a retried request) is
    skipped, not doubled. Returns the position of the last one written."""
    task = _task(store, run)
    _require_held(task, run)
    made = [_chunk(run, seq, stream, text) for seq, stream, text in chunks]
    try:
        return store.commit(*made)
    except IntegrityError:  # some were stored before: write the others one by one
        position = 0
        for seq, stream, text in chunks:
            try:
                position = store.commit(_chunk(run, seq, stream, text))
            except IntegrityError:
                continue
        return position


def _chunk(run: Claim, seq: int, stream: str, text: str) -> OutputChunk:
    return OutputChunk(
        team_id=run.team_id,
        project_id=run.project_id,
        task_id=run.task_id,
        execution_id=run.execution_id,
        seq=seq,
        stream=stream,
        text=text,
    )


def report(
    store: Store, run: Claim, message: dict[str, Any], hitl_timeout: float | None
) -> str | None:
    """Records one agent protocol message. For a question, checkpoint or experience, answers the
    id people will decide it by; the agent then waits for a question or checkpoint. Decided again
    when a concurrent writer won (a team's first usage creates its price table)."""
    return store.with_retries(lambda: _report(store, run, message, hitl_timeout))


def _report(
    store: Store, run: Claim, message: dict[str, Any], hitl_timeout: float | None
) -> str | None:
    task = _task(store, run)
    _require_held(task, run)
    by = _by(run)
    kind = message.get("type")
    made: list[Aggregate] = []
    item_id: str | None = None
    if kind == "progress":
        percentage, text = message.get("percentage"), message.get("message")
        task.report_progress(run.execution_id, percentage, text, by)
    elif kind == "phase":
        name, status = message["name"], message["status"]
        task.change_phase(run.execution_id, name, status, by, at=store.clock.now())
    elif kind == "usage":
        table = team_table(store, run.team_id, by)
        usage = price_usage(table, reported_usage(message), store.clock.now().date(), by)
        task.record_usage(run.execution_id, usage, by)
        made.append(table)  # written only when it changed (created, or a model noted)
    elif kind in ("question", "checkpoint"):
        deadline = store.clock.now() + timedelta(seconds=hitl_timeout) if hitl_timeout else None
        item = _ask(run, message, deadline, by)
        item_id = str(item.id)
        task.wait_for(run.execution_id, item_id, kind, by)
        made.append(item)
    elif kind == "experience":
        experience = Experience(
            team_id=run.team_id,
            project_id=run.project_id,
            task_id=run.task_id,
            execution_id=run.execution_id,
            title=message.get("title") or "",
            content=message.get("content") or "",
            tags=list(message.get("tags") or []),
            actor=by.id,
            request_id=by.request_id,
        )
        item_id = str(experience.id)
        made.append(experience)
    else:
        raise InvalidTransitionError(f"not a report: {kind}", type=kind)
    store.commit(task, *made)
    return item_id


def _ask(run: Claim, message: dict[str, Any], deadline: datetime | None, by: Actor) -> HitlItem:
    made = {"actor": by.id, "request_id": by.request_id}  # the worker, in its execution
    if message["type"] == "question":
        return Question(
            team_id=run.team_id,
            project_id=run.project_id,
            task_id=run.task_id,
            execution_id=run.execution_id,
            question=message.get("question") or "",
            options=list(message.get("options") or []),
            default=message.get("default"),
            deadline=deadline,
            **made,
        )
    return Checkpoint(
        team_id=run.team_id,
        project_id=run.project_id,
        task_id=run.task_id,
        execution_id=run.execution_id,
        action=message.get("action") or "",
        description=message.get("description"),
        data=dict(message.get("data") or {}),
        deadline=deadline,
        **made,
    )


def finish(store: Store, run: Claim, outcome: str, result: dict[str, Any]) -> dict[str, Any]:
    """Records how the execution ended (the process is gone), withdraws what it still waited for,
    and queues an automatic retry with backoff when attempts are left."""
    task = _task(store, run)
    _require_held(task, run)
    by = _by(run)
    pending = _withdrawn(store, run, task.waiting_on, outcome)
    now = store.clock.now()
    task.end_execution(OUTCOMES[outcome], result, by, at=now)
    retry = schedule_retry(task, now)
    store.commit(task, *pending)
    return {"status": task.status, "retry_scheduled": retry, "attempt": task.attempt}


def _withdrawn(store: Store, run: Claim, item_id: str | None, outcome: str) -> list[HitlItem]:
    if item_id is None:
        return []
    item = _item(store, run, item_id)
    # the request of a worker's report is its execution (``_by``), as on the task's events
    item.withdraw(f"the execution ended: {outcome}", f"worker:{run.worker_id}", run.execution_id)
    return [item]


def schedule_retry(task: Task, at: datetime) -> bool:
    """The scheduler queues the automatic retry the ended execution's options leave, if any."""
    return task.retry_if_allowed(worker_actor("scheduler", task.team_id, str(uuid4())), at=at)


def _by(run: Claim) -> Any:
    return worker_actor(run.worker_id, run.team_id, run.execution_id)
