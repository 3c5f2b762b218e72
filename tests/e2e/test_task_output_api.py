"""A task's execution over HTTP: its output paged by log position, its phases in both shapes, and
seed 001's job aliases by slug, on SQLite and Postgres.

Nothing runs tasks here (no workers): a test claims its task as a worker would and records what
the agent printed and reported through the application.
"""

from __future__ import annotations

from application import execution_reports
from application.scheduler import Claim
from tests.e2e.conftest import Api, token
from tests.e2e.test_hitl_api import claimed, fresh, other_team, report


def write(api: Api, claim: Claim, *chunks: tuple[int, str, str]) -> int:
    store = api.role.services.store
    return execution_reports.record_output(store, claim, list(chunks))


def phase(api: Api, claim: Claim, name: str, status: str = "started") -> None:
    store = api.role.services.store
    message = {"type": "phase", "name": name, "status": status}
    execution_reports.report(store, claim, message, None)


# ---- output ------------------------------------------------------------------------------------


def test_output_is_read_in_order_and_paged_with_after(api):
    claim = claimed(api, slug="build")
    write(api, claim, (0, "stdout", "cloning\n"), (1, "stderr", "warning: x\n"))
    position = write(api, claim, (2, "stdout", "tests pass\n"), (3, "system", "exit 0\n"))
    path = f"/api/tasks/{claim.task_id}/output"
    whole = api.ok("GET", path, params={"min_position": str(position)})["data"]
    assert whole["task_id"] == claim.task_id and whole["has_more"] is False
    assert [(c["seq"], c["stream"], c["text"]) for c in whole["items"]] == [
        (0, "stdout", "cloning\n"),
        (1, "stderr", "warning: x\n"),
        (2, "stdout", "tests pass\n"),
        (3, "system", "exit 0\n"),
    ]
    positions = [c["position"] for c in whole["items"]]
    assert positions == sorted(positions) and positions[-1] == position
    assert whole["next_after"] == position
    first = whole["items"][0]
    assert first["execution_id"] == claim.execution_id and first["timestamp"].endswith("Z")
    page = api.ok("GET", path, params={"limit": 2})["data"]
    assert [c["seq"] for c in page["items"]] == [0, 1] and page["has_more"] is True
    rest = api.ok("GET", path, params={"after": page["next_after"], "limit": 2})["data"]
    assert [c["seq"] for c in rest["items"]] == [2, 3] and rest["has_more"] is False
    end = api.ok("GET", path, params={"after": rest["next_after"]})["data"]
    assert end["items"] == [] and end["next_after"] == rest["next_after"]
    assert end["has_more"] is False
    by_slug = api.ok("GET", "/api/tasks/build/output", params={"after": positions[2]})["data"]
    assert [c["seq"] for c in by_slug["items"]] == [3]


def test_a_chunk_sent_twice_is_stored_once(api):
    claim = claimed(api)
    write(api, claim, (0, "stdout", "one\n"))
    position = write(api, claim, (0, "stdout", "one\n"), (1, "stdout", "two\n"))
    path = f"/api/tasks/{claim.task_id}/output"
    items = api.ok("GET", path, params={"min_position": str(position)})["data"]["items"]
    assert [c["text"] for c in items] == ["one\n", "two\n"]


def test_a_task_without_output_has_an_empty_page(api):
    task = api.task(api.project()["id"])
    data = api.ok("GET", f"/api/tasks/{task['id']}/output", params=fresh(api))["data"]
    assert data == {"task_id": task["id"], "items": [], "next_after": 0, "has_more": False}


def test_output_refuses_bad_cursors_limits_and_parameters(api):
    task = api.task(api.project()["id"])
    path = f"/api/tasks/{task['id']}/output"
    for query in ({"after": "-1"}, {"after": "x"}, {"limit": "0"}, {"limit": "1001"}, {"q": "1"}):
        api.error("GET", path, 422, "VALIDATION_ERROR", params=query)
    api.error("GET", "/api/tasks/nope/output", 404, "TASK_NOT_FOUND")


