"""What wakes a local worker: a cancel reaches a running agent without waiting for a heartbeat,
and a queued execution starts without waiting for an idle worker's poll, or, committed by another
process, for this process's projection runner's poll.

The workers here heartbeat and poll once an hour, so that only the immediate paths can deliver
within a test's wait: were either broken, the test would wait out its deadline and fail. Real
app (embedded mode: the relay and the in-process bus, or NATS), real store, the scripted agent.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from starlette.testclient import TestClient

from infrastructure.nats_bus import NatsBus
from infrastructure.settings import Settings
from interfaces.bootstrap.api import ApiRole
from interfaces.execution_host import ExecutionHost
from interfaces.http.app import create_app
from interfaces.services import build, migrate
from tests.e2e.conftest import Api, signed_in
from tests.e2e.execution_support import (
    eventually,
    execute,
    history_types,
    running_settings,
    scripted,
    wait_status,
)
from tests.nats_server import NatsServer

AN_HOUR = 3600.0  # heartbeat and idle poll: longer than any wait of these tests


def slow_api(settings: Settings) -> Iterator[Api]:
    """The app with one in-process worker that heartbeats and polls once an hour."""
    migrate(settings)
    services = build(settings)
    role = ApiRole.from_settings(settings, services=services)
    slow = ExecutionHost(services, 1, heartbeat=AN_HOUR, idle=AN_HOUR)
    role = dataclasses.replace(role, execution=slow)
    with TestClient(create_app(settings, api=role), raise_server_exceptions=False) as client:
        yield signed_in(client)


@pytest.fixture
def api(tmp_path: Path, database_url: str | None) -> Iterator[Api]:
    # a lease longer than the test: no renewal is due, and the sweeper recovers nothing
    settings = running_settings(tmp_path, database_url, workers=1, lease_seconds=AN_HOUR)
    yield from slow_api(settings)


@pytest.fixture
def project(api: Api) -> dict[str, Any]:
    return api.project(name="Wake-ups")


def output_of(api: Api, task_id: str) -> str:
    items = api.ok("GET", f"/api/tasks/{task_id}/output", params={"limit": 1000})["data"]
    return "".join(chunk["text"] for chunk in items["items"])


def cancel_running(api: Api, project_id: str) -> str:
    task_id = scripted(api, project_id, [{"say": "ready"}, {"sleep": 60}])
    execute(api, task_id)
    eventually(lambda: output_of(api, task_id), lambda text: "ready" in text, "ready")
    answer = api.ok("POST", f"/api/tasks/{task_id}/cancel", 202, json={"reason": "stop"})
    assert answer["data"]["status"] != "cancelled"  # it runs: a request its worker must see
    return task_id


def test_a_cancel_reaches_a_running_agent_before_any_heartbeat(api, project):
    task_id = cancel_running(api, project["id"])
    task = wait_status(api, task_id, "cancelled", "failed", "completed")
    assert task["status"] == "cancelled", task
    assert "task.lease_renewed" not in history_types(api, task_id)  # no heartbeat wrote


def test_an_idle_worker_starts_a_queued_execution_without_polling(api, project):
    first = scripted(api, project["id"], [{"say": "one"}])
    execute(api, first)
    assert wait_status(api, first, "completed", "failed")["status"] == "completed"
    # the worker is idle again, asleep for an hour unless something wakes it
    second = scripted(api, project["id"], [{"say": "two"}])
    execute(api, second)
    assert wait_status(api, second, "completed", "failed")["status"] == "completed"


def test_a_cancel_published_on_nats_reaches_a_running_agent(tmp_path, postgres_url):
    """Across processes the cancel travels on NATS (here the relay runs beside the worker)."""
    server = NatsServer(tmp_path / "nats")  # its own: the stream's subjects are the default ones
    server.start()
    base = running_settings(tmp_path, postgres_url, workers=1, lease_seconds=AN_HOUR)
    settings = msgspec.structs.replace(base, nats_url=server.url, run_relay=True)
    try:
        for api in slow_api(settings):
            assert isinstance(api.role.services.bus, NatsBus)
            project = api.project(name="Wake-ups over NATS")
            task_id = cancel_running(api, project["id"])
            assert wait_status(api, task_id, "cancelled", "failed")["status"] == "cancelled"
    finally:
        server.stop()


def test_a_request_from_another_process_wakes_the_worker_process_over_nats(tmp_path, postgres_url):
    """The API process (no workers) commits the request; the worker process, whose projection
    runner and idle workers poll once an hour, starts it because the request reached it on NATS
    (the wake watch pokes its runner, whose advance wakes its workers)."""
    server = NatsServer(tmp_path / "nats")
    server.start()
    base = running_settings(tmp_path, postgres_url, workers=0, lease_seconds=AN_HOUR)
    settings = msgspec.structs.replace(base, nats_url=server.url, run_relay=True)
    migrate(settings)
    workers = build(msgspec.structs.replace(settings, workers=1, run_relay=False))
    workers.runner._poll_interval = AN_HOUR  # noqa: SLF001 - only a wake can make it look
    try:
        with TestClient(create_app(settings), raise_server_exceptions=False) as client:
            api = signed_in(client)
            project = api.project(name="Across processes")
            task_id = scripted(api, project["id"], [{"say": "hello"}])
            asyncio.run(_run_worker_process(workers, api, task_id))
    finally:
        workers.close()
        server.stop()


async def _run_worker_process(workers: Any, api: Api, task_id: str) -> None:
    host = ExecutionHost(workers, 1, heartbeat=AN_HOUR, idle=AN_HOUR)
    host.start()
    try:
        assert host.wakes is not None
        for listening in host.wakes.listening.values():  # subscribed before the request
            await asyncio.wait_for(listening.wait(), 30)
        await asyncio.to_thread(execute, api, task_id)
        ended = await asyncio.to_thread(wait_status, api, task_id, "completed", "failed")
        assert ended["status"] == "completed", ended
    finally:
        await host.stop()
