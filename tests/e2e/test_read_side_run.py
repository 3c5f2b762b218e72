"""The read side of costs, budgets and analytics, end to end (issue 12's "done when"): scripted runs
that report usage show up in every cost rollup, the KPI answer and their project's analytics; a
price change leaves what was already recorded as it was; a run pushes the team over its daily
limit and the next execute is refused; a rebuild of the projections reproduces every answer."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from interfaces.cli import main
from tests.e2e.conftest import Api
from tests.e2e.execution_support import (
    execute,
    running_api,
    running_settings,
    scripted,
    wait_status,
)

MODEL = "house-model"
DOLLAR_A_MILLION = {"input": 1.0, "output": 2.0, "cache_read": 0.5, "cache_write": 1.0}
USAGE = {
    "model": MODEL,
    "provider": "house",
    "input_tokens": 1_000_000,  # 1.00 USD
    "output_tokens": 250_000,  # 0.50 USD
    "cache_read_tokens": 200_000,  # 0.10 USD
}
ROLLUPS = (
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


def run(api: Api, project: str, usages: int, **fields: Any) -> dict[str, Any]:
    steps: list[dict[str, Any]] = [{"usage": USAGE} for _ in range(usages)]
    task_id = scripted(api, project, [*steps, {"result": {"summary": "done"}}], **fields)
    execute(api, task_id)
    assert wait_status(api, task_id, "completed", "failed")["status"] == "completed"
    return api.ok("GET", f"/api/tasks/{task_id}")["data"]


def answers(api: Api, project: str) -> dict[str, Any]:
    """Every rollup, the KPIs and the project's analytics, after every write so far."""
    at = {"min_position": str(api.position())}
    found = {path: api.ok("GET", f"/api/costs{path}", params=at)["data"] for path in ROLLUPS}
    found["rows"] = api.ok("GET", "/api/costs", params=at)["data"]
    found["kpis"] = api.ok("GET", "/api/kpis", params=at)["data"]
    found["analytics"] = api.ok(
        "GET", f"/api/projects/{project}/analytics", params={**at, "period": "7d"}
    )["data"]
    return found


def test_a_scripted_run_shows_up_everywhere_holds_the_budget_and_survives_a_rebuild(
    api, monkeypatch
):
    api.ok("PUT", f"/api/pricing/models/{MODEL}", json={**DOLLAR_A_MILLION, "provider": "house"})
    shop = api.project(name="Shop", slug="shop")
    first = run(api, shop["id"], 2, slug="checkout", metadata={"agent": "scripted"})
    assert first["usage"]["cost_usd"] == pytest.approx(3.2)  # 2 x 1.60 USD

    seen = answers(api, "shop")
    assert seen["/summary"]["total_cost_usd"] == pytest.approx(3.2)
    assert seen["/summary"]["total_calls"] == 2 and seen["/summary"]["top_agent"] == "scripted"
    assert seen["/daily"]["items"][-1]["cost_usd"] == pytest.approx(3.2)
    [model] = seen["/by-model"]["items"]
    assert model["model"] == MODEL and model["provider"] == "house" and model["calls"] == 2
    [project] = seen["/by-project"]["items"]
    assert project["project_id"] == shop["id"]
    assert seen["/by-agent"]["items"][0]["agent"] == "scripted"
    assert seen["/by-job"]["items"][0]["job_slug"] == "checkout"
    assert seen["/by-execution"]["items"][0]["execution_id"] == first["execution_id"]
    assert seen["rows"]["total"] == 1 and seen["rows"]["items"][0]["input_tokens"] == 2_000_000
    kpis = seen["kpis"]
    assert kpis["total_cost"] == pytest.approx(3.2) and kpis["total_tasks"] == 1
    assert kpis["active_models"] == kpis["active_providers"] == 1
    analytics = seen["analytics"]
    assert analytics["summary"]["completed_tasks"] == 1
    assert analytics["time_to_first_pickup"]["tasks"] == 1
    assert analytics["agents"][0]["agent"] == "scripted"

    # a new price from today on: what was recorded keeps the price it was recorded at
    api.ok("PUT", f"/api/pricing/models/{MODEL}", json={**DOLLAR_A_MILLION, "input": 3.0})
    again = answers(api, "shop")
    assert again["/by-execution"] == seen["/by-execution"] and again["rows"] == seen["rows"]
    second = run(api, shop["id"], 1)  # 3.00 + 0.50 + 0.10 USD at the new price
    assert second["usage"]["cost_usd"] == pytest.approx(3.6)

    # a limit the next run spends: no execute after it
    api.ok("POST", "/api/settings", json={"daily_cost_limit": 8})  # 6.80 spent
    run(api, shop["id"], 1)  # 10.40 of 8.00
    waiting = api.task(shop["id"], title="after the limit")["id"]
    refused = api.error("POST", f"/api/tasks/{waiting}/execute", 409, "BUDGET_EXCEEDED", json={})
    assert refused["details"]["spent_usd"] == pytest.approx(10.4)
    status = api.ok("GET", "/api/queues/status")["data"]
    assert status["budgets"][0]["exceeded"]

    before = answers(api, "shop")
    assert before["/summary"]["total_cost_usd"] == pytest.approx(10.4)
    services = api.role.services
    services.budgets.stop()
    services.runner.stop()
    services.read_model.reset()
    settings = services.settings
    monkeypatch.setenv("TASKWARDEN_DATA_DIR", str(settings.data_dir))
    if settings.database_url:
        monkeypatch.setenv("TASKWARDEN_DATABASE_URL", settings.database_url)
    assert main(["projections", "--rebuild"]) == 0
    services.runner.start()
    services.budgets.start()
    assert answers(api, "shop") == before
    api.error("POST", f"/api/tasks/{waiting}/execute", 409, "BUDGET_EXCEEDED", json={})
