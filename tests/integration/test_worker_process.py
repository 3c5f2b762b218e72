"""``taskwarden worker`` as a real process against a real Postgres (a fresh database per test).

A worker process runs a scripted task to completion and stops on SIGTERM. A worker process killed
with SIGKILL while it holds a lease leaves the execution to the sweeper of another process, which
recovers it once the lease has expired: failed, or queued again when attempts are left. A worker
stopped with SIGTERM while its agent runs ends the agent and records the execution as failed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import msgspec
import pytest

from application.commands import CreateProject, CreateTask, ExecuteTask, ExecutionOptions
from application.history import task_history
from application.projects import create_project
from application.tasks import create_task
from domain.task import Task
from domain.values import Actor
from infrastructure.settings import Settings
from interfaces.services import Services, build, migrate
from tests.builders import execute_task

ROOT = Path(__file__).resolve().parents[2]
TEAM = "default"
PEOPLE = Actor(id="user:test", team_id=TEAM, request_id="test")
LEASE_SECONDS = "3"  # a killed worker's lease runs out soon; a live one renews it every 0.5 s
LONG_LEASE = "600"  # for tests where no lease may run out, however loaded the machine
ADMIN_KEY = "worker-process-admin-key-0123456789"

pytestmark = [pytest.mark.postgres, pytest.mark.slow]  # processes killed: make slow


def wait_for(check: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


class WorkerProcess:
    """``python -m interfaces.cli worker`` (or another sub-command), its output in a file."""

    def __init__(self, env: dict[str, str], log: Path, *args: str, ready: str = "working:") -> None:
        self.log = log
        self.handle = log.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "interfaces.cli", *(args or ("worker", "--count", "1"))],
            cwd=ROOT,
            env=env,
            stdout=self.handle,
            stderr=subprocess.STDOUT,
        )
        wait_for(lambda: ready in self.output() or self.process.poll() is not None, "start")
        assert self.process.poll() is None, self.output()

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self) -> str:
        return self.log.read_text() if self.log.exists() else ""

    def children(self) -> list[int]:
        """Its child processes (the agents: each leads a process group of its own)."""
        found: list[int] = []
        for task in Path(f"/proc/{self.pid}/task").glob("*"):
            with contextlib.suppress(OSError):
                found += [int(p) for p in (task / "children").read_text().split()]
        return found

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 60.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signum)
        try:
            code = self.process.wait(timeout=timeout)
        finally:
            self.handle.close()
        return code


@pytest.fixture
def env(postgres_url: str, tmp_path: Path) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("TASKWARDEN_")},
        "TASKWARDEN_DATABASE_URL": postgres_url,
        "TASKWARDEN_DATA_DIR": str(tmp_path / "data"),
        "TASKWARDEN_JWT_SECRET": "x" * 40,
        "TASKWARDEN_LEASE_SECONDS": LEASE_SECONDS,
        "TASKWARDEN_ADMIN_KEY": ADMIN_KEY,
        "PYTHONUNBUFFERED": "1",
    }


@pytest.fixture
def services(env: dict[str, str]) -> Iterator[Services]:
    """The test's own view of the store (the worker processes keep the read model current)."""
    settings = Settings.from_env(env)
    migrate(settings)
    built = build(msgspec.structs.replace(settings, run_projections=False))
    yield built
    built.close()


@pytest.fixture
def workers(env: dict[str, str], tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    started: list[WorkerProcess] = []
    orphans: list[int] = []

    def start(name: str = "worker", *args: str, **more: str) -> WorkerProcess:
        ready = more.pop("ready", "working:")
        process = WorkerProcess(
            {**env, **more}, tmp_path / f"{name}-{len(started)}.log", *args, ready=ready
        )
        started.append(process)
        return process

    start.orphans = orphans  # type: ignore[attr-defined]
    yield start
    for process in started:
        if process.process.poll() is None:
            orphans += process.children()
            process.stop(signal.SIGKILL)
    for pid in orphans:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)


def scripted_task(services: Services, script: list[dict[str, Any]], retries: int = 0) -> str:
    store = services.store
    project = create_project(store, CreateProject(name="Workers"), PEOPLE).data
    body = CreateTask(title="Scripted", project_id=project["id"], metadata={"script": script})
    task = create_task(store, body, PEOPLE).data
    options = ExecutionOptions(retry_attempts=retries, retry_backoff=0.0)
    execute_task(store, task["id"], ExecuteTask(options=options), PEOPLE)
    return str(task["id"])


def task(services: Services, task_id: str) -> Task:
    return services.store.load(Task, UUID(task_id), TEAM, "task")


