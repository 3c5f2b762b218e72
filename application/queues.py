"""Seed 000's queues: the bands of the task priority, per team.

A band is paused and resumed on the team's QueueControl (the scheduler skips a paused band, and
the work of a scope whose budget is spent: the status says which, and why),
cleared (its queued executions are cancelled) and reordered (tasks change priority). Its status
and metrics are read from the views: the queue rows for what waits and runs, the task listing for
what finished, and, for the time spent waiting, the events of a sample of finished tasks.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal
from uuid import UUID

from eventsourcing.persistence import IntegrityError
from msgspec import Meta

from application.budgets import Standing, standings
from application.bulk import each
from application.commands import Command, PriorityIn, Reason, Ref, Targeted, UpdateTask
from application.errors import NotFoundError, PermissionDeniedError
from application.results import Batch, Changed
from application.store import Store, project_scope
from application.task_inputs import priority as parse_priority
from application.tasks import update_task
from domain.errors import RuleViolationError
from domain.queue import BANDS, QueueControl, band_of, queue_control_id
from domain.task import Task
from domain.values import Actor, Priority, TaskStatus, rfc3339
from projections.execution_rows import QueueRow
from projections.read_model import ReadModel
from projections.rows import TaskQuery, TaskRow

QueueName = Literal["high_priority", "normal_priority", "low_priority"]
PERIODS = {"1h": timedelta(hours=1), "24h": timedelta(days=1), "7d": timedelta(days=7)}
OUTCOMES = ("completed", "failed", "timed_out", "cancelled")
SCAN_PAGES = 100  # finished tasks read per status or metrics request: at most 100 pages of 100
WAIT_SAMPLE = 200  # finished tasks whose events give the time spent waiting in the queue
CLEAR_BATCH = 100  # cancellations per transaction


class PauseQueue(Command, frozen=True):
    queue_name: QueueName
    reason: Reason | None = None


class ResumeQueue(Command, frozen=True):
    queue_name: QueueName


class ClearQueue(Command, frozen=True):
    queue_name: QueueName
    confirm: bool  # must be true


class SetQueuePriority(Command, frozen=True):
    task_ids: Annotated[list[Ref], Meta(min_length=1, max_length=100)]
    priority: PriorityIn


# ---- pause and resume ------------------------------------------------------------------------


def _team_wide(action: str) -> None:
    """A key scoped to one project may not stop or start the whole team's queue."""
    if project_scope() is not None:
        raise PermissionDeniedError(f"{action} the team's queues", "project-scoped key")


def _control(store: Store, team_id: str) -> QueueControl | None:
    return store.find(QueueControl, queue_control_id(team_id), team_id)  # None: never paused


def _band(control: QueueControl | None, name: str) -> dict[str, Any]:
    paused = control is not None and name in control.paused
    reason = control.paused[name] if control is not None and paused else None
    return {"queue_name": name, "paused": paused, "reason": reason}


def pause_queue(store: Store, cmd: PauseQueue, by: Actor) -> Changed:
    """Pausing a paused band changes nothing (one pause, its first reason)."""
    _team_wide("pause")

    def decide() -> Changed:
        control = _control(store, by.team_id) or QueueControl(team_id=by.team_id)
        changed = control.pause(cmd.queue_name, cmd.reason, by.id)
        position = store.commit(control)
        return Changed(
            data={**_band(control, cmd.queue_name), "changed": changed}, position=position
        )

    return store.with_retries(decide)


def resume_queue(store: Store, cmd: ResumeQueue, by: Actor) -> Changed:
    _team_wide("resume")

    def decide() -> Changed:
        control = _control(store, by.team_id)
        changed = control is not None and control.resume(cmd.queue_name, by.id)
        position = store.commit(control) if control is not None else store.max_position()
        return Changed(
            data={**_band(control, cmd.queue_name), "changed": changed}, position=position
        )

    return store.with_retries(decide)


# ---- clear and reorder -----------------------------------------------------------------------


def _queued_rows(views: ReadModel, team_id: str) -> list[QueueRow]:
    scope = project_scope()
    rows = views.in_flight(team_id)
    return [r for r in rows if r.state == "queued" and scope in (None, r.project_id)]


