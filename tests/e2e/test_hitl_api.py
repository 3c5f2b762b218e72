"""People in the loop over HTTP: answering questions (seed 002), deciding checkpoints, experiences
and finished work (seed 001's unified queue), on SQLite and Postgres.

Nothing runs tasks here (no workers): a test claims its task as a worker would, and reports what
the agent asked through the application, then answers over HTTP.
"""

from __future__ import annotations

from typing import Any

from application import execution_reports
from application.scheduler import Claim
from tests.e2e.conftest import Api, token

LEASE = 60.0


def claimed(api: Api, slug: str | None = None, *, review: bool = False) -> Claim:
    """A task of its own project, queued and claimed by worker w1: its agent runs. With
    ``review``, its finished work waits for a person (require_approval)."""
    project = api.project()
    task = api.task(project["id"], **({"slug": slug} if slug else {}))
    options = {"require_approval": True} if review else {}
    response = api.client.post(f"/api/tasks/{task['id']}/execute", json={"options": options})
    assert response.status_code == 202, response.text
    services = api.role.services
    assert services.runner.wait_for(int(response.headers["X-Position"]), 30.0)
    claim = services.scheduler.claim("w1")
    assert claim is not None and claim.task_id == task["id"]
    return claim


def report(api: Api, claim: Claim, message: dict[str, Any]) -> str:
    """What the agent says, recorded as a worker records it; answers the item's id."""
    store = api.role.services.store
    item_id = execution_reports.report(store, claim, message, None)
    assert item_id is not None
    return item_id


def ask(api: Api, claim: Claim, question: str = "Which auth library?") -> str:
    return report(api, claim, {"type": "question", "question": question, "options": ["jwt"]})


def checkpoint(api: Api, claim: Claim, action: str = "git push") -> str:
    return report(api, claim, {"type": "checkpoint", "action": action, "data": {"branch": "b"}})


def experience(api: Api, claim: Claim, title: str = "Run the linter first") -> str:
    body = {"type": "experience", "title": title, "content": "ruff, then tests", "tags": ["ci"]}
    return report(api, claim, body)


def in_review(api: Api, slug: str | None = None) -> Claim:
    """Work the agent finished, waiting for a person."""
    claim = claimed(api, slug, review=True)
    store = api.role.services.store
    execution_reports.finish(store, claim, "completed", {"summary": "done"})
    return claim


def beat(api: Api, claim: Claim, item_id: str) -> execution_reports.Beat:
    store = api.role.services.store
    return execution_reports.heartbeat(store, claim, item_id, LEASE)


def status(api: Api, task_id: str) -> str:
    return api.ok("GET", f"/api/tasks/{task_id}")["data"]["status"]


def other_team(api: Api, role: str = "admin", team: str = "team-b") -> dict[str, str]:
    return {"Authorization": f"Bearer {token(api.client, team, role)}"}


def fresh(api: Api) -> dict[str, str]:
    return {"min_position": str(api.position())}


# ---- questions (seed 002) ----------------------------------------------------------------------


def test_an_answer_moves_the_task_back_to_running_and_reaches_the_agent(api):
    claim = claimed(api, slug="login")
    question = ask(api, claim)
    assert status(api, claim.task_id) == "needs_input"
    assert beat(api, claim, question).reply is None
    body = {"question_id": question, "response": "Use JWT"}
    response = api.client.post("/api/tasks/login/respond", json=body)
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["id"] == question and data["type"] == "question"
    assert data["status"] == "answered" and data["response"] == "Use JWT"
    assert data["task_status"] == "running" and data["task_id"] == claim.task_id
    assert data["decided_by"].startswith("token:")
    assert int(response.headers["X-Position"]) == api.position()
    assert status(api, claim.task_id) == "running"
    reply = beat(api, claim, question).reply
    assert reply == {"type": "answer", "question_id": question, "response": "Use JWT"}


def test_the_same_answer_twice_is_one_answer_and_a_different_one_is_refused(api):
    claim = claimed(api)
    question = ask(api, claim)
    path = f"/api/tasks/{claim.task_id}/respond"
    first = api.ok("POST", path, 200, json={"question_id": question, "response": "JWT"})
    head = api.position()
    again = api.ok("POST", path, 200, json={"question_id": question, "response": "JWT"})
    assert api.position() == head
    assert again["data"]["status"] == "answered" and again["data"]["response"] == "JWT"
    assert first["data"]["id"] == again["data"]["id"]
    error = api.error(
        "POST",
        path,
        409,
        "INVALID_STATUS_TRANSITION",
        json={"question_id": question, "response": "Sessions"},
    )
    assert "answered" in error["message"]
    assert api.position() == head


