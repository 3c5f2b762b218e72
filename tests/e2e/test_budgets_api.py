"""Budgets that hold (docs/costs.md, "Budgets"): scripted runs report usage; the team's daily limit
and a project's monthly budget reach 50, 80 and 100 %, each recorded once and published; at 100 %
executes answer 409 BUDGET_EXCEEDED, claims pass the scope over and the queue status says why;
raising the limit releases the work; in ``hard`` mode a running agent is stopped, in ``soft`` mode
it is told and runs on."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from application.public_events import public_events
from tests.e2e.conftest import Api
from tests.e2e.execution_support import (
    eventually,
    execute,
    running_api,
    running_settings,
    scripted,
    wait_status,
)
from tests.webhook_receiver import receiving

MODEL = "budget-model"
PRICE = {"input": 1.0, "output": 0.0, "cache_read": 0.0, "cache_write": 0.0}  # USD per million
DOLLAR = {"model": MODEL, "input_tokens": 1_000_000}  # costs 1.00 USD


@pytest.fixture
def api(tmp_path: Path, database_url: str | None) -> Iterator[Api]:
    local = ("127.0.0.0/8",)  # the webhook receiver listens on 127.0.0.1
    for api in running_api(
        running_settings(tmp_path, database_url, webhook_allowed_networks=local)
    ):
        api.ok("PUT", f"/api/pricing/models/{MODEL}", json=PRICE)
        yield api


def spend(api: Api, project_id: str, dollars: int, **fields: Any) -> str:
    """Runs a task whose agent reports ``dollars`` of usage; returns the task's id."""
    steps = [{"usage": DOLLAR} for _ in range(dollars)]
    task_id = scripted(api, project_id, [*steps, {"result": {"summary": "done"}}], **fields)
    execute(api, task_id)
    assert wait_status(api, task_id, "completed", "failed")["status"] == "completed"
    return task_id


def budget_events(api: Api) -> list[Any]:
    events, _ = public_events(api.role.services.ledger, 0, 100_000)
    return [e for e in events if e.aggregate == "budget"]


def watched(api: Api) -> None:
    """Waits until the budget watch has looked at everything stored so far."""
    services = api.role.services
    position = api.position()
    assert services.runner.wait_for(position, 30)
    assert services.budgets.wait_for(position, 30)


def settings(api: Api, **body: Any) -> dict[str, Any]:
    return api.ok("POST", "/api/settings", json=body)["data"]


def test_a_spent_daily_limit_holds_new_work_until_it_is_raised(api):
    project = api.project(name="Shop")
    settings(api, daily_cost_limit=3)
    spend(api, project["id"], 2)  # 2 of 3 USD: 50 % (66 %)
    watched(api)
    assert [(e.type, e.data["percent"]) for e in budget_events(api)] == [
        ("budget.threshold_reached", 50)
    ]
    spend(api, project["id"], 1)  # 3 of 3: 80 % and 100 %
    watched(api)
    events = budget_events(api)
    assert [(e.type, e.data["percent"]) for e in events] == [
        ("budget.threshold_reached", 50),
        ("budget.threshold_reached", 80),
        ("budget.exceeded", 100),
    ]
    exceeded = events[-1]
    assert exceeded.team_id == "default" and exceeded.project_id is None
    assert exceeded.data["scope"] == "team" and exceeded.data["limit_usd"] == 3.0
    assert exceeded.data["spent_usd"] == pytest.approx(3.0)

    waiting = api.task(project["id"], title="next")["id"]
    error = api.error("POST", f"/api/tasks/{waiting}/execute", 409, "BUDGET_EXCEEDED", json={})
    assert error["details"]["scope"] == "team" and error["details"]["exceeded"] is True
    assert "daily cost limit" in error["message"]
    assert api.ok("GET", f"/api/tasks/{waiting}")["data"]["status"] == "pending"

    status = api.ok("GET", "/api/queues/status")["data"]
    [team] = status["budgets"]
    assert team["exceeded"] and team["scope"] == "team" and "is spent" in team["why"]

    settings(api, daily_cost_limit=10)  # raised: the work goes on
    execute(api, waiting)
    assert wait_status(api, waiting, "completed")["status"] == "completed"
    watched(api)
    assert len(budget_events(api)) == 3  # 3 of 10 USD: 30 %, no threshold of the new limit


