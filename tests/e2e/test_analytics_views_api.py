"""The ``analytics`` views (docs/costs.md, "SQL views for BI tools") answer what the API answers:
a scripted run's usage summed from ``analytics.cost_daily`` and ``cost_by_task`` equals
``/api/costs/*`` to the last digit, ``task_facts`` equals the tasks' own answers, ``projects`` the
project listing; after ``taskwarden projections --rebuild`` the views are there with the same
rows. Postgres only: SQLite has no such views."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row
from starlette.testclient import TestClient

from infrastructure.analytics_views import VIEWS
from infrastructure.settings import Settings
from interfaces.cli import main
from interfaces.http.app import create_app
from interfaces.services import migrate
from tests.e2e.conftest import Api, signed_in
from tests.e2e.execution_support import execute, running_settings, scripted, wait_status

TEAM = "default"
CLAUDE = "claude-sonnet-4-5-20250929"
SPENT = {"model": CLAUDE, "input_tokens": 1000, "output_tokens": 200, "cache_read_tokens": 10}
GPT = {"model": "gpt-5", "input_tokens": 300, "output_tokens": 40, "reasoning_tokens": 7}
SUMMED = (
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "requests",
    "calls",
    "cost_usd",
)


@pytest.fixture
def settings(tmp_path: Path, postgres_url: str) -> Settings:
    return running_settings(tmp_path, postgres_url)


@pytest.fixture
def api(settings: Settings) -> Iterator[Api]:
    migrate(settings)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield signed_in(client)


def run(api: Api, project_id: str, *usages: dict[str, Any], **fields: Any) -> dict[str, Any]:
    steps = [{"usage": u} for u in usages]
    task_id = scripted(api, project_id, [*steps, {"result": {"summary": "done"}}], **fields)
    execute(api, task_id)
    assert wait_status(api, task_id, "completed", "failed")["status"] == "completed"
    return api.ok("GET", f"/api/tasks/{task_id}")["data"]


def get(api: Api, path: str, **params: Any) -> Any:
    params.setdefault("min_position", str(api.position()))
    return api.ok("GET", path, params=params)["data"]


def view(url: str, name: str, team: str = TEAM) -> list[dict[str, Any]]:
    with psycopg.connect(url, row_factory=dict_row) as conn:
        statement = f"SELECT * FROM analytics.{name} WHERE team_id = %s"  # noqa: S608
        return conn.execute(statement, [team]).fetchall()


def summed(rows: list[dict[str, Any]], *keys: str) -> dict[tuple[Any, ...], dict[str, Any]]:
    """The rows' totals per value of ``keys``, as the API shows them (cost as a float)."""
    sums: dict[tuple[Any, ...], dict[str, Any]] = defaultdict(lambda: dict.fromkeys(SUMMED, 0))
    for row in rows:
        line = sums[tuple(row[k] for k in keys)]
        for name in SUMMED:
            line[name] += row[name]
    return {k: {**v, "cost_usd": float(v["cost_usd"])} for k, v in sums.items()}


def amounts(line: dict[str, Any]) -> dict[str, Any]:
    return {name: line[name] for name in SUMMED}


@pytest.fixture
def spent(api: Api) -> dict[str, Any]:
    return spend(api)


def spend(api: Api) -> dict[str, Any]:
    """Two projects: a task of the ``scripted`` agent reporting two models, and a task of the
    default agent reporting one, with an estimate; and a task that never ran."""
    shop, blog = api.project(name="Shop", slug="shop"), api.project(name="Blog")
    named = run(api, shop["id"], SPENT, GPT, slug="checkout", metadata={"agent": "scripted"})
    plain = run(api, blog["id"], SPENT, estimated_duration=600, priority="high")
    idle = api.task(blog["id"], title="Later", tags=["backlog"])
    get(api, "/api/tasks/")  # the read model has applied it all
    return {"shop": shop, "blog": blog, "tasks": [named, plain, idle]}


