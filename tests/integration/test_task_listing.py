"""The task listing at scale, on real SQLite and real Postgres: keyset pages walked by cursor in
every sort and order (with tasks created between pages), the bounded count, and the indexes the
page queries walk."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest

from application import users
from infrastructure.postgres_views import PostgresReadModel
from projections.cursor import decode_cursor
from projections.read_model import ReadModel
from projections.rows import Keyset, TaskPage, TaskQuery, TaskRow
from tests.integration.views_world import ALICE, World, world

TEAM = "team-a"
SORTS = ["created_at", "updated_at", "priority", "title", "status"]
PRIORITIES = ["low", "normal", "high", "urgent"]
TITLES = ["kiwi", "apple", "fig", "banana", "cherry", "date", "elder", "grape", "Lime", "Étude"]


@pytest.fixture
def w(tmp_path: Path, database_url: str | None) -> Iterator[World]:
    with world(tmp_path, database_url) as built:
        yield built


def seed(w: World, project: str, n: int, start: int = 0) -> list[str]:
    """``n`` tasks whose titles, priorities and statuses repeat (ties for every sort)."""
    made = []
    for i in range(start, start + n):
        made.append(
            w.task(project, f"{TITLES[i % len(TITLES)]} {i % 3}", priority=PRIORITIES[i % 4])
        )
        if i % 5 == 1:
            w.execute(made[-1])
    w.runner().catch_up()
    return made


def walk(rm: ReadModel, between: Any = None, **kw: Any) -> list[TaskRow]:
    """Every page by cursor, calling ``between()`` after each."""
    rows: list[TaskRow] = []
    page = rm.list_tasks(TEAM, TaskQuery(page_size=4, **kw))
    while True:
        rows += page.items
        if between is not None:
            between()
        if page.next_cursor is None:
            assert not page.has_next
            return rows
        assert page.has_next
        sort, order, after = decode_cursor(page.next_cursor)
        assert (sort, order) == (kw.get("sort", "created_at"), kw.get("order", "desc"))
        page = rm.list_tasks(TEAM, TaskQuery(page_size=4, after=after, **kw))
        assert page.page is None and page.has_previous


def listed(rm: ReadModel, **kw: Any) -> list[str]:
    """The whole listing in one page-number read."""
    return [r.id for r in rm.list_tasks(TEAM, TaskQuery(page_size=100, **kw)).items]


@pytest.mark.parametrize("order", ["asc", "desc"])
@pytest.mark.parametrize("sort", SORTS)
def test_a_cursor_walk_serves_the_listing_in_order_once_each(w, sort, order):
    project = w.project("Web")
    seed(w, project, 23)
    walked = [r.id for r in walk(w.read_model, sort=sort, order=order)]
    assert walked == listed(w.read_model, sort=sort, order=order)
    assert len(walked) == 23


@pytest.mark.parametrize("order", ["asc", "desc"])
@pytest.mark.parametrize("sort", SORTS)
def test_pages_by_number_past_the_first_serve_the_listing_in_order(w, sort, order):
    """A page past the first walks the skipped rows' keys and ids, then reads its rows by id:
    the pages put together are the listing, in order, with the filters kept."""
    project, other = w.project("Web"), w.project("Docs")
    seed(w, project, 23)
    seed(w, other, 6, start=23)
    for kw in ({}, {"project_id": project}, {"status": ["pending"]}, {"search": "fig OR kiwi"}):
        pages, number = [], 1
        while True:
            page = w.read_model.list_tasks(
                TEAM, TaskQuery(page=number, page_size=4, sort=sort, order=order, **kw)
            )
            pages += [r.id for r in page.items]
            if not page.has_next:
                break
            number += 1
        assert pages == listed(w.read_model, sort=sort, order=order, **kw), kw
        assert number > 1 or len(pages) <= 4


@pytest.mark.parametrize("sort", SORTS)
def test_tasks_created_between_pages_neither_repeat_nor_hide_the_others(w, sort):
    project = w.project("Web")
    before = set(seed(w, project, 17))
    more = iter(range(100, 200))

    def create_two() -> None:
        seed(w, project, 1, start=next(more))
        seed(w, project, 1, start=next(more))

    walked = walk(w.read_model, between=create_two, sort=sort, order="asc")
    ids = [r.id for r in walked]
    assert len(ids) == len(set(ids))
    assert before <= set(ids)
    everything = listed(w.read_model, sort=sort, order="asc")
    assert ids == [i for i in everything if i in set(ids)]  # in the listing's order


def test_a_cursor_walk_keeps_the_filters(w):
    project, other = w.project("Web"), w.project("Docs")
    seed(w, project, 12)
    seed(w, other, 6, start=12)
    for kw in (
        {"project_id": project},
        {"status": ["queued"]},
        {"status": ["queued", "pending"], "project_id": other},
        {"search": "fig OR kiwi"},
        {"search": "fig"},
        {"search": "fig", "sort": "title", "order": "asc", "project_id": project},
        {"priority": 3, "sort": "title", "order": "asc"},
    ):
        walked = [r.id for r in walk(w.read_model, **kw)]
        assert walked == listed(w.read_model, **kw), kw
        assert walked


@pytest.mark.parametrize("few", [1, 1_000])
def test_a_search_pages_alike_whether_its_matches_drive_the_query_or_the_sort_does(w, few):
    """SQLite reads a page from a rare word's matches, a common word's by walking the sort's
    index (``search_first_below``); Postgres's planner chooses. The same pages either way."""
    project = w.project("Web")
    seed(w, project, 14)
    w.read_model.search_first_below = few
    for sort in SORTS:
        walked = [r.id for r in walk(w.read_model, search="kiwi", sort=sort)]
        assert walked == listed(w.read_model, search="kiwi", sort=sort)
        assert walked and all("kiwi" in r.title for r in walk(w.read_model, search="kiwi"))


