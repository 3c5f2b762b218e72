"""Handlers that move a task through execution: execute, cancel, retry, approve, reject.

Here they record intent; the runner (a later capability) records what actually happened.
"""

from __future__ import annotations

from typing import Any

from eventsourcing.domain import Aggregate

from application.commands import (
    ApproveWork,
    CancelTask,
    ExecuteTask,
    ExecutionOptions,
    RejectWork,
    RetryTask,
)
from application.idempotency import Idempotency, Written, write_once
from application.representations import task_data
from application.store import Store
from application.task_inputs import priority, unmet_dependencies
from domain.project import Project
from domain.task import Task
from domain.values import Actor, rfc3339

DEFAULT_OPTIONS = ExecutionOptions()


def _options(options: ExecutionOptions) -> dict[str, Any]:
    return {f: getattr(options, f) for f in options.__struct_fields__}


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


def execute_task(
    store: Store,
    ref: str,
    cmd: ExecuteTask,
    by: Actor,
    idempotency: Idempotency | None = None,
    *,
    retry: bool = False,
) -> Written:
    def decide() -> tuple[dict[str, Any], int, list[Aggregate]]:
        task = store.load_live(Task, ref, by.team_id, "task")
        project = store.load_live(Project, task.project_id, by.team_id, "project")
        project.require_open()
        execution_id = task.request_execution(
            _options(cmd.options),
            priority(cmd.priority) if cmd.priority is not None else None,
            unmet_dependencies(store, task),
            by,
            retry=retry,
        )
        data = _queued(task, execution_id)
        if retry:
            data["retry_attempt"] = task.attempt
        return data, 202, [task]

    scope = "retry_task" if retry else "execute_task"
    return write_once(store, by.team_id, f"{scope}:{ref}", idempotency, decide)


def retry_task(
    store: Store, ref: str, cmd: RetryTask, by: Actor, idempotency: Idempotency | None = None
) -> Written:
    execute = ExecuteTask(priority=cmd.priority, options=cmd.options or DEFAULT_OPTIONS)
    return execute_task(store, ref, execute, by, idempotency, retry=True)


def cancel_task(store: Store, ref: str, cmd: CancelTask, by: Actor) -> Written:
    def decide() -> Written:
        task = store.load_live(Task, ref, by.team_id, "task")
        now = task.cancel(cmd.reason, by)
        position = store.commit(task)
        return Written(
            data={
                "task_id": str(task.id),
                "status": task.status,
                "cancel_requested": not now,
                "cancelled_at": rfc3339(task.completed_at) if now else None,
                "reason": cmd.reason,
            },
            position=position,
            status=200 if now else 202,
        )

    return store.with_retries(decide)


def approve_work(store: Store, ref: str, cmd: ApproveWork, by: Actor) -> Written:
    def decide() -> Written:
        task = store.load_live(Task, ref, by.team_id, "task")
        task.approve(cmd.comment, by)
        position = store.commit(task)
        return Written(data=task_data(task), position=position)

    return store.with_retries(decide)


def reject_work(store: Store, ref: str, cmd: RejectWork, by: Actor) -> Written:
    def decide() -> Written:
        task = store.load_live(Task, ref, by.team_id, "task")
        execution_id = task.reject(cmd.reason, by)
        position = store.commit(task)
        data = _queued(task, execution_id)
        data["reason"] = cmd.reason
        return Written(data=data, position=position, status=202)

    return store.with_retries(decide)
