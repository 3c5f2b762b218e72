"""Given a project, when a command, then events or an error (domain/project.py)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from domain.errors import DeletedError, DomainError, ProjectArchivedError
from domain.project import Project
from domain.values import Actor, ProjectStatus

ME = Actor(id="user-1", team_id="team-1", request_id="req-1")


def given(*steps: Callable[[Project], Any], **fields: Any) -> Project:
    defaults: dict[str, Any] = {
        "team_id": "team-1",
        "name": "Website",
        "description": "The public site",
        "slug": "website",
        "settings": {"agent": "claude"},
        "resource_limits": {"max_concurrent_tasks": 2},
        "status": ProjectStatus.ACTIVE.value,
        "cloned_from": None,
        "actor": ME.id,
        "request_id": ME.request_id,
    }
    project = Project(**(defaults | fields))
    for step in steps:
        step(project)
    project.collect_events()
    return project


def then_events(project: Project) -> list[str]:
    return [type(e).__name__ for e in project.collect_events()]


def then_refused(
    project: Project, error: type[DomainError], code: str, command: Callable[[], Any]
) -> None:
    before = copy.deepcopy(project.__dict__)
    with pytest.raises(error) as raised:
        command()
    assert raised.value.code == code
    assert project.__dict__ == before


def archive(project: Project) -> None:
    project.set_status(ProjectStatus.ARCHIVED, ME)


def delete(project: Project) -> None:
    project.delete(ME)


def test_a_new_project_is_active_and_remembers_who_created_it() -> None:
    project = Project(
        team_id="team-1",
        name="Site",
        description="",
        slug=None,
        settings={},
        resource_limits={},
        status="active",
        cloned_from="source-id",
        actor="user-9",
        request_id="req-9",
    )
    [created] = project.collect_events()
    assert (created.actor, created.request_id) == ("user-9", "req-9")
    assert project.status == "active" and project.created_by == "user-9"
    assert project.cloned_from == "source-id" and not project.deleted
    project.require_open()


def test_an_update_records_only_updatable_fields_that_change() -> None:
    project = given()
    project.update(
        {"name": "Web", "description": project.description, "status": "archived", "slug": "x"}, ME
    )
    [updated] = project.collect_events()
    assert updated.changes == {"name": "Web"}
    assert (updated.actor, updated.request_id) == (ME.id, ME.request_id)
    assert project.name == "Web" and project.status == "active" and project.slug == "website"


def test_an_update_that_changes_nothing_records_nothing() -> None:
    project = given()
    project.update({"settings": {"agent": "claude"}}, ME)
    assert then_events(project) == []


def test_changing_the_slug_records_it_once() -> None:
    project = given()
    project.change_slug("site", ME)
    project.change_slug("site", ME)
    project.change_slug(None, ME)
    assert then_events(project) == ["SlugChanged", "SlugChanged"]
    assert project.slug is None


@pytest.mark.parametrize(
    "status,event",
    [(ProjectStatus.ARCHIVED, "Archived"), (ProjectStatus.COMPLETED, "Completed")],
    ids=str,
)
def test_a_project_that_is_not_active_refuses_new_work(status: ProjectStatus, event: str) -> None:
    project = given()
    project.set_status(status, ME)
    [changed] = project.collect_events()
    assert type(changed).__name__ == event
    assert (changed.actor, changed.request_id) == (ME.id, ME.request_id)
    assert project.status == status.value
    with pytest.raises(ProjectArchivedError) as raised:
        project.require_open()
    assert raised.value.code == "PROJECT_ARCHIVED"


def test_a_reopened_project_accepts_work_again() -> None:
    project = given(archive)
    project.set_status(ProjectStatus.ACTIVE, ME)
    assert then_events(project) == ["Reopened"]
    project.require_open()


def test_setting_the_current_status_records_nothing() -> None:
    project = given(archive)
    project.set_status(ProjectStatus.ARCHIVED, ME)
    assert then_events(project) == []


def test_an_archived_project_can_still_be_edited() -> None:
    project = given(archive)
    project.update({"description": "kept for the record"}, ME)
    assert then_events(project) == ["Updated"]


def test_deleting_a_project_is_recorded() -> None:
    project = given()
    project.delete(ME)
    [deleted] = project.collect_events()
    assert type(deleted).__name__ == "Deleted" and project.deleted
    assert (deleted.actor, deleted.request_id) == (ME.id, ME.request_id)


COMMANDS: dict[str, Callable[[Project], Any]] = {
    "update": lambda p: p.update({"name": "x"}, ME),
    "change_slug": lambda p: p.change_slug("x", ME),
    "set_status": archive,
    "delete": delete,
    "require_open": lambda p: p.require_open(),
}


@pytest.mark.parametrize("command", COMMANDS.values(), ids=COMMANDS)
def test_a_deleted_project_refuses_every_command(command: Callable[[Project], Any]) -> None:
    project = given(delete)
    then_refused(project, DeletedError, "RESOURCE_NOT_FOUND", lambda: command(project))
