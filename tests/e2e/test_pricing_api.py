"""Usage priced when it is recorded (docs/costs.md): a scripted run's usage shows its computed
cost and price version in the task's history; admins change prices through /api/pricing, which
changes later usage only; models without a price are listed."""

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

CLAUDE = "claude-sonnet-4-5-20250929"
SPENT = {
    "model": CLAUDE,
    "input_tokens": 1000,
    "output_tokens": 200,
    "cache_read_tokens": 10_000,
    "cache_write_tokens": 2000,
    "cost_usd": 0.5,
}
# claude-sonnet-4-5 in the shipped table: 3 input, 15 output, 0.30 cache read, 3.75 cache write
SHIPPED_COST = (1000 * 3 + 200 * 15 + 10_000 * 0.30 + 2000 * 3.75) / 1_000_000
NEW_PRICE = {"input": 6.0, "output": 30.0, "cache_read": 0.6, "cache_write": 7.5}


@pytest.fixture
def api(tmp_path: Path, database_url: str | None) -> Iterator[Api]:
    yield from running_api(running_settings(tmp_path, database_url))


def run(api: Api, project_id: str, *usages: dict[str, Any]) -> str:
    steps = [{"usage": u} for u in usages]
    task_id = scripted(api, project_id, [*steps, {"result": {"summary": "done"}}])
    execute(api, task_id)
    assert wait_status(api, task_id, "completed", "failed")["status"] == "completed"
    return task_id


def usage_events(api: Api, task_id: str) -> list[dict[str, Any]]:
    history = api.ok("GET", f"/api/tasks/{task_id}/history")["data"]["history"]
    return [e["data"] for e in history if e["type"] == "task.usage_recorded"]


def test_a_scripted_runs_usage_carries_its_computed_cost_and_price_version(api):
    project = api.project(name="Costs")
    task_id = run(api, project["id"], SPENT, {"model": "mystery-9", "input_tokens": 5})
    first, unknown = usage_events(api, task_id)
    assert first["cost_usd"] == pytest.approx(SHIPPED_COST) and first["price_version"] == 1
    assert first["reported_cost_usd"] == 0.5 and first["provider"] == "anthropic"
    assert first["cache_write_tokens"] == 2000 and first["cache_read_tokens"] == 10_000
    assert unknown["cost_usd"] == 0.0 and unknown["price_version"] is None
    task = api.ok("GET", f"/api/tasks/{task_id}")["data"]
    assert task["usage"]["cost_usd"] == pytest.approx(SHIPPED_COST)
    assert task["usage"]["cache_write_tokens"] == task["usage"]["cache_creation_tokens"] == 2000
    assert task["usage"]["models"] == [CLAUDE, "mystery-9"]
    unpriced = api.ok("GET", "/api/pricing/unpriced")["data"]["items"]
    assert unpriced == [{"model": "mystery-9"}]


def test_a_price_change_prices_later_usage_and_leaves_earlier_usage_as_it_was(api):
    project = api.project(name="Costs")
    before = run(api, project["id"], SPENT)
    changed = api.ok("PUT", "/api/pricing/models/claude-sonnet-4-5", json=NEW_PRICE)["data"]
    assert changed["price_version"] == 2
    after = run(api, project["id"], SPENT)

    assert usage_events(api, before)[0]["cost_usd"] == pytest.approx(SHIPPED_COST)
    repriced = usage_events(api, after)[0]
    assert repriced["cost_usd"] == pytest.approx(2 * SHIPPED_COST)
    assert repriced["price_version"] == 2
    table = api.ok("GET", "/api/pricing")["data"]
    in_force = [m for m in table["models"] if m["model"] == "claude-sonnet-4-5" and m["in_force"]]
    assert [m["input"] for m in in_force] == [6.0]


def test_the_shipped_table_is_shown_before_a_team_has_its_own(api):
    table = api.ok("GET", "/api/pricing")["data"]
    assert table["price_version"] is None and table["source"].startswith("default ")
    models = {m["model"] for m in table["models"]}
    assert {"claude-opus-4-5", "claude-haiku-4-5", "gpt-4o", "gpt-5", "o3", "o4-mini"} <= models


def test_only_admins_change_prices_and_bad_prices_are_refused_storing_nothing(api):
    operator = {"Authorization": f"Bearer {token(api.client, 'default', 'operator')}"}
    path = "/api/pricing/models/gpt-4o"
    response = api.client.put(path, json=NEW_PRICE, headers=operator)
    assert response.status_code == 403, response.text
    position = api.position()
    for body in (
        {**NEW_PRICE, "input": -1},
        {**NEW_PRICE, "output": 1e9},
        {**NEW_PRICE, "cache_read": "cheap"},
        {"input": 1.0},
        {**NEW_PRICE, "surprise": 1},
    ):
        api.error("PUT", path, 422, "VALIDATION_ERROR", json=body)
    api.error("PUT", "/api/pricing/models/no%20spaces", 422, "VALIDATION_ERROR", json=NEW_PRICE)
    assert api.position() == position
    assert api.ok("GET", "/api/pricing")["data"]["price_version"] is None
