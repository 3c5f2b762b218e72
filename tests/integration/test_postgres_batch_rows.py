"""The Postgres read model writes a batch's rows for one table in one statement: up to
``ROWS_IN_JSON`` rows as a JSON array read with the table's own column types, more through
``COPY`` (``PostgresReadModel._insert_rows``); task and project rows as JSON arrays of at most
``ROWS_PER_UPSERT`` rows with their search vectors (``_upsert_rows``); one row of an upsert in
one ``execute`` (``SqlBackend._run_many``). Either way the table holds exactly the rows given:
text of any shape, nulls, large integers and floats, and an upsert's ``ON CONFLICT`` clause
applied."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgspec
import pytest

from infrastructure.postgres_views import ROWS_IN_JSON, ROWS_PER_UPSERT, PostgresReadModel
from infrastructure.sql_cost_views import COST_CONFLICT, KEY
from projections.costs import TOTALS
from projections.rows import ProjectRow, TaskRow

ACTIVITY = ("position", "team_id", "project_id", "task_id", "data")
AWKWARD = ["plain", 'a "quoted" \\ back\\slash', "line\nbreak\ttab", "ünïcødé ✓ 𝄞", "{}", ""]
SIZES = [1, ROWS_IN_JSON, ROWS_IN_JSON + 1]  # one statement of JSON, the most of it, COPY


@pytest.fixture
def views(postgres_url: str) -> Iterator[PostgresReadModel]:
    model = PostgresReadModel(postgres_url)
    model.migrate()
    yield model
    model.close()


def activity(count: int) -> list[tuple[Any, ...]]:
    return [
        (
            2**40 + i,  # beyond 32 bits
            f"team-{i % 3}",
            "project",
            None if i % 2 else f"task-{i}",
            AWKWARD[i % len(AWKWARD)],
        )
        for i in range(count)
    ]


def costs(count: int, units: int) -> list[tuple[Any, ...]]:
    keys = [
        (f"team-{i}", "2026-12-04", "p", f"t{i}", f"e{i}", "agent", "prov", "m")
        for i in range(count)
    ]
    return [(*key, *(units * (n + 1) for n in range(len(TOTALS)))) for key in keys]


def rows(views: PostgresReadModel, statement: str) -> list[tuple[Any, ...]]:
    with views._reading() as cur:
        return [tuple(r) for r in cur.execute(statement).fetchall()]


@pytest.mark.parametrize("count", SIZES)
def test_a_batch_of_rows_is_stored_exactly_as_given(views: PostgresReadModel, count: int) -> None:
    given = activity(count)
    with views._writing() as cur:
        views._insert_rows(cur, "tw_activity", ACTIVITY, given)
    assert rows(views, f"SELECT {', '.join(ACTIVITY)} FROM tw_activity ORDER BY position") == given


@pytest.mark.parametrize("count", SIZES)
def test_an_upsert_applies_its_conflict_clause_to_rows_already_there(
    views: PostgresReadModel, count: int
) -> None:
    columns = (*KEY, *TOTALS)
    for units in (1, 10):  # the second batch meets every row of the first
        with views._writing() as cur:
            views._insert_rows(cur, "tw_costs", columns, costs(count, units), COST_CONFLICT)
    stored = rows(views, f"SELECT {', '.join(columns)} FROM tw_costs ORDER BY team_id")
    assert sorted(stored) == sorted(costs(count, 11))


@pytest.mark.parametrize("count", [1, 3])
def test_one_row_or_several_are_each_written_once(views: PostgresReadModel, count: int) -> None:
    statement = "INSERT INTO tw_tracking (name, position) VALUES (?, ?)"
    given = [(f"consumer-{i}", i) for i in range(count)]
    with views._writing() as cur:
        views._run_many(cur, statement, given)
        views._run_many(cur, statement, [])
    assert sorted(rows(views, "SELECT name, position FROM tw_tracking")) == given


def test_two_copied_upserts_into_one_table_in_one_transaction_each_count_once(
    views: PostgresReadModel,
) -> None:
    """The second set staged for a table does not carry the first one's rows again."""
    columns = (*KEY, *TOTALS)
    first = costs(ROWS_IN_JSON + 1, 1)
    second = [(f"other-{row[0]}", *row[1:]) for row in costs(ROWS_IN_JSON + 1, 1)]
    with views._writing() as cur:
        views._insert_rows(cur, "tw_costs", columns, first, COST_CONFLICT)
        views._insert_rows(cur, "tw_costs", columns, second, COST_CONFLICT)
    stored = rows(views, f"SELECT {', '.join(columns)} FROM tw_costs")
    assert sorted(stored) == sorted(first + second)


