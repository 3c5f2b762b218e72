"""The Postgres read model writes a batch's rows for one table in one statement: up to
``ROWS_IN_JSON`` rows as a JSON array read with the table's own column types, more through
``COPY`` (``PostgresReadModel._insert_rows``); one row of an upsert in one ``execute``
(``SqlBackend._run_many``). Either way the table holds exactly the rows given: text of any
shape, nulls, large integers and floats, and an upsert's ``ON CONFLICT`` clause applied."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from infrastructure.postgres_views import ROWS_IN_JSON, PostgresReadModel
from infrastructure.sql_cost_views import COST_CONFLICT, KEY
from projections.costs import TOTALS

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
