"""A project's analytics over HTTP (docs/analytics.md), on SQLite and Postgres, after real scripted
runs: a task created, picked up, that asked a question answered later and completed; a task that
failed twice (a retry) on a named agent; a task never run. Every figure is checked against the
stored events' own timestamps (the task history and the question's times), never the wall clock;
another team and another project's key get 404; bad input answers 422; a rebuild of the
projections gives the same answer."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from interfaces.cli import main
from tests.e2e.conftest import Api, token
from tests.e2e.execution_support import (
    eventually,
    execute,
    running_api,
    running_settings,
    scripted,
    wait_status,
)


@pytest.fixture
def api(tmp_path: Path, database_url: str | None) -> Iterator[Api]:
    yield from running_api(running_settings(tmp_path, database_url))


def seconds(since: str, until: str) -> float:
    return (datetime.fromisoformat(until) - datetime.fromisoformat(since)).total_seconds()


def history(api: Api, task_id: str) -> dict[str, list[str]]:
    """The timestamps of the task's events, by type, in order."""
    found: dict[str, list[str]] = {}
    for entry in api.ok("GET", f"/api/tasks/{task_id}/history")["data"]["history"]:
        found.setdefault(entry["type"], []).append(entry["timestamp"])
    return found


def analytics(api: Api, project: str, **params: Any) -> dict[str, Any]:
    params.setdefault("min_position", str(api.position()))
    return api.ok("GET", f"/api/projects/{project}/analytics", params=params)["data"]


@pytest.fixture
def ran(api: Api) -> dict[str, Any]:
    shop = api.project(name="Shop", slug="shop")
    asked = scripted(
        api, shop["id"], [{"ask": "Which database?"}, {"exit": 0}], estimated_duration=86400
    )
    execute(api, asked)
    question = eventually(
        lambda: api.ok("GET", f"/api/tasks/{asked}/questions")["data"]["items"],
        lambda found: bool(found) and found[0]["status"] == "pending",
        "asked",
    )[0]
    wait_status(api, asked, "needs_input")
    answer = {"question_id": question["id"], "response": "Postgres"}
    api.ok("POST", f"/api/tasks/{asked}/respond", json=answer)
    assert wait_status(api, asked, "completed", "failed")["status"] == "completed"
    failing = scripted(api, shop["id"], [{"exit": 1}])
    for _ in range(2):
        execute(api, failing, agent="scripted")
        assert wait_status(api, failing, "completed", "failed")["status"] == "failed"
    idle = api.task(shop["id"])["id"]
    question = api.ok("GET", f"/api/hitl/{question['id']}")["data"]
    return {"shop": shop, "asked": asked, "failing": failing, "idle": idle, "question": question}


def test_a_run_that_asked_a_question_shows_in_its_projects_analytics(api, ran):
    data = analytics(api, "shop", period="7d")  # a slug is resolved
    assert data["project_id"] == ran["shop"]["id"] and data["period"] == "7d"
    asked, failing = history(api, ran["asked"]), history(api, ran["failing"])
    created = asked["task.created"][0]
    started, finished = asked["task.execution_started"][0], asked["task.execution_finished"][0]

    summary = data["summary"]
    assert summary["total_tasks"] == 3 and summary["completed_tasks"] == 1
    assert summary["failed_tasks"] == 1 and summary["cancelled_tasks"] == 0
    assert summary["completion_rate"] == 0.5 and summary["productivity_score"] is None
    duration = seconds(started, finished)
    assert summary["average_completion_time"] == pytest.approx(duration, abs=1e-6)

    trends = data["task_trends"]
    assert len(trends["days"]) == 7 and trends["days"][-1] == data["to"]
    assert data["from"] == trends["days"][0]
    day = trends["days"].index(finished[:10])
    made = trends["created_per_day"]
    assert sum(made) == 3 and made[trends["days"].index(created[:10])] >= 1
    assert trends["completed_per_day"][day] == 1 and sum(trends["completed_per_day"]) == 1
    assert sum(trends["failed_per_day"]) == 1

    metrics = data["performance_metrics"]
    assert metrics["average_task_duration"] == pytest.approx(duration, abs=1e-6)
    assert metrics["median_task_duration"] == pytest.approx(duration, abs=1e-6)
    assert metrics["completed_executions"] == 1 and metrics["completion_rate"] == 0.5
    assert metrics["on_time_completion_rate"] == 1.0 and metrics["on_time_rated"] == 1

    [person] = data["team_performance"]  # both tasks were created by the one caller
    creator = api.ok("GET", f"/api/tasks/{ran['asked']}")["data"]["created_by"]
    assert person["user_id"] == creator.removeprefix("user:") and person["tasks_finished"] == 2
    assert person["user_name"] is None  # a token minted by the admin key is no user
    assert person["tasks_completed"] == 1 and person["completion_rate"] == 0.5
    assert person["average_duration"] == pytest.approx(duration, abs=1e-6)

    pickups = sorted(
        [seconds(created, started), seconds(failing["task.created"][0],
                                            failing["task.execution_started"][0])]
    )  # fmt: skip
    pickup = data["time_to_first_pickup"]
    assert pickup["tasks"] == 2
    assert pickup["average_seconds"] == pytest.approx(sum(pickups) / 2, abs=1e-6)
    assert pickup["median_seconds"] == pytest.approx(sum(pickups) / 2, abs=1e-6)

    waited = seconds(ran["question"]["created_at"], ran["question"]["decided_at"])
    waits = data["waiting_on_people"]
    assert waits["waits"] == 1 and waits["tasks"] == 1 and waits["open_waits"] == 0
    assert waits["total_seconds"] == pytest.approx(waited, abs=1e-6)
    assert waits["average_seconds_per_task"] == pytest.approx(waited, abs=1e-6)
    assert 0 < waited < duration

    agents = {a["agent"]: a for a in data["agents"]}
    assert set(agents) == {"default", "scripted"}
    assert agents["scripted"]["executions"] == 2 and agents["scripted"]["retries"] == 1
    assert agents["scripted"]["failures"] == 2 and agents["scripted"]["tasks"] == 1
    assert agents["scripted"]["failure_reasons"] == [{"reason": "exit code 1", "tasks": 1}]
    assert agents["default"]["tasks"] == 2 and agents["default"]["failures"] == 0
    assert agents["default"]["executions"] == 1 and agents["default"]["retries"] == 0


