"""Remote workers over REST, on SQLite and Postgres.

First a whole execution driven by hand over HTTP, as a worker would drive it: claim, heartbeat,
output, a question answered by a person, the answer in the heartbeat, the end. Then the real worker
loop with ``RemoteBackend`` against a live uvicorn server on a free port, running the scripted
agent. Last, ``RemoteBackend``'s retries against httpx's in-memory transport.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
import uvicorn

from application.execution_reports import Beat
from application.scheduler import Claim
from infrastructure.agent.catalog import load_agents
from infrastructure.settings import Settings
from interfaces.http.app import create_app
from interfaces.remote_backend import RemoteBackend, RemoteError, RemoteLeaseLostError
from interfaces.services import migrate
from interfaces.worker_pool import WorkerPool
from tests.e2e.conftest import ADMIN_KEY, Api, token

pytestmark = pytest.mark.slow  # servers and processes: make slow (CI runs it)

W = "/api/workers"


def settled(api: Api) -> int:
    position = api.position()
    assert api.role.services.runner.wait_for(position, 30.0)
    return position


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


class Worker:
    """A worker's side of the API, by hand."""

    def __init__(self, api: Api, team: str = "default", worker_id: str = "remote-1") -> None:
        self.api = api
        self.headers = bearer(token(api.client, team, "agent"))
        self.worker_id = worker_id

    def post(self, path: str, body: dict[str, Any]) -> Any:
        return self.api.client.post(path, json=body, headers=self.headers)

    def claim(self) -> dict[str, Any] | None:
        settled(self.api)
        response = self.post(f"{W}/claim", {"worker_id": self.worker_id})
        assert response.status_code == 200, response.text
        return response.json()["data"]

    def report(self, claim: dict[str, Any], action: str, **fields: Any) -> Any:
        body = {"task_id": claim["task_id"], "worker_id": self.worker_id, **fields}
        return self.post(f"{W}/executions/{claim['execution_id']}/{action}", body)

    def ok(self, claim: dict[str, Any], action: str, **fields: Any) -> Any:
        response = self.report(claim, action, **fields)
        assert response.status_code == 200, response.text
        return response.json()["data"]


def queued_task(api: Api, execute: dict[str, Any] | None = None) -> dict[str, Any]:
    task = api.task(api.project()["id"])
    api.ok("POST", f"/api/tasks/{task['id']}/execute", 202, json=execute or {})
    return task


def task_status(api: Api, task_id: str) -> str:
    return api.ok("GET", f"/api/tasks/{task_id}")["data"]["status"]


# ---- by hand ----------------------------------------------------------------------------------


def test_a_worker_drives_a_whole_execution_over_http(api):
    task = queued_task(api)
    worker = Worker(api)
    claim = worker.claim()
    assert claim is not None and claim["task_id"] == task["id"] and claim["team_id"] == "default"
    assert claim["worker_id"] == "remote-1" and claim["lease_until"] > time.time()
    assert worker.claim() is None  # nothing else queued
    beat = worker.ok(claim, "heartbeat")
    assert beat["cancel_requested"] is False and beat["lost"] is False and beat["reply"] is None
    chunks = [{"seq": 0, "stream": "stdout", "text": "hello\n"}]
    worker.ok(claim, "output", chunks=chunks)
    worker.ok(claim, "output", chunks=chunks)  # a retried request: stored once
    worker.ok(claim, "output", chunks=[*chunks, {"seq": 1, "stream": "stderr", "text": "warn\n"}])
    assert (
        worker.ok(claim, "report", message={"type": "progress", "percentage": 40})["item_id"]
        is None
    )
    question = {"type": "question", "id": "q1", "question": "Which database?", "default": "sqlite"}
    item_id = worker.ok(claim, "report", message=question)["item_id"]
    assert task_status(api, task["id"]) == "needs_input"
    assert worker.ok(claim, "heartbeat", waiting_on=item_id)["reply"] is None
    api.ok(
        "POST",
        f"/api/tasks/{task['id']}/respond",
        json={"question_id": item_id, "response": "postgres"},
    )
    beat = worker.ok(claim, "heartbeat", waiting_on=item_id)
    assert beat["reply"] == {"type": "answer", "question_id": item_id, "response": "postgres"}
    ended = worker.ok(
        claim, "finish", outcome="completed", result={"summary": "done", "exit_code": 0}
    )
    assert ended == {"status": "completed", "retry_scheduled": False, "attempt": 1}
    read = api.ok("GET", f"/api/tasks/{task['id']}")["data"]
    assert read["status"] == "completed" and read["result"]["summary"] == "done"
    assert read["progress_percentage"] == 100
    output = api.ok("GET", f"/api/tasks/{task['id']}/output", params={"min_position": settled(api)})
    assert [(c["seq"], c["text"]) for c in output["data"]["items"]] == [
        (0, "hello\n"),
        (1, "warn\n"),
    ]
    after = worker.report(claim, "heartbeat")
    assert after.status_code == 409 and after.json()["error"]["code"] == "LEASE_LOST"