def test_claims_pass_over_work_queued_before_the_limit_was_spent(api):
    project = api.project(name="Shop")
    settings(api, daily_cost_limit=1)
    spend(api, project["id"], 1)
    watched(api)
    services = api.role.services
    queued = api.task(project["id"], title="queued before")["id"]
    settings(api, daily_cost_limit=None)
    execute(api, queued)  # the limit is gone: queued (a worker may take it at once)
    settings(api, daily_cost_limit=1)
    assert wait_status(api, queued, "queued", "completed")["status"] in ("queued", "completed")
    # a claim now passes over everything of the team: its limit is spent
    assert services.scheduler.claim("probe") is None
    status = api.ok("GET", "/api/queues/status")["data"]
    assert status["budgets"][0]["exceeded"]


def test_a_project_budget_holds_only_its_project(api):
    shop, blog = api.project(name="Shop"), api.project(name="Blog")
    settings(api, project_budgets={shop["id"]: 1})
    spend(api, shop["id"], 1)
    watched(api)
    events = budget_events(api)
    assert [e.data["percent"] for e in events] == [50, 80, 100]  # one usage passed all three
    exceeded = events[-1]
    assert exceeded.type == "budget.exceeded" and exceeded.project_id == shop["id"]
    assert exceeded.data["scope"] == "project" and len(exceeded.data["period"]) == 7  # a month
    held = api.task(shop["id"])["id"]
    api.error("POST", f"/api/tasks/{held}/execute", 409, "BUDGET_EXCEEDED", json={})
    spend(api, blog["id"], 1)  # another project runs on


def test_a_lowered_limit_is_reached_at_once(api):
    project = api.project(name="Shop")
    spend(api, project["id"], 2)
    settings(api, daily_cost_limit=2)
    watched(api)
    assert [e.data["percent"] for e in budget_events(api)] == [50, 80, 100]


def test_in_hard_mode_a_running_agent_is_stopped(api):
    project = api.project(name="Shop")
    settings(api, daily_cost_limit=1, budget_mode="hard")
    script: list[dict[str, Any]] = [
        {"usage": DOLLAR},
        {"sleep": 60},
        {"result": {"summary": "never"}},
    ]
    task_id = scripted(api, project["id"], script)
    execute(api, task_id)
    finished = wait_status(api, task_id, "cancelled", "completed", "failed")
    assert finished["status"] == "cancelled"
    history = api.ok("GET", f"/api/tasks/{task_id}/history")["data"]["history"]
    requested = [e for e in history if e["type"] == "task.cancel_requested"]
    assert requested and "budget exceeded" in requested[0]["data"]["reason"]
    assert requested[0]["actor"] == "system:budget"


def test_in_soft_mode_a_running_agent_is_told_and_runs_on(api):
    project = api.project(name="Shop")
    settings(api, daily_cost_limit=1)
    script: list[dict[str, Any]] = [
        {"usage": DOLLAR},
        {"wait_for_notice": True},
        {"result": {"summary": "done"}},
    ]
    task_id = scripted(api, project["id"], script)
    execute(api, task_id)
    assert wait_status(api, task_id, "completed", "failed", "cancelled")["status"] == "completed"
    output = eventually(
        lambda: api.ok("GET", f"/api/tasks/{task_id}/output")["data"],
        lambda data: "notice (budget)" in str(data),
        "told of the budget",
    )
    assert "daily cost limit" in str(output)


def test_the_thresholds_reach_a_webhook_that_asked_for_them(api):
    with receiving() as receiver:
        body = {"url": receiver.url("/budget"), "events": ["budget.*"]}
        hook = api.ok("POST", "/api/webhooks", 201, json=body)["data"]
        project = api.project(name="Shop")
        settings(api, daily_cost_limit=2)
        spend(api, project["id"], 2)
        got = receiver.wait("/budget", 3)
    assert [r.header("X-Event-Type") for r in got] == [
        "budget.threshold_reached",
        "budget.threshold_reached",
        "budget.exceeded",
    ]
    payload = json.loads(got[-1].body)
    assert payload["data"]["scope"] == "team" and payload["data"]["limit_usd"] == 2.0
    assert payload["team_id"] == "default" and hook["id"]
