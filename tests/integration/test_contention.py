"""Many writers on one task, through a real Store, on SQLite and on Postgres alike.

Without ``If-Match`` a writer asked for no optimistic check: a lost race is decided again on the
fresh state until it lands. With ``If-Match`` the check is the point: a lost race is a conflict.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from application.commands import CreateProject, CreateTask, Targeted, UpdateTask
from application.committer import Committer
from application.conflict_retry import ConflictRetry
from application.errors import VersionConflictError
from application.history import task_history
from application.ledger import Ledger
from application.projects import create_project
from application.store import Store
from application.tasks import create_task, update_task
from domain.task import Task
from domain.values import Actor
from infrastructure.clock import SystemClock
from infrastructure.event_store import ledger_env
from infrastructure.settings import Settings

ALICE = Actor(id="alice", team_id="team-a", request_id="req-alice")
WRITERS = 8
UPDATES_EACH = 25


@pytest.fixture
def store(database_url: str | None, tmp_path: Path) -> Iterator[Store]:
    settings = Settings(data_dir=tmp_path, database_url=database_url)
    ledger = Ledger(env=ledger_env(settings, create_tables=True))
    # the bound itself is tested with a fake clock (tests/unit/test_conflict_retry.py); here a
    # slow, shared machine must not turn a slow run into a failure
    clock = SystemClock()
    store = Store(ledger, Committer(ledger), ConflictRetry(60.0, clock=clock), clock=clock)
    yield store
    store.committer.close()
    ledger.close()


def new_task(store: Store) -> dict[str, object]:
    project = create_project(store, CreateProject(name="Busy"), ALICE).data
    return create_task(store, CreateTask(project_id=str(project["id"]), title="t"), ALICE).data


def together(count: int, work: Callable[[int], None]) -> list[BaseException]:
    """Runs ``work(n)`` in ``count`` threads released at once; returns what they raised."""
    start = threading.Barrier(count)
    failures: list[BaseException] = []

    def run(n: int) -> None:
        start.wait()
        try:
            work(n)
        except BaseException as error:  # noqa: BLE001 - reported by the test
            failures.append(error)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not any(t.is_alive() for t in threads)
    return failures


def test_concurrent_updates_without_if_match_all_land_and_each_is_in_the_history(store):
    task = new_task(store)
    task_id = str(task["id"])
    answered: list[str] = []

    def writer(n: int) -> None:
        for i in range(UPDATES_EACH):
            title = f"writer {n} update {i}"
            change = Targeted(target=task_id, command=UpdateTask(title=title))
            answer = update_task(store, change, ALICE)
            assert answer.data["title"] == title  # the answer is this write's state
            answered.append(title)

    assert together(WRITERS, writer) == []
    assert len(answered) == WRITERS * UPDATES_EACH
    final = store.load_live(Task, task_id, ALICE.team_id, "task")
    assert final.version == 1 + WRITERS * UPDATES_EACH
    entries = task_history(store, task_id, ALICE.team_id)["history"]
    titles = [e["data"]["changes"]["title"] for e in entries if e["type"] == "task.updated"]
    assert sorted(titles) == sorted(answered)
    for n in range(WRITERS):  # each writer's changes landed in the order it made them
        own = [t for t in titles if t.startswith(f"writer {n} ")]
        assert own == [f"writer {n} update {i}" for i in range(UPDATES_EACH)]


def test_concurrent_updates_at_one_if_match_version_leave_one_winner_and_conflicts(store):
    task = new_task(store)
    version = int(task["version"])  # type: ignore[call-overload]

    def writer(n: int) -> None:
        change = UpdateTask(title=f"w{n}")
        update_task(
            store, Targeted(target=str(task["id"]), command=change, expected_version=version), ALICE
        )

    failures = together(4, writer)
    assert len(failures) == 3
    assert all(type(f) is VersionConflictError for f in failures)  # at once, not after retries
    assert all((f.expected, f.actual) == (version, version + 1) for f in failures)  # type: ignore[attr-defined]
    final = store.load_live(Task, str(task["id"]), ALICE.team_id, "task")
    assert final.version == version + 1
