"""A create decides on this process's copy of its project (application/open_projects.py) and is
written only if the project is still at the version read (infrastructure/unchanged.py): what
another process, another team or a narrowed key changes or must not see still holds."""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from application.commands import CreateProject, CreateTask, DeleteProject, Targeted, UpdateProject
from application.errors import NotFoundError
from application.open_projects import OpenProjects
from application.projects import create_project, delete_project, update_project
from application.store import Store, narrow_to_project
from application.tasks import create_task
from domain.errors import ProjectArchivedError
from domain.project import Project
from domain.values import Actor
from infrastructure.settings import Settings
from infrastructure.unchanged import StaleReadError
from tests.stores import on_databases, on_every_store, open_store

ALICE = Actor(id="alice", team_id="team-a", request_id="req-alice")
BOB = Actor(id="bob", team_id="team-b", request_id="req-bob")


@pytest.fixture
def settings(event_store: dict[str, Any], tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, **event_store)


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    store = open_store(settings)
    yield store
    store.close()


def project_in(store: Store, by: Actor = ALICE) -> str:
    return str(create_project(store, CreateProject(name="Website"), by).data["id"])


def task_in(store: Store, project: str, by: Actor = ALICE) -> str:
    return str(create_task(store, CreateTask(project_id=project, title="Fix it"), by).data["id"])


def archive(store: Store, project: str) -> None:
    update_project(store, Targeted(target=project, command=UpdateProject(status="archived")), ALICE)


def tasks_created(store: Store) -> int:
    return sum(n.topic.endswith("Task.Created") for n in store.notifications(0, 10_000))


@on_every_store
def test_a_commit_that_relies_on_an_aggregate_changed_since_it_was_read_writes_nothing(
    store: Store,
) -> None:
    project_id, written_id = UUID(project_in(store)), UUID(project_in(store))
    read = store.get(Project, project_id)
    archive(store, str(project_id))
    position = store.max_position()
    written = store.get(Project, written_id)
    written.update({"name": "Renamed"}, ALICE)
    with pytest.raises(StaleReadError):
        store.commit(written, unchanged=[read])
    assert store.max_position() == position
    written = store.get(Project, written_id)
    written.update({"name": "Renamed"}, ALICE)
    assert store.commit(written, unchanged=[store.get(Project, project_id)]) > position


@on_databases
def test_a_task_is_not_created_in_a_project_another_process_archived_after_this_one_kept_it(
    settings: Settings, store: Store
) -> None:
    other = open_store(settings, create_tables=False)  # another API process on the same store
    try:
        project = project_in(store)
        task_in(store, project)  # this process now keeps the project
        assert store.open_projects.get(UUID(project)) is not None
        archive(other, project)
        before = tasks_created(store)
        with pytest.raises(ProjectArchivedError):
            task_in(store, project)
        assert tasks_created(store) == before
        assert store.open_projects.get(UUID(project)) is None
        update_project(
            other, Targeted(target=project, command=UpdateProject(status="active")), ALICE
        )
        task_in(store, project)
        assert tasks_created(store) == before + 1
        delete_project(other, Targeted(target=project, command=DeleteProject()), ALICE)
        with pytest.raises(NotFoundError):
            task_in(store, project)
        assert tasks_created(store) == before + 1
    finally:
        other.close()


@on_every_store
def test_this_processs_own_archive_is_seen_by_its_next_create(store: Store) -> None:
    project = project_in(store)
    task_in(store, project)
    archive(store, project)
    with pytest.raises(ProjectArchivedError):
        task_in(store, project)


def test_another_teams_caller_and_a_key_narrowed_to_another_project_do_not_see_the_copy(
    store: Store,
) -> None:
    ours, other = project_in(store), project_in(store)
    task_in(store, ours)
    assert store.open_projects.get(UUID(ours)) is not None
    with pytest.raises(NotFoundError):
        task_in(store, ours, by=BOB)

    def narrowed() -> None:
        narrow_to_project(other)
        with pytest.raises(NotFoundError):
            task_in(store, ours)

    contextvars.copy_context().run(narrowed)
    assert task_in(store, ours)  # the copy is still good for its own team


def test_only_open_projects_are_kept_and_at_most_the_size(store: Store) -> None:
    kept = OpenProjects(size=4)
    ids = [UUID(project_in(store)) for _ in range(6)]
    for project_id in ids:
        kept.keep(store.get(Project, project_id))
        assert len(kept) <= 4
    archived = ids[-1]
    archive(store, str(archived))
    kept.keep(store.get(Project, archived))
    assert kept.get(archived) is None
