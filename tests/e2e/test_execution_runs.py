"""Real executions through in-process workers and the scripted agent, on SQLite and Postgres."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from application.commands import Decide, Respond, Targeted
from application.hitl import decide_item, respond
from domain.hitl import Checkpoint
from domain.values import Actor
from interfaces.services import build
from tests.e2e.conftest import Api
from tests.e2e.execution_support import (
    eventually,
    execute,
    history_types,
    running_api,
    running_settings,
    scripted,
    task_of,
    wait_status,
)

PERSON = Actor(id="user:reviewer", team_id="default", request_id="test")


@pytest.fixture
def api(tmp_path: Path, database_url: str | None) -> Iterator[Api]:
    yield from running_api(running_settings(tmp_path, database_url))


@pytest.fixture
def project(api: Api) -> dict[str, Any]:
    return api.project(name="Runs")


def output_text(api: Api, task_id: str) -> str:
    services = api.role.services
    assert services.runner.wait_for(services.ledger.max_position(), 30.0)
    rows = services.read_model.output("default", task_id, 0, 10_000)
    return "".join(r.text for r in rows)


def pending_item(api: Api, task_id: str) -> str:
    task = eventually(
        lambda: api.role.services.store.ledger.repository.get(_uuid(task_id)),
        lambda t: t.waiting_on is not None,
        "waiting on a person",
    )
    return str(task.waiting_on)


def _uuid(value: str) -> Any:
    from uuid import UUID  # noqa: PLC0415

    return UUID(value)


def test_a_scripted_run_completes_with_its_output_phases_usage_and_result(api, project):
    task_id = scripted(
        api,
        project["id"],
        [
            {"phase": "plan", "status": "started"},
            {"say": "thinking about the login page"},
            {"write": {"path": "login.py", "content": "print('hi')\n"}},
            {"usage": {"model": "m-1", "input_tokens": 10, "output_tokens": 5, "cost_usd": 0.01}},
            {"phase": "plan", "status": "completed"},
            {"result": {"summary": "added login", "pr_url": "https://example.com/o/r/pull/7"}},
        ],
    )
    execute(api, task_id)
    done = wait_status(api, task_id, "completed", "failed")
    assert done["status"] == "completed", done
    result = done["result"]
    assert result["exit_code"] == 0 and result["summary"] == "added login"
    assert result["pr_url"] == "https://example.com/o/r/pull/7"
    assert result["agent"] == "scripted" and result["duration"] >= 0
    # m-1 has no price: it costs 0, and what the agent reported is kept beside it
    assert done["usage"]["input_tokens"] == 10 and done["usage"]["reported_cost_usd"] == 0.01
    assert done["usage"]["cost_usd"] == 0.0 and done["usage"]["requests"] == 1
    assert done["usage"]["models"] == ["m-1"] and done["worker_id"] is None
    assert "thinking about the login page" in output_text(api, task_id)
    types = history_types(api, task_id)
    assert types.index("task.execution_started") < types.index("task.phase_changed")
    assert "task.usage_recorded" in types and types[-1] == "task.execution_finished"


def test_a_question_waits_for_an_answer_that_reaches_the_agent(api, project):
    task_id = scripted(api, project["id"], [{"ask": "Which database?"}, {"exit": 0}])
    execute(api, task_id)
    question_id = pending_item(api, task_id)
    assert wait_status(api, task_id, "needs_input")["status"] == "needs_input"
    store = api.role.services.store
    answer = Respond(question_id=question_id, response="Postgres")
    respond(store, Targeted(target=task_id, command=answer), PERSON)
    assert wait_status(api, task_id, "completed", "failed")["status"] == "completed"
    assert "answer: Postgres" in output_text(api, task_id)


@pytest.mark.parametrize("approved", [True, False], ids=["approved", "rejected"])
def test_a_checkpoint_decision_reaches_the_agent(api, project, approved):
    task_id = scripted(api, project["id"], [{"checkpoint": "deploy to staging"}, {"say": "go"}])
    execute(api, task_id)
    checkpoint_id = pending_item(api, task_id)
    assert wait_status(api, task_id, "awaiting_approval")["status"] == "awaiting_approval"
    store = api.role.services.store
    decision = Targeted(target=checkpoint_id, command=Decide(reason="ok?"))
    decide_item(store, decision, approved, PERSON, Checkpoint)
    final = wait_status(api, task_id, "completed", "failed")
    # the scripted agent exits 3 on a rejected checkpoint
    assert final["status"] == ("completed" if approved else "failed")
    assert ("approved" if approved else "rejected: ok?") in output_text(api, task_id)


def test_cancel_while_running_ends_the_agent_and_records_cancelled(api, project):
    task_id = scripted(api, project["id"], [{"say": "working"}, {"sleep": 60}])
    execute(api, task_id)
    wait_status(api, task_id, "running")
    eventually(lambda: output_text(api, task_id), lambda t: "working" in t, "started")
    api.ok("POST", f"/api/tasks/{task_id}/cancel", 202, json={"reason": "stop"})
    assert wait_status(api, task_id, "cancelled", "failed")["status"] == "cancelled"


def test_cancel_while_waiting_on_a_question_withdraws_it(api, project):
    task_id = scripted(api, project["id"], [{"ask": "Continue?"}])
    execute(api, task_id)
    question_id = pending_item(api, task_id)
    api.ok("POST", f"/api/tasks/{task_id}/cancel", 202, json={})
    assert wait_status(api, task_id, "cancelled", "failed")["status"] == "cancelled"
    question = api.role.services.store.ledger.repository.get(_uuid(question_id))
    assert question.status == "withdrawn"


def test_a_timeout_ends_the_agent_and_records_timed_out(api, project):
    task_id = scripted(api, project["id"], [{"sleep": 60}])
    execute(api, task_id, timeout=1)
    assert wait_status(api, task_id, "timed_out", "failed")["status"] == "timed_out"


def test_a_failure_is_retried_with_backoff_until_it_succeeds(api, project):
    task_id = scripted(api, project["id"], [{"fail_on_attempt": 1}, {"say": "second time"}])
    execute(api, task_id, retry_attempts=2, retry_backoff=0.05)
    done = eventually(
        lambda: task_of(api, task_id),
        lambda t: t["status"] == "completed" or (t["status"] == "failed" and t["attempt"] > 1),
        "completed on a later attempt",
    )
    assert done["status"] == "completed" and done["attempt"] == 2
    types = history_types(api, task_id)
    assert types.count("task.execution_requested") == 2


def test_a_failing_test_command_fails_the_execution(api, project):
    task_id = scripted(
        api,
        project["id"],
        [{"say": "done"}],
        test_command="python -c 'import sys; sys.exit(4)'",
    )
    execute(api, task_id)
    done = wait_status(api, task_id, "completed", "failed")
    assert done["status"] == "failed" and done["result"]["test"]["exit_code"] == 4


@pytest.fixture
def capped_api(tmp_path: Path) -> Iterator[Api]:
    yield from running_api(running_settings(tmp_path, None, output_cap_bytes=2_000))


def test_output_keeps_its_order_and_stops_at_the_cap_with_one_marker(capped_api):
    api = capped_api
    lines = [f"line {n:04d}" for n in range(400)]  # 4,000 bytes with newlines: twice the cap
    task_id = scripted(api, api.project()["id"], [{"say": line} for line in lines])
    execute(api, task_id)
    assert wait_status(api, task_id, "completed", "failed")["status"] == "completed"
    text = output_text(api, task_id)
    kept, marker = text.split("[output truncated at 2000 bytes]")
    assert marker == "" and len(kept.encode()) <= 2_000
    assert kept.splitlines()[:150] == lines[:150]  # whole lines, in order, up to the cap
    assert len(kept.splitlines()) >= 180


def git(cwd: Path, *args: str) -> None:
    import subprocess  # noqa: PLC0415

    subprocess.run(  # a fixed git argv in a test
        ["git", "-c", "user.email=t@t", "-c", "user.name=t", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        timeout=30,
    )


def test_a_repository_task_runs_on_a_new_branch_of_a_clone_and_reports_changed_files(
    api, project, tmp_path
):
    origin = tmp_path / "origin"
    origin.mkdir()
    git(origin, "init", "-q", "-b", "main")
    (origin / "README.md").write_text("hello\n")
    git(origin, "add", "README.md")
    git(origin, "commit", "-q", "-m", "first")
    git(origin, "checkout", "-q", "-b", "develop")
    (origin / "app.py").write_text("x = 1\n")
    git(origin, "add", "app.py")
    git(origin, "commit", "-q", "-m", "second")
    task_id = scripted(
        api,
        project["id"],
        [{"write": {"path": "login.py", "content": "ok\n"}}],
        repository_url=str(origin),
        base_branch="develop",
        slug="login-page",
        test_command="test -f app.py",
    )
    execute(api, task_id)
    done = wait_status(api, task_id, "completed", "failed")
    assert done["status"] == "completed", done["result"]
    result = done["result"]
    assert result["branch"] == "taskwarden/login-page-1"
    assert result["changed_files"] == ["login.py"] and result["base_commit"]
    assert result["test"]["exit_code"] == 0


def test_work_that_requires_approval_waits_in_review_with_its_result_until_approved(api, project):
    task_id = scripted(api, project["id"], [{"result": {"summary": "ready to test"}}])
    execute(api, task_id, require_approval=True)
    review = wait_status(api, task_id, "awaiting_approval", "failed")
    assert review["status"] == "awaiting_approval"
    assert review["result"]["summary"] == "ready to test"
    position = api.position()
    listed = api.ok("GET", f"/api/tasks/?status=awaiting_approval&min_position={position}")
    [row] = [t for t in listed["data"]["items"] if t["id"] == task_id]
    assert row["result"]["summary"] == "ready to test"
    api.ok("POST", f"/api/tasks/{task_id}/approve", json={"comment": "good"})
    assert task_of(api, task_id)["status"] == "completed"


def test_a_retry_starts_with_no_start_time_of_the_attempt_before(api, project):
    task_id = scripted(api, project["id"], [{"fail_on_attempt": 1}, {"sleep": 60}])
    execute(api, task_id, retry_attempts=1, retry_backoff=60)
    queued_again = eventually(
        lambda: task_of(api, task_id),
        lambda t: t["status"] == "queued" and t["attempt"] == 2,
        "queued for its second attempt",
    )
    assert queued_again["started_at"] is None and queued_again["completed_at"] is None


def test_stopping_the_server_ends_running_agents_and_records_them_failed(tmp_path):
    settings = running_settings(tmp_path, None)
    apis = running_api(settings)
    api = next(apis)
    task_id = scripted(api, api.project()["id"], [{"say": "working"}, {"sleep": 60}])
    execute(api, task_id)
    wait_status(api, task_id, "running")
    eventually(lambda: output_text(api, task_id), lambda t: "working" in t, "working")
    with pytest.raises(StopIteration):
        next(apis)  # leaves the app: its lifespan stops the workers
    store = build(settings)
    try:
        task = store.store.ledger.repository.get(_uuid(task_id))
        assert task.status == "failed" and task.result["worker_stopped"] is True
    finally:
        store.close()