def test_a_question_of_another_task_or_team_is_not_found(api):
    asking, other = claimed(api), claimed(api)
    question = ask(api, asking)
    for task_id, question_id in ((other.task_id, question), (asking.task_id, "no-such-id")):
        body = {"question_id": question_id, "response": "x"}
        api.error("POST", f"/api/tasks/{task_id}/respond", 404, "QUESTION_NOT_FOUND", json=body)
    b_headers = other_team(api)
    b_project = api.client.post("/api/projects/", json={"name": "B"}, headers=b_headers)
    b_task = api.client.post(
        "/api/tasks/",
        json={"title": "B's", "project_id": b_project.json()["data"]["id"]},
        headers=b_headers,
    ).json()["data"]
    body = {"question_id": question, "response": "x"}
    answer = api.client.post(f"/api/tasks/{b_task['id']}/respond", json=body, headers=b_headers)
    assert answer.status_code == 404 and answer.json()["error"]["code"] == "QUESTION_NOT_FOUND"
    answer = api.client.post(f"/api/tasks/{asking.task_id}/respond", json=body, headers=b_headers)
    assert answer.status_code == 404 and answer.json()["error"]["code"] == "TASK_NOT_FOUND"
    assert status(api, asking.task_id) == "needs_input"


def test_a_tasks_questions_are_listed_newest_first_with_a_status_filter(api):
    claim = claimed(api, slug="asks")
    first = ask(api, claim, "Which library?")
    api.ok("POST", "/api/tasks/asks/respond", json={"question_id": first, "response": "JWT"})
    second = ask(api, claim, "Which port?")
    listed = api.ok("GET", "/api/tasks/asks/questions", params=fresh(api))["data"]
    assert [q["id"] for q in listed["items"]] == [second, first]
    assert listed["total"] == 2 and listed["page"] == 1 and listed["has_next"] is False
    answered = listed["items"][1]
    assert answered["status"] == "answered" and answered["response"] == "JWT"
    assert answered["question"] == "Which library?" and answered["options"] == ["jwt"]
    assert answered["decided_at"] and answered["created_at"] and answered["deadline"] is None
    assert listed["items"][0]["response"] is None
    pending = api.ok("GET", "/api/tasks/asks/questions", params={"status": "pending"})["data"]
    assert [q["id"] for q in pending["items"]] == [second]
    paged = api.ok("GET", f"/api/tasks/{claim.task_id}/questions", params={"page_size": 1})
    assert paged["data"]["total"] == 2 and paged["data"]["has_next"] is True
    api.error("GET", "/api/tasks/asks/questions", 422, "VALIDATION_ERROR", params={"status": "x"})


def test_answers_refuse_unknown_fields_wrong_types_and_missing_fields(api):
    claim = claimed(api)
    question = ask(api, claim)
    path = f"/api/tasks/{claim.task_id}/respond"
    for body in (
        {"question_id": question, "response": "x", "extra": 1},
        {"question_id": question, "response": 42},
        {"question_id": question},
        {"question_id": question, "response": ""},
    ):
        api.error("POST", path, 422, "VALIDATION_ERROR", json=body)
    api.error("POST", path, 422, "VALIDATION_REQUIRED_FIELD")
    assert status(api, claim.task_id) == "needs_input"


# ---- checkpoints and experiences ---------------------------------------------------------------


def test_an_approved_checkpoint_lets_the_agent_run_on_and_is_decided_once(api):
    claim = claimed(api)
    item = checkpoint(api, claim)
    assert status(api, claim.task_id) == "awaiting_approval"
    data = api.ok("POST", f"/api/checkpoints/{item}/approve", json={"reason": "ok"})["data"]
    assert data["type"] == "checkpoint" and data["status"] == "approved"
    assert data["action"] == "git push" and data["data"] == {"branch": "b"}
    assert data["reason"] == "ok"
    assert status(api, claim.task_id) == "running"
    reply = beat(api, claim, item).reply
    assert reply == {"type": "decision", "checkpoint_id": item, "approved": True, "reason": "ok"}
    head = api.position()
    assert api.ok("POST", f"/api/checkpoints/{item}/approve")["data"]["status"] == "approved"
    assert api.position() == head
    api.error("POST", f"/api/checkpoints/{item}/reject", 409, "INVALID_STATUS_TRANSITION")
    assert api.position() == head


