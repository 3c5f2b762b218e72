"""What the runner (a later capability) will record, done here through the real store."""

from __future__ import annotations

from uuid import UUID

from domain.task import Task
from domain.values import Actor, TaskStatus

RUNNER = Actor(id="runner-1", team_id="default", request_id="runner")


def start(api, task_id: str) -> None:  # type: ignore[no-untyped-def]
    store = api.role.services.store
    task = store.load(Task, UUID(task_id), "default", "task")
    task.start_execution(task.execution_id, "worker-1", RUNNER, at=store.clock.now())
    store.commit(task)


def to_review(api, task_id: str) -> None:  # type: ignore[no-untyped-def]
    start(api, task_id)
    store = api.role.services.store
    task = store.load(Task, UUID(task_id), "default", "task")
    task.request_review("done, please check", RUNNER)
    store.commit(task)


def fail(api, task_id: str) -> None:  # type: ignore[no-untyped-def]
    start(api, task_id)
    store = api.role.services.store
    task = store.load(Task, UUID(task_id), "default", "task")
    result = {"exit_code": 1, "error": "tests failed"}
    task.finish_execution(TaskStatus.FAILED, result, RUNNER, at=store.clock.now())
    store.commit(task)
