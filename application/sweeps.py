"""Housekeeping on a clock: what nobody will do otherwise.

- A queued execution whose time-to-live ran out is timed out.
- An execution whose lease expired (its worker died or lost the store) is recovered: failed, and
  retried when attempts are left, so no slot is held by a dead worker.
- A question or checkpoint past its deadline is decided by default: a question gets its default
  answer, a checkpoint is rejected unless it asked for approval by default.

Each works from the views and decides on the aggregate; a stale row costs a refused command.
The time is the store's clock's (``Store.clock``), so a test moves it instead of waiting.
"""

from __future__ import annotations

from uuid import UUID, uuid4

from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError

from application.execution_reports import schedule_retry
from application.scheduler import worker_actor
from application.store import Store
from domain.errors import DomainError
from domain.hitl import Checkpoint, HitlItem, Question
from domain.task import Task
from domain.values import TaskStatus
from projections.read_model import ReadModel

SCHEDULER = "scheduler"
TIMED_OUT_ANSWER = "(no answer: the question timed out)"


def _save(store: Store, *aggregates: Aggregate) -> bool:
    try:
        store.commit(*aggregates)
    except IntegrityError:
        return False  # somebody else changed it meanwhile; the next sweep looks again
    return True


def expire_queued(store: Store, views: ReadModel) -> int:
    moment = store.clock.now()
    now = moment.timestamp()
    expired = 0
    for row in views.in_flight():
        if row.worker_id or row.expires_at is None or row.expires_at > now:
            continue
        task = store.find(Task, UUID(row.task_id), row.team_id)
        if task is None:
            continue
        try:
            by = worker_actor(SCHEDULER, task.team_id)
            task.expire_in_queue(row.execution_id, by, at=moment)
        except DomainError:
            continue
        expired += _save(store, task)
    return expired


def recover_leases(store: Store, views: ReadModel) -> int:
    moment = store.clock.now()
    now = moment.timestamp()
    recovered = 0
    for row in views.in_flight():
        if not row.worker_id or row.lease_until is None or row.lease_until > now:
            continue
        task = store.find(Task, UUID(row.task_id), row.team_id)
        if task is None or task.execution_id != row.execution_id:
            continue
        if task.worker_id is None or task.lease_until is None or task.lease_until > moment:
            continue  # renewed meanwhile: the view was behind
        by = worker_actor(SCHEDULER, task.team_id, str(uuid4()))
        pending: list[HitlItem] = []
        if task.waiting_on is not None:
            item = store.find(HitlItem, UUID(task.waiting_on), task.team_id)
            if item is not None:
                item.withdraw("the worker's lease expired", by.id, by.request_id)
                pending.append(item)
        error = {"error": "lease expired: the worker stopped reporting"} | {
            "worker_id": task.worker_id
        }
        try:
            task.finish_execution(TaskStatus.FAILED, error, by, at=moment)
        except DomainError:
            continue
        schedule_retry(task, moment)
        recovered += _save(store, task, *pending)
    return recovered


def decide_overdue(store: Store, views: ReadModel) -> int:
    decided = 0
    for row in views.hitl_due(store.clock.time()):
        item = store.find(HitlItem, UUID(row.id), row.team_id)
        task = store.find(Task, UUID(row.task_id), row.team_id)
        if item is None or task is None:
            continue
        actor = f"{SCHEDULER}:timeout"
        if isinstance(item, Question):
            changed = item.answer(item.default or TIMED_OUT_ANSWER, actor, by_default=True)
        elif isinstance(item, Checkpoint):
            approve = item.data.get("default") == "approve"
            changed = item.decide(approve, "timed out", actor, by_default=True)
        else:
            continue
        if not changed:
            continue
        if task.waiting_on == str(item.id):
            task.resume(str(item.id), worker_actor(SCHEDULER, task.team_id))
        decided += _save(store, item, task)
    return decided