def test_a_failed_execution_with_attempts_left_is_queued_again(api):
    task = queued_task(api, execute={"options": {"retry_attempts": 1, "retry_backoff": 0.01}})
    worker = Worker(api)
    claim = worker.claim()
    assert claim is not None and claim["options"]["retry_attempts"] == 1
    ended = worker.ok(claim, "finish", outcome="failed", result={"exit_code": 1})
    assert ended["retry_scheduled"] is True and ended["status"] == "queued"
    assert task_status(api, task["id"]) == "queued"


def test_a_cancel_reaches_the_worker_in_its_heartbeat(api):
    task = queued_task(api)
    worker = Worker(api)
    claim = worker.claim()
    api.ok("POST", f"/api/tasks/{task['id']}/cancel", 202, json={"reason": "enough"})
    assert worker.ok(claim, "heartbeat")["cancel_requested"] is True
    worker.ok(claim, "finish", outcome="cancelled")
    assert task_status(api, task["id"]) == "cancelled"


def test_a_worker_that_does_not_hold_the_execution_is_told_it_lost_it(api):
    queued_task(api)
    worker = Worker(api)
    claim = worker.claim()
    impostor = Worker(api, worker_id="remote-2")
    head = api.position()
    for action, fields in (
        ("heartbeat", {}),
        ("output", {"chunks": [{"seq": 0, "stream": "stdout", "text": "x"}]}),
        ("report", {"message": {"type": "progress", "percentage": 1}}),
        ("finish", {"outcome": "completed"}),
    ):
        response = impostor.report(claim, action, **fields)
        assert response.status_code == 409, response.text
        assert response.json()["error"]["code"] == "LEASE_LOST"
        stale = {**claim, "execution_id": "0b7a3f0e-0000-4000-8000-000000000001"}
        assert worker.report(stale, action, **fields).status_code == 409
    assert api.position() == head


def test_another_teams_worker_neither_claims_nor_reaches_the_teams_executions(api):
    task = queued_task(api)
    outsider = Worker(api, team="other")
    assert outsider.claim() is None
    assert task_status(api, task["id"]) == "queued"
    claim = Worker(api).claim()
    assert claim is not None
    outsider.worker_id = "remote-1"  # even naming the worker that holds it
    response = outsider.report(claim, "heartbeat")
    assert response.status_code == 404, response.text
    assert response.json()["error"]["code"] == "EXECUTION_NOT_FOUND"
    assert task["id"] not in response.text


def test_a_project_scoped_agent_key_cannot_claim(api):
    project = api.project()
    issued = api.ok(
        "POST",
        "/api/auth/api-keys",
        201,
        json={"name": "scoped", "role": "agent", "project_id": project["id"]},
    )["data"]
    response = api.client.post(f"{W}/claim", json={"worker_id": "w"}, headers=bearer(issued["key"]))
    assert response.status_code == 403, response.text