def test_a_rejected_checkpoint_carries_the_reason_from_the_query_to_the_agent(api):
    claim = claimed(api)
    item = checkpoint(api, claim)
    response = api.client.post(f"/api/checkpoints/{item}/reject?reason=not%20on%20main")
    assert response.status_code == 200, response.text
    assert response.json()["data"]["status"] == "rejected"
    reply = beat(api, claim, item).reply
    assert reply is not None and reply["approved"] is False and reply["reason"] == "not on main"
    assert status(api, claim.task_id) == "running"


def test_an_experience_is_approved_or_rejected_once_and_holds_nothing_up(api):
    claim = claimed(api)
    kept, dropped = experience(api, claim, "Kept"), experience(api, claim, "Dropped")
    assert status(api, claim.task_id) == "running"
    data = api.ok("POST", f"/api/experiences/{kept}/approve")["data"]
    assert data["type"] == "experience" and data["status"] == "approved"
    assert data["title"] == "Kept" and data["content"] == "ruff, then tests"
    assert data["tags"] == ["ci"]
    rejected = api.ok("POST", f"/api/experiences/{dropped}/reject", json={"reason": "too vague"})
    assert rejected["data"]["status"] == "rejected" and rejected["data"]["reason"] == "too vague"
    head = api.position()
    api.ok("POST", f"/api/experiences/{dropped}/reject")
    assert api.position() == head
    api.error("POST", f"/api/experiences/{kept}/reject", 409, "INVALID_STATUS_TRANSITION")
    api.error("POST", f"/api/experiences/{dropped}/approve", 409, "INVALID_STATUS_TRANSITION")


def test_a_route_of_one_kind_does_not_find_an_item_of_another(api):
    claim = claimed(api)
    item = experience(api, claim)
    api.error("POST", f"/api/checkpoints/{item}/approve", 404, "CHECKPOINT_NOT_FOUND")
    api.error("POST", f"/api/checkpoints/{claim.task_id}/approve", 404, "CHECKPOINT_NOT_FOUND")
    api.error("POST", "/api/experiences/not-a-uuid/approve", 404, "EXPERIENCE_NOT_FOUND")


def test_checkpoints_and_experiences_are_listed_with_status_filters_and_paging(api):
    first, second = claimed(api), claimed(api)
    approved, waiting = checkpoint(api, first, "deploy"), checkpoint(api, second, "push")
    api.ok("POST", f"/api/checkpoints/{approved}/approve")
    lesson = experience(api, second)
    listed = api.ok("GET", "/api/checkpoints", params=fresh(api))["data"]
    assert [c["id"] for c in listed["items"]] == [waiting, approved]
    assert listed["total"] == 2 and listed["pages"] == 1
    assert listed["items"][1]["status"] == "approved" and listed["items"][1]["decided_at"]
    pending = api.ok("GET", "/api/checkpoints", params={"status": "pending"})["data"]
    assert [c["id"] for c in pending["items"]] == [waiting]
    both = api.ok("GET", "/api/checkpoints", params={"status": "pending,approved", "limit": 1})
    assert both["data"]["total"] == 2 and len(both["data"]["items"]) == 1
    assert both["data"]["has_next"] is True
    page_two = api.ok("GET", "/api/checkpoints", params={"page": 2, "page_size": 1})["data"]
    assert [c["id"] for c in page_two["items"]] == [approved]
    by_task = api.ok("GET", "/api/checkpoints", params={"task_id": first.task_id})["data"]
    assert [c["id"] for c in by_task["items"]] == [approved]
    lessons = api.ok("GET", "/api/experiences", params={"status": "pending"})["data"]
    assert [e["id"] for e in lessons["items"]] == [lesson]
    assert api.ok("GET", "/api/experiences", params={"status": "approved"})["data"]["total"] == 0
    for path, query in (
        ("/api/checkpoints", {"status": "answered"}),
        ("/api/experiences", {"status": "withdrawn"}),
        ("/api/checkpoints", {"page_size": "0"}),
        ("/api/experiences", {"unknown": "1"}),
    ):
        api.error("GET", path, 422, "VALIDATION_ERROR", params=query)
    api.error("GET", "/api/checkpoints", 404, "TASK_NOT_FOUND", params={"task_id": "nope"})