def clear_queue(store: Store, views: ReadModel, cmd: ClearQueue, by: Actor) -> Changed:
    """Cancels every queued execution of the band; what started meanwhile runs on."""
    if not cmd.confirm:
        raise RuleViolationError("clearing a queue needs confirm: true", field="confirm")
    rows = [r for r in _queued_rows(views, by.team_id) if band_of(r.priority) == cmd.queue_name]
    reason = f"queue {cmd.queue_name} cleared"
    cleared: list[str] = []
    position = 0
    for start in range(0, len(rows), CLEAR_BATCH):
        batch = rows[start : start + CLEAR_BATCH]
        done, at = _cancel_batch(store, batch, cmd.queue_name, reason, by)
        cleared += done
        position = max(position, at)
    data = {"queue_name": cmd.queue_name, "cleared_count": len(cleared), "task_ids": cleared}
    return Changed(data=data, position=position or store.max_position())


def _cancellable(store: Store, row: QueueRow, band: str, reason: str, by: Actor) -> Task | None:
    """The row's task, cancelled, if it still waits in the band with this execution."""
    try:
        task = store.load(Task, UUID(row.task_id), by.team_id, "task")
    except NotFoundError:  # gone, or outside a project-scoped key's project
        return None
    queued = task.status == TaskStatus.QUEUED.value and task.execution_id == row.execution_id
    if task.deleted or not queued or band_of(task.priority) != band:
        return None
    task.cancel(reason, by, at=store.clock.now())
    return task


def _cancel_batch(
    store: Store, rows: list[QueueRow], band: str, reason: str, by: Actor
) -> tuple[list[str], int]:
    """One transaction for the batch; if a task changed meanwhile, each one on its own."""
    tasks = [t for r in rows if (t := _cancellable(store, r, band, reason, by)) is not None]
    if not tasks:
        return [], 0
    try:
        return [str(t.id) for t in tasks], store.commit(*tasks)
    except IntegrityError:
        pass
    done: list[str] = []
    position = 0
    for row in rows:
        at = store.with_retries(functools.partial(_cancel_one, store, row, band, reason, by))
        if at is not None:
            done.append(row.task_id)
            position = max(position, at)
    return done, position


def _cancel_one(store: Store, row: QueueRow, band: str, reason: str, by: Actor) -> int | None:
    task = _cancellable(store, row, band, reason, by)
    return store.commit(task) if task is not None else None


def set_priorities(store: Store, cmd: SetQueuePriority, by: Actor) -> Batch:
    """Each task changes priority alone, as in bulk; a queued one moves within the queue."""
    change = UpdateTask(priority=cmd.priority)
    wanted = parse_priority(cmd.priority)
    data = {"queue_name": band_of(int(wanted)), "priority": wanted.label}
    return each(
        store,
        cmd.task_ids,
        lambda ref: update_task(store, Targeted(target=ref, command=change), by),
        data,
    )


# ---- status and metrics ----------------------------------------------------------------------


def _moment(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def finished_since(views: ReadModel, team_id: str, since: datetime) -> tuple[list[TaskRow], bool]:
    """The team's tasks that finished at or after ``since``, newest change first, and whether the
    scan stopped at its bound before reaching ``since``."""
    found: list[TaskRow] = []
    for page in range(1, SCAN_PAGES + 1):
        query = TaskQuery(
            status=list(OUTCOMES),
            project_id=project_scope(),
            sort="updated_at",
            order="desc",
            page=page,
            page_size=100,
        )
        rows = views.list_tasks(team_id, query).items
        for row in rows:
            if (_moment(row.updated_at) or since) < since:  # every later row changed earlier
                return found, False
            completed = _moment(row.completed_at)
            if completed is not None and completed >= since:
                found.append(row)
        if len(rows) < 100:
            return found, False
    return found, True


def _band_of_row(row: TaskRow) -> str:
    return band_of(int(Priority[row.priority.upper()]))


def _ran(rows: list[TaskRow]) -> list[TaskRow]:
    """Finished executions: an agent ran (a task cancelled in the queue never started)."""
    return [r for r in rows if r.started_at is not None and r.actual_duration is not None]


def _success_rate(rows: list[TaskRow]) -> float | None:
    ran = _ran(rows)
    done = sum(1 for r in ran if r.status == "completed")
    return round(done / len(ran), 4) if ran else None


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 3) if values else None