def test_people_cannot_work_as_workers_and_workers_cannot_read(api):
    for role in ("viewer", "operator", "approver"):
        response = api.client.post(
            f"{W}/claim", json={"worker_id": "w"}, headers=bearer(token(api.client, role=role))
        )
        assert response.status_code == 403, (role, response.text)
    agent = bearer(token(api.client, role="agent"))
    assert api.client.get("/api/queues/status", headers=agent).status_code == 403


@pytest.mark.parametrize(
    "message",
    [
        {"type": "result", "summary": "results travel with the finish"},
        {"type": "progress", "percentage": 150},
        {"type": "phase"},
        {"type": "question"},
        {"type": "nonsense"},
        {"question": "no type"},
        {"type": "usage", "input_tokens": -1},
    ],
)
def test_a_message_that_is_not_a_valid_agent_report_is_refused(sqlite_api, message):
    queued_task(sqlite_api)
    worker = Worker(sqlite_api)
    claim = worker.claim()
    head = sqlite_api.position()
    response = worker.report(claim, "report", message=message)
    assert response.status_code == 422, response.text
    assert sqlite_api.position() == head


@pytest.mark.parametrize(
    "fields",
    [
        {"chunks": []},
        {"chunks": [{"seq": -1, "stream": "stdout", "text": "x"}]},
        {"chunks": [{"seq": 0, "stream": "stdin", "text": "x"}]},
        {"chunks": [{"seq": 0, "stream": "stdout", "text": "x" * 65_537}]},
        {"chunks": [{"seq": n, "stream": "stdout", "text": ""} for n in range(1001)]},
    ],
)
def test_output_out_of_bounds_is_refused(sqlite_api, fields):
    queued_task(sqlite_api)
    worker = Worker(sqlite_api)
    response = worker.report(worker.claim(), "output", **fields)
    assert response.status_code == 422, response.text


@pytest.mark.parametrize(
    "body",
    [{}, {"worker_id": ""}, {"worker_id": "has space"}, {"worker_id": "w", "team_id": "other"}],
)
def test_a_claim_needs_a_well_formed_worker_id(sqlite_api, body):
    worker = Worker(sqlite_api)
    response = worker.post(f"{W}/claim", body)
    assert response.status_code == 422, response.text


# ---- the worker loop against a live server ----------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def live_server(settings: Settings, **options: Any) -> Iterator[tuple[str, Any]]:
    """The app under uvicorn on a free port, in a thread; ``options``: more of uvicorn's."""
    migrate(settings)
    app = create_app(settings)
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", **options)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", app
    finally:
        server.should_exit = True
        thread.join(timeout=20)


async def until(check: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = await check()
        if found:
            return found
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


def worker_settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "worker", workers=0)


async def scripted_run(base: str, tmp_path: Path, script: list[dict[str, Any]]) -> dict[str, Any]:
    """Queues a scripted task, runs one remote worker until the task ends, answering the
    agent's questions with "postgres"; answers the task and its output."""
    async with httpx.AsyncClient(base_url=base, timeout=10) as people:
        minted = await people.post(
            "/api/auth/token",
            json={"team_id": "default", "role": "admin"},
            headers={"X-Admin-Key": ADMIN_KEY},
        )
        people.headers["Authorization"] = f"Bearer {minted.json()['data']['access_token']}"
        agent = await people.post("/api/auth/api-keys", json={"name": "worker", "role": "agent"})
        project = (await people.post("/api/projects/", json={"name": "Remote"})).json()["data"]
        body = {"title": "Scripted", "project_id": project["id"], "metadata": {"script": script}}
        task = (await people.post("/api/tasks/", json=body)).json()["data"]
        await people.post(f"/api/tasks/{task['id']}/execute", json={})
        backend = RemoteBackend(base, agent.json()["data"]["key"], heartbeat_seconds=0.5)
        pool = WorkerPool(backend, worker_settings(tmp_path), load_agents(None), 1)
        pool.start()
        try:
            ended = await until(lambda: answer_or_end(people, task["id"]), "the task to end")
        finally:
            await pool.stop()
            await backend.close()
        # the output listing is a read model: read it as of the task's last event
        history = (await people.get(f"/api/tasks/{task['id']}/history")).json()["data"]
        last = max(entry["position"] for entry in history["history"])
        params = {"limit": 1000, "min_position": last}
        output = await people.get(f"/api/tasks/{task['id']}/output", params=params)
        return {"task": ended, "output": "".join(c["text"] for c in output.json()["data"]["items"])}