def test_another_team_reads_no_output_phases_or_jobs(api):
    claim = claimed(api, slug="secret")
    write(api, claim, (0, "stdout", "password=hunter2\n"))
    phase(api, claim, "plan")
    b = other_team(api)
    for path in (
        f"/api/tasks/{claim.task_id}/output",
        f"/api/tasks/{claim.task_id}/phases",
        "/api/jobs/secret",
        "/api/jobs/secret/phases",
        f"/api/jobs/{claim.task_id}",
    ):
        response = api.client.get(path, headers=b)
        assert response.status_code == 404, (path, response.text)
        assert response.json()["error"]["code"] == "TASK_NOT_FOUND"
        assert "hunter2" not in response.text
    listing = api.client.get("/api/jobs", params=fresh(api), headers=b).json()["data"]
    assert listing["total"] == 0 and listing["items"] == []
    head = api.position()
    cancelled = api.client.post("/api/jobs/secret/cancel", headers=b)
    assert cancelled.status_code == 404 and api.position() == head


def test_a_viewer_reads_output_and_phases(api):
    claim = claimed(api)
    write(api, claim, (0, "stdout", "hi\n"))
    viewer = {"Authorization": f"Bearer {token(api.client, role='viewer')}"}
    for route in ("output", "phases"):
        response = api.client.get(f"/api/tasks/{claim.task_id}/{route}", headers=viewer)
        assert response.status_code == 200, response.text


# ---- phases (seed 001) -------------------------------------------------------------------------


def test_phases_are_listed_in_order_and_mapped_to_seed_001_words(api):
    claim = claimed(api, slug="app")
    for name, status in (
        ("ba", "started"),
        ("ba", "completed"),
        ("dev", "started"),
        ("dev", "failed"),
        ("qa", "skipped"),
        ("repair", "started"),
    ):
        phase(api, claim, name, status)
    data = api.ok("GET", "/api/tasks/app/phases")["data"]
    assert data["task_id"] == claim.task_id and data["slug"] == "app"
    assert data["status"] == "running" and data["execution_id"] == claim.execution_id
    assert [(p["phase"], p["status"], p["reported_status"]) for p in data["phases"]] == [
        ("ba", "passed", "completed"),
        ("dev", "failed", "failed"),
        ("qa", "skipped", "skipped"),
        ("repair", "running", "started"),
    ]
    ba = data["phases"][0]
    assert ba["started_at"] <= ba["finished_at"] and ba["finished_at"].endswith("Z")
    assert data["phases"][3]["finished_at"] is None
    assert data["map"] == {"ba": "passed", "dev": "failed", "qa": "skipped", "repair": "running"}
    assert api.ok("GET", "/api/jobs/app/phases")["data"] == data


def test_a_phase_still_running_when_the_job_was_cancelled_shows_cancelled(api):
    claim = claimed(api, slug="stop")
    phase(api, claim, "build")
    requested = api.ok("POST", "/api/jobs/stop/cancel")["data"]
    assert requested["status"] == "cancel_requested"
    assert api.ok("GET", "/api/jobs/stop/phases")["data"]["map"] == {"build": "running"}
    store = api.role.services.store
    execution_reports.finish(store, claim, "cancelled", {})
    data = api.ok("GET", "/api/jobs/stop/phases")["data"]
    assert data["status"] == "cancelled" and data["map"] == {"build": "cancelled"}


def test_a_phase_still_running_when_the_work_went_to_review_shows_passed(api):
    claim = claimed(api, slug="reviewed", review=True)
    phase(api, claim, "test")
    store = api.role.services.store
    execution_reports.finish(store, claim, "completed", {"summary": "done"})
    data = api.ok("GET", "/api/jobs/reviewed/phases")["data"]
    assert data["status"] == "awaiting_approval" and data["map"] == {"test": "passed"}
    api.ok("POST", "/api/tasks/reviewed/reject", 202, json={"reason": "more tests"})
    assert api.ok("GET", "/api/jobs/reviewed/phases")["data"]["map"] == {"test": "pending"}


