"""Rebuilding the read model from the log gives the same views (``projections --rebuild``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from application.commands import CreateProject, CreateTask, ExecuteTask
from application.projects import create_project
from application.tasks import create_task
from domain.values import Actor
from infrastructure.settings import Settings
from interfaces.cli import main
from interfaces.services import build, migrate
from projections.execution_rows import HitlQuery
from projections.rows import TaskQuery
from tests.builders import execute_task

ME = Actor(id="user:me", team_id="team-1", request_id="r")


def snapshot(services) -> tuple:
    tasks = services.read_model.list_tasks(ME.team_id, TaskQuery())
    queue = services.read_model.in_flight(ME.team_id)
    return (
        [(t.id, t.status, t.version) for t in tasks.items],
        tasks.total,
        [(q.task_id, q.state) for q in queue],
        services.read_model.hitl_items(ME.team_id, HitlQuery())[1],
    )


def test_a_rebuilt_read_model_equals_the_one_kept_up_to_date(
    tmp_path: Path, database_url: str | None, monkeypatch: pytest.MonkeyPatch
):
    settings = Settings(
        data_dir=tmp_path / "data", database_url=database_url, workers=0, run_projections=False
    )
    migrate(settings)
    services = build(settings)
    try:
        project = create_project(services.store, CreateProject(name="P"), ME).data["id"]
        ids = [
            create_task(services.store, CreateTask(title=f"t{n}", project_id=project), ME).data[
                "id"
            ]
            for n in range(5)
        ]
        execute_task(services.store, ids[0], ExecuteTask(), ME)
        services.runner.catch_up()  # no runner thread: nothing projects behind the test's back
        before = snapshot(services)
        assert before[1] == 5 and len(before[2]) == 1
        services.read_model.reset()
        assert services.read_model.position() == 0 and snapshot(services)[1] == 0
    finally:
        services.close()
    monkeypatch.setenv("TASKWARDEN_DATA_DIR", str(settings.data_dir))
    if database_url:
        monkeypatch.setenv("TASKWARDEN_DATABASE_URL", database_url)
    assert main(["projections", "--rebuild"]) == 0
    services = build(settings)
    try:
        assert services.read_model.position() == services.ledger.max_position()
        assert snapshot(services) == before
    finally:
        services.close()
