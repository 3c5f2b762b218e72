"""A ledger, its read model and a runner over real SQLite or Postgres, fed by the real handlers."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from uuid import UUID

import msgspec

from application import executions, projects, tasks
from application.commands import (
    CancelTask,
    CreateProject,
    CreateTask,
    DeleteTask,
    ExecuteTask,
    Targeted,
    UpdateTask,
)
from application.committer import Committer
from application.ledger import Ledger
from application.representations import task_data
from application.store import Store
from domain.project import Project
from domain.task import Task
from domain.values import Actor, TaskStatus
from infrastructure.clock import SystemClock
from infrastructure.event_store import ledger_env
from infrastructure.settings import Settings
from infrastructure.views import open_read_model
from projections.read_model import ReadModel
from projections.rows import TaskQuery, TaskRow
from projections.runner import ProjectionRunner

ALICE = Actor("user-1", "team-a", "req-1")
CAROL = Actor("user-2", "team-a", "req-2")
BOB = Actor("user-9", "team-b", "req-9")


def settings_for(tmp_path: Path, database_url: str | None) -> Settings:
    return Settings(data_dir=tmp_path, database_url=database_url)


class World:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.ledger = Ledger(env=ledger_env(settings, create_tables=True))
        self.committer = Committer(self.ledger)
        self.store = Store(self.ledger, self.committer, clock=SystemClock())
        self.read_model = open_read_model(settings)
        self.read_model.migrate()
        self.opened: list[ReadModel] = [self.read_model]
        self.runners: list[ProjectionRunner] = []

    def open_read_model(self) -> ReadModel:
        """Another connection (pool) to the same read model database."""
        read_model = open_read_model(self.settings)
        self.opened.append(read_model)
        return read_model

    def runner(self, read_model: ReadModel | None = None, batch: int = 500) -> ProjectionRunner:
        runner = ProjectionRunner(self.store, read_model or self.read_model, batch=batch)
        self.runners.append(runner)
        return runner

    def close(self) -> None:
        for runner in self.runners:
            runner.stop()
        self.committer.close()
        for read_model in self.opened:
            read_model.close()
        self.ledger.close()

    # ---- writes through the real handlers --------------------------------------------------

    def project(self, name: str, description: str = "", by: Actor = ALICE, **kw: Any) -> str:
        cmd = CreateProject(name=name, description=description, **kw)
        return str(projects.create_project(self.store, cmd, by).data["id"])

    def task(self, project_id: str, title: str, by: Actor = ALICE, **kw: Any) -> str:
        cmd = CreateTask(title=title, project_id=project_id, **kw)
        return str(tasks.create_task(self.store, cmd, by).data["id"])

    def update(self, task_id: str, by: Actor = ALICE, **kw: Any) -> int:
        cmd = Targeted(target=task_id, command=UpdateTask(**kw))
        return tasks.update_task(self.store, cmd, by).position

    def delete(self, task_id: str, by: Actor = ALICE) -> int:
        cmd = Targeted(target=task_id, command=DeleteTask(reason="gone"))
        return tasks.delete_task(self.store, cmd, by).position

    def execute(self, task_id: str, by: Actor = ALICE) -> int:
        command = Targeted(target=task_id, command=ExecuteTask())
        return executions.request_execution(
            self.store, command, by, spending=self.read_model
        ).position

    def cancel(self, task_id: str, by: Actor = ALICE) -> int:
        cmd = Targeted(target=task_id, command=CancelTask(reason="no"))
        return executions.cancel_task(self.store, cmd, by).position

    def start(self, task_id: str, by: Actor = ALICE) -> int:
        """What a worker records when it picks the task up (the runner is a later capability)."""
        self.execute(task_id, by)
        task = self.store.load(Task, UUID(task_id), by.team_id, "task")
        task.start_execution(task.execution_id or "", "worker-1", by, at=self.store.clock.now())
        return self.store.commit(task)

    def finish(self, task_id: str, outcome: str = "completed", by: Actor = ALICE) -> int:
        self.start(task_id, by)
        task = self.store.load(Task, UUID(task_id), by.team_id, "task")
        task.finish_execution(TaskStatus(outcome), {"exit_code": 0}, by, at=self.store.clock.now())
        return self.store.commit(task)

    # ---- reads for assertions --------------------------------------------------------------

    def truth(self, task_id: str) -> dict[str, Any]:
        task = self.ledger.repository.get(UUID(task_id))
        full = task_data(task) | {"team_id": task.team_id}
        return {k: v for k, v in full.items() if k not in SINGLE_READ_ONLY}

    def live_task_ids(self) -> set[str]:
        """Every live task in the log, by replaying the aggregates."""
        found = set()
        for notification in self.ledger.recorder.select_notifications(0, 100_000):
            event = self.ledger.mapper.to_domain_event(notification)
            if isinstance(event, Task.Created):
                task = self.ledger.repository.get(event.originator_id)
                if not task.deleted:
                    found.add(str(task.id))
        return found

    def expected_activity(self) -> int:
        """Activity rows a complete projection holds: task and project events of live things."""
        live = self.live_task_ids()
        count = 0
        for notification in self.ledger.recorder.select_notifications(0, 100_000):
            event = self.ledger.mapper.to_domain_event(notification)
            if isinstance(event, Task.Event) and str(event.originator_id) in live:
                count += 1
            elif isinstance(event, Project.Event):
                count += 1
        return count


# fields a single task read shows that listings leave out (docs/api.md, "A task")
SINGLE_READ_ONLY = frozenset({"usage", "waiting_on", "worker_id", "lease_until"})


def all_tasks(read_model: ReadModel, team_id: str, **kw: Any) -> list[TaskRow]:
    rows: list[TaskRow] = []
    page = 1
    while True:
        result = read_model.list_tasks(team_id, TaskQuery(page=page, page_size=100, **kw))
        rows += result.items
        if not result.has_next:
            return rows
        page += 1


def assert_rows_match_aggregates(world: World, read_model: ReadModel, team_id: str) -> None:
    rows = all_tasks(read_model, team_id)
    assert len({r.id for r in rows}) == len(rows)
    for row in rows:
        data = msgspec.structs.asdict(row)
        truth = world.truth(row.id)
        assert data.pop("position") > 0
        assert data == truth, {k: (v, truth.get(k)) for k, v in data.items() if truth[k] != v}


@contextmanager
def world(tmp_path: Path, database_url: str | None) -> Iterator[World]:
    built = World(settings_for(tmp_path, database_url))
    try:
        yield built
    finally:
        built.close()