def test_a_task_that_never_ran_has_no_phases(api):
    task = api.task(api.project()["id"], slug="idle")
    data = api.ok("GET", "/api/jobs/idle/phases")["data"]
    assert data["phases"] == [] and data["map"] == {} and data["status"] == "pending"
    api.error("GET", "/api/jobs/idle/phases", 422, "VALIDATION_ERROR", params={"x": "1"})
    assert data["task_id"] == task["id"]


# ---- seed 001's jobs ---------------------------------------------------------------------------


def test_jobs_are_the_teams_tasks_listed_with_the_same_filters_and_read_by_slug(api):
    project = api.project()
    shop = api.task(project["id"], slug="shop", title="Build the shop", tags=["web"])
    api.task(project["id"], slug="blog", title="Write the blog")
    listed = api.ok("GET", "/api/jobs", params=fresh(api))["data"]
    assert {j["slug"] for j in listed["items"]} == {"shop", "blog"} and listed["total"] == 2
    tagged = api.ok("GET", "/api/jobs", params={"tags": "web", "page_size": 1})["data"]
    assert [j["id"] for j in tagged["items"]] == [shop["id"]] and tagged["page_size"] == 1
    found = api.ok("GET", "/api/jobs", params={"search": "shop"})["data"]
    assert [j["slug"] for j in found["items"]] == ["shop"]
    response = api.client.get("/api/jobs/shop")
    assert response.status_code == 200
    job = response.json()["data"]
    assert job == api.ok("GET", f"/api/tasks/{shop['id']}")["data"]
    assert response.headers["ETag"] == f'"{job["version"]}"'
    assert api.ok("GET", f"/api/jobs/{shop['id']}")["data"]["slug"] == "shop"
    api.error("GET", "/api/jobs/nope", 404, "TASK_NOT_FOUND")
    api.error("GET", "/api/jobs", 422, "VALIDATION_ERROR", params={"status": "done"})


def test_cancelling_a_job_answers_seed_001s_shape(api):
    project = api.project()
    queued = api.task(project["id"], slug="queued")
    api.ok("POST", f"/api/tasks/{queued['id']}/execute", 202)
    data = api.ok("POST", "/api/jobs/queued/cancel", json={"reason": "not needed"})["data"]
    assert data == {
        "slug": "queued",
        "task_id": queued["id"],
        "status": "cancelled",
        "cancel_requested": False,
        "task_status": "cancelled",
    }
    error = api.error("POST", "/api/jobs/queued/cancel", 409, "INVALID_STATUS_TRANSITION")
    assert "cancelled" in error["message"]
    claim = claimed(api, slug="running")
    data = api.ok("POST", "/api/jobs/running/cancel")["data"]
    assert data["status"] == "cancel_requested" and data["cancel_requested"] is True
    assert data["task_status"] == "running"
    head = api.position()
    again = api.ok("POST", f"/api/jobs/{claim.task_id}/cancel")["data"]
    assert again["status"] == "cancel_requested" and api.position() == head
    store = api.role.services.store
    beat = execution_reports.heartbeat(store, claim, None, 60.0)
    assert beat.cancel_requested is True
    api.error("POST", "/api/jobs/nope/cancel", 404, "TASK_NOT_FOUND")
    api.error("POST", "/api/jobs/running/cancel", 422, "VALIDATION_ERROR", json={"why": "x"})


def test_cancelling_a_job_needs_the_operate_permission(api):
    task = api.task(api.project()["id"], slug="kept")
    head = api.position()
    for role in ("viewer", "approver"):
        headers = {"Authorization": f"Bearer {token(api.client, role=role)}"}
        response = api.client.post("/api/jobs/kept/cancel", headers=headers)
        assert response.status_code == 403, response.text
    assert api.position() == head
    assert api.ok("GET", f"/api/tasks/{task['id']}")["data"]["status"] == "pending"


def test_a_question_while_a_job_runs_shows_in_its_questions_and_its_status(api):
    claim = claimed(api, slug="asking")
    question = report(api, claim, {"type": "question", "question": "Which DB?"})
    assert api.ok("GET", "/api/jobs/asking")["data"]["status"] == "needs_input"
    listed = api.ok("GET", "/api/tasks/asking/questions", params=fresh(api))["data"]
    assert [q["id"] for q in listed["items"]] == [question]