def clock(seconds: float | None) -> str | None:
    """Seed 000's "HH:MM:SS"."""
    if seconds is None:
        return None
    whole = round(seconds)
    return f"{whole // 3600:02d}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def queue_status(views: ReadModel, store: Store, team_id: str, idle_workers: int) -> dict[str, Any]:
    """Seed 000's queue status for the team (``idle_workers``: in this process's pool)."""
    now = store.clock.now()
    rows = [r for r in views.in_flight(team_id) if project_scope() in (None, r.project_id)]
    finished, truncated = finished_since(views, team_id, now - timedelta(days=1))
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    control = _control(store, team_id)
    scope = project_scope()
    budgets = standings(store, views, team_id, None if scope is None else [scope], now)
    queues = {}
    for name in BANDS:
        mine = [r for r in rows if band_of(r.priority) == name]
        done = [r for r in finished if _band_of_row(r) == name and r.status == "completed"]
        queues[name] = {
            "size": sum(1 for r in mine if r.state == "queued"),
            "held_by_budget": sum(1 for r in mine if r.state == "queued" and _held(r, budgets)),
            "processing": sum(1 for r in mine if r.state == "running"),
            "completed_today": sum(1 for r in done if (_moment(r.completed_at) or now) >= midnight),
            **{k: v for k, v in _band(control, name).items() if k != "queue_name"},
        }
    active = len({r.worker_id for r in rows if r.state == "running" and r.worker_id})
    hour = [
        r for r in _ran(finished) if (_moment(r.completed_at) or now) >= now - timedelta(hours=1)
    ]
    return {
        "queues": queues,
        "workers": {"active": active, "idle": idle_workers, "total": active + idle_workers},
        "performance": {
            "tasks_per_minute": round(len(hour) / 60, 2),
            "average_processing_time": clock(
                _mean([r.actual_duration or 0.0 for r in _ran(finished)])
            ),
            "success_rate": _success_rate(finished),
        },
        "budgets": [{**b.shown(), "why": b.why() if b.exceeded else None} for b in budgets],
        "truncated": truncated,
    }


def _held(row: QueueRow, budgets: list[Standing]) -> bool:
    """A spent budget holds the row: the team's limit, or its project's budget."""
    return any(b.exceeded and b.project_id in (None, row.project_id) for b in budgets)


def queue_metrics(views: ReadModel, store: Store, team_id: str, period: str) -> dict[str, Any]:
    """Outcomes, throughput, time waiting in the queue and running, over the period."""
    until = store.clock.now()
    since = until - PERIODS[period]
    finished, truncated = finished_since(views, team_id, since)
    rows = [r for r in views.in_flight(team_id) if project_scope() in (None, r.project_id)]
    ran = _ran(finished)
    waits = list(_waits(store, ran[:WAIT_SAMPLE], since))
    by_queue = {}
    for name in BANDS:
        mine = [r for r in finished if _band_of_row(r) == name]
        by_queue[name] = {
            **_outcomes(mine),
            "average_run_seconds": _mean([r.actual_duration or 0.0 for r in _ran(mine)]),
        }
    return {
        "period": period,
        "from": rfc3339(since),
        "to": rfc3339(until),
        "outcomes": _outcomes(finished),
        "finished": len(finished),
        "throughput_per_hour": round(len(ran) / (PERIODS[period].total_seconds() / 3600), 3),
        "success_rate": _success_rate(finished),
        "average_wait_seconds": _mean(waits),
        "average_run_seconds": _mean([r.actual_duration or 0.0 for r in ran]),
        "wait_sample": len(waits),
        "queued_now": sum(1 for r in rows if r.state == "queued"),
        "running_now": sum(1 for r in rows if r.state == "running"),
        "by_queue": by_queue,
        "truncated": truncated,
    }


def _outcomes(rows: list[TaskRow]) -> dict[str, int]:
    return {o: sum(1 for r in rows if r.status == o) for o in OUTCOMES}


def _waits(store: Store, rows: list[TaskRow], since: datetime) -> Iterator[float]:
    """Seconds from each execution request to its start, for starts within the period."""
    for row in _ran(rows):
        requested: datetime | None = None
        for event in store.events_of(UUID(row.id), row.team_id):
            if isinstance(event, Task.ExecutionRequested | Task.WorkRejected):
                requested = event.timestamp
            elif isinstance(event, Task.ExecutionStarted) and requested is not None:
                if event.at >= since:
                    yield max(0.0, (event.at - requested).total_seconds())
                requested = None
