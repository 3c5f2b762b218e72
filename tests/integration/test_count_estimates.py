"""A listing's count estimate on Postgres is asked once for every page read within a few
seconds, never shared with another listing or team, and asked again once it is that old."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from infrastructure.count_estimates import KEEP_SECONDS, CountEstimates
from infrastructure.postgres_views import PostgresReadModel
from projections.rows import TaskQuery
from tests.clock import ManualClock
from tests.integration.views_world import BOB, World, world


@pytest.fixture
def w(tmp_path: Path, postgres_url: str) -> Iterator[World]:
    with world(tmp_path, postgres_url) as built:
        yield built


def test_pages_of_a_listing_share_its_estimate_for_a_few_seconds(w: World) -> None:
    project, theirs = w.project("Web"), w.project("Theirs", by=BOB)
    for i in range(6):
        w.task(project, f"task {i}")
        w.task(theirs, f"their task {i}", by=BOB)
    w.runner().catch_up()
    rm = w.read_model
    assert isinstance(rm, PostgresReadModel)
    rm.count_bound = 1  # every listing past it: its total is the estimate
    clock = ManualClock()
    rm.estimates = CountEstimates(clock.monotonic)
    asked: list[list[Any]] = []
    run = rm._run

    def running(cur: Any, statement: str, params: Any = ()) -> Any:
        if statement.startswith("EXPLAIN"):
            asked.append(list(params))
        return run(cur, statement, params)

    rm._run = running  # type: ignore[method-assign]

    first = rm.list_tasks("team-a", TaskQuery(page_size=2))
    assert not first.total_exact and len(asked) == 1
    again = rm.list_tasks("team-a", TaskQuery(page_size=2))
    second_page = rm.list_tasks("team-a", TaskQuery(page_size=2, page=2))
    assert len(asked) == 1  # the same listing: the kept estimate
    assert again.total == second_page.total == first.total

    rm.list_tasks("team-a", TaskQuery(page_size=2, project_id=project))
    rm.list_tasks("team-b", TaskQuery(page_size=2))
    assert len(asked) == 3  # another filter, another team: their own
    assert "team-b" in asked[-1]

    clock.advance(KEEP_SECONDS - 0.01)
    rm.list_tasks("team-a", TaskQuery(page_size=2))
    assert len(asked) == 3
    clock.advance(0.01)
    rm.list_tasks("team-a", TaskQuery(page_size=2))
    assert len(asked) == 4  # as old as it may be: asked again
