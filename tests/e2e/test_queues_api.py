"""Seed 000's queues over HTTP, on SQLite and Postgres: status, pause and resume (the scheduler
skips a paused band), clear, priority (claims follow it), metrics; roles and bad bodies."""

from __future__ import annotations

from typing import Any

import pytest

from application import execution_reports as reports
from application.scheduler import Claim
from tests.e2e.conftest import Api, token

BANDS = ("high_priority", "normal_priority", "low_priority")


def settled(api: Api) -> int:
    """Waits until the views show every write so far (the scheduler chooses from them)."""
    position = api.position()
    assert api.role.services.runner.wait_for(position, 30.0)
    return position


def queued(api: Api, project_id: str, priority: str, title: str = "Work") -> dict[str, Any]:
    task = api.task(project_id, title=title, priority=priority)
    api.ok("POST", f"/api/tasks/{task['id']}/execute", 202)
    return task


def claim(api: Api, worker: str = "w1") -> Claim | None:
    settled(api)
    return api.role.services.scheduler.claim(worker)


def finish(api: Api, run: Claim, outcome: str = "completed") -> None:
    store = api.role.services.store
    reports.finish(
        store, run, outcome, {"exit_code": 0 if outcome == "completed" else 1}
    )


def status(api: Api) -> dict[str, Any]:
    return api.ok("GET", "/api/queues/status", params={"min_position": settled(api)})["data"]


def as_role(api: Api, role: str, team: str = "default") -> dict[str, str]:
    return {"Authorization": f"Bearer {token(api.client, team, role)}"}


# ---- status -----------------------------------------------------------------------------------


def test_status_counts_each_band_its_queued_and_running_tasks(api):
    project = api.project()
    for priority in ("urgent", "high", "normal", "low", "low"):
        queued(api, project["id"], priority)
    running = claim(api)
    assert running is not None
    data = status(api)
    assert set(data["queues"]) == set(BANDS)
    high = data["queues"]["high_priority"]
    assert (high["size"], high["processing"]) == (1, 1)  # urgent is claimed first
    assert data["queues"]["normal_priority"]["size"] == 1
    assert data["queues"]["low_priority"]["size"] == 2
    assert all(not q["paused"] and q["reason"] is None for q in data["queues"].values())
    assert data["workers"] == {"active": 1, "idle": 0, "total": 1}
    assert set(data["performance"]) == {
        "tasks_per_minute",
        "average_processing_time",
        "success_rate",
    }


def test_status_reports_completed_today_and_performance(api):
    project = api.project()
    for _ in range(3):
        queued(api, project["id"], "high")
    for outcome in ("completed", "completed", "failed"):
        run = claim(api)
        assert run is not None
        finish(api, run, outcome)
    data = status(api)
    assert data["queues"]["high_priority"]["completed_today"] == 2
    assert data["queues"]["high_priority"]["size"] == 0
    assert data["performance"]["tasks_per_minute"] == 0.05
    assert data["performance"]["success_rate"] == pytest.approx(0.6667)
    assert data["performance"]["average_processing_time"] == "00:00:00"
    assert data["workers"]["active"] == 0


def test_another_teams_status_counts_nothing_of_this_team(api):
    project = api.project()
    queued(api, project["id"], "normal")
    other = api.client.get(
        "/api/queues/status",
        params={"min_position": settled(api)},
        headers=as_role(api, "admin", "b"),
    )
    assert other.status_code == 200
    assert {q["size"] for q in other.json()["data"]["queues"].values()} == {0}


# ---- pause and resume -------------------------------------------------------------------------


def test_a_paused_band_is_skipped_by_the_scheduler_until_it_is_resumed(api):
    project = api.project()
    high = queued(api, project["id"], "high", "Urgent fix")
    normal = queued(api, project["id"], "normal", "Chore")
    paused = api.ok(
        "POST", "/api/queues/pause", json={"queue_name": "high_priority", "reason": "maintenance"}
    )["data"]
    assert paused == {
        "queue_name": "high_priority",
        "paused": True,
        "reason": "maintenance",
        "changed": True,
    }
    first = claim(api)
    assert first is not None and first.task_id == normal["id"]
    assert claim(api, "w2") is None  # only the paused band has work
    band = status(api)["queues"]["high_priority"]
    assert (band["paused"], band["reason"], band["size"]) == (True, "maintenance", 1)
    resumed = api.ok("POST", "/api/queues/resume", json={"queue_name": "high_priority"})["data"]
    assert resumed == {
        "queue_name": "high_priority",
        "paused": False,
        "reason": None,
        "changed": True,
    }
    second = claim(api, "w2")
    assert second is not None and second.task_id == high["id"]


