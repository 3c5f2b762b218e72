"""The cost rollups over HTTP (docs/costs.md, "Rollups"): a scripted run's usage shows up in every
``/api/costs*`` answer, narrowed by project and days, for the caller's team (and a scoped key's
project) only, as JSON in the envelope or as CSV; bad filters answer 422."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from application.costs import columns as costs_columns
from tests.e2e.conftest import Api, token
from tests.e2e.execution_support import (
    execute,
    running_api,
    running_settings,
    scripted,
    wait_status,
)

CLAUDE = "claude-sonnet-4-5-20250929"
SPENT = {"model": CLAUDE, "input_tokens": 1000, "output_tokens": 200, "cache_read_tokens": 10}
GPT = {"model": "gpt-5", "input_tokens": 300, "output_tokens": 40, "reasoning_tokens": 7}
ENDPOINTS = (
    "",
    "/summary",
    "/daily",
    "/by-model",
    "/by-project",
    "/by-agent",
    "/by-job",
    "/by-execution",
)


@pytest.fixture
def api(tmp_path: Path, database_url: str | None) -> Iterator[Api]:
    yield from running_api(running_settings(tmp_path, database_url))


def run(api: Api, project_id: str, *usages: dict[str, Any], **fields: Any) -> dict[str, Any]:
    steps = [{"usage": u} for u in usages]
    task_id = scripted(api, project_id, [*steps, {"result": {"summary": "done"}}], **fields)
    execute(api, task_id)
    assert wait_status(api, task_id, "completed", "failed")["status"] == "completed"
    return api.ok("GET", f"/api/tasks/{task_id}")["data"]


def costs(api: Api, path: str = "", **params: Any) -> Any:
    params.setdefault("min_position", str(api.position()))
    return api.ok("GET", f"/api/costs{path}", params=params)["data"]


def by(items: list[dict[str, Any]], key: str) -> dict[str, dict[str, Any]]:
    return {item[key]: item for item in items}


@pytest.fixture
def spent(api: Api) -> dict[str, Any]:
    """Two projects: a task of the ``scripted`` agent reporting two models, and a task of the
    default agent reporting one."""
    shop, blog = api.project(name="Shop", slug="shop"), api.project(name="Blog")
    named = run(api, shop["id"], SPENT, GPT, slug="checkout", metadata={"agent": "scripted"})
    plain = run(api, blog["id"], SPENT)
    return {"shop": shop, "blog": blog, "named": named, "plain": plain}


def test_a_scripted_runs_usage_shows_up_in_every_rollup(api, spent):
    named, plain = spent["named"], spent["plain"]
    total = named["usage"]["cost_usd"] + plain["usage"]["cost_usd"]
    summary = costs(api, "/summary")
    assert summary["total_calls"] == 3 and summary["total_cost_usd"] == pytest.approx(total)
    assert summary["top_agent"] == "scripted" and summary["reasoning_tokens"] == 7
    assert summary["input_tokens"] == 2300 and summary["cache_read_tokens"] == 20

    (today,) = costs(api, "/daily", days=1)["items"]
    assert today["date"] == datetime.now(UTC).date().isoformat() and today["calls"] == 3
    week = costs(api, "/daily")["items"]
    assert len(week) == 7 and week[-1] == today and {d["calls"] for d in week[:-1]} == {0}

    models = by(costs(api, "/by-model")["items"], "model")
    assert models[CLAUDE]["calls"] == 2 and models[CLAUDE]["provider"] == "anthropic"
    assert models["gpt-5"]["tokens_out"] == 40
    projects = by(costs(api, "/by-project")["items"], "project_id")
    assert {k: v["calls"] for k, v in projects.items()} == {
        spent["shop"]["id"]: 2,
        spent["blog"]["id"]: 1,
    }
    agents = by(costs(api, "/by-agent")["items"], "agent")
    assert {k: v["calls"] for k, v in agents.items()} == {"scripted": 2, "default": 1}
    assert agents["scripted"]["cost_usd"] == pytest.approx(named["usage"]["cost_usd"])
    jobs = by(costs(api, "/by-job")["items"], "task_id")
    assert jobs[named["id"]]["job_slug"] == "checkout" and jobs[plain["id"]]["calls"] == 1
    runs = by(costs(api, "/by-execution")["items"], "execution_id")
    assert set(runs) == {named["execution_id"], plain["execution_id"]}
    assert runs[named["execution_id"]]["calls"] == 2 and runs[plain["execution_id"]]["calls"] == 1
    assert runs[named["execution_id"]]["agent"] == "scripted"
    assert runs[plain["execution_id"]]["task_id"] == plain["id"]

    rows = costs(api, page_size=2)
    assert rows["total"] == 3 and len(rows["items"]) == 2 and rows["has_next"]
    row = next(r for r in costs(api)["items"] if r["task_id"] == plain["id"])
    assert row["execution_id"] == plain["execution_id"] and row["agent"] == "default"


def test_filters_narrow_by_project_and_days(api, spent):
    shop = costs(api, "/summary", project_id="shop")  # a slug is resolved
    assert shop["total_calls"] == 2
    today = datetime.now(UTC).date()
    tomorrow, yesterday = today + timedelta(days=1), today - timedelta(days=1)
    for path in ENDPOINTS[1:]:
        params = {"from": str(tomorrow), "to": str(tomorrow + timedelta(days=3))}
        data = costs(api, path, **params)
        lines = data.get("items", [data])
        assert all(line.get("calls", line.get("total_calls")) == 0 for line in lines), path
    assert costs(api, to=str(yesterday))["total"] == 0
    assert costs(api, "/by-agent", **{"from": str(today), "to": str(today)})["items"]
    days = costs(api, "/daily", **{"from": str(yesterday)})["items"]
    assert [d["date"] for d in days] == [str(yesterday), str(today)]


def test_another_team_and_a_key_scoped_to_another_project_see_none_of_it(api, spent):
    head = str(api.position())
    other = {"Authorization": f"Bearer {token(api.client, 'other-team', 'admin')}"}
    for path in ENDPOINTS:
        answer = api.client.get(f"/api/costs{path}", params={"min_position": head}, headers=other)
        assert answer.status_code == 200, answer.text
        assert spent["shop"]["id"] not in answer.text and spent["named"]["id"] not in answer.text
        data = answer.json()["data"]
        assert data.get("total_calls", 0) == 0 and data.get("total", 0) == 0
        assert all(line["calls"] == 0 for line in data.get("items", []))
    named = api.client.get(
        "/api/costs/summary", params={"project_id": spent["shop"]["id"]}, headers=other
    )
    assert named.status_code == 404, named.text
    key = api.ok(
        "POST", "/api/auth/api-keys", json={"name": "ci", "project_id": spent["blog"]["id"]}
    )
    signed = api.client.headers.pop("Authorization")
    try:
        scoped = {"X-API-Key": key["data"]["key"]}
        mine = api.client.get("/api/costs/by-project", headers=scoped).json()["data"]["items"]
        assert [p["project_id"] for p in mine] == [spent["blog"]["id"]]
        elsewhere = api.client.get("/api/costs", params={"project_id": "shop"}, headers=scoped)
        assert elsewhere.status_code == 404
    finally:
        api.client.headers["Authorization"] = signed


def test_csv_answers_a_header_row_and_one_line_per_item(api, spent):
    at = str(api.position())  # the last run's usage applied to the views first
    response = api.client.get("/api/costs/by-agent", params={"format": "csv", "min_position": at})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    lines = list(csv.DictReader(io.StringIO(response.text)))
    assert {line["agent"]: line["calls"] for line in lines} == {"scripted": "2", "default": "1"}
    summary = api.client.get("/api/costs/summary", params={"format": "csv"}).text
    assert summary.splitlines()[0].startswith("total_cost_usd,total_calls")
    empty = api.client.get(
        "/api/costs", params={"format": "csv", "from": "2001-01-01", "to": "2001-01-02"}
    )
    header, *rest = empty.text.splitlines()
    assert header.startswith("team_id,day,project_id,task_id") and rest == []
    jobs = api.client.get("/api/costs/by-job", params={"format": "csv", "to": "2001-01-02"})
    assert jobs.text.splitlines() == [",".join(costs_columns("task"))]
    assert jobs.text.startswith("job_slug,project_id,task_id,cost_usd,calls")
    assert jobs.headers["content-disposition"] == 'attachment; filename="costs-task.csv"'


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/summary", {"from": "2025-13-01"}),
        ("/summary", {"from": "01/02/2025"}),
        ("/by-agent", {"to": "2025-01-01T00:00:00Z"}),
        ("/by-model", {"from": "2025-02-01", "to": "2025-01-01"}),
        ("/daily", {"days": "0"}),
        ("/daily", {"days": "367"}),
        ("/daily", {"days": "week"}),
        ("/daily", {"days": "3", "from": "2025-01-01"}),
        ("/daily", {"from": "2020-01-01", "to": "2025-01-01"}),
        ("/by-job", {"format": "xml"}),
        ("/by-project", {"surprise": "1"}),
        ("", {"page_size": "1000"}),
        ("/summary", {"days": "3"}),
    ],
)
def test_bad_filters_answer_422_in_the_envelope(api, path, params):
    api.error("GET", f"/api/costs{path}", 422, "VALIDATION_ERROR", params=params)


def test_a_project_of_another_team_is_not_found(api):
    theirs = {"Authorization": f"Bearer {token(api.client, 'other-team', 'admin')}"}
    project = api.client.post("/api/projects/", json={"name": "Theirs"}, headers=theirs).json()
    path = "/api/costs/by-agent"
    api.error("GET", path, 404, "PROJECT_NOT_FOUND", params={"project_id": project["data"]["id"]})
