"""Tasks over HTTP: create, read, list, update, delete, actions, history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.e2e import runner_steps


def test_a_created_task_is_pending_and_readable_by_id_and_slug(api):
    project = api.project()
    created = api.ok(
        "POST",
        "/api/tasks/",
        201,
        json={
            "title": "Add login",
            "project_id": project["id"],
            "priority": 3,
            "tags": ["auth", "security"],
            "slug": "add-login",
            "estimated_duration": "02:30:00",
            "metadata": {"component": "backend"},
        },
    )
    task = created["data"]
    assert task["status"] == "pending"
    assert task["priority"] == "high"
    assert task["estimated_duration"] == 9000
    assert created["meta"]["position"] >= 1
    by_id = api.ok("GET", f"/api/tasks/{task['id']}")["data"]
    by_slug = api.ok("GET", "/api/tasks/add-login")["data"]
    assert by_id == by_slug
    assert by_id["tags"] == ["auth", "security"]
    assert by_id["metadata"] == {"component": "backend"}


def test_a_project_slug_works_as_project_id(api):
    api.project(slug="web")
    task = api.task("web")
    assert api.ok("GET", "/api/projects/web")["data"]["id"] == task["project_id"]


def test_a_listing_read_after_a_write_sees_it_without_sleeping(api):
    project = api.project()
    created = api.ok("POST", "/api/tasks/", 201, json={"title": "x", "project_id": project["id"]})
    position = created["meta"]["position"]
    listing = api.ok("GET", f"/api/tasks/?min_position={position}")["data"]
    assert [t["id"] for t in listing["items"]] == [created["data"]["id"]]
    assert listing["total"] == 1


def test_listing_filters_sorts_and_pages(api):
    project = api.project()
    other = api.project(name="Other")
    api.task(project["id"], title="one", priority="low", tags=["a"])
    api.task(project["id"], title="two", priority="urgent", tags=["b"], assigned_to="ann")
    api.task(other["id"], title="three", priority="normal", tags=["a", "c"])
    last = api.task(project["id"], title="four", priority="high")
    pos = api.position()
    q = f"/api/tasks/?min_position={pos}"
    titles = lambda page: [t["title"] for t in page["items"]]  # noqa: E731
    assert titles(
        api.ok("GET", q + f"&project_id={project['id']}&sort=title&order=asc")["data"]
    ) == [
        "four",
        "one",
        "two",
    ]
    assert titles(api.ok("GET", q + "&priority=high&sort=priority&order=desc")["data"]) == [
        "two",
        "four",
    ]
    assert set(titles(api.ok("GET", q + "&tags=a")["data"])) == {"one", "three"}
    assert titles(api.ok("GET", q + "&assigned_to=ann")["data"]) == ["two"]
    page = api.ok("GET", q + "&page=2&page_size=3&sort=title&order=asc")["data"]
    assert page["total"] == 4 and page["pages"] == 2 and page["has_previous"]
    assert not page["has_next"] and titles(page) == ["two"]
    aliased = api.ok("GET", q + "&limit=3&offset=3&sort=title&order=asc")["data"]
    assert titles(aliased) == ["two"]
    api.ok("POST", f"/api/tasks/{last['id']}/execute", 202)
    pos = api.position()
    queued = api.ok("GET", f"/api/tasks/?min_position={pos}&status=queued,running")["data"]
    assert titles(queued) == ["four"]
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    assert api.ok("GET", q + f"&created_after={future}")["data"]["total"] == 0
    assert api.ok("GET", q + f"&created_before={future}")["data"]["total"] == 4


def test_search_syntax_over_http(api):
    project = api.project()
    api.task(project["id"], title="Implement user authentication", description="JWT tokens")
    api.task(project["id"], title="Dark mode", description="user interface theme", tags=["ui"])
    pos = api.position()

    def found(search: str) -> set[str]:
        page = api.ok("GET", "/api/tasks/", params={"search": search, "min_position": pos})["data"]
        return {t["title"] for t in page["items"]}

    assert found("user") == {"Implement user authentication", "Dark mode"}
    assert found('"user authentication"') == {"Implement user authentication"}
    assert found("auth*") == {"Implement user authentication"}
    assert found("user AND NOT dark") == {"Implement user authentication"}
    assert found("title:dark OR tag:ui") == {"Dark mode"}
    assert found("description:user") == {"Dark mode"}


def test_update_put_and_patch_change_only_given_fields(api):
    task = api.task(api.project()["id"], tags=["a"])
    updated = api.ok("PUT", f"/api/tasks/{task['id']}", json={"title": "New", "tags": ["b"]})
    assert updated["data"]["title"] == "New" and updated["data"]["tags"] == ["b"]
    patched = api.ok("PATCH", f"/api/tasks/{task['id']}", json={"progress_percentage": 40})
    assert patched["data"]["title"] == "New" and patched["data"]["progress_percentage"] == 40
    done = api.ok("PATCH", f"/api/tasks/{task['id']}", json={"status": "completed"})["data"]
    assert done["status"] == "completed" and done["completed_at"]


def test_if_match_with_a_stale_version_is_a_conflict_and_changes_nothing(api):
    task = api.task(api.project()["id"])
    response = api.patch(
        f"/api/tasks/{task['id']}", json={"title": "A"}, headers={"If-Match": '"1"'}
    )
    assert response.status_code == 200 and response.headers["etag"] == '"2"'
    api.error(
        "PATCH",
        f"/api/tasks/{task['id']}",
        409,
        "VERSION_CONFLICT",
        json={"title": "B"},
        headers={"If-Match": "1"},
    )
    assert api.ok("GET", f"/api/tasks/{task['id']}")["data"]["title"] == "A"


def test_idempotency_key_gives_the_same_answer_and_no_second_event(api):
    project = api.project()
    body = {"title": "Once", "project_id": project["id"]}
    first = api.post("/api/tasks/", json=body, headers={"Idempotency-Key": "k-1"})
    position = api.position()
    second = api.post("/api/tasks/", json=body, headers={"Idempotency-Key": "k-1"})
    assert first.status_code == second.status_code == 201
    assert first.json()["data"] == second.json()["data"]
    assert second.headers["idempotent-replayed"] == "true"
    assert api.position() == position
    api.error(
        "POST",
        "/api/tasks/",
        409,
        "IDEMPOTENCY_KEY_REUSED",
        json={**body, "title": "Other"},
        headers={"Idempotency-Key": "k-1"},
    )


def test_execute_is_idempotent_with_a_key(api):
    task = api.task(api.project()["id"])
    headers = {"Idempotency-Key": "exec-1"}
    first = api.ok(
        "POST", f"/api/tasks/{task['id']}/execute", 202, json={"priority": "high"}, headers=headers
    )
    again = api.ok(
        "POST", f"/api/tasks/{task['id']}/execute", 202, json={"priority": "high"}, headers=headers
    )
    assert first["data"] == again["data"]
    assert first["data"]["status"] == "queued" and first["data"]["priority"] == "high"
    api.error("POST", f"/api/tasks/{task['id']}/execute", 409, "TASK_ALREADY_RUNNING")


def test_execute_waits_for_dependencies(api):
    project = api.project()
    first = api.task(project["id"], title="schema")
    second = api.task(project["id"], title="api", dependencies=[first["id"]])
    err = api.error("POST", f"/api/tasks/{second['id']}/execute", 409, "TASK_DEPENDENCY_NOT_MET")
    assert err["details"]["dependencies"] == [first["id"]]
    api.ok("PATCH", f"/api/tasks/{first['id']}", json={"status": "completed"})
    api.ok("POST", f"/api/tasks/{second['id']}/execute", 202)


def test_dependency_cycles_are_refused(api):
    project = api.project()
    a = api.task(project["id"], title="a")
    b = api.task(project["id"], title="b", dependencies=[a["id"]])
    api.error(
        "PATCH",
        f"/api/tasks/{a['id']}",
        409,
        "TASK_DEPENDENCY_CYCLE",
        json={"dependencies": [b["id"]]},
    )


def test_cancel_queued_is_immediate_and_running_is_a_request(api):
    project = api.project()
    queued = api.task(project["id"])
    api.ok("POST", f"/api/tasks/{queued['id']}/execute", 202)
    cancelled = api.ok("POST", f"/api/tasks/{queued['id']}/cancel", json={"reason": "changed"})
    assert cancelled["data"]["status"] == "cancelled" and cancelled["data"]["reason"] == "changed"
    running = api.task(project["id"])
    api.ok("POST", f"/api/tasks/{running['id']}/execute", 202)
    runner_steps.start(api, running["id"])
    requested = api.ok("POST", f"/api/tasks/{running['id']}/cancel", 202)["data"]
    assert requested["status"] == "running" and requested["cancel_requested"] is True
    api.error(
        "POST",
        f"/api/tasks/{cancelled['data']['task_id']}/cancel",
        409,
        "INVALID_STATUS_TRANSITION",
    )


def test_retry_queues_a_new_attempt_only_after_failure(api):
    task = api.task(api.project()["id"])
    api.error("POST", f"/api/tasks/{task['id']}/retry", 409, "INVALID_STATUS_TRANSITION")
    api.ok("POST", f"/api/tasks/{task['id']}/execute", 202)
    runner_steps.fail(api, task["id"])
    retried = api.ok("POST", f"/api/tasks/{task['id']}/retry", 202)["data"]
    assert retried["status"] == "queued" and retried["retry_attempt"] == 2


def test_approve_and_reject_work_awaiting_review(api):
    project = api.project()
    approved = api.task(project["id"])
    api.ok("POST", f"/api/tasks/{approved['id']}/execute", 202)
    runner_steps.to_review(api, approved["id"])
    done = api.ok("POST", f"/api/tasks/{approved['id']}/approve", json={"comment": "lgtm"})
    assert done["data"]["status"] == "completed"
    again = api.ok("POST", f"/api/tasks/{approved['id']}/approve")
    assert again["data"]["version"] == done["data"]["version"]
    api.error(
        "POST",
        f"/api/tasks/{approved['id']}/reject",
        409,
        "INVALID_STATUS_TRANSITION",
        json={"reason": "too late"},
    )
    rejected = api.task(project["id"])
    api.ok("POST", f"/api/tasks/{rejected['id']}/execute", 202)
    runner_steps.to_review(api, rejected["id"])
    back = api.ok("POST", f"/api/tasks/{rejected['id']}/reject", 202, json={"reason": "no tests"})
    assert back["data"]["status"] == "queued" and back["data"]["attempt"] == 2


def test_delete_is_soft_keeps_history_and_hides_the_task(api):
    project = api.project()
    task = api.task(project["id"], slug="gone")
    deleted = api.ok("DELETE", f"/api/tasks/{task['id']}?reason=duplicate")
    assert deleted["data"]["message"] == "Task deleted successfully"
    api.error("GET", f"/api/tasks/{task['id']}", 404, "TASK_NOT_FOUND")
    api.error("GET", "/api/tasks/gone", 404, "TASK_NOT_FOUND")
    listing = api.ok("GET", f"/api/tasks/?min_position={deleted['meta']['position']}")["data"]
    assert listing["total"] == 0
    history = api.ok("GET", f"/api/tasks/{task['id']}/history")["data"]["history"]
    assert history[-1]["type"] == "task.deleted" and history[-1]["data"]["reason"] == "duplicate"
    assert api.task(project["id"], slug="gone")["slug"] == "gone"


def test_a_running_task_cannot_be_deleted(api):
    task = api.task(api.project()["id"])
    api.ok("POST", f"/api/tasks/{task['id']}/execute", 202)
    api.error("DELETE", f"/api/tasks/{task['id']}", 409, "TASK_ALREADY_RUNNING")


def test_history_comes_from_the_event_store_with_positions_and_actors(api):
    task = api.task(api.project()["id"])
    api.ok(
        "PATCH",
        f"/api/tasks/{task['id']}",
        json={"title": "Renamed"},
        headers={"X-Request-ID": "req-42"},
    )
    history = api.ok("GET", f"/api/tasks/{task['id']}/history")["data"]["history"]
    assert [h["type"] for h in history] == ["task.created", "task.updated"]
    assert [h["version"] for h in history] == [1, 2]
    assert history[0]["position"] < history[1]["position"]
    assert history[1]["actor"].startswith("token:") and history[1]["request_id"] == "req-42"
    assert history[1]["data"] == {"changes": {"title": "Renamed"}}


def test_as_of_gives_the_state_at_a_moment(api):
    task = api.task(api.project()["id"], title="Before")
    history = api.ok("GET", f"/api/tasks/{task['id']}/history")["data"]["history"]
    api.ok("PATCH", f"/api/tasks/{task['id']}", json={"title": "After"})
    moment = history[0]["timestamp"]
    then = api.ok("GET", f"/api/tasks/{task['id']}", params={"as_of": moment})["data"]
    assert then["title"] == "Before" and then["version"] == 1
    early = "2000-01-01T00:00:00Z"
    api.error("GET", f"/api/tasks/{task['id']}", 404, "TASK_NOT_FOUND", params={"as_of": early})


def test_submit_and_status_follow_seed_003(api):
    submitted = api.ok(
        "POST",
        "/api/tasks/submit",
        202,
        json={
            "repository_url": "https://example.com/repo.git",
            "description": "Add dark mode support",
            "ticket_id": "FEAT-123",
            "ticket_summary": "add-dark-mode",
            "base_branch": "main",
        },
    )["data"]
    assert submitted["status"] == "queued" and submitted["message"] == "Task queued successfully"
    status = api.ok("GET", f"/api/tasks/{submitted['task_id']}/status")["data"]
    assert status["status"] == "queued" and status["submitted_at"]
    task = api.ok("GET", f"/api/tasks/{submitted['task_id']}")["data"]
    assert task["title"] == "add-dark-mode" and task["base_branch"] == "main"
    again = api.ok("POST", "/api/tasks/submit", 202, json={"description": "second"})["data"]
    second = api.ok("GET", f"/api/tasks/{again['task_id']}")["data"]
    assert second["project_id"] == task["project_id"]


def test_bulk_runs_each_operation_and_reports_per_item(api):
    project = api.project()
    a = api.task(project["id"], title="a")
    b = api.task(project["id"], title="b")
    missing = "00000000-0000-0000-0000-000000000000"
    ids = [a["id"], b["id"]]

    def bulk(operation: str, data: dict, task_ids=ids) -> dict:  # type: ignore[no-untyped-def]
        body = {"operation": operation, "task_ids": task_ids, "data": data}
        return api.ok("POST", "/api/tasks/bulk", json=body)["data"]

    assert bulk("add_tags", {"tags": ["x", "y"]})["affected_count"] == 2
    assert bulk("remove_tags", {"tags": ["x"]})["successful"] == ids
    assert bulk("assign", {"assigned_to": "bob"})["affected_count"] == 2
    assert bulk("set_priority", {"priority": "urgent"})["affected_count"] == 2
    result = bulk("update_status", {"status": "completed"}, [a["id"], missing])
    assert result["successful"] == [a["id"]] and result["failed"] == [missing]
    assert result["errors"][0]["code"] == "TASK_NOT_FOUND"
    current = api.ok("GET", f"/api/tasks/{b['id']}")["data"]
    assert current["tags"] == ["y"] and current["assigned_to"] == "bob"
    assert current["priority"] == "urgent"
    assert bulk("delete", {"reason": "cleanup"})["affected_count"] == 2
    api.error(
        "POST",
        "/api/tasks/bulk",
        422,
        "VALIDATION_ERROR",
        json={"operation": "assign", "task_ids": ids, "data": {"who": 1}},
    )
