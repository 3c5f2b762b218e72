"""How the read model writes a batch, on real SQLite and real Postgres: the activity rows (one
``COPY`` on Postgres) carry any text exactly, and the cost rows of many batches (a temporary table
and one ``INSERT ... SELECT`` per batch on Postgres) add up; on Postgres the writes commit without
waiting for the disk, in their own transaction only."""

from __future__ import annotations

from pathlib import Path

import pytest

from projections.cost_rows import CostQuery
from tests.integration.test_cost_views import GPT, SONNET, running, spend
from tests.integration.views_world import ALICE, world

AWKWARD = 'tab\there\nnew line \\N back\\slash "quoted" \r ünïcode \u2028 end\\'


def test_activity_rows_carry_any_text_exactly(tmp_path: Path, database_url: str | None) -> None:
    with world(tmp_path, database_url) as w:
        project_id = w.project(AWKWARD, description=AWKWARD)
        task_id = w.task(project_id, AWKWARD, description="\\.")
        w.update(task_id, title=AWKWARD + " again")
        w.runner(batch=500).catch_up()
        activity = w.read_model.recent_activity(ALICE.team_id, project_id, limit=10)
        assert [(a.action, a.task_id, a.task_title) for a in activity] == [
            ("task.updated", task_id, AWKWARD + " again"),
            ("task.created", task_id, AWKWARD),
            ("project.created", None, None),
        ]
        assert {a.actor for a in activity} == {ALICE.id}


def test_cost_rows_of_many_batches_add_up(tmp_path: Path, database_url: str | None) -> None:
    with world(tmp_path, database_url) as w:
        project_id = w.project("costs")
        first, second = w.task(project_id, "one"), w.task(project_id, "two")
        running(w, first)
        running(w, second)
        spend(w, first, SONNET, GPT, SONNET)
        spend(w, second, GPT)
        runner = w.runner(batch=2)  # a row added to by several batches, each through its table
        runner.catch_up()
        spend(w, first, SONNET)
        runner.catch_up()
        totals = w.read_model.cost_totals(ALICE.team_id, CostQuery())
        assert (totals.calls, totals.input_tokens, totals.reasoning_tokens) == (5, 314, 4)
        assert totals.cost_units == 70_000_000  # 3 x 0.1 + 2 x 0.2 dollars


def test_postgres_view_writes_do_not_wait_for_the_disk_outside_their_transaction(
    tmp_path: Path, postgres_url: str
) -> None:
    with world(tmp_path, postgres_url) as w:
        read_model = w.read_model
        with read_model._writing() as cur:  # type: ignore[attr-defined]  # noqa: SLF001
            assert cur.execute("SHOW synchronous_commit").fetchone()[0] == "off"
        with read_model._reading() as cur:  # type: ignore[attr-defined]  # noqa: SLF001
            assert cur.execute("SHOW synchronous_commit").fetchone()[0] == "on"


@pytest.mark.parametrize("batch", [1, 3, 500])
def test_a_rebuild_in_any_batches_writes_the_same_activity(
    tmp_path: Path, database_url: str | None, batch: int
) -> None:
    with world(tmp_path, database_url) as w:
        project_id = w.project("p")
        task_id = w.task(project_id, AWKWARD)
        running(w, task_id)
        spend(w, task_id, SONNET, GPT)
        w.runner(batch=500).catch_up()
        before = w.read_model.recent_activity(ALICE.team_id, project_id, limit=100)
        w.read_model.reset()
        w.runner(batch=batch).catch_up()
        assert w.read_model.recent_activity(ALICE.team_id, project_id, limit=100) == before
        assert "task.usage_recorded" in {a.action for a in before}
