"""A project's task listing read without loading the project (``application.listings.tasks_page``):
the page comes from the read model when it shows the project as the caller's, and from the Store's
answer otherwise, so another team's, a deleted one, one outside a scoped key's project and a
missing one are all not found, and a project the read model does not know yet lists empty."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import msgspec
import pytest

from application import projects
from application.commands import DeleteProject, Targeted
from application.errors import NotFoundError
from application.listings import tasks_page
from application.store import narrow_to_project
from projections.rows import TaskQuery
from tests.integration.views_world import ALICE, BOB, World, world


@pytest.fixture
def w(tmp_path: Path, database_url: str | None) -> Iterator[World]:
    with world(tmp_path, database_url) as built:
        yield built
    narrow_to_project(None)


def page(w: World, team_id: str, project_id: str | None) -> list[str]:
    """The titles on the first page (its rows are the stored JSON)."""
    found = tasks_page(w.store, w.read_model, team_id, TaskQuery(project_id=project_id))
    return sorted(msgspec.json.decode(item)["title"] for item in found.items)


def caught_up(w: World) -> None:
    w.runner().catch_up()


def test_the_callers_project_lists_from_the_read_model(w: World) -> None:
    project = w.project("P")
    w.task(project, "one")
    w.task(project, "two")
    caught_up(w)
    assert page(w, ALICE.team_id, project) == ["one", "two"]
    assert page(w, ALICE.team_id, project.upper()) == ["one", "two"]  # any spelling of the id


def test_another_teams_project_is_not_found_though_it_has_tasks(w: World) -> None:
    project = w.project("P")
    w.task(project, "secret")
    caught_up(w)
    with pytest.raises(NotFoundError):
        page(w, BOB.team_id, project)


def test_a_deleted_project_is_not_found(w: World) -> None:
    project = w.project("P")
    w.task(project, "gone")
    projects.delete_project(w.store, Targeted(target=project, command=DeleteProject()), ALICE)
    caught_up(w)
    with pytest.raises(NotFoundError):
        page(w, ALICE.team_id, project)


def test_a_scoped_caller_naming_another_project_is_not_found(w: World) -> None:
    mine, other = w.project("Mine"), w.project("Other")
    w.task(mine, "mine")
    w.task(other, "other")
    caught_up(w)
    narrow_to_project(mine)
    assert page(w, ALICE.team_id, None) == ["mine"]
    assert page(w, ALICE.team_id, mine) == ["mine"]
    with pytest.raises(NotFoundError):
        page(w, ALICE.team_id, other)


def test_a_project_the_read_model_does_not_know_yet_lists_empty_and_a_missing_one_not_found(
    w: World,
) -> None:
    project = w.project("Fresh")
    w.task(project, "not projected yet")
    assert page(w, ALICE.team_id, project) == []  # the Store knows it: no error
    with pytest.raises(NotFoundError):
        page(w, ALICE.team_id, str(uuid4()))