def test_an_item_is_read_by_its_id_from_its_aggregate(api):
    claim = claimed(api)
    question = ask(api, claim)
    data = api.ok("GET", f"/api/hitl/{question}")["data"]
    assert data["id"] == question and data["type"] == "question"
    assert data["status"] == "pending" and data["decided_at"] is None
    assert data["project_id"] == claim.project_id and data["execution_id"] == claim.execution_id
    api.error("GET", f"/api/hitl/{claim.task_id}", 404, "ITEM_NOT_FOUND")


# ---- the unified queue and decisions by any id (seed 001) --------------------------------------


def test_the_unified_queue_lists_and_counts_everything_waiting_for_a_person(api):
    asking, checking = claimed(api), claimed(api)
    question, item = ask(api, asking), checkpoint(api, checking)  # checking: not a review
    lesson = experience(api, asking)
    review = in_review(api, slug="done")
    queue = api.ok("GET", "/api/hitl/queue", params=fresh(api))["data"]
    assert queue["counts"] == {"questions": 1, "checkpoints": 1, "experiences": 1, "reviews": 1}
    entries = {e["id"]: e for e in queue["pending"]}
    assert set(entries) == {question, item, lesson, review.task_id}
    assert entries[question]["type"] == "question" and entries[question]["task_id"]
    assert entries[item]["type"] == "checkpoint" and entries[item]["action"] == "git push"
    assert entries[lesson]["type"] == "experience"
    assert entries[review.task_id]["type"] == "review"
    assert entries[review.task_id]["slug"] == "done"
    times = [e["created_at"] for e in queue["pending"]]
    assert times == sorted(times, reverse=True)
    only = api.ok("GET", "/api/hitl/queue", params={"type": "review,question"})["data"]
    assert {e["type"] for e in only["pending"]} == {"review", "question"}
    assert only["counts"] == queue["counts"]
    api.error("GET", "/api/hitl/queue", 422, "VALIDATION_ERROR", params={"type": "job"})
    api.ok("POST", f"/api/hitl/{item}/approve")
    after = api.ok("GET", "/api/hitl/queue", params=fresh(api))["data"]
    assert after["counts"]["checkpoints"] == 0 and item not in {e["id"] for e in after["pending"]}


def test_approve_and_reject_by_id_find_the_item_whatever_its_kind(api):
    claim = claimed(api)
    item, lesson = checkpoint(api, claim), experience(api, claim)
    approved = api.ok("POST", f"/api/hitl/{item}/approve")["data"]
    assert approved["type"] == "checkpoint" and approved["status"] == "approved"
    assert status(api, claim.task_id) == "running"
    rejected = api.ok("POST", f"/api/hitl/{lesson}/reject?reason=wrong")["data"]
    assert rejected["type"] == "experience" and rejected["reason"] == "wrong"
    question = ask(api, claim)
    error = api.error("POST", f"/api/hitl/{question}/approve", 422, "VALIDATION_ERROR")
    assert "/respond" in error["message"]
    api.error("POST", "/api/hitl/not-an-id/approve", 404, "ITEM_NOT_FOUND")
    api.error("POST", f"/api/hitl/{claim.project_id}/reject", 404, "ITEM_NOT_FOUND")


def test_work_awaiting_review_is_approved_or_sent_back_through_the_queue(api):
    good, bad = in_review(api), in_review(api)
    data = api.ok("POST", f"/api/hitl/{good.task_id}/approve", json={"reason": "ship it"})["data"]
    assert data["type"] == "review" and data["status"] == "approved"
    assert data["task_status"] == "completed" and status(api, good.task_id) == "completed"
    head = api.position()
    api.ok("POST", f"/api/hitl/{good.task_id}/approve")
    assert api.position() == head
    api.error("POST", f"/api/hitl/{good.task_id}/reject", 409, "INVALID_STATUS_TRANSITION")
    sent_back = api.ok("POST", f"/api/hitl/{bad.task_id}/reject")["data"]
    assert sent_back["status"] == "rejected" and sent_back["reason"] == "rejected"
    assert sent_back["task_status"] == "queued"
    task = api.ok("GET", f"/api/tasks/{bad.task_id}/history")["data"]
    assert "rejected" in str(task)


def test_a_task_waiting_on_a_checkpoint_is_decided_through_its_checkpoint(api):
    claim = claimed(api)
    item = checkpoint(api, claim)
    error = api.error(
        "POST", f"/api/hitl/{claim.task_id}/approve", 409, "INVALID_STATUS_TRANSITION"
    )
    assert item in error["message"]