PRIORITIES = ["low", "normal", "high", "urgent"]  # stored as 1 to 4 (``Priority``)


def task(i: int, title: str) -> TaskRow:
    text = AWKWARD[i % len(AWKWARD)]
    return TaskRow(
        id=f"task-{i:05d}",
        slug=None if i % 2 else f"slug-{i}",
        project_id="project",
        title=f"{title} {text}",
        description=f"about {text} number{i}",
        status="pending",
        priority=PRIORITIES[i % 4],
        progress_percentage=0,
        estimated_duration=None,
        actual_duration=None if i % 3 else i / 7,
        assigned_to=None if i % 2 else f"user-{i}",
        created_by="user-1",
        created_at="2026-12-05T00:00:00.000000Z",
        updated_at=f"2026-12-05T00:00:{i % 60:02d}.000000Z",
        started_at=None,
        completed_at=None,
        tags=[] if i % 3 == 0 else [f"tag{i % 5}", text],
        metadata={"n": i, "text": text},
        dependencies=[],
        repository_url=None,
        base_branch=None,
        ticket_id=None,
        ticket_summary=None,
        test_command=None,
        attempt=0,
        execution_id=None,
        cancel_requested=False,
        result=None,
        version=1,
        team_id=f"team-{i % 2}",
        position=i + 1,
    )


@pytest.mark.parametrize("count", [1, ROWS_PER_UPSERT + 1])  # one statement, then two
def test_task_rows_are_stored_as_given_with_their_search_vectors(
    views: PostgresReadModel, count: int
) -> None:
    for title in ("first", "renamed"):  # the second set meets every row of the first
        given = [task(i, title) for i in range(count)]
        with views._writing() as cur:
            views._save_tasks(cur, given, [])
    stored = rows(views, "SELECT data, tags, title, priority FROM tw_tasks ORDER BY id")
    assert [msgspec.json.decode(r[0], type=TaskRow) for r in stored] == given
    assert [r[1] for r in stored] == [t.tags for t in given]
    assert [r[2] for r in stored] == [t.title for t in given]
    assert [r[3] for r in stored] == [PRIORITIES.index(t.priority) + 1 for t in given]
    found = rows(
        views,
        "SELECT id FROM tw_tasks WHERE search @@ to_tsquery('simple', 'renamed:A') "
        "AND search @@ to_tsquery('simple', 'number0:B') ORDER BY id",
    )
    assert found == [("task-00000",)]
    assert rows(
        views, "SELECT count(*) FROM tw_tasks WHERE search @@ to_tsquery('simple', 'first')"
    ) == [(0,)]


def test_project_rows_are_stored_as_given_with_their_search_vectors(
    views: PostgresReadModel,
) -> None:
    given = [
        ProjectRow(
            id=f"project-{i}",
            slug=None,
            name=f"Project {AWKWARD[i % len(AWKWARD)]} p{i}",
            description=AWKWARD[(i + 1) % len(AWKWARD)],
            status="active",
            created_by="user-1",
            created_at="2026-12-05T00:00:00.000000Z",
            updated_at="2026-12-05T00:00:00.000000Z",
            settings={"k": i},
            resource_limits={},
            cloned_from=None,
            version=1,
            team_id="team-1",
        )
        for i in range(3)
    ]
    with views._writing() as cur:
        views._save_projects(cur, given, [])
    stored = rows(views, "SELECT data FROM tw_projects ORDER BY id")
    assert [msgspec.json.decode(r[0], type=ProjectRow) for r in stored] == given
    found = rows(views, "SELECT id FROM tw_projects WHERE search @@ to_tsquery('simple', 'p2:A')")
    assert found == [("project-2",)]
