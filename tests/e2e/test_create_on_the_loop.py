"""A create that needs nothing from the store is decided and committed on the event loop
(``tasks.create_task_soon``): it answers as any create, and a project another process archived
since this one kept it still refuses it."""

from __future__ import annotations

import asyncio
from pathlib import Path
from uuid import UUID

import msgspec
import pytest

from application.commands import CreateTask
from application.tasks import create_task_soon
from domain.values import Actor
from infrastructure.settings import Settings
from interfaces.http.role import api_role
from tests.e2e.conftest import Api, make_settings, signed_in
from tests.e2e.test_replicas import NATS, two_processes


@pytest.fixture
def replicas(tmp_path: Path, postgres_url: str) -> Settings:
    return msgspec.structs.replace(make_settings(tmp_path, postgres_url), nats_url=NATS)


def created_tasks(api: Api) -> int:
    store = api.role.services.store
    return sum(n.topic.endswith("Task.Created") for n in store.notifications(0, 10_000))


def test_a_create_on_the_loop_answers_and_reads_back_as_one_off_it(api: Api) -> None:
    project = api.project()["id"]
    off = api.task(project)  # reads the project: this process keeps it from now on
    on = api.ok("POST", "/api/tasks/", 201, json={"title": "On the loop", "project_id": project})
    keyed = api.ok(
        "POST",
        "/api/tasks/",
        201,
        json={"title": "Keyed", "project_id": project},
        headers={"Idempotency-Key": "k-1"},
    )
    for created in (off, on["data"], keyed["data"]):
        read = api.ok("GET", f"/api/tasks/{created['id']}")["data"]
        assert read["project_id"] == project and read["title"] == created["title"]
    assert on["meta"]["position"] < keyed["meta"]["position"]
    assert created_tasks(api) == 3


def test_a_create_in_a_project_another_process_archived_is_refused_and_writes_nothing(
    replicas: Settings,
) -> None:
    with two_processes(replicas) as (first, other):
        one, two = signed_in(first), Api(other)
        other.headers.update(first.headers)
        project = one.project()["id"]
        one.task(project)
        one.task(project)  # on the loop, on the kept copy
        two.ok("PATCH", f"/api/projects/{project}", json={"status": "archived"})
        before = created_tasks(one)
        one.error(
            "POST",
            "/api/tasks/",
            409,
            "PROJECT_ARCHIVED",
            json={"title": "Too late", "project_id": project},
        )
        assert created_tasks(one) == before
        store = api_role(first.app).services.store
        assert store.open_projects.get(UUID(project)) is None


def test_a_create_that_needs_the_store_is_left_to_the_thread(api: Api) -> None:
    project = api.project()["id"]
    api.task(project)
    store = api.role.services.store
    by = Actor(id="token:t", team_id="default", request_id="r")
    assert asyncio.run(create_task_soon(store, CreateTask(title="x", project_id="web"), by)) is None
    for needs in ({"slug": "named"}, {"dependencies": [project]}):
        cmd = CreateTask(title="x", project_id=project, **needs)
        assert asyncio.run(create_task_soon(store, cmd, by)) is None
    other_team = Actor(id="token:t", team_id="another", request_id="r")
    cmd = CreateTask(title="x", project_id=project)
    assert asyncio.run(create_task_soon(store, cmd, other_team)) is None
    assert created_tasks(api) == 1
