"""Snapshots on SQLite and Postgres (application/snapshots.py, infrastructure/snapshot_store.py):
the table ``migrate`` creates, snapshots written there and read by a load, nothing of the log
disturbed (positions, digests, what consumers read), a store migrated before there were snapshots
still loading its tasks, and many writers on one long task."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest

from application.audit.chain import GENESIS, chain
from application.commands import CreateProject, CreateTask, Targeted, UpdateTask
from application.conflict_retry import ConflictRetry
from application.projects import create_project
from application.snapshots import replay
from application.store import Store
from application.tasks import create_task, update_task
from domain.task import Task
from domain.values import Actor
from infrastructure.clock import SystemClock
from infrastructure.settings import Settings
from tests.stores import open_store

ALICE = Actor("alice", "team-a", "req-1")
INTERVAL = 10


def settings_for(database_url: str | None, tmp_path: Path, interval: int = INTERVAL) -> Settings:
    return Settings(data_dir=tmp_path, database_url=database_url, snapshot_interval=interval)


@pytest.fixture
def store(database_url: str | None, tmp_path: Path) -> Iterator[Store]:
    clock = SystemClock()
    retry = ConflictRetry(60.0, clock=clock)  # a slow shared machine must not fail the test
    store = open_store(settings_for(database_url, tmp_path), retry=retry, clock=clock)
    yield store
    store.close()


def long_task(store: Store, updates: int) -> str:
    project = create_project(store, CreateProject(name="Long"), ALICE).data
    task = create_task(store, CreateTask(project_id=str(project["id"]), title="t"), ALICE).data
    for i in range(updates):
        cmd = Targeted(target=str(task["id"]), command=UpdateTask(title=f"title {i}"))
        update_task(store, cmd, ALICE)
    assert store.ledger.flush_snapshots()
    return str(task["id"])


def tables(store: Store) -> set[str]:
    datastore: Any = store.ledger.recorder.datastore  # type: ignore[attr-defined]
    if hasattr(datastore, "schema"):
        statement = "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
    else:
        statement = "SELECT name FROM sqlite_master WHERE type = 'table'"
    with datastore.transaction(commit=False) as curs:
        curs.execute(statement)
        rows = curs.fetchall()
    return {next(iter(row.values())) if isinstance(row, dict) else row[0] for row in rows}


def stored_snapshots(store: Store, task_id: str) -> list[int]:
    """The versions of the task's snapshots: at multiples of the interval, the newest among them
    at least (the writer takes the newest of those due when it falls behind)."""
    assert store.ledger.snapshots is not None
    found = store.ledger.snapshots.recorder.select_events(UUID(task_id))
    return [s.originator_version for s in found]


def test_snapshots_go_to_their_own_table_and_a_load_reads_them(store):
    assert {"stored_snapshots", "taskwarden_snapshots"} & tables(store)
    task_id = long_task(store, 34)  # versions 1 to 35
    assert stored_snapshots(store, task_id)[-1] == 30
    assert all(v % INTERVAL == 0 for v in stored_snapshots(store, task_id))
    loaded = store.load(Task, UUID(task_id), ALICE.team_id, "task")
    assert loaded.__dict__ == replay(None, store.ledger.events.get(UUID(task_id))).__dict__
    assert loaded.version == 35


def test_a_load_at_a_version_starts_from_the_newest_snapshot_at_or_below_it(store):
    task_id = long_task(store, 34)  # snapshots at 10, 20, 30
    assert {10, 20, 30} <= set(stored_snapshots(store, task_id))
    for version in (9, 10, 25, 30, 35):
        loaded = store.ledger.repository.get(UUID(task_id), version=version)
        expected = replay(None, store.ledger.events.get(UUID(task_id), lte=version))
        assert loaded.__dict__ == expected.__dict__ and loaded.version == version


def test_on_postgres_a_load_reads_its_snapshot_and_events_in_one_statement(
    store, database_url, tmp_path, monkeypatch
):
    """Postgres: the snapshot and the events after it come from one statement
    (``select_from_snapshot``), not from the snapshot recorder's read and the events'; SQLite
    (no round trips to save) reads them apart. Loaded by another process's store, whose cache
    does not hold the task."""
    task_id = long_task(store, 24)
    other = open_store(settings_for(database_url, tmp_path), create_tables=False)
    try:
        apart: list[Any] = []
        snapshots = other.ledger.snapshots
        assert snapshots is not None
        read_apart = snapshots.recorder.select_events

        def counted(*args: Any, **kwargs: Any) -> Any:
            apart.append(args)
            return read_apart(*args, **kwargs)

        monkeypatch.setattr(snapshots.recorder, "select_events", counted)
        loaded = other.load(Task, UUID(task_id), ALICE.team_id, "task")
        assert (loaded.version, loaded.title) == (25, "title 23")
        assert len(apart) == (0 if database_url else 1)
    finally:
        other.close()


def test_a_snapshot_that_no_longer_decodes_is_passed_over_and_the_task_replayed(
    database_url, tmp_path
):
    store = open_store(settings_for(database_url, tmp_path))
    try:
        task_id = long_task(store, 24)  # snapshots at 10 and 20
        on_snapshot_table(
            database_url,
            tmp_path,
            "UPDATE stored_snapshots SET state = CAST('{}' AS BLOB)",
            "UPDATE taskwarden_snapshots SET state = '{}'::bytea",
        )
        other = open_store(settings_for(database_url, tmp_path), create_tables=False)
        try:  # another process's store: the task is not in its cache
            loaded = other.load(Task, UUID(task_id), ALICE.team_id, "task")
        finally:
            other.close()
        expected = replay(None, store.ledger.events.get(UUID(task_id)))
        assert loaded.__dict__ == expected.__dict__ and loaded.title == "title 23"
    finally:
        store.close()


def test_snapshots_leave_the_log_its_positions_and_its_digests_as_they_were(store):
    task_id = long_task(store, 34)
    assert stored_snapshots(store, task_id)[-1] == 30
    logged = list(store.notifications(0, 1_000))
    assert [n.id for n in logged] == list(range(1, len(logged) + 1))  # no position skipped
    assert all("Snapshot" not in n.topic for n in logged)
    head = store.digest_head()
    assert head == (logged[-1].id, chain(GENESIS, logged))


def test_a_store_migrated_before_snapshots_loads_its_tasks_by_replay(database_url, tmp_path):
    before = open_store(settings_for(database_url, tmp_path, interval=0))
    task_id = long_task(before, 24)
    before.close()
    drop_snapshot_table(database_url, tmp_path)
    after = open_store(settings_for(database_url, tmp_path), create_tables=False)
    try:
        loaded = after.load(Task, UUID(task_id), ALICE.team_id, "task")
        assert (loaded.version, loaded.title) == (25, "title 23")
        assert after.ledger.flush_snapshots()  # the one it offered is not written: no table
        cmd = Targeted(target=task_id, command=UpdateTask(title="after"))
        assert update_task(after, cmd, ALICE).data["title"] == "after"
    finally:
        after.close()


def drop_snapshot_table(database_url: str | None, tmp_path: Path) -> None:
    on_snapshot_table(
        database_url, tmp_path, "DROP TABLE stored_snapshots", "DROP TABLE taskwarden_snapshots"
    )


def on_snapshot_table(database_url: str | None, tmp_path: Path, sqlite: str, postgres: str) -> None:
    """A statement run on the snapshots' table directly, as someone with database access."""
    if database_url is None:
        with sqlite3.connect(tmp_path / "events.sqlite3") as conn:
            conn.execute(sqlite)
    else:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(postgres)