def running_on(services: Services, task_id: str, worker: WorkerProcess) -> bool:
    current = task(services, task_id)
    return current.status == "running" and f"-{worker.pid}-" in (current.worker_id or "")


def agent_running(services: Services, task_id: str, worker: WorkerProcess) -> list[int]:
    """The worker's agent processes, once it runs the task's agent."""
    return worker.children() if running_on(services, task_id, worker) else []


def test_a_worker_process_runs_a_scripted_task_to_completion(services, workers):
    task_id = scripted_task(
        services, [{"say": "from a worker process"}, {"result": {"summary": "done by a process"}}]
    )
    worker = workers(TASKWARDEN_LEASE_SECONDS=LONG_LEASE)
    done = wait_for(lambda: task(services, task_id).status == "completed", "the task to complete")
    assert done
    finished = task(services, task_id)
    assert finished.result is not None and finished.result["summary"] == "done by a process"
    assert f"-{worker.pid}-" in str(task_history(services.store, task_id, TEAM))
    assert worker.stop() == 0, worker.output()
    assert worker.output().rstrip().endswith("stopped")


def test_a_killed_workers_lease_is_recovered_by_another_process_and_retried(services, workers):
    task_id = scripted_task(services, [{"sleep": 60}], retries=1)
    first = workers("first")
    agents = wait_for(lambda: agent_running(services, task_id, first), "the first's agent")
    workers.orphans += agents  # type: ignore[attr-defined]
    first.stop(signal.SIGKILL)
    second = workers("second")
    retried = wait_for(
        lambda: task(services, task_id).attempt == 2 and running_on(services, task_id, second),
        "the second worker to run the retry",
    )
    assert retried
    ends = [
        e["data"]
        for e in task_history(services.store, task_id, TEAM)["history"]
        if e["type"] == "task.execution_finished"
    ]
    assert len(ends) == 1 and ends[0]["outcome"] == "failed"
    assert ends[0]["result"]["error"].startswith("lease expired")
    assert f"-{first.pid}-" in ends[0]["result"]["worker_id"]


def test_a_killed_workers_lease_without_attempts_left_ends_failed(services, workers):
    task_id = scripted_task(services, [{"sleep": 60}])
    first = workers("first")
    agents = wait_for(lambda: agent_running(services, task_id, first), "the first's agent")
    workers.orphans += agents  # type: ignore[attr-defined]
    first.stop(signal.SIGKILL)
    workers("sweeper")
    failed = wait_for(lambda: task(services, task_id).status == "failed", "the recovery")
    assert failed
    result = task(services, task_id).result or {}
    assert result["error"].startswith("lease expired") and task(services, task_id).attempt == 1


def test_a_stopped_worker_ends_its_agents_and_records_their_executions(services, workers):
    task_id = scripted_task(services, [{"say": "long job"}, {"sleep": 60}])
    worker = workers(TASKWARDEN_LEASE_SECONDS=LONG_LEASE)
    agents = wait_for(lambda: agent_running(services, task_id, worker), "the worker's agent")
    assert worker.stop(signal.SIGTERM) == 0, worker.output()
    ended = task(services, task_id)
    assert ended.status == "failed" and (ended.result or {}).get("worker_stopped") is True
    assert worker.output().rstrip().endswith("stopped")
    for pid in agents:  # the agent's whole group is gone
        with pytest.raises(ProcessLookupError):
            os.killpg(pid, 0)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_remote_worker_process_runs_a_task_through_a_served_api(services, workers):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    workers(
        "serve",
        "serve",
        "--port",
        str(port),
        ready="Uvicorn running",
        TASKWARDEN_WORKERS="0",
        TASKWARDEN_LEASE_SECONDS=LONG_LEASE,  # the remote worker beats every 5 s
    )
    minted = httpx.post(
        f"{base}/api/auth/token",
        json={"team_id": TEAM, "role": "agent"},
        headers={"X-Admin-Key": ADMIN_KEY},
    )
    assert minted.status_code == 201, minted.text
    task_id = scripted_task(services, [{"say": "over http"}, {"result": {"summary": "remote"}}])
    worker = workers(
        "remote",
        "worker",
        "--server",
        base,
        TASKWARDEN_WORKER_TOKEN=minted.json()["data"]["access_token"],
        TASKWARDEN_DATA_DIR=str(Path(services.settings.data_dir).parent / "remote"),
    )
    wait_for(lambda: task(services, task_id).status == "completed", "the remote run")
    assert (task(services, task_id).result or {})["summary"] == "remote"
    assert f"-{worker.pid}-" in str(task_history(services.store, task_id, TEAM))
    assert worker.stop() == 0, worker.output()
