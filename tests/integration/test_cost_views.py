"""The cost rollups (projections/costs.py) on real SQLite and real Postgres: usage events saved
through real aggregates, projected by the real runner, summed per row and per grouping; a rebuild
in other batches reproduces every row exactly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest

from application.commands import ExecuteTask, ExecutionOptions
from domain.task import Task
from domain.usage import Usage
from domain.values import Actor
from projections.cost_rows import GROUP_COLUMNS, CostQuery
from projections.read_model import ReadModel
from tests.builders import execute_task
from tests.integration.views_world import ALICE, BOB, World, world

WORKER = Actor("worker:w1", "team-a", "exec")
SONNET = Usage(
    model="claude-sonnet-4-5",
    provider="anthropic",
    input_tokens=100,
    output_tokens=20,
    cache_read_tokens=1000,
    cache_write_tokens=50,
    requests=2,
    cost_usd=0.1,
)
GPT = Usage(
    model="gpt-5",
    provider="openai",
    input_tokens=7,
    output_tokens=3,
    reasoning_tokens=2,
    cost_usd=0.2,
)
ANONYMOUS = Usage(input_tokens=1)


def running(w: World, task_id: str, by: Actor = ALICE, **options: Any) -> str:
    cmd = ExecuteTask(options=ExecutionOptions(**options))
    execute_task(w.store, task_id, cmd, by)
    task = w.store.load(Task, UUID(task_id), by.team_id, "task")
    task.start_execution(str(task.execution_id), "w1", by, None, at=w.store.clock.now())
    w.store.commit(task)
    return str(task.execution_id)


def spend(w: World, task_id: str, *usages: Usage, by: Actor = WORKER) -> None:
    for usage in usages:
        task = w.store.load(Task, UUID(task_id), by.team_id, "task")
        task.record_usage(str(task.execution_id), usage, by)
        w.store.commit(task)


def everything(rm: ReadModel, team: str) -> tuple[Any, ...]:
    """Every row, every grouping and the totals of a team, as plain values."""
    rows, page = [], 1
    while True:
        found = rm.cost_rows(team, CostQuery(page=page, page_size=2))
        rows += found.items
        if not found.has_next:
            break
        page += 1
    groups = {by: rm.cost_groups(team, CostQuery(), by) for by in GROUP_COLUMNS}  # type: ignore[arg-type]
    return rows, groups, rm.cost_totals(team, CostQuery())


@pytest.fixture
def w(tmp_path, database_url) -> Any:
    with world(tmp_path, database_url) as built:
        yield built


def build(w: World) -> dict[str, str]:
    ids: dict[str, str] = {}
    ids["p1"], ids["p2"] = w.project("Platform"), w.project("Website")
    ids["theirs_p"] = w.project("Theirs", by=BOB)
    ids["codex"] = w.task(ids["p1"], "by option")
    ids["meta"] = w.task(ids["p2"], "by metadata", metadata={"agent": "claude_code"})
    ids["plain"] = w.task(ids["p1"], "default agent")
    ids["theirs"] = w.task(ids["theirs_p"], "theirs", by=BOB)
    ids["codex_run"] = running(w, ids["codex"], agent="codex")
    running(w, ids["meta"])
    running(w, ids["plain"])
    running(w, ids["theirs"], BOB)
    spend(w, ids["codex"], GPT, GPT, SONNET)
    spend(w, ids["meta"], SONNET)
    spend(w, ids["plain"], ANONYMOUS)
    spend(w, ids["theirs"], SONNET, by=Actor("worker:w2", "team-b", "exec"))
    return ids


def test_usage_is_summed_per_task_execution_agent_and_model(w):
    ids = build(w)
    w.runner(batch=3).catch_up()
    rm = w.read_model
    rows = rm.cost_rows("team-a", CostQuery()).items
    codex = [r for r in rows if r.key.task_id == ids["codex"]]
    by_model = {r.key.model: r for r in codex}
    assert set(by_model) == {"gpt-5", "claude-sonnet-4-5"}
    gpt = by_model["gpt-5"]
    assert gpt.key.agent == "codex" and gpt.key.execution_id == ids["codex_run"]
    assert gpt.key.provider == "openai" and gpt.key.project_id == ids["p1"]
    assert (gpt.totals.calls, gpt.totals.input_tokens, gpt.totals.reasoning_tokens) == (2, 14, 4)
    assert gpt.totals.cost_units == 40_000_000  # 0.4 USD exactly
    agents = {g.key["agent"]: g.totals for g in rm.cost_groups("team-a", CostQuery(), "agent")}
    assert set(agents) == {"codex", "claude_code", "default"}
    assert agents["claude_code"].cache_write_tokens == 50 and agents["default"].calls == 1
    total = rm.cost_totals("team-a", CostQuery())
    assert total.calls == 5 and total.cost_units == 60_000_000 and total.requests == 7
    anonymous = next(r for r in rows if r.key.task_id == ids["plain"])
    assert anonymous.key.model == "" and anonymous.key.provider == ""


def test_filters_narrow_to_a_project_and_to_days_and_teams_see_only_their_own(w):
    ids = build(w)
    w.runner().catch_up()
    rm = w.read_model
    today = datetime.now(UTC).date()
    only_p2 = rm.cost_totals("team-a", CostQuery(project_id=ids["p2"]))
    assert only_p2.calls == 1 and only_p2.cost_units == 10_000_000
    days = rm.cost_groups("team-a", CostQuery(day_from=str(today - timedelta(days=1))), "day")
    assert [g.key["day"] for g in days] in ([str(today)], [str(today - timedelta(days=1))])
    tomorrow = str(today + timedelta(days=1))
    assert rm.cost_totals("team-a", CostQuery(day_from=tomorrow)).calls == 0
    assert rm.cost_rows("team-a", CostQuery(day_to=str(today - timedelta(days=2)))).total == 0
    theirs = everything(rm, "team-b")
    assert [r.key.task_id for r in theirs[0]] == [ids["theirs"]]
    assert rm.cost_totals("team-c", CostQuery()).calls == 0


def test_a_rebuild_in_other_batches_reproduces_every_rollup_row_exactly(w):
    build(w)
    w.runner(batch=2).catch_up()
    before = everything(w.read_model, "team-a"), everything(w.read_model, "team-b")
    assert len(before[0][0]) == 4
    w.read_model.reset()
    assert everything(w.read_model, "team-a")[0] == []
    w.runner(batch=500).catch_up()
    after = everything(w.read_model, "team-a"), everything(w.read_model, "team-b")
    assert after == before


def test_a_usage_event_applied_late_adds_to_its_row_once(w):
    build(w)
    w.runner().catch_up()
    before = everything(w.read_model, "team-a")
    pairs = [(n.id, w.store.decode(n)) for n in w.store.notifications(0, 10_000)]
    late = next(p for p, e in pairs if isinstance(e, Task.UsageRecorded) and e.model == "gpt-5")
    w.read_model.reset()
    w.read_model.apply([(p, e) for p, e in pairs if p < late])
    w.read_model.skip(late)  # quarantined: passed over
    w.read_model.apply([(p, e) for p, e in pairs if p > late])
    assert everything(w.read_model, "team-a")[2].calls == before[2].calls - 1
    event = dict(pairs)[late]
    assert w.read_model.apply_late(late, event) is True
    assert w.read_model.apply_late(late, event) is False
    assert everything(w.read_model, "team-a") == before