def test_four_writers_on_one_long_task_all_land_in_order(store):
    task_id = long_task(store, 45)
    failures: list[BaseException] = []
    start = threading.Barrier(4)

    def writer(n: int) -> None:
        start.wait()
        try:
            for i in range(15):
                cmd = Targeted(target=task_id, command=UpdateTask(title=f"writer {n} {i}"))
                update_task(store, cmd, ALICE)
        except BaseException as error:  # noqa: BLE001 - reported below
            failures.append(error)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not failures
    events = list(store.ledger.events.get(UUID(task_id)))
    assert [e.originator_version for e in events] == list(range(1, 107))
    loaded = store.load(Task, UUID(task_id), ALICE.team_id, "task")
    assert loaded.__dict__ == replay(None, events).__dict__


def test_a_task_kept_by_one_process_is_loaded_with_what_another_wrote(database_url, tmp_path):
    one = open_store(settings_for(database_url, tmp_path))
    other = open_store(settings_for(database_url, tmp_path), create_tables=False)
    try:
        assert one.ledger.repository.cache is not None  # eventsourcing's, kept per process
        task_id = long_task(one, 5)
        assert one.load(Task, UUID(task_id), ALICE.team_id, "task").title == "title 4"
        cmd = Targeted(target=task_id, command=UpdateTask(title="by the other"))
        update_task(other, cmd, ALICE)
        loaded = one.load(Task, UUID(task_id), ALICE.team_id, "task")
        assert (loaded.version, loaded.title) == (7, "by the other")
    finally:
        other.close()
        one.close()


def test_writers_in_two_processes_on_one_task_all_land_in_order(database_url, tmp_path):
    clock = SystemClock()
    stores = [
        open_store(settings_for(database_url, tmp_path), retry=ConflictRetry(60.0, clock=clock)),
        open_store(
            settings_for(database_url, tmp_path),
            create_tables=False,
            retry=ConflictRetry(60.0, clock=clock),
        ),
    ]
    try:
        task_id = long_task(stores[0], 15)
        failures: list[BaseException] = []
        start = threading.Barrier(4)

        def writer(n: int) -> None:
            start.wait()
            try:
                for i in range(10):
                    cmd = Targeted(target=task_id, command=UpdateTask(title=f"writer {n} {i}"))
                    update_task(stores[n % 2], cmd, ALICE)
            except BaseException as error:  # noqa: BLE001 - reported below
                failures.append(error)

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert not failures
        events = list(stores[0].ledger.events.get(UUID(task_id)))
        assert [e.originator_version for e in events] == list(range(1, 57))
        for store in stores:
            loaded = store.load(Task, UUID(task_id), ALICE.team_id, "task")
            assert loaded.__dict__ == replay(None, events).__dict__
    finally:
        for store in stores:
            store.close()


def test_migrate_creates_the_snapshots_table_whatever_the_interval(database_url, tmp_path):
    from interfaces.services import migrate  # noqa: PLC0415

    settings = settings_for(database_url, tmp_path, interval=0)
    migrate(settings)  # `taskwarden migrate` with snapshots off
    store = open_store(settings_for(database_url, tmp_path), create_tables=False)
    try:
        assert {"stored_snapshots", "taskwarden_snapshots"} & tables(store)
        task_id = long_task(store, 24)
        assert stored_snapshots(store, task_id)[-1] == 20
    finally:
        store.close()