def test_decisions_refuse_unknown_fields_and_wrong_types(api):
    claim = claimed(api)
    item = checkpoint(api, claim)
    for path in (f"/api/hitl/{item}/approve", f"/api/checkpoints/{item}/reject"):
        api.error("POST", path, 422, "VALIDATION_ERROR", json={"reason": "x", "extra": True})
        api.error("POST", path, 422, "VALIDATION_ERROR", json={"reason": 7})
        api.error("POST", path, 422, "VALIDATION_ERROR", params={"because": "x"})
    assert status(api, claim.task_id) == "awaiting_approval"


# ---- who may ------------------------------------------------------------------------------------


def test_a_viewer_reads_the_queue_but_cannot_answer_or_decide(api):
    claim = claimed(api)
    question, item = ask(api, claim), experience(api, claim)
    viewer = other_team(api, "viewer", "default")
    head = api.position()
    for path, body in (
        (f"/api/tasks/{claim.task_id}/respond", {"question_id": question, "response": "x"}),
        (f"/api/hitl/{item}/approve", {}),
        (f"/api/experiences/{item}/reject", {}),
        (f"/api/checkpoints/{item}/approve", {}),
    ):
        response = api.client.post(path, json=body, headers=viewer)
        assert response.status_code == 403, (path, response.text)
        assert response.json()["error"]["code"] == "AUTH_INSUFFICIENT_PERMISSIONS"
    assert api.position() == head
    for path in ("/api/hitl/queue", "/api/experiences", f"/api/hitl/{question}"):
        assert api.client.get(path, headers=viewer).status_code == 200, path
    approver = other_team(api, "approver", "default")
    body = {"question_id": question, "response": "x"}
    answered = api.client.post(f"/api/tasks/{claim.task_id}/respond", json=body, headers=approver)
    assert answered.status_code == 200, answered.text


def test_another_team_finds_none_of_the_items_and_counts_none(api):
    claim = claimed(api)
    question, item = ask(api, claim), experience(api, claim)
    review = in_review(api)
    b = other_team(api)
    head = api.position()
    for method, path in (
        ("GET", f"/api/hitl/{question}"),
        ("POST", f"/api/hitl/{item}/approve"),
        ("POST", f"/api/hitl/{review.task_id}/approve"),
        ("POST", f"/api/experiences/{item}/reject"),
        ("GET", f"/api/tasks/{claim.task_id}/questions"),
    ):
        response = api.client.request(method, path, headers=b)
        assert response.status_code == 404, (path, response.text)
    assert api.position() == head
    queue = api.client.get("/api/hitl/queue", params=fresh(api), headers=b).json()["data"]
    assert queue == {
        "pending": [],
        "counts": {"questions": 0, "checkpoints": 0, "experiences": 0, "reviews": 0},
    }
    for path in ("/api/checkpoints", "/api/experiences"):
        assert api.client.get(path, headers=b).json()["data"]["total"] == 0


def test_a_project_scoped_key_sees_and_decides_its_projects_items_only(api):
    mine, theirs = claimed(api), claimed(api)
    my_lesson, their_lesson = experience(api, mine), experience(api, theirs)
    their_review = in_review(api)
    body = {"name": "ci", "role": "approver", "project_id": mine.project_id}
    key = api.ok("POST", "/api/auth/api-keys", 201, json=body)["data"]["key"]
    scoped = {"Authorization": f"Bearer {key}"}
    queue = api.client.get("/api/hitl/queue", params=fresh(api), headers=scoped).json()["data"]
    assert [e["id"] for e in queue["pending"]] == [my_lesson]
    assert queue["counts"]["experiences"] == 1 and queue["counts"]["reviews"] == 0
    listed = api.client.get("/api/experiences", headers=scoped).json()["data"]
    assert [e["id"] for e in listed["items"]] == [my_lesson] and listed["total"] == 1
    other = api.client.get(
        "/api/experiences", params={"project_id": theirs.project_id}, headers=scoped
    )
    assert other.status_code == 404
    head = api.position()
    for path in (
        f"/api/experiences/{their_lesson}/approve",
        f"/api/hitl/{their_lesson}/approve",
        f"/api/hitl/{their_review.task_id}/approve",
    ):
        response = api.client.post(path, headers=scoped)
        assert response.status_code == 404, (path, response.text)
    assert api.client.get(f"/api/hitl/{their_lesson}", headers=scoped).status_code == 404
    assert api.position() == head
    decided = api.client.post(f"/api/experiences/{my_lesson}/approve", headers=scoped)
    assert decided.status_code == 200, decided.text