def test_the_cost_views_sum_to_what_the_cost_api_answers(api, spent, settings):
    url = settings.database_url
    daily = view(url, "cost_daily")
    assert {type(r["cost_usd"]) for r in daily} == {Decimal}
    (today,) = get(api, "/api/costs/daily", days=1)["items"]
    assert summed(daily, "day") == {(datetime.fromisoformat(today["date"]).date(),): amounts(today)}
    for path, keys, api_keys in (
        ("/by-agent", ("agent",), ("agent",)),
        ("/by-model", ("provider", "model"), ("provider", "model")),
        ("/by-project", ("project_id",), ("project_id",)),
    ):
        lines = get(api, f"/api/costs{path}")["items"]
        assert summed(daily, *keys) == {
            tuple(line[k] for k in api_keys): amounts(line) for line in lines
        }, path
    total = get(api, "/api/costs/summary")
    assert summed(view(url, "costs"))[()] == amounts(total)
    assert summed(daily)[()]["cost_usd"] == total["total_cost_usd"] > 0

    jobs = {line["task_id"]: line for line in get(api, "/api/costs/by-job")["items"]}
    by_task = {row["task_id"]: row for row in view(url, "cost_by_task")}
    assert set(by_task) == set(jobs) and len(jobs) == 2
    for task_id, row in by_task.items():
        assert (row["slug"] or task_id) == jobs[task_id]["job_slug"]
        assert summed([row])[()] == amounts(jobs[task_id])
        assert row["executions"] == 1 and row["first_day"] == row["last_day"]
    assert view(url, "cost_daily", team="another-team") == []


def test_task_facts_and_projects_show_what_the_api_shows(api, spent, settings):
    url = settings.database_url
    facts = {row["task_id"]: row for row in view(url, "task_facts")}
    assert set(facts) == {t["id"] for t in spent["tasks"]}
    for task in spent["tasks"]:
        shown, row = api.ok("GET", f"/api/tasks/{task['id']}")["data"], facts[task["id"]]
        for name in ("project_id", "slug", "title", "status", "priority", "assigned_to", "tags"):
            assert row[name] == shown[name], name
        for name in ("created_at", "updated_at", "started_at", "completed_at"):
            at = shown[name] and datetime.fromisoformat(shown[name])
            assert row[name] == at, name
        assert row["actual_duration_seconds"] == shown["actual_duration"]
        assert row["estimated_duration_seconds"] == shown["estimated_duration"]
        assert row["attempts"] == shown["attempt"]
        usage = shown.get("usage") or {"cost_usd": 0.0, "calls": 0}
        assert float(row["cost_usd"]) == usage["cost_usd"]
    named, plain, idle = (facts[t["id"]] for t in spent["tasks"])
    assert named["calls"] == 2 and plain["priority_level"] == 3 and idle["calls"] == 0
    assert plain["estimated_duration_seconds"] == 600 and idle["started_at"] is None
    assert named["cost_usd"] > 0 and idle["cost_usd"] == 0
    assert named["executions"] == plain["executions"] == 1 and idle["executions"] == 0
    assert named["agent"] == "scripted" and named["failures"] == 0
    # the facts time events by their stored timestamp: the start's, as its history shows it
    history = api.ok("GET", f"/api/tasks/{named['task_id']}/history")["data"]["history"]
    [start] = [e["timestamp"] for e in history if e["type"] == "task.execution_started"]
    assert named["first_started_at"] == datetime.fromisoformat(start)
    assert idle["first_started_at"] is None
    pickup = (named["first_started_at"] - named["created_at"]).total_seconds()
    assert named["pickup_seconds"] == pytest.approx(pickup, abs=1e-3)
    assert idle["pickup_seconds"] is None and idle["waits_on_people"] == 0

    listed = get(api, "/api/projects/")["items"]
    rows = {row["project_id"]: row for row in view(url, "projects")}
    assert {p["id"]: (p["slug"], p["name"], p["status"]) for p in listed} == {
        k: (r["slug"], r["name"], r["status"]) for k, r in rows.items()
    }


def test_a_deleted_project_keeps_its_cost_rows_and_leaves_the_task_and_project_views(
    api, spent, settings
):
    url = settings.database_url
    before = summed(view(url, "cost_daily"))[()]
    api.ok("DELETE", f"/api/projects/{spent['shop']['id']}")
    get(api, "/api/projects/")  # waits for the views to apply the deletion
    assert summed(view(url, "cost_daily"))[()] == before
    assert spent["shop"]["id"] not in {r["project_id"] for r in view(url, "projects")}
    assert spent["shop"]["id"] not in {r["project_id"] for r in view(url, "task_facts")}


def test_the_views_survive_a_rebuild_with_the_same_rows(settings, monkeypatch: pytest.MonkeyPatch):
    url = settings.database_url
    migrate(settings)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        api = signed_in(client)
        spend(api)
    before = {v.name: sorted(map(repr, view(url, v.name))) for v in VIEWS}
    monkeypatch.setenv("TASKWARDEN_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("TASKWARDEN_DATABASE_URL", url)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DELETE FROM tw_costs")  # a rebuild must bring them back
    assert view(url, "costs") == []
    assert main(["projections", "--rebuild"]) == 0
    assert {v.name: sorted(map(repr, view(url, v.name))) for v in VIEWS} == before
    assert before["costs"] and before["task_facts"]