async def answer_or_end(people: httpx.AsyncClient, task_id: str) -> dict[str, Any] | None:
    task = (await people.get(f"/api/tasks/{task_id}")).json()["data"]
    if task["status"] in ("completed", "failed", "cancelled", "timed_out"):
        return task
    if task["status"] == "needs_input":
        pending = await people.get(f"/api/tasks/{task_id}/questions", params={"status": "pending"})
        for item in pending.json()["data"]["items"]:
            body = {"question_id": item["id"], "response": "postgres"}
            await people.post(f"/api/tasks/{task_id}/respond", json=body)
    return None


def test_the_worker_loop_runs_a_scripted_task_through_a_remote_backend(settings, tmp_path):
    script = [
        {"say": "hello from afar"},
        {"phase": "build"},
        {"progress": 50, "message": "halfway"},
        {"ask": "Which database?", "options": ["postgres", "sqlite"]},
        {"phase": "build", "status": "completed"},
        {"result": {"summary": "done remotely"}},
    ]
    with live_server(settings) as (base, _):
        run = asyncio.run(scripted_run(base, tmp_path, script))
    task = run["task"]
    assert task["status"] == "completed", task
    assert task["result"]["summary"] == "done remotely" and task["result"]["exit_code"] == 0
    assert "hello from afar" in run["output"] and "answer: postgres" in run["output"]


def test_a_remote_agent_that_fails_is_recorded_as_failed(settings, tmp_path):
    with live_server(settings) as (base, _):
        run = asyncio.run(scripted_run(base, tmp_path, [{"say": "oops"}, {"exit": 1}]))
    assert run["task"]["status"] == "failed" and run["task"]["result"]["exit_code"] == 1


# ---- RemoteBackend's transport, in memory -----------------------------------------------------

CLAIM = Claim(
    task_id="t",
    team_id="default",
    project_id="p",
    execution_id="e",
    attempt=1,
    worker_id="w",
    lease_until=time.time() + 30,
    title="x",
    description="",
    slug=None,
    metadata={},
    repository_url=None,
    base_branch=None,
    test_command=None,
    options={},
)


def envelope(data: Any, status: int = 200, **headers: str) -> httpx.Response:
    return httpx.Response(status, json={"data": data, "error": None, "meta": {}}, headers=headers)


def refusal(status: int, code: str) -> httpx.Response:
    error = {"code": code, "message": code.lower(), "details": {}}
    return httpx.Response(status, json={"data": None, "error": error, "meta": {}})


def backend_with(*answers: Any, **options: Any) -> tuple[RemoteBackend, list[httpx.Request]]:
    """Each request gets the next answer: a response, or an exception to raise."""
    seen: list[httpx.Request] = []
    pending = list(answers)

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = pending.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    transport = httpx.MockTransport(handle)
    backend = RemoteBackend("http://server", "tw_key", pause=0.001, transport=transport, **options)
    return backend, seen


