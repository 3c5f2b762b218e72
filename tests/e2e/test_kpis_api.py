"""The dashboard's KPIs over HTTP (docs/api.md, "KPIs"): after a completed and a failed scripted
run that report usage, ``GET /api/kpis`` counts the team's projects, its tasks per status, the
success rate, the total cost and the models and providers in use; another team sees zeros, a
project-scoped key its project only; bad input answers 422."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Api, token
from tests.e2e.execution_support import (
    execute,
    running_api,
    running_settings,
    scripted,
    wait_status,
)

CLAUDE = {"model": "claude-sonnet-4-5-20250929", "input_tokens": 1000, "output_tokens": 200}
GPT = {"model": "gpt-5", "input_tokens": 300, "output_tokens": 40}
HAIKU = {"model": "claude-haiku-4-5", "input_tokens": 50, "output_tokens": 5}


@pytest.fixture
def api(tmp_path: Path, database_url: str | None) -> Iterator[Api]:
    yield from running_api(running_settings(tmp_path, database_url))


def run(api: Api, project_id: str, script: list[dict[str, Any]], status: str) -> dict[str, Any]:
    task_id = scripted(api, project_id, script)
    execute(api, task_id)
    assert wait_status(api, task_id, "completed", "failed")["status"] == status
    return api.ok("GET", f"/api/tasks/{task_id}")["data"]


def kpis(api: Api, **params: Any) -> dict[str, Any]:
    params.setdefault("min_position", str(api.position()))
    return api.ok("GET", "/api/kpis", params=params)["data"]


@pytest.fixture
def spent(api: Api) -> dict[str, Any]:
    """Shop: a completed run (Claude and GPT) and a pending task; Blog: a failed run (Claude)."""
    shop, blog = api.project(name="Shop", slug="shop"), api.project(name="Blog")
    done = run(api, shop["id"], [{"usage": CLAUDE}, {"usage": GPT}, {"result": {}}], "completed")
    api.task(shop["id"])
    failed = run(api, blog["id"], [{"usage": HAIKU}, {"exit": 1}], "failed")
    return {"shop": shop, "blog": blog, "done": done, "failed": failed}


def test_the_kpis_count_projects_statuses_success_cost_models_and_providers(api, spent):
    done, failed = spent["done"], spent["failed"]
    assert done["usage"]["cost_usd"] > 0 and failed["usage"]["cost_usd"] > 0
    data = kpis(api)
    assert data["total_projects"] == 2 and data["total_tasks"] == 3
    breakdown = data["status_breakdown"]
    assert breakdown["completed"] == 1 and breakdown["failed"] == 1 and breakdown["pending"] == 1
    assert sum(breakdown.values()) == 3 and breakdown["running"] == 0
    assert data["success_rate"] == 50.0
    total = done["usage"]["cost_usd"] + failed["usage"]["cost_usd"]
    assert data["total_cost"] == pytest.approx(total)
    summary = api.ok("GET", "/api/costs/summary")["data"]
    assert data["total_cost"] == summary["total_cost_usd"]
    assert data["active_models"] == 3 and data["active_providers"] == 2

    shop = kpis(api, project_id="shop")  # a slug is resolved
    assert shop["total_projects"] == 1 and shop["success_rate"] == 100.0
    assert shop["status_breakdown"]["pending"] == 1 and shop["status_breakdown"]["failed"] == 0
    assert shop["total_cost"] == pytest.approx(done["usage"]["cost_usd"])
    assert shop["active_models"] == 2 and shop["active_providers"] == 2


def test_a_deleted_project_and_its_tasks_leave_the_kpis(api, spent):
    api.ok("DELETE", f"/api/projects/{spent['blog']['id']}")
    data = kpis(api)
    assert data["total_projects"] == 1 and data["status_breakdown"]["failed"] == 0
    assert data["success_rate"] == 100.0
    total = spent["done"]["usage"]["cost_usd"] + spent["failed"]["usage"]["cost_usd"]
    assert data["total_cost"] == pytest.approx(total)  # the money was spent all the same


def test_another_team_sees_zeros_and_a_scoped_key_its_project_only(api, spent):
    head = str(api.position())
    other = {"Authorization": f"Bearer {token(api.client, 'other-team', 'admin')}"}
    answer = api.client.get("/api/kpis", params={"min_position": head}, headers=other)
    assert answer.status_code == 200, answer.text
    data = answer.json()["data"]
    assert data["total_projects"] == 0 and data["total_tasks"] == 0
    assert set(data["status_breakdown"].values()) == {0} and data["success_rate"] == 0.0
    assert data["total_cost"] == 0 and data["active_models"] == data["active_providers"] == 0
    theirs = api.client.get("/api/kpis", params={"project_id": "shop"}, headers=other)
    assert theirs.status_code == 404 and theirs.json()["error"]["code"] == "PROJECT_NOT_FOUND"

    key = api.ok(
        "POST", "/api/auth/api-keys", json={"name": "ci", "project_id": spent["blog"]["id"]}
    )
    signed = api.client.headers.pop("Authorization")
    try:
        scoped = {"X-API-Key": key["data"]["key"]}
        mine = api.client.get("/api/kpis", params={"min_position": head}, headers=scoped)
        data = mine.json()["data"]
        assert data["total_projects"] == 1 and data["total_tasks"] == 1
        assert data["status_breakdown"]["failed"] == 1 and data["success_rate"] == 0.0
        assert data["total_cost"] == pytest.approx(spent["failed"]["usage"]["cost_usd"])
        assert data["active_models"] == 1 and data["active_providers"] == 1
        elsewhere = api.client.get("/api/kpis", params={"project_id": "shop"}, headers=scoped)
        assert elsewhere.status_code == 404
    finally:
        api.client.headers["Authorization"] = signed


@pytest.mark.parametrize(
    "params",
    [{"from": "2025-01-01"}, {"min_position": "-1"}, {"project_id": "x" * 101}, {"days": "7"}],
)
def test_bad_query_input_answers_422_in_the_envelope(api, params):
    api.error("GET", "/api/kpis", 422, "VALIDATION_ERROR", params=params)