def test_pausing_twice_is_one_pause_and_resuming_an_open_band_changes_nothing(api):
    body = {"queue_name": "low_priority", "reason": "first"}
    api.ok("POST", "/api/queues/pause", json=body)
    head = api.position()
    again = api.ok("POST", "/api/queues/pause", json={**body, "reason": "second"})["data"]
    assert again == {
        "queue_name": "low_priority",
        "paused": True,
        "reason": "first",
        "changed": False,
    }
    assert api.position() == head
    open_band = api.ok("POST", "/api/queues/resume", json={"queue_name": "normal_priority"})
    assert open_band["data"]["changed"] is False
    assert api.position() == head


def test_a_team_that_never_paused_resumes_without_writing(api):
    head = api.position()
    answer = api.ok("POST", "/api/queues/resume", json={"queue_name": "high_priority"})["data"]
    assert answer["changed"] is False and answer["paused"] is False
    assert api.position() == head


# ---- clear ------------------------------------------------------------------------------------


def test_clear_cancels_every_queued_task_of_the_band_and_nothing_else(api):
    project = api.project()
    highs = [queued(api, project["id"], p) for p in ("urgent", "high", "high")]
    low = queued(api, project["id"], "low")
    running = claim(api)
    assert running is not None and running.task_id == highs[0]["id"]
    body = {"queue_name": "high_priority", "confirm": True}
    cleared = api.ok("DELETE", "/api/queues/clear", json=body)["data"]
    assert cleared["cleared_count"] == 2
    assert set(cleared["task_ids"]) == {highs[1]["id"], highs[2]["id"]}
    statuses = {t["id"]: api.ok("GET", f"/api/tasks/{t['id']}")["data"]["status"] for t in highs}
    assert statuses == {
        highs[0]["id"]: "running",
        highs[1]["id"]: "cancelled",
        highs[2]["id"]: "cancelled",
    }
    assert api.ok("GET", f"/api/tasks/{low['id']}")["data"]["status"] == "queued"
    again = api.ok("DELETE", "/api/queues/clear", json=body)["data"]
    assert again["cleared_count"] == 0


@pytest.mark.parametrize(
    "body",
    [
        {"queue_name": "high_priority", "confirm": False},
        {"queue_name": "high_priority"},
        {"queue_name": "urgent_priority", "confirm": True},
        {"queue_name": "high_priority", "confirm": "yes"},
    ],
)
def test_clear_without_confirmation_or_with_an_unknown_queue_is_refused(sqlite_api, body):
    project = sqlite_api.project()
    task = queued(sqlite_api, project["id"], "high")
    head = sqlite_api.position()
    sqlite_api.error("DELETE", "/api/queues/clear", 422, "VALIDATION_ERROR", json=body)
    assert sqlite_api.position() == head
    assert sqlite_api.ok("GET", f"/api/tasks/{task['id']}")["data"]["status"] == "queued"


# ---- priority ---------------------------------------------------------------------------------


def test_priority_reorders_the_queue_and_claims_follow_it(api):
    project = api.project()
    first, second, third = (queued(api, project["id"], "normal", t) for t in ("a", "b", "c"))
    answer = api.ok(
        "POST", "/api/queues/priority", json={"task_ids": [third["id"]], "priority": "urgent"}
    )["data"]
    assert answer["queue_name"] == "high_priority" and answer["priority"] == "urgent"
    assert answer["successful"] == [third["id"]] and answer["affected_count"] == 1
    api.ok("POST", "/api/queues/priority", json={"task_ids": [first["id"]], "priority": 1})
    order = [claim(api, f"w{n}") for n in range(3)]
    assert [c.task_id for c in order if c] == [third["id"], second["id"], first["id"]]
    assert api.ok("GET", f"/api/tasks/{first['id']}")["data"]["priority"] == "low"


def test_priority_fails_item_by_item_for_unknown_and_other_teams_tasks(api):
    project = api.project()
    mine = queued(api, project["id"], "low")
    other = api.client.post(
        "/api/projects/", json={"name": "B"}, headers=as_role(api, "admin", "b")
    ).json()["data"]
    theirs = api.client.post(
        "/api/tasks/",
        json={"title": "B", "project_id": other["id"]},
        headers=as_role(api, "admin", "b"),
    ).json()["data"]
    missing = "7f1d2c3b-0000-4000-8000-00000000beef"
    body = {"task_ids": [mine["id"], theirs["id"], missing], "priority": "high"}
    answer = api.ok("POST", "/api/queues/priority", json=body)["data"]
    assert answer["successful"] == [mine["id"]]
    assert answer["failed"] == [theirs["id"], missing]
    assert {(e["status"], e["code"]) for e in answer["errors"]} == {(404, "TASK_NOT_FOUND")}
    assert status(api)["queues"]["high_priority"]["size"] == 1


@pytest.mark.parametrize(
    "body",
    [
        {"task_ids": [], "priority": "high"},
        {"task_ids": ["x"], "priority": "highest"},
        {"task_ids": ["x"], "priority": 5},
        {"task_ids": ["x"]},
        {"task_ids": ["x"] * 101, "priority": "low"},
    ],
)
def test_priority_refuses_bad_bodies(sqlite_api, body):
    sqlite_api.error("POST", "/api/queues/priority", 422, "VALIDATION_ERROR", json=body)


