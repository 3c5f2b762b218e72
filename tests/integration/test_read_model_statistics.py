"""A catch-up that applied many events tells Postgres's planner what the read model now holds
and marks the pages it wrote all-visible, so that index-only walks need not visit them
(``ProjectionRunner`` ``analyze_after``, ``PostgresReadModel.refresh_statistics``: ``VACUUM
(ANALYZE)``); a short one leaves both to autovacuum; a refresh that fails does not stop the runner.

Fewer than 50 rows are written, autovacuum's own threshold for analysing a table, so a table's
statistics here can only come from the runner."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from projections.runner import ProjectionRunner
from tests.integration.views_world import World, world
from tests.postgres_server import fresh_database

TASKS = 20  # with the project: 21 events, 20 task rows


@pytest.fixture
def w(tmp_path: Path, postgres_admin_url: str) -> Iterator[World]:
    with fresh_database(postgres_admin_url) as url, world(tmp_path, url) as built:
        yield built


def reltuples(w: World, table: str) -> float:
    """What the planner was last told of the table's rows: -1 if never (PostgreSQL 14+)."""
    return float(pg_class(w, table, "reltuples"))


def all_visible(w: World, table: str) -> int:
    """The table's pages its visibility map marks all-visible, as VACUUM counted them."""
    return int(pg_class(w, table, "relallvisible"))


def pg_class(w: World, table: str, column: str) -> object:
    with psycopg.connect(w.settings.database_url or "") as conn:
        row = conn.execute(
            f"SELECT {column} FROM pg_class WHERE relname = %s",  # noqa: S608 - our names
            [table],
        ).fetchone()
    assert row is not None
    return row[0]


def runner(w: World, analyze_after: int) -> ProjectionRunner:
    found = ProjectionRunner(w.store, w.read_model, batch=5, analyze_after=analyze_after)
    w.runners.append(found)  # stopped with the world
    return found


def fill(w: World) -> None:
    project = w.project("P")
    for i in range(TASKS):
        w.task(project, f"t{i}")


def test_a_catch_up_of_many_events_analyses_the_read_model(w: World) -> None:
    fill(w)
    assert reltuples(w, "tw_tasks") == -1  # migrated, never analysed
    runner(w, analyze_after=TASKS).catch_up()
    assert reltuples(w, "tw_tasks") == TASKS
    assert reltuples(w, "tw_projects") == 1


def test_a_catch_up_of_many_events_marks_the_pages_it_wrote_all_visible(w: World) -> None:
    fill(w)
    runner(w, analyze_after=TASKS).catch_up()
    assert all_visible(w, "tw_tasks") >= 1  # ANALYZE alone counts none: only VACUUM marks them


def test_a_short_catch_up_leaves_the_statistics_to_autovacuum(w: World) -> None:
    fill(w)
    runner(w, analyze_after=TASKS + 2).catch_up()  # 21 events applied
    assert reltuples(w, "tw_tasks") == -1
    assert all_visible(w, "tw_tasks") == 0


def test_a_refresh_that_fails_does_not_stop_the_catch_up(
    w: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    fill(w)

    def broken() -> None:
        raise psycopg.OperationalError("the server went away")

    monkeypatch.setattr(w.read_model, "refresh_statistics", broken)
    assert runner(w, analyze_after=1).catch_up() == TASKS + 1
    assert w.read_model.position() == TASKS + 1
