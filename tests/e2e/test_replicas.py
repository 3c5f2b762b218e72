"""``taskwarden serve --workers N``: what its processes run, when N > 1 is refused, and that two
API processes on one Postgres are correct together: writes from both lose nothing and take
unique positions, a write answered by one is read on the other with ``?min_position=``, and the
rate limits are one budget across them. The two processes are two apps here, each with its own
services (store, committer, read model, runner, limiter), as ``serve --workers 2`` builds them;
then the real command with two processes on one port."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from starlette.testclient import TestClient

from infrastructure.settings import Settings
from interfaces import cli
from interfaces.bootstrap.replicas import MAX_WORKERS, refusal, replica_settings
from interfaces.http.app import create_app
from interfaces.http.role import api_role
from interfaces.services import migrate
from tests.e2e.conftest import ADMIN_KEY, make_settings, signed_in
from tests.e2e.test_rate_limits_api import at, mint, stopped
from tests.nats_server import free_port

NATS = "nats://127.0.0.1:4222"  # never connected to here: nothing below subscribes or relays
START_SECONDS = 90.0  # two interpreters importing the app on a loaded 2-core machine


# ---- what each process runs, and refusals ------------------------------------------------------


def postgres_settings(**changes: Any) -> Settings:
    return Settings(database_url="postgresql://db/tw", nats_url=NATS, **changes)


def test_the_first_process_runs_what_the_environment_says_and_the_others_the_api_only() -> None:
    settings = postgres_settings(run_relay=True, run_webhooks=True, workers=3)
    assert replica_settings(settings, 0) is settings
    for index in (1, 2):
        other = replica_settings(settings, index)
        assert other.run_projections is False
        assert (other.relay_in_process, other.webhooks_in_process, other.worker_count) == (
            False,
            False,
            0,
        )
        assert (other.database_url, other.nats_url) == (settings.database_url, settings.nats_url)


@pytest.mark.parametrize(
    ("settings", "workers", "needs"),
    [
        (Settings(), 2, "needs Postgres"),  # SQLite: a limiter per process
        (Settings(memory_store=True), 2, "needs Postgres"),
        (Settings(database_url="postgresql://db/tw"), 2, "needs NATS"),
        (postgres_settings(), 0, "between 1 and"),
        (postgres_settings(), -1, "between 1 and"),
        (postgres_settings(), MAX_WORKERS + 1, "between 1 and"),
    ],
)
def test_more_than_one_process_is_refused_without_postgres_and_nats(
    settings: Settings, workers: int, needs: str
) -> None:
    reason = refusal(settings, workers)
    assert reason is not None
    assert needs in reason


def test_one_process_needs_nothing_and_several_need_postgres_and_nats() -> None:
    assert refusal(Settings(), 1) is None
    assert refusal(postgres_settings(), 2) is None
    assert refusal(postgres_settings(), MAX_WORKERS) is None


def test_serve_with_workers_on_the_embedded_store_exits_2_saying_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TASKWARDEN_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("TASKWARDEN_DATABASE_URL", raising=False)
    assert cli.main(["serve", "--workers", "2"]) == 2
    assert "--workers > 1 needs Postgres" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())  # refused before anything was created


def test_serve_with_zero_workers_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["serve", "--workers", "0"]) == 2
    assert "--workers must be between 1 and" in capsys.readouterr().err


# ---- two processes on one Postgres -------------------------------------------------------------


@contextmanager
def two_processes(settings: Settings) -> Iterator[tuple[TestClient, TestClient]]:
    """The first process and an API-only one (``replica_settings``), one data dir (one signing
    secret) and one database."""
    migrate(settings)
    with ExitStack() as stack:
        clients = []
        for index in (0, 1):
            app = create_app(replica_settings(settings, index))
            client = TestClient(app, raise_server_exceptions=False, client=("127.0.0.1", 5000))
            clients.append(stack.enter_context(client))
        yield clients[0], clients[1]


@pytest.fixture
def settings(tmp_path: Path, postgres_url: str) -> Settings:
    return msgspec.structs.replace(make_settings(tmp_path, postgres_url), nats_url=NATS)


def test_only_the_first_process_runs_the_projection_runner(settings: Settings) -> None:
    with two_processes(settings) as (first, other):
        assert api_role(first.app).settings.run_projections
        assert api_role(first.app).services.runner.state.running
        assert not api_role(other.app).services.runner.state.running


def test_two_processes_writing_at_once_lose_nothing_and_take_unique_positions(
    settings: Settings,
) -> None:
    with two_processes(settings) as (first, other):
        api = signed_in(first)
        headers = dict(first.headers)
        project = api.project()["id"]
        answers: list[tuple[str, int]] = []
        failures: list[str] = []

        def write(client: TestClient, writer: int) -> None:
            for n in range(10):
                body = {"title": f"writer {writer} task {n}", "project_id": project}
                response = client.post("/api/tasks/", json=body, headers=headers)
                if response.status_code != 201:
                    failures.append(response.text)
                    continue
                answers.append((response.json()["data"]["id"], int(response.headers["X-Position"])))

        writers = [
            threading.Thread(target=write, args=(client, n))
            for n, client in enumerate([first, other, first, other])
        ]
        for thread in writers:
            thread.start()
        for thread in writers:
            thread.join()
        assert failures == []
        ids, positions = {a[0] for a in answers}, [a[1] for a in answers]
        assert len(ids) == len(positions) == len(set(positions)) == 40
        head = max(positions)
        for client in (first, other):  # each process's listing, once the views have the last
            listed = client.get(
                f"/api/projects/{project}/tasks",
                params={"min_position": head, "page_size": 100},
                headers=headers,
            )
            assert listed.status_code == 200, listed.text
            assert {t["id"] for t in listed.json()["data"]["items"]} == ids
        stored = api_role(other.app).services.ledger.max_position()
        assert stored == head  # nothing else was written after the last answer


def test_a_write_answered_by_one_process_is_read_on_the_other_with_min_position(
    settings: Settings,
) -> None:
    with two_processes(settings) as (first, other):
        headers = dict(signed_in(first).client.headers)
        project = first.post("/api/projects/", json={"name": "P"}, headers=headers).json()["data"]
        for writer, reader in ((first, other), (other, first)):
            created = writer.post(
                "/api/tasks/", json={"title": "t", "project_id": project["id"]}, headers=headers
            )
            assert created.status_code == 201, created.text
            task, position = created.json()["data"]["id"], created.headers["X-Position"]
            listed = reader.get(
                f"/api/projects/{project['id']}/tasks",
                params={"min_position": position},
                headers=headers,
            )
            assert listed.status_code == 200, listed.text
            assert task in {t["id"] for t in listed.json()["data"]["items"]}


def test_the_rate_limits_are_one_budget_across_processes(settings: Settings) -> None:
    limited = msgspec.structs.replace(
        settings, rate_limit_user=3, trusted_proxies=("127.0.0.1",), rate_limit_anonymous=1000
    )
    with two_processes(limited) as (first, other):
        for client in (first, other):  # each limiter's clock stopped: nothing refills
            stopped(api_role(client.app).services, client, limited)
        token = mint(first)
        statuses = [
            client.get("/api/tasks/", headers=at("198.51.100.1", **token)).status_code
            for client in (first, other, other, first)
        ]
    assert statuses == [200, 200, 200, 429]


# ---- the real command --------------------------------------------------------------------------


def children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found |= {int(p) for p in text}
    return found


def serves_api(pid: int) -> bool:
    """A child that is an API process (not multiprocessing's resource tracker)."""
    try:
        return b"multiprocessing.spawn" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


@contextmanager
def serving_two(
    tmp_path: Path, postgres_url: str
) -> Iterator[tuple[subprocess.Popen[bytes], str, Path]]:
    """``taskwarden serve --workers 2`` on a free port, once both processes answer; killed at the
    end if it still runs."""
    settings = msgspec.structs.replace(make_settings(tmp_path, postgres_url), nats_url=NATS)
    migrate(settings)
    port = free_port()
    env = os.environ | {
        "TASKWARDEN_DATA_DIR": str(settings.data_dir),
        "TASKWARDEN_DATABASE_URL": postgres_url,
        "TASKWARDEN_NATS_URL": NATS,
        "TASKWARDEN_ADMIN_KEY": ADMIN_KEY,
    }
    argv = [str(Path(sys.executable).parent / "taskwarden"), "serve", "--workers", "2"]
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(  # our own argv
            [*argv, "--host", "127.0.0.1", "--port", str(port)], env=env, stdout=out, stderr=out
        )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + START_SECONDS
        while True:  # two API processes started and the port answering
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            started = log.read_text().count("Application startup complete")
            if started == 2 and _answers(url):
                break
            time.sleep(0.1)  # a port and a file to poll: nothing to wait on
        spawned = children(process.pid)
        yield process, url, log
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for pid in spawned if "spawned" in locals() else ():  # none left serving the port
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


@pytest.mark.slow
def test_serve_with_two_workers_serves_one_port_from_two_processes_and_stops_on_sigterm(
    tmp_path: Path, postgres_url: str
) -> None:
    with serving_two(tmp_path, postgres_url) as (process, url, log):
        assert len([p for p in children(process.pid) if serves_api(p)]) == 2
        minted = httpx.post(
            f"{url}/api/auth/token",
            json={"team_id": "default", "role": "admin"},
            headers={"X-Admin-Key": ADMIN_KEY},
        )
        assert minted.status_code == 201, minted.text
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0, log.read_text()
        assert log.read_text().count("Finished server process") == 2


@pytest.mark.parametrize("which", [0, 1])  # process 0 (started first: the lower pid), then 1
@pytest.mark.slow
def test_a_process_that_dies_stops_the_others_and_the_command_exits_1(
    tmp_path: Path, postgres_url: str, which: int
) -> None:
    """Under a service manager the whole service restarts, rather than serving on with a part
    of its processes (process 0 alone runs the projections, the relay, the workers). Killing
    process 0 once crashed the supervisor (its death seen before ``is_alive`` said so), which
    then waited for ever on the other process."""
    with serving_two(tmp_path, postgres_url) as (process, _, log):
        api = sorted(p for p in children(process.pid) if serves_api(p))
        assert len(api) == 2
        os.kill(api[which], signal.SIGKILL)
        assert process.wait(timeout=90) == 1, log.read_text()
        assert f"taskwarden-api-{which} exited (-9): stopping" in log.read_text()
        assert not [p for p in api if _alive(p)]


def _alive(pid: int) -> bool:
    """A process that still runs (not gone, not a zombie waiting for its parent)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