@pytest.mark.parametrize("bound", [2, 5, 1_000])
def test_a_first_page_counted_in_its_own_statement_answers_as_the_page_then_the_count(w, bound):
    """SQLite reads a common word's first page and its count in one statement (the full-text
    matches' set built once); the answer is the one the page and then the count give, in every
    sort, order and filter, under and past the bound. Postgres is made to take the same
    statement here (it never chooses to): the SQL is shared."""
    project, other = w.project("Web"), w.project("Docs")
    seed(w, project, 14)
    seed(w, other, 5, start=14)
    rm = w.read_model
    rm.count_bound = bound
    if isinstance(rm, PostgresReadModel):
        rm._counts_with_page = lambda q, plus: bool(q.search)  # type: ignore[method-assign]
    rm.search_first_below = 1  # every word is a common word here
    counted_apart: list[TaskQuery] = []
    bounded_count = rm._bounded_count

    def counting(cur: Any, where: str, params: list[Any]) -> tuple[int, bool]:
        counted_apart.append(query)
        return bounded_count(cur, where, params)

    rm._bounded_count = counting  # type: ignore[method-assign]
    past_the_bound = []
    for word in ("kiwi", "fig OR kiwi", "title:apple", "nothing"):
        for sort in SORTS:
            for order in ("asc", "desc"):
                for scope in ({}, {"project_id": project}, {"status": ["pending"]}):
                    query = TaskQuery(page_size=2, search=word, sort=sort, order=order, **scope)
                    own_rule = rm._counts_with_page
                    rm._counts_with_page = lambda q, plus: False  # type: ignore[method-assign]
                    apart = rm.list_tasks(TEAM, query)  # the page, then the count
                    rm._counts_with_page = own_rule  # type: ignore[method-assign]
                    counted_apart.clear()
                    assert rm.list_tasks(TEAM, query) == apart, query
                    assert not counted_apart, query
                    past_the_bound.append(not apart.total_exact)
    assert any(past_the_bound) == (bound == 2)  # "fig OR kiwi" matches 4