def test_an_estimate_shorter_than_the_run_makes_it_late(api, ran):
    api.ok("PATCH", f"/api/tasks/{ran['asked']}", json={"estimated_duration": 0.0})
    metrics = analytics(api, ran["shop"]["id"])["performance_metrics"]
    assert metrics["on_time_completion_rate"] == 0.0 and metrics["on_time_rated"] == 1
    api.ok("PATCH", f"/api/tasks/{ran['asked']}", json={"estimated_duration": None})
    metrics = analytics(api, ran["shop"]["id"])["performance_metrics"]
    assert metrics["on_time_completion_rate"] is None and metrics["on_time_rated"] == 0


def test_a_project_without_tasks_answers_zeros_and_nulls_for_a_year(api):
    empty = api.project(name="Empty")
    data = analytics(api, empty["id"], period="1y")
    assert len(data["task_trends"]["days"]) == 365
    assert set(data["task_trends"]["created_per_day"]) == {0}
    assert data["summary"]["total_tasks"] == 0 and data["summary"]["completion_rate"] is None
    assert data["performance_metrics"]["median_task_duration"] is None
    assert data["time_to_first_pickup"] == {
        "tasks": 0, "average_seconds": None, "median_seconds": None
    }  # fmt: skip
    assert data["waiting_on_people"]["average_seconds_per_task"] is None
    assert data["team_performance"] == [] and data["agents"] == []
    default = analytics(api, empty["id"])
    assert default["period"] == "30d" and len(default["task_trends"]["days"]) == 30


def test_another_team_and_another_projects_key_get_404_and_a_scoped_key_reads_its_own(api, ran):
    other = {"Authorization": f"Bearer {token(api.client, 'other-team', 'admin')}"}
    for ref in (ran["shop"]["id"], "shop"):
        theirs = api.client.get(f"/api/projects/{ref}/analytics", headers=other)
        assert theirs.status_code == 404, theirs.text
        assert theirs.json()["error"]["code"] == "PROJECT_NOT_FOUND"
    blog = api.project(name="Blog")
    key = api.ok("POST", "/api/auth/api-keys", json={"name": "ci", "project_id": blog["id"]})
    signed = api.client.headers.pop("Authorization")
    try:
        scoped = {"X-API-Key": key["data"]["key"]}
        elsewhere = api.client.get(f"/api/projects/{ran['shop']['id']}/analytics", headers=scoped)
        assert elsewhere.status_code == 404
        mine = api.client.get(f"/api/projects/{blog['id']}/analytics", headers=scoped)
        assert mine.status_code == 200 and mine.json()["data"]["summary"]["total_tasks"] == 0
    finally:
        api.client.headers["Authorization"] = signed


def test_a_deleted_task_leaves_the_analytics_and_a_deleted_project_is_not_found(api, ran):
    api.ok("DELETE", f"/api/tasks/{ran['idle']}")
    assert analytics(api, "shop")["summary"]["total_tasks"] == 2
    api.ok("DELETE", f"/api/projects/{ran['shop']['id']}")
    api.error("GET", "/api/projects/shop/analytics", 404, "PROJECT_NOT_FOUND")


@pytest.mark.parametrize(
    "params",
    [
        {"period": "2d"},
        {"period": "30"},
        {"period": "7D"},
        {"period": "1y "},
        {"days": "7"},
        {"min_position": "-1"},
        {"min_position": "x"},
    ],
)
def test_bad_query_input_answers_422_in_the_envelope(api, params):
    project = api.project(name="P")
    path = f"/api/projects/{project['id']}/analytics"
    api.error("GET", path, 422, "VALIDATION_ERROR", params=params)


def test_an_unknown_project_answers_404(api):
    api.error(
        "GET", "/api/projects/7f1d2c3b-0000-4000-8000-00000000beef/analytics", 404,
        "PROJECT_NOT_FOUND",
    )  # fmt: skip
    api.error("GET", "/api/projects/no-such-slug/analytics", 404, "PROJECT_NOT_FOUND")


def test_a_rebuild_of_the_projections_gives_the_same_answer(api, ran, monkeypatch):
    before = analytics(api, "shop", period="90d")
    services = api.role.services
    settings = services.settings
    services.runner.stop()
    services.read_model.reset()
    emptied = api.ok("GET", "/api/projects/shop/analytics", params={"period": "90d"})["data"]
    assert emptied["summary"]["total_tasks"] == 0 and emptied["agents"] == []
    monkeypatch.setenv("TASKWARDEN_DATA_DIR", str(settings.data_dir))
    if settings.database_url:
        monkeypatch.setenv("TASKWARDEN_DATABASE_URL", settings.database_url)
    assert main(["projections", "--rebuild"]) == 0
    services.runner.start()
    after = analytics(api, "shop", period="90d")
    assert after == before