def test_a_request_that_never_left_is_sent_again_until_it_arrives():
    beat = {"lease_until": time.time() + 30, "cancel_requested": False}
    backend, seen = backend_with(
        httpx.ConnectError("refused"), httpx.ConnectError("refused"), envelope(beat)
    )
    answer = asyncio.run(backend.heartbeat(CLAIM, None))
    assert answer == Beat(lease_until=beat["lease_until"], cancel_requested=False)
    assert len(seen) == 3 and seen[0].headers["Authorization"] == "Bearer tw_key"


def test_a_report_that_may_have_arrived_is_not_sent_twice():
    backend, seen = backend_with(httpx.ReadTimeout("slow"), envelope({"item_id": "i"}))
    with pytest.raises(httpx.ReadTimeout):
        asyncio.run(backend.report(CLAIM, {"type": "question", "question": "?"}))
    assert len(seen) == 1


def test_output_is_sent_again_after_a_timeout_and_split_into_bounded_requests():
    chunks = [(n, "stdout", "x" * 200_000) for n in range(3)]
    backend, seen = backend_with(
        httpx.ReadTimeout("slow"), envelope({}), envelope({}), envelope({})
    )
    asyncio.run(backend.output(CLAIM, chunks))
    sent = [msgspec.json.decode(r.content)["chunks"] for r in seen]
    assert [[c["seq"] for c in s] for s in sent] == [[0], [0], [1], [2]]


def test_a_rate_limited_request_waits_for_retry_after():
    backend, seen = backend_with(
        envelope(None, 429, **{"Retry-After": "0"}), envelope(None), idle_seconds=0.0
    )
    assert asyncio.run(backend.claim("w")) is None
    assert len(seen) == 2


def test_a_finish_sent_twice_whose_first_copy_arrived_counts_as_recorded():
    backend, _ = backend_with(httpx.ReadError("reset"), refusal(409, "LEASE_LOST"))
    backend.held[CLAIM.execution_id] = CLAIM
    assert asyncio.run(backend.finish(CLAIM, "completed", {}))["status"] == "completed"
    assert backend.held == {}
    once, _ = backend_with(refusal(409, "LEASE_LOST"))
    with pytest.raises(RemoteLeaseLostError):
        asyncio.run(once.finish(CLAIM, "completed", {}))


def test_a_lost_lease_ends_the_run_and_heartbeats_are_paced():
    lease = time.time() + 30
    backend, seen = backend_with(
        envelope({"lease_until": lease, "cancel_requested": False}), refusal(409, "LEASE_LOST")
    )

    async def beats() -> list[Beat]:
        first = await backend.heartbeat(CLAIM, None)
        cached = await backend.heartbeat(CLAIM, None)  # within the pace: not sent
        backend._beats.clear()  # the pace has passed
        return [first, cached, await backend.heartbeat(CLAIM, None)]

    first, cached, lost = asyncio.run(beats())
    assert first == cached and len(seen) == 2
    assert lost.lost is True and lost.cancel_requested is True


def test_a_reply_is_handed_over_once():
    reply = {"type": "answer", "question_id": "i", "response": "yes"}
    beat = {"lease_until": time.time() + 30, "cancel_requested": False, "reply": reply}
    backend, seen = backend_with(envelope(beat))

    async def beats() -> list[Beat]:
        return [await backend.heartbeat(CLAIM, "i"), await backend.heartbeat(CLAIM, "i")]

    first, second = asyncio.run(beats())
    assert first.reply == reply and second.reply is None and len(seen) == 1


def test_errors_other_than_a_lost_lease_are_raised_with_their_code():
    backend, _ = backend_with(refusal(403, "AUTH_INSUFFICIENT_PERMISSIONS"))
    with pytest.raises(RemoteError) as raised:
        asyncio.run(backend.claim("w"))
    assert raised.value.status == 403 and raised.value.code == "AUTH_INSUFFICIENT_PERMISSIONS"
    assert asyncio.run(backend.claim("w")) is None  # wrong credentials: it waits before asking
