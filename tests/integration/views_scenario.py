"""One scenario per backend, built through the real handlers, shared by read-only view tests."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from application.commands import DeleteProject, Targeted, UpdateProject
from application.projects import delete_project, update_project
from tests.integration.views_world import ALICE, BOB, CAROL, World, all_tasks, world
from tests.postgres_server import fresh_database


def build(w: World) -> SimpleNamespace:
    s = SimpleNamespace(world=w, rm=w.read_model)
    s.p1 = w.project("Backend platform", "Services and APIs")
    s.p2 = w.project("Website redesign", "Marketing pages")
    s.p3 = w.project("Research notes", by=CAROL)
    s.p4 = w.project("Old project")
    s.q1 = w.project("Backend platform", "Team b", by=BOB)
    s.t1 = w.task(
        s.p1,
        "Implement user authentication",
        description="Add JWT login and refresh tokens",
        tags=["security", "backend"],
        priority="high",
        assigned_to="alice",
    )
    s.t2 = w.task(
        s.p1,
        "Fix login page",
        description="CSS broken on the authentication screen",
        tags=["frontend", "css"],
        assigned_to="bob",
    )
    s.t3 = w.task(
        s.p1, "Write API documentation", description="Document it", tags=["docs"], priority="low"
    )
    s.t4 = w.task(
        s.p1,
        "Authorize admin routes",
        description="Role based access",
        tags=["security"],
        priority="urgent",
        assigned_to="alice",
    )
    s.t5 = w.task(s.p1, "Temporary spike", description="authentication experiment")
    s.t6 = w.task(
        s.p2,
        "Design landing page",
        description="Hero section with user stories",
        tags=["frontend", "design"],
    )
    s.t7 = w.task(s.p2, "Pages for pricing", priority=1)
    s.b1 = w.task(s.q1, "Implement user authentication", by=BOB, tags=["security"])
    w.finish(s.t1)
    w.execute(s.t2)
    w.update(s.t2, title="Fix login page layout", tags=["frontend"])
    w.update(s.t3, description="Document every endpoint", progress_percentage=10)
    w.cancel(s.t4)
    w.delete(s.t5)
    w.start(s.t6)
    w.finish(s.t7, "failed")
    update_project(w.store, Targeted(target=s.p2, command=UpdateProject(status="archived")), ALICE)
    delete_project(w.store, Targeted(target=s.p4, command=DeleteProject()), ALICE)
    w.runner().catch_up()
    return s


BACKENDS = ["sqlite", "postgres"]


def scenario(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SimpleNamespace]:
    """The body of a module-scoped fixture parametrized over BACKENDS."""
    tmp = tmp_path_factory.mktemp(request.param)
    if request.param == "sqlite":
        with world(tmp, None) as w:
            yield build(w)
        return
    with fresh_database(request.getfixturevalue("postgres_admin_url")) as url, world(tmp, url) as w:
        yield build(w)


def titles(s: SimpleNamespace, **query) -> set[str]:
    return {row.id for row in all_tasks(s.rm, "team-a", **query)}


def ids(s: SimpleNamespace, *names: str) -> set[str]:
    return {getattr(s, name) for name in names}