# ---- metrics ----------------------------------------------------------------------------------


def test_metrics_count_outcomes_and_measure_waiting_and_running(api):
    project = api.project()
    for priority in ("high", "normal", "low"):
        queued(api, project["id"], priority)
    for outcome in ("completed", "failed"):
        run = claim(api)
        assert run is not None
        finish(api, run, outcome)
    settled(api)
    data = api.ok("GET", "/api/queues/metrics", params={"period": "1h"})["data"]
    assert data["period"] == "1h"
    assert data["outcomes"] == {"completed": 1, "failed": 1, "timed_out": 0, "cancelled": 0}
    assert data["finished"] == 2 and data["success_rate"] == 0.5
    assert data["throughput_per_hour"] == 2.0
    assert data["queued_now"] == 1 and data["running_now"] == 0
    assert data["wait_sample"] == 2 and data["average_wait_seconds"] >= 0
    assert data["average_run_seconds"] >= 0
    assert data["by_queue"]["high_priority"]["completed"] == 1
    assert data["by_queue"]["normal_priority"]["failed"] == 1
    assert data["by_queue"]["low_priority"]["average_run_seconds"] is None
    week = api.ok("GET", "/api/queues/metrics", params={"period": "7d"})["data"]
    assert week["finished"] == 2 and week["throughput_per_hour"] == round(2 / 168, 3)
    default = api.ok("GET", "/api/queues/metrics")["data"]
    assert default["period"] == "24h"
    api.ok("DELETE", "/api/queues/clear", json={"queue_name": "low_priority", "confirm": True})
    settled(api)
    cleared = api.ok("GET", "/api/queues/metrics", params={"period": "1h"})["data"]
    assert cleared["outcomes"]["cancelled"] == 1 and cleared["finished"] == 3
    assert cleared["throughput_per_hour"] == 2.0 and cleared["success_rate"] == 0.5  # never ran


def test_metrics_of_an_empty_team_have_no_averages(sqlite_api):
    data = sqlite_api.ok("GET", "/api/queues/metrics", params={"period": "24h"})["data"]
    assert data["finished"] == 0 and data["success_rate"] is None
    assert data["average_wait_seconds"] is None and data["average_run_seconds"] is None


@pytest.mark.parametrize("query", [{"period": "2d"}, {"period": "1w"}, {"since": "1h"}])
def test_metrics_refuse_unknown_periods_and_parameters(sqlite_api, query):
    sqlite_api.error("GET", "/api/queues/metrics", 422, "VALIDATION_ERROR", params=query)


# ---- roles and bodies -------------------------------------------------------------------------

WRITES = [
    ("POST", "/api/queues/pause", {"queue_name": "high_priority"}),
    ("POST", "/api/queues/resume", {"queue_name": "high_priority"}),
    ("POST", "/api/queues/priority", {"task_ids": ["x"], "priority": "low"}),
    ("DELETE", "/api/queues/clear", {"queue_name": "low_priority", "confirm": True}),
]


def test_a_viewer_reads_the_queues_but_changes_nothing(api):
    viewer = as_role(api, "viewer")
    head = api.position()
    for method, path, body in WRITES:
        response = api.client.request(method, path, json=body, headers=viewer)
        assert response.status_code == 403, (path, response.text)
    assert api.position() == head
    for path in ("/api/queues/status", "/api/queues/metrics"):
        assert api.client.get(path, headers=viewer).status_code == 200


def test_an_operator_pauses_and_reorders_but_only_an_admin_clears(api):
    operator = as_role(api, "operator")
    for method, path, body in WRITES[:3]:
        response = api.client.request(method, path, json=body, headers=operator)
        assert response.status_code == 200, (path, response.text)
    method, path, body = WRITES[3]
    refused = api.client.request(method, path, json=body, headers=operator)
    assert refused.status_code == 403
    assert refused.json()["error"]["details"] == {"role": "operator", "permission": "admin"}


def test_a_project_scoped_key_cannot_pause_the_whole_teams_queue(api):
    project = api.project()
    issued = api.ok(
        "POST",
        "/api/auth/api-keys",
        201,
        json={"name": "scoped", "role": "operator", "project_id": project["id"]},
    )["data"]
    headers = {"Authorization": f"Bearer {issued['key']}"}
    response = api.client.post(
        "/api/queues/pause", json={"queue_name": "high_priority"}, headers=headers
    )
    assert response.status_code == 403, response.text
    assert api.client.get("/api/queues/status", headers=headers).status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"queue_name": "high"},
        {"queue_name": "high_priority", "reason": "x" * 2001},
        {"queue_name": "high_priority", "extra": 1},
    ],
)
def test_pause_refuses_bad_bodies(sqlite_api, body):
    sqlite_api.error("POST", "/api/queues/pause", 422, "VALIDATION_ERROR", json=body)
