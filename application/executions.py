"""Handlers that move a task through execution: execute, cancel, retry, approve, reject.

They record intent; the workers record what actually happened (``application/execution_reports``).
"""

from __future__ import annotations

from typing import Any

import msgspec
from eventsourcing.domain import Aggregate

from application.budgets import Spending, refuse_if_spent
from application.commands import (
    ApproveWork,
    CancelTask,
    ExecuteTask,
    ExecutionOptions,
    RejectWork,
    RetryTask,
    Targeted,
)
from application.idempotency import Idempotency, write_once
from application.representations import task_data
from application.results import Cancellation, Changed, Queued
from application.store import Store
from application.task_inputs import priority, unmet_dependencies
from domain.execution_policy import ExecutionPolicy
from domain.project import Project
from domain.task import Task
from domain.values import Actor

DEFAULT_OPTIONS = ExecutionOptions()


def _options(options: ExecutionOptions) -> ExecutionPolicy:
    return ExecutionPolicy(**msgspec.structs.asdict(options))


def queue_new_task(task: Task, by: Actor) -> str:
    return task.request_execution(_options(DEFAULT_OPTIONS), None, [], by)


def _queued(task: Task, execution_id: str) -> dict[str, Any]:
    return {
        "task_id": str(task.id),
        "execution_id": execution_id,
        "status": task.status,
        "attempt": task.attempt,
        "priority": task_data(task)["priority"],
    }


def request_execution(
    store: Store,
    cmd: Targeted[ExecuteTask],
    by: Actor,
    idempotency: Idempotency | None = None,
    *,
    spending: Spending,
    retry: bool = False,
) -> Queued:
    """Queues an execution; refused (``BudgetExceededError``) while the team's daily limit or the
    project's budget is spent (``application.budgets``)."""

    def decide() -> tuple[dict[str, Any], list[Aggregate]]:
        task = store.load_live(Task, cmd.target, by.team_id, "task")
        project = store.load_live(Project, task.project_id, by.team_id, "project")
        project.require_open()
        refuse_if_spent(store, spending, by.team_id, task.project_id)
        wanted = cmd.command.priority
        execution_id = task.request_execution(
            _options(cmd.command.options),
            priority(wanted) if wanted is not None else None,
            unmet_dependencies(store, task),
            by,
            retry=retry,
        )
        data = _queued(task, execution_id)
        if retry:
            data["retry_attempt"] = task.attempt
        return data, [task]

    scope = "retry_task" if retry else "execute_task"
    return write_once(store, by.team_id, f"{scope}:{cmd.target}", idempotency, Queued, decide)


def retry_task(
    store: Store,
    cmd: Targeted[RetryTask],
    by: Actor,
    idempotency: Idempotency | None = None,
    *,
    spending: Spending,
) -> Queued:
    wanted = cmd.command
    execute = ExecuteTask(priority=wanted.priority, options=wanted.options or DEFAULT_OPTIONS)
    again = Targeted(target=cmd.target, command=execute)
    return request_execution(store, again, by, idempotency, spending=spending, retry=True)


def cancel_task(store: Store, cmd: Targeted[CancelTask], by: Actor) -> Cancellation:
    """Cancels a task that waits, or asks the agent of one that runs to stop."""

    def decide() -> Cancellation:
        task = store.load_live(Task, cmd.target, by.team_id, "task")
        reason = cmd.command.reason
        now = task.cancel(reason, by, at=store.clock.now())
        position = store.commit(task)
        return Cancellation(task=task_data(task), now=now, reason=reason, position=position)

    return store.with_retries(decide)


def approve_work(store: Store, cmd: Targeted[ApproveWork], by: Actor) -> Changed:
    def decide() -> Changed:
        task = store.load_live(Task, cmd.target, by.team_id, "task")
        task.approve(cmd.command.comment, by, at=store.clock.now())
        position = store.commit(task)
        return Changed(data=task_data(task), position=position)

    return store.with_retries(decide)


def reject_work(store: Store, cmd: Targeted[RejectWork], by: Actor) -> Queued:
    """The work goes back to the agent: a new attempt is queued with the reviewer's reason."""

    def decide() -> Queued:
        task = store.load_live(Task, cmd.target, by.team_id, "task")
        execution_id = task.reject(cmd.command.reason, by)
        position = store.commit(task)
        data = _queued(task, execution_id)
        data["reason"] = cmd.command.reason
        return Queued(data=data, position=position)

    return store.with_retries(decide)
