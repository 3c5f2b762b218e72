"""The task read model on real SQLite and real Postgres: rows, filters, sorts, pages, search."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest

from application.commands import DeleteProject, Targeted
from application.projects import delete_project
from domain.values import Priority
from projections.rows import ProjectQuery, TaskQuery
from projections.search import SearchSyntaxError
from tests.integration.views_scenario import BACKENDS, ids, scenario, titles
from tests.integration.views_world import (
    ALICE,
    World,
    all_tasks,
    assert_rows_match_aggregates,
    settings_for,
    world,
)

# ---- rows --------------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=BACKENDS)
def s(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """One scenario per backend, built through the real handlers, shared by read-only tests."""
    yield from scenario(request, tmp_path_factory)


def test_every_row_equals_the_aggregate_it_projects(s):
    assert_rows_match_aggregates(s.world, s.rm, "team-a")
    assert_rows_match_aggregates(s.world, s.rm, "team-b")


def test_the_read_model_has_applied_the_whole_log(s):
    assert s.rm.position() == s.world.ledger.max_position()


# ---- filters -----------------------------------------------------------------------------------


def test_deleted_tasks_are_not_listed(s):
    assert titles(s) == ids(s, "t1", "t2", "t3", "t4", "t6", "t7")


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        (["completed"], ["t1"]),
        (["queued", "pending"], ["t2", "t3"]),
        (["running", "failed", "cancelled"], ["t4", "t6", "t7"]),
        (["timed_out"], []),
    ],
)
def test_status_filter_takes_any_of_the_given_statuses(s, statuses, expected):
    assert titles(s, status=statuses) == ids(s, *expected)


def test_project_filter(s):
    assert titles(s, project_id=s.p2) == ids(s, "t6", "t7")


def test_assignee_filter(s):
    assert titles(s, assigned_to="alice") == ids(s, "t1", "t4")


def test_a_task_matches_if_it_has_any_of_the_tags(s):
    assert titles(s, tags=["docs", "design"]) == ids(s, "t3", "t6")
    assert titles(s, tags=["css"]) == set()  # removed by the update


@pytest.mark.parametrize(
    ("minimum", "expected"),
    [
        (4, ["t4"]),
        (3, ["t1", "t4"]),
        (2, ["t1", "t2", "t4", "t6"]),
        (1, ["t1", "t2", "t3", "t4", "t6", "t7"]),
    ],
)
def test_priority_filter_is_a_minimum(s, minimum, expected):
    assert titles(s, priority=minimum) == ids(s, *expected)


def test_created_after_and_before_bound_the_creation_time(s):
    rows = all_tasks(s.rm, "team-a")
    moments = sorted({r.created_at for r in rows})
    middle = datetime.fromisoformat(moments[len(moments) // 2])
    after = {r.id for r in rows if datetime.fromisoformat(r.created_at) >= middle}
    before = {r.id for r in rows if datetime.fromisoformat(r.created_at) <= middle}
    assert titles(s, created_after=middle) == after
    assert titles(s, created_before=middle) == before
    assert titles(s, created_after=middle, created_before=middle) == after & before


def test_filters_combine(s):
    assert titles(s, status=["cancelled", "completed"], tags=["security"], priority=4) == ids(
        s, "t4"
    )


# ---- sort and pages ----------------------------------------------------------------------------


@pytest.mark.parametrize("sort", ["created_at", "updated_at", "priority", "title", "status"])
@pytest.mark.parametrize("order", ["asc", "desc"])
def test_tasks_sort_by_any_allowed_key_then_by_id(s, sort, order):
    rows = all_tasks(s.rm, "team-a", sort=sort, order=order)

    def key(row):
        value = int(Priority[row.priority.upper()]) if sort == "priority" else getattr(row, sort)
        return (value, row.id)

    assert [r.id for r in rows] == [r.id for r in sorted(rows, key=key, reverse=order == "desc")]


def test_the_default_order_is_newest_first(s):
    rows = s.rm.list_tasks("team-a", TaskQuery()).items
    assert [r.created_at for r in rows] == sorted((r.created_at for r in rows), reverse=True)


def test_pages_split_the_listing_without_gaps_or_overlaps(s):
    pages = [s.rm.list_tasks("team-a", TaskQuery(page=n, page_size=4)) for n in (1, 2, 3)]
    assert [(p.total, p.pages, p.has_next, p.has_previous, len(p.items)) for p in pages] == [
        (6, 2, True, False, 4),
        (6, 2, False, True, 2),
        (6, 2, False, True, 0),
    ]
    whole = s.rm.list_tasks("team-a", TaskQuery(page_size=100)).items
    assert [r.id for p in pages for r in p.items] == [r.id for r in whole]


def test_an_empty_listing_has_no_pages(s):
    page = s.rm.list_tasks("team-a", TaskQuery(status=["timed_out"]))
    assert (page.items, page.total, page.pages, page.has_next, page.has_previous) == (
        [],
        0,
        0,
        False,
        False,
    )


# ---- search ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("search", "expected"),
    [
        ("authentication", ["t1", "t2"]),
        ("AUTHENTICATION", ["t1", "t2"]),
        ('"user authentication"', ["t1"]),
        ('"authentication user"', []),
        ("auth*", ["t1", "t2", "t4"]),
        ("auth* AND security", ["t1", "t4"]),
        ("auth* security", ["t1", "t4"]),
        ("login OR documentation", ["t1", "t2", "t3"]),
        ("auth* NOT security", ["t2"]),
        ("NOT auth*", ["t3", "t6", "t7"]),
        ("title:authentication", ["t1"]),
        ("description:authentication", ["t2"]),
        ("tag:frontend", ["t2", "t6"]),
        ("tags:security", ["t1", "t4"]),
        ('title:"login page"', ["t2"]),
        ("title:doc*", ["t3"]),
        ("(login OR endpoint) AND NOT title:login", ["t1", "t3"]),
        ("security OR design", ["t1", "t4", "t6"]),
        ("page", ["t2", "t6"]),
        ("pages", ["t7"]),
        ("user", ["t1", "t6"]),
        ("description:user", ["t6"]),
        ("backend", ["t1"]),
        ("experiment", []),
        ("zzz", []),
        ("!!!", ["t1", "t2", "t3", "t4", "t6", "t7"]),
    ],
)
def test_search_syntax(s, search, expected):
    assert titles(s, search=search) == ids(s, *expected)


def test_search_combines_with_filters(s):
    assert titles(s, search="auth*", status=["completed"]) == ids(s, "t1")


@pytest.mark.parametrize("search", ['"open', "(a", "a AND", "OR"])
def test_a_malformed_search_raises_a_syntax_error(s, search):
    with pytest.raises(SearchSyntaxError):
        s.rm.list_tasks("team-a", TaskQuery(search=search))
    with pytest.raises(SearchSyntaxError):
        s.rm.list_projects("team-a", ProjectQuery(search=search))


def test_search_text_is_never_sql(s):
    assert titles(s, search="x' OR 1=1 --") == set()
    assert titles(s, search='"\'; DROP TABLE tw_tasks; --"') == set()
    assert titles(s, search="title:} : * NEAR(a b)") == set()
    assert len(titles(s)) == 6


# ---- changes after the first catch-up (fresh database per test) ------------------------------


def test_a_task_deleted_later_vanishes_everywhere(tmp_path, database_url):
    with world(tmp_path, database_url) as w:
        runner = w.runner()
        project = w.project("P")
        keep, drop = w.task(project, "keep me"), w.task(project, "drop me")
        runner.catch_up()
        assert w.read_model.project_statistics("team-a", project).total_tasks == 2
        position = w.delete(drop)
        assert runner.catch_up() == position
        assert [r.id for r in all_tasks(w.read_model, "team-a")] == [keep]
        assert w.read_model.project_statistics("team-a", project).total_tasks == 1
        assert w.read_model.task_ids_of_project("team-a", project) == [keep]
        activity = w.read_model.recent_activity("team-a", project)
        assert drop not in {a.task_id for a in activity}
        assert titles_of(w, "drop") == set()


def test_a_deleted_project_is_not_listed(tmp_path, database_url):
    with world(tmp_path, database_url) as w:
        runner = w.runner()
        project = w.project("P")
        runner.catch_up()
        delete_project(w.store, Targeted(target=project, command=DeleteProject()), ALICE)
        runner.catch_up()
        assert w.read_model.list_projects("team-a", ProjectQuery()).items == []


def test_migrate_is_idempotent_and_ping_answers(tmp_path, database_url):
    with world(tmp_path, database_url) as w:
        w.read_model.migrate()
        w.read_model.ping()
        assert w.read_model.position() == 0


def test_open_read_model_picks_the_backend_from_the_settings(tmp_path, database_url):
    from infrastructure.views import open_read_model  # noqa: PLC0415

    read_model = open_read_model(settings_for(tmp_path, database_url))
    try:
        read_model.migrate()
        kind = type(read_model).__name__
        assert kind == ("PostgresReadModel" if database_url else "SqliteReadModel")
        if database_url is None:
            assert (tmp_path / "views.sqlite3").exists()
    finally:
        read_model.close()


def titles_of(w: World, search: str) -> set[str]:
    return {r.title for r in all_tasks(w.read_model, "team-a", search=search)}
