"""The relay, the webhook sender and a worker killed with SIGKILL mid-work, then started again.

README's "Postgres mode" on a fresh database and a NATS server of the test's own: ``serve``,
``relay``, ``webhooks`` and ``worker`` processes, leases of 2 s. A worker runs a scripted agent
when it is killed; clients create tasks while the relay and then the webhook sender are killed
and restarted. Afterwards nothing is lost: the stream holds every public event of the log once,
in order; a webhook of ``*`` received every event since it was made, once each after dropping
repeated delivery ids, in log order; the execution the killed worker held was recovered once its
lease ran out (docs/execution.md) and its retry finished on the new worker.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from infrastructure.settings import Settings
from tests.faults.api import Api, wait_for
from tests.faults.checks import (
    assert_each_event_delivered_once_in_order,
    assert_no_write_lost_or_doubled,
    deliveries,
)
from tests.faults.deployment import postgres_mode
from tests.faults.log_tail import public_positions
from tests.faults.private_nats import PrivateNats
from tests.faults.processes import Processes
from tests.faults.writers import Writers
from tests.webhook_receiver import receiving

pytestmark = pytest.mark.faults

STEP = 20  # writes allowed before each kill, and again while the process is down
HOOK = "/hook"
SCRIPT = [{"say": "working"}, {"sleep": 3}, {"result": {"summary": "finished on a retry"}}]


def test_relay_webhook_sender_and_worker_killed_mid_work_lose_nothing(
    postgres_url: str, workdir: Path, processes: Processes, private_nats: PrivateNats
) -> None:
    up = postgres_mode(
        processes, workdir, postgres_url, private_nats.url, TASKWARDEN_LEASE_SECONDS="2"
    )
    worker = processes.service("worker", "worker", "--count", "1", env=up.env).start()
    admin = up.admin
    with receiving() as receiver:
        _, made = admin.write("/api/webhooks", {"url": receiver.url(HOOK), "events": ["*"]})
        work, _ = admin.write("/api/projects/", {"name": "Executions"})
        task_id = executed(admin, work["id"])
        first = worker.pid
        wait_for(lambda: running_on(admin, task_id, first), "the worker to run the agent")
        project, _ = admin.write("/api/projects/", {"name": "Writes"})
        writers = Writers(
            admin.mint("operator"), project["id"], clients=2, per_client=50, allowed=0
        )
        try:
            writers.start()
            processes.kill(worker)  # holding the execution's lease
            for killed in (up.relay, up.sender):
                flowing = len(receiver.on(HOOK)) + 5
                writers.allow_more(STEP)
                wait_for(lambda n=flowing: len(receiver.on(HOOK)) >= n, "deliveries")
                processes.kill(killed)
                writers.wait_acknowledged(writers.allow_more(STEP))  # written while it is down
                killed.start()
            writers.allow(None)
            worker.start()  # its sweeper recovers the lease; it runs the retry
            wait_for(lambda: status(admin, task_id) == "completed", "the retry to finish", 120)
            writers.join()
            expected = public_positions(Settings(database_url=postgres_url), made, "default")
            wait_for(
                lambda: {p for _, p in deliveries(receiver, HOOK)} >= set(expected),
                "every event at the webhook receiver",
                timeout=120,
            )
        finally:
            writers.stop()
        received = deliveries(receiver, HOOK)
    print(f"{writers.summary()}; webhook: {len(received)} requests for {len(expected)} events")
    assert_no_write_lost_or_doubled(admin, writers, project["id"], allowed={201})
    assert private_nats.positions() == public_positions(Settings(database_url=postgres_url))
    assert_each_event_delivered_once_in_order(received, expected)
    ends = [e["data"] for e in admin.history(task_id) if e["type"] == "task.execution_finished"]
    assert [e["outcome"] for e in ends] == ["failed", "completed"], ends
    assert ends[0]["result"]["error"].startswith("lease expired"), ends[0]
    assert f"-{first}-" in ends[0]["result"]["worker_id"]


def executed(api: Api, project_id: str) -> str:
    """A task whose scripted agent works 3 s, executed with one retry and no backoff."""
    body: dict[str, Any] = {"title": "Outlives its worker", "project_id": project_id}
    body["metadata"] = {"script": SCRIPT}
    task, _ = api.write("/api/tasks/", body)
    options = {"options": {"retry_attempts": 1, "retry_backoff": 0}}
    api.write(f"/api/tasks/{task['id']}/execute", options, expect=202)
    return str(task["id"])


def status(api: Api, task_id: str) -> str:
    return str(api.data("GET", f"/api/tasks/{task_id}")["status"])


def running_on(api: Api, task_id: str, pid: int) -> bool:
    task: dict[str, Any] = api.data("GET", f"/api/tasks/{task_id}")
    return task["status"] == "running" and f"-{pid}-" in (task["worker_id"] or "")
