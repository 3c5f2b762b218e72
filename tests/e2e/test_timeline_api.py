"""A task's timeline and the board as of a moment, over HTTP, on SQLite and Postgres
(docs/audit.md): a task driven by hand as a worker drives it (a question answered, a checkpoint
rejected and another approved, usage, output, the execution finishing, a webhook delivery), its
timeline with each entry's content and display names in position order, narrowed and paged; the
change view; and the project's tasks as they stood at a time or a position, deleted ones too.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from application import board as board_module
from application import execution_reports
from application.public_events import scan
from application.webhooks.queueing import Queueing
from interfaces import cli
from tests.e2e.conftest import Api, make_settings
from tests.e2e.test_hitl_api import ask, checkpoint, claimed, other_team, report
from tests.e2e.test_users_api import add_user, bearer, login

KEYS = "/api/auth/api-keys"


@pytest.fixture
def settings(tmp_path, database_url):  # deliveries are queued by the test, not in the background
    return msgspec.structs.replace(make_settings(tmp_path, database_url), run_webhooks=False)


def history(api: Api, task_id: str, **params: Any) -> dict[str, Any]:
    params.setdefault("min_position", str(api.position()))
    return api.ok("GET", f"/api/tasks/{task_id}/history", params=params)["data"]


def every_page(api: Api, task_id: str, **params: Any) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    after = 0
    while after is not None:
        page = history(api, task_id, after=str(after), **params)
        entries += page["history"]
        after = page["next_after"]
    return entries


def driven(api: Api) -> dict[str, Any]:
    """The scripted task of the module docstring; what each step wrote."""
    api.ok("POST", "/api/webhooks", 201, json={"url": "https://hooks.example.com/t"})
    ann = login(api, add_user(api, "ann", "admin")["username"])["access_token"]
    key = api.ok("POST", KEYS, 201, json={"name": "ci-bot", "role": "operator"})["data"]
    claim = claimed(api)
    task = claim.task_id
    api.ok("PATCH", f"/api/tasks/{task}", json={"description": "by the bot"},
           headers=bearer(key["key"]))  # fmt: skip
    question = ask(api, claim, "Which database?")
    as_ann = bearer(ann)
    api.ok("POST", f"/api/tasks/{task}/respond", headers=as_ann | {"X-Request-ID": "req-answer"},
           json={"question_id": question, "response": "Postgres"})  # fmt: skip
    first = checkpoint(api, claim, "git push --force")
    api.ok("POST", f"/api/checkpoints/{first}/reject", json={"reason": "not on main"},
           headers=as_ann | {"X-Request-ID": "req-reject"})  # fmt: skip
    second = checkpoint(api, claim, "git push")
    api.ok("POST", f"/api/checkpoints/{second}/approve", headers=bearer(ann), json={})
    report(api, claim, {"type": "experience", "title": "Lint first", "content": "ruff"})
    store = api.role.services.store
    usage = {"type": "usage", "model": "m-1", "input_tokens": 10, "output_tokens": 4}
    execution_reports.report(store, claim, usage, None)
    execution_reports.record_output(store, claim, [(0, "stdout", "hello\n")])
    execution_reports.finish(store, claim, "completed", {"exit_code": 0, "duration": 1.5})
    finished = api.position()
    public = scan(store, finished - 1, 1).before_failure()[0]
    queued, _ = Queueing(store, read_ahead=False).queue(public[0])
    return {"task": task, "question": question, "rejected": first, "approved": second,
            "finished": finished, "deliveries": queued, "ann": ann}  # fmt: skip


def test_the_timeline_interleaves_the_tasks_events_with_its_items_usage_and_deliveries(api):
    run = driven(api)
    entries = history(api, run["task"])["history"]
    assert [e["position"] for e in entries if e["kind"] != "webhooks"] == sorted(
        e["position"] for e in entries if e["kind"] != "webhooks"
    )
    by_type = {e["type"]: e for e in entries}
    asked, answered = by_type["question.asked"], by_type["question.answered"]
    assert asked["data"]["question"] == "Which database?" and asked["kind"] == "questions"
    started = by_type["task.execution_started"]  # the worker asked, in its execution
    assert asked["actor"] == "worker:w1" and asked["actor_name"] == "w1"
    assert asked["request_id"] == started["data"]["execution_id"]
    assert answered["data"]["response"] == "Postgres"
    assert answered["actor_name"] == "ann" and answered["actor"].startswith("user:")
    resumed = next(e for e in entries if e["type"] == "task.resumed")  # in the same request
    assert answered["request_id"] == resumed["request_id"] == "req-answer"
    assert resumed["actor_name"] == "ann"
    assert resumed["position"] in (answered["position"] - 1, answered["position"] + 1)
    rejected = [e for e in entries if e["type"] == "checkpoint.rejected"]
    assert [e["data"]["reason"] for e in rejected] == ["not on main"]
    assert rejected[0]["aggregate_id"] == run["rejected"]
    assert rejected[0]["request_id"] == "req-reject"
    approved = by_type["checkpoint.approved"]
    assert approved["aggregate_id"] == run["approved"] and approved["actor_name"] == "ann"
    assert by_type["experience.proposed"]["data"]["title"] == "Lint first"
    updated = by_type["task.updated"]
    assert updated["actor"].startswith("key:") and updated["actor_name"] == "ci-bot"
    usage = by_type["task.usage_recorded"]
    assert usage["kind"] == "usage" and usage["data"]["input_tokens"] == 10
    assert "cost_usd" in usage["data"]
    started, ended = by_type["task.execution_started"], by_type["task.execution_finished"]
    assert started["kind"] == ended["kind"] == "executions"
    assert started["data"]["worker_id"] == "w1" and started["actor_name"] == "w1"
    assert ended["data"]["result"]["exit_code"] == 0 and ended["data"]["result"]["duration"] == 1.5
    assert ended["position"] == run["finished"]
    delivery = by_type["webhook_delivery.queued"]
    assert delivery["data"]["about_position"] == run["finished"]
    assert entries.index(delivery) == entries.index(ended) + 1  # right after what it delivered
    assert "payload" not in delivery["data"]
    assert not [e for e in entries if e["kind"] == "output"]  # only when asked for
    for entry in entries:
        assert entry["timestamp"].endswith("Z") and entry["position"] > 0


def test_include_narrows_the_timeline_to_the_kinds_asked_for(api):
    run = driven(api)
    task = run["task"]
    questions = history(api, task, include="questions")["history"]
    assert [e["type"] for e in questions] == ["question.asked", "question.answered"]
    kinds = {e["kind"] for e in history(api, task, include="usage,checkpoints")["history"]}
    assert kinds == {"usage", "checkpoints"}
    output = history(api, task, include="output")["history"]
    assert [(e["type"], e["data"]["text"]) for e in output] == [("output_chunk.written", "hello\n")]
    hooks = history(api, task, include="webhooks")["history"]
    assert {e["kind"] for e in hooks} == {"webhooks"} and len(hooks) == len(run["deliveries"])
    error = api.error(
        "GET", f"/api/tasks/{task}/history", 422, "VALIDATION_ERROR", params={"include": "nope"}
    )
    assert error["details"]["values"] == ["nope"]


def test_paging_by_position_returns_every_entry_exactly_once(api):
    run = driven(api)
    task = run["task"]
    whole = history(api, task, include=",".join(KINDS_ALL), limit="1000")
    assert whole["next_after"] is None
    for size in (1, 3, 7):
        paged = every_page(api, task, include=",".join(KINDS_ALL), limit=str(size))
        assert paged == whole["history"]
    first = history(api, task, limit="2")
    assert len(first["history"]) == 2 and first["next_after"] == first["history"][-1]["position"]
    for bad in ({"limit": "0"}, {"limit": "1001"}, {"after": "-1"}, {"after": "x"}):
        api.error("GET", f"/api/tasks/{task}/history", 422, "VALIDATION_ERROR", params=bad)
    api.error("GET", f"/api/tasks/{task}/history", 422, "VALIDATION_ERROR",
              params={"view": "diff"})  # fmt: skip


KINDS_ALL = ("task", "reviews", "usage", "executions", "questions", "checkpoints",
             "experiences", "webhooks", "output")  # fmt: skip


def test_another_teams_task_has_no_timeline_and_no_past(api):
    run = driven(api)
    theirs = other_team(api)
    for path in ("/history", "/history?view=changes", "?as_of=1"):
        response = api.client.get(f"/api/tasks/{run['task']}{path}", headers=theirs)
        assert response.status_code == 404, (path, response.text)
    project = api.ok("GET", f"/api/tasks/{run['task']}")["data"]["project_id"]
    response = api.client.get(f"/api/projects/{project}/tasks?as_of=1", headers=theirs)
    assert response.status_code == 404


def test_the_change_view_lists_each_changed_field_with_its_old_and_new_value(api):
    project = api.project()
    task = api.task(project["id"], title="One")["id"]
    api.ok("PATCH", f"/api/tasks/{task}", json={"title": "Two", "description": "d"})
    api.ok("PUT", f"/api/tasks/{task}", json={"status": "completed"})
    changes = history(api, task, view="changes")["history"]
    assert changes[0]["action"] == "created" and changes[0]["new_value"]["title"] == "One"
    fields = [(c["action"], c["field"], c["old_value"], c["new_value"]) for c in changes[1:]]
    assert ("updated", "title", "One", "Two") in fields
    assert ("updated", "description", "", "d") in fields
    assert ("status_changed", "status", "pending", "completed") in fields
    for change in changes:
        assert set(change) >= {"action", "field", "old_value", "new_value", "user_name",
                               "timestamp", "position"}  # fmt: skip
    paged = history(api, task, view="changes", limit="1")
    assert len(paged["history"]) == 1 and paged["next_after"] == changes[0]["position"]
    api.error("GET", f"/api/tasks/{task}/history", 422, "VALIDATION_ERROR",
              params={"view": "changes", "include": "task"})  # fmt: skip


def board(api: Api, project: str, at: str | int, **params: Any) -> dict[str, Any]:
    params = {"as_of": str(at), **params}
    return api.ok("GET", f"/api/projects/{project}/tasks", params=params)["data"]


def test_the_board_as_of_a_moment_is_the_projects_tasks_as_they_stood(api):
    project = api.project()["id"]
    kept = api.task(project, title="Kept", tags=["a"])["id"]
    gone = api.task(project, title="Gone", priority="high")["id"]
    created = api.position()
    when_created = api.ok("GET", f"/api/tasks/{gone}")["data"]["updated_at"]
    api.ok("PATCH", f"/api/tasks/{kept}", json={"title": "Kept, renamed"})
    api.ok("PUT", f"/api/tasks/{gone}", json={"status": "completed"})
    moved = api.position()
    api.ok("DELETE", f"/api/tasks/{gone}")
    late = api.task(project, title="Late")["id"]

    then = board(api, project, created)
    assert {t["id"]: (t["title"], t["status"]) for t in then["items"]} == {
        kept: ("Kept", "pending"),
        gone: ("Gone", "pending"),
    }
    assert then["as_of"] == created and then["total"] == 2
    at_time = board(api, project, when_created)
    assert {t["id"] for t in at_time["items"]} == {kept, gone}
    before_delete = board(api, project, moved)
    assert {t["id"]: t["status"] for t in before_delete["items"]} == {
        kept: "pending",
        gone: "completed",
    }
    now = board(api, project, api.position())
    assert {t["id"] for t in now["items"]} == {kept, late}
    listing = api.ok("GET", f"/api/projects/{project}/tasks",
                     params={"min_position": str(api.position())})["data"]  # fmt: skip
    for replayed, listed in zip(now["items"], listing["items"], strict=True):
        assert set(replayed) == set(listed)
        assert {k: v for k, v in replayed.items() if replayed[k] != listed[k]} == {}
    # the listing's filters, sort and paging
    assert [t["id"] for t in board(api, project, moved, status="completed")["items"]] == [gone]
    assert [t["id"] for t in board(api, project, moved, tags="a")["items"]] == [kept]
    assert [t["id"] for t in board(api, project, moved, search="renamed")["items"]] == [kept]
    assert [t["id"] for t in board(api, project, moved, priority="high")["items"]] == [gone]
    titles = [t["title"] for t in board(api, project, moved, sort="title", order="asc")["items"]]
    assert titles == ["Gone", "Kept, renamed"]
    page = board(api, project, moved, page_size="1", page="2", sort="title", order="asc")
    assert [t["title"] for t in page["items"]] == ["Kept, renamed"] and page["total"] == 2
    # one task as of a position, deleted since
    past = api.ok("GET", f"/api/tasks/{gone}", params={"as_of": str(moved)})["data"]
    assert (past["status"], past["deleted"], past["as_of"]) == ("completed", False, moved)


def test_a_bad_as_of_is_refused(api):
    project = api.project()["id"]
    task = api.task(project)["id"]
    for bad in ("yesterday", "0", "2025-01-01T00:00:00", "-3"):
        api.error("GET", f"/api/projects/{project}/tasks", 422, "VALIDATION_ERROR",
                  params={"as_of": bad})  # fmt: skip
        api.error("GET", f"/api/tasks/{task}", 422, "VALIDATION_ERROR", params={"as_of": bad})
    assert board(api, project, "2000-01-01T00:00:00Z")["items"] == []


def test_a_board_over_the_cap_is_refused_rather_than_replayed(api, monkeypatch):
    project = api.project()["id"]
    api.task(project)
    api.task(project)
    monkeypatch.setattr(board_module, "MAX_TASKS", 1)
    error = api.error("GET", f"/api/projects/{project}/tasks", 422, "VALIDATION_ERROR",
                      params={"as_of": str(api.position())})  # fmt: skip
    assert error["details"] == {"field": "as_of", "max_tasks": 1}


def test_the_cli_prints_the_timeline_with_names_and_as_json(api, settings, monkeypatch, capsys):
    run = driven(api)
    monkeypatch.setenv("TASKWARDEN_DATA_DIR", str(settings.data_dir))
    if settings.database_url:
        monkeypatch.setenv("TASKWARDEN_DATABASE_URL", settings.database_url)
    served = history(api, run["task"], limit="1000")["history"]  # the read model caught up
    assert cli.main(["history", run["task"], "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [e["type"] for e in data["history"]] == [e["type"] for e in served]
    assert data["history"] == served
    assert cli.main(["history", run["task"], "--include", "questions"]) == 0
    out = capsys.readouterr().out
    assert "ann (user:" in out and "question.answered" in out and "task.created" not in out
    assert cli.main(["history", run["task"], "--include", "nope"]) == 2
    assert "nope" in capsys.readouterr().err


def test_the_board_as_of_now_answers_every_filter_as_the_listing_does(api):
    project = api.project()["id"]
    api.task(project, title="Fix the login page", tags=["web", "auth"], priority="high")
    api.task(project, title="Login throttling", description="rate limit", tags=["auth"])
    api.task(project, title="Docs", description="the login guide", priority="low")
    done = api.task(project, title="Release notes", assigned_to="ann")["id"]
    api.ok("PUT", f"/api/tasks/{done}", json={"status": "completed"})
    queries = [
        {},
        {"status": "completed"},
        {"status": "pending,completed", "sort": "title", "order": "asc"},
        {"tags": "web,auth"},
        {"priority": "high"},
        {"assigned_to": "ann"},
        {"search": "login"},
        {"search": '"login page"'},
        {"search": "log*"},
        {"search": "login NOT docs"},
        {"search": "title:login OR description:rate"},
        {"search": "tag:auth"},
        {"sort": "priority", "order": "desc"},
        {"sort": "status", "order": "asc", "page_size": "2", "page": "2"},
    ]
    now = str(api.position())
    for query in queries:
        listed = api.ok("GET", f"/api/projects/{project}/tasks",
                        params={**query, "min_position": now})["data"]  # fmt: skip
        replayed = board(api, project, now, **query)
        assert [t["id"] for t in replayed["items"]] == [t["id"] for t in listed["items"]], query
        assert replayed["total"] == listed["total"], query