def test_the_count_is_exact_up_to_the_bound_then_says_it_is_not(w):
    project = w.project("Web")
    seed(w, project, 10)
    rm = w.read_model
    rm.count_bound = 10
    exact = rm.list_tasks(TEAM, TaskQuery(page_size=4))
    assert (exact.total, exact.total_exact, exact.pages) == (10, True, 3)
    rm.count_bound = 3
    bounded = rm.list_tasks(TEAM, TaskQuery(page_size=4))
    assert not bounded.total_exact and bounded.total >= 4
    assert bounded.has_next and len(bounded.items) == 4
    last = rm.list_tasks(TEAM, TaskQuery(page=3, page_size=4))
    assert [len(last.items), last.has_next, last.next_cursor] == [2, False, None]
    assert (last.total, last.total_exact) == (10, True)  # a last page counts itself
    queued = rm.list_tasks(TEAM, TaskQuery(status=["queued"], page_size=4))
    assert (queued.total, queued.total_exact) == (2, True)  # under the bound: exact


def test_raw_items_are_the_rows_as_stored(w):
    project = w.project("Web")
    seed(w, project, 3)
    raw = w.read_model.list_tasks(TEAM, TaskQuery(), raw=True)
    rows = w.read_model.list_tasks(TEAM, TaskQuery())
    decoded = [msgspec.json.decode(bytes(item), type=TaskRow) for item in raw.items]
    assert decoded == rows.items
    assert msgspec.structs.replace(raw, items=[]) == msgspec.structs.replace(rows, items=[])


def test_every_task_row_field_is_stored_so_a_raw_row_is_the_api_shape():
    """A defaulted field would be missing from rows stored before it was added, which the raw
    path serves as they are: a new field needs a rebuild of the views, not a default."""
    assert TaskRow.__struct_defaults__ == ()
    assert TaskPage.__struct_defaults__ == ()


# ---- the plans walk the indexes ------------------------------------------------------------------

QUERIES = [
    *({"sort": s} for s in SORTS),
    *({"sort": s, "project": True} for s in SORTS),
    {"status": ["running"]},
    {"status": ["queued"], "sort": "updated_at", "project": True},
    # a range filter beside the status: the page still walks the status index in order
    {"status": ["pending"], "priority": 3, "project": True},
    {"status": ["pending"], "priority": 2, "sort": "updated_at"},
    {"status": ["pending"], "created_after": datetime(2026, 1, 1, tzinfo=UTC), "project": True},
]


@pytest.mark.parametrize("order", ["asc", "desc"])
@pytest.mark.parametrize("after", [False, True])
@pytest.mark.parametrize("shape", QUERIES, ids=lambda s: "-".join(map(str, s.values())))
def test_each_documented_sort_and_filter_is_an_ordered_index_walk(w, shape, after, order):
    project = w.project("Web")
    seed(w, project, 3)
    kw = {k: v for k, v in shape.items() if k != "project"}
    if shape.get("project"):
        kw["project_id"] = project
    q = TaskQuery(page_size=1, order=order, **kw)
    if after:
        key = 2 if q.sort == "priority" else "m"
        q = msgspec.structs.replace(q, after=Keyset(key=key, id="m"))
    plan = explain(w.read_model, q)
    assert "tw_tasks_" in plan, plan
    assert "TEMP B-TREE" not in plan and "Sort" not in plan, plan  # SQLite's, Postgres's sorts


def explain(rm: Any, q: TaskQuery) -> str:
    where, params = rm._task_filters(TEAM, q)
    statement, more = rm._page_statement(rm._page_where(TEAM, q, "", where), q)
    with rm._reading() as cur:
        if isinstance(rm, PostgresReadModel):  # a tiny table: make any other plan cost more
            with cur.connection.transaction():  # a read is outside one: SET LOCAL needs one
                for setting in ("enable_seqscan", "enable_bitmapscan", "enable_sort"):
                    rm._run(cur, f"SET LOCAL {setting} = off")
                rows = rm._run(cur, "EXPLAIN " + statement, [*params, *more]).fetchall()
            return "\n".join(r[0] for r in rows)
        rows = rm._run(cur, "EXPLAIN QUERY PLAN " + statement, [*params, *more]).fetchall()
        return "\n".join(str(r[-1]) for r in rows)


def test_a_users_statistics_walk_every_page_of_the_teams_tasks_by_cursor(w, monkeypatch):
    project = w.project("Web")
    seed(w, project, 9)
    monkeypatch.setattr(users, "STATISTICS_PAGE", 2)
    assert users.user_statistics(w.read_model, TEAM, ALICE.id)["tasks_created"] == 9
