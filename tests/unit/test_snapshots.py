"""A task's snapshots (application/snapshots.py), on the in-memory store: taken after the commit
that made one due, read by a load, never a source of truth (the state with a snapshot is the state
without one; one that does not decode is passed over), off at interval 0."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest
from eventsourcing.domain import Snapshot
from eventsourcing.persistence import IntegrityError
from eventsourcing.utils import register_topic
from hypothesis import HealthCheck, settings
from hypothesis.stateful import invariant, run_state_machine_as_test

from application.errors import NotFoundError
from application.ledger import Ledger
from application.snapshots import replay
from domain.task import Task
from domain.values import Actor
from infrastructure.event_store import ledger_env
from infrastructure.settings import Settings
from tests.builders import a_task
from tests.unit.test_task_state_machine import TaskMachine

ALICE = Actor("alice", "team-1", "req-1")


def memory_ledger(interval: int = 10) -> Ledger:
    return Ledger(
        env=ledger_env(Settings(memory_store=True, snapshot_interval=interval), create_tables=True)
    )


@pytest.fixture
def ledger() -> Iterator[Ledger]:
    ledger = memory_ledger()
    yield ledger
    ledger.close()


def a_task_at(ledger: Ledger, version: int, **fields: Any) -> Task:
    """A task saved at ``version`` (renamed each time), events only, as the committer saves."""
    task = a_task(**fields)
    for i in range(version - 1):
        task.update({"title": f"title {i}"}, ALICE)
    ledger.save(*task.collect_events())
    assert ledger.flush_snapshots()
    return task


def snapshot_versions(ledger: Ledger, task: Task) -> list[int]:
    assert ledger.snapshots is not None
    return [s.originator_version for s in ledger.snapshots.recorder.select_events(task.id)]


def replayed(ledger: Ledger, task: Task) -> Task:
    """The task from every one of its events, no snapshot."""
    return replay(None, ledger.events.get(task.id))


def test_an_event_at_a_multiple_of_the_interval_makes_a_snapshot_after_the_commit(ledger):
    task = a_task(title="one commit each")
    for i in range(24):
        task.update({"title": f"title {i}"}, ALICE)
        ledger.save(*task.collect_events())
        assert ledger.flush_snapshots()  # else the writer takes only the newest of those due
    assert snapshot_versions(ledger, task) == [10, 20]
    assert ledger.repository.get(task.id).__dict__ == replayed(ledger, task).__dict__


def test_a_commit_across_several_multiples_makes_one_snapshot_at_the_newest(ledger):
    task = a_task_at(ledger, 25)
    assert snapshot_versions(ledger, task) == [20]


def test_a_load_reads_the_newest_snapshot_and_the_events_after_it(ledger):
    task = a_task_at(ledger, 25)
    assert ledger.snapshots is not None
    # a marker that no event holds proves the read: put it in a snapshot at 21
    marked = ledger.repository.get(task.id, version=21)
    marked.state = dataclasses.replace(marked.state, description="only in the snapshot")
    ledger.snapshots.put([Snapshot.take(marked)])
    loaded = ledger.repository.get(task.id)
    assert loaded.description == "only in the snapshot"
    assert (loaded.version, loaded.title) == (25, "title 23")


def test_interval_0_takes_no_snapshot_and_reads_none():
    ledger = memory_ledger(interval=0)
    try:
        task = a_task_at(ledger, 25)
        assert ledger.snapshots is not None  # the table exists (tables were created)
        assert snapshot_versions(ledger, task) == []
        marked = ledger.repository.get(task.id)
        marked.state = dataclasses.replace(marked.state, description="only in the snapshot")
        ledger.snapshots.put([Snapshot.take(marked)])
        assert ledger.repository.get(task.id).description == ""
    finally:
        ledger.close()


def test_a_snapshot_whose_state_does_not_decode_is_passed_over_and_the_events_replayed(ledger):
    task = a_task_at(ledger, 25)
    assert ledger.snapshots is not None
    stored = ledger.mapper.to_stored_event(Snapshot.take(ledger.repository.get(task.id)))
    broken = stored.state.replace(b'"title":', b'"a_field_no_more":')
    assert broken != stored.state
    ledger.snapshots.recorder.insert_events([dataclasses.replace(stored, state=broken)])
    assert snapshot_versions(ledger, task) == [20, 25]  # the broken one is the newest
    assert ledger.repository.get(task.id).__dict__ == replayed(ledger, task).__dict__


def test_a_snapshot_of_a_moved_class_resolves_through_its_old_topic(ledger):
    task = a_task_at(ledger, 25)
    assert ledger.snapshots is not None
    register_topic("domain.tasks_before:Task", Task)  # as application/topics.py registers
    stored = ledger.mapper.to_stored_event(Snapshot.take(ledger.repository.get(task.id)))
    moved = stored.state.replace(b'"domain.task:Task"', b'"domain.tasks_before:Task"')
    assert moved != stored.state
    ledger.snapshots.recorder.insert_events([dataclasses.replace(stored, state=moved)])
    loaded = ledger.repository.get(task.id)
    assert type(loaded) is Task
    assert loaded.__dict__ == replayed(ledger, task).__dict__


def test_a_task_written_without_snapshots_gets_one_when_a_load_replayed_two_intervals(ledger):
    old = memory_ledger(interval=0)
    task = a_task_at(old, 25)
    stored = list(old.recorder.select_events(task.id))
    old.close()
    ledger.recorder.insert_events(stored)  # the same events, in a store with snapshots
    assert snapshot_versions(ledger, task) == []
    ledger.repository.get(task.id)
    assert ledger.flush_snapshots()
    assert snapshot_versions(ledger, task) == [25]


def test_snapshots_are_not_in_the_log_its_positions_or_its_digests(ledger):
    task = a_task_at(ledger, 25)
    assert snapshot_versions(ledger, task) == [20]
    assert ledger.max_position() == 25
    logged = ledger.notifications(0, 100)
    assert [n.originator_version for n in logged] == list(range(1, 26))
    assert all("Snapshot" not in n.topic for n in logged)
    assert ledger.recorder.digest_head()[0] == 25  # type: ignore[attr-defined]


def test_another_teams_task_is_not_found_through_its_snapshot():
    from application.store import Store  # noqa: PLC0415
    from tests.stores import memory_store  # noqa: PLC0415

    store: Store = memory_store(snapshot_interval=10)
    try:
        task = a_task()
        for i in range(24):
            task.update({"title": f"t{i}"}, ALICE)
        store.commit(task)
        assert store.ledger.flush_snapshots()
        assert store.ledger.snapshots is not None
        assert [s.originator_version for s in store.ledger.snapshots.get(task.id)] == [20]
        assert store.load(Task, task.id, "team-1", "task").version == 25
        with pytest.raises(NotFoundError):
            store.load(Task, task.id, "team-2", "task")
    finally:
        store.close()


def test_the_interval_is_a_setting():
    assert Settings.from_env({}).snapshot_interval == 50
    assert Settings.from_env({"TASKWARDEN_SNAPSHOT_INTERVAL": "0"}).snapshot_interval == 0
    with pytest.raises(ValueError, match="SNAPSHOT_INTERVAL"):
        Settings(snapshot_interval=-1)
    assert Settings.from_env({}).aggregate_cache_size == 256
    kept = memory_ledger()
    assert kept.repository.cache is not None
    kept.close()
    none = Ledger(
        env=ledger_env(Settings(memory_store=True, aggregate_cache_size=0), create_tables=True)
    )
    assert none.repository.cache is None  # 0 is none (eventsourcing's 0 would be unbounded)
    none.close()


class SnapshotMachine(TaskMachine):
    """Any sequence of task commands: after each step the task takes a snapshot, and a load
    through it gives the same state as a replay of every event and as the live task."""

    @invariant()
    def a_load_through_a_snapshot_is_the_replayed_task(self) -> None:
        self.ledger.save(self.task)
        with contextlib.suppress(IntegrityError):  # taken at this version already
            self.ledger.take_snapshot(self.task.id, projector_func=replay)
        through = self.ledger.repository.get(self.task.id)
        assert through.__dict__ == replayed(self.ledger, self.task).__dict__
        assert through.__dict__ == {**self.task.__dict__, "_pending_events": []}


def test_any_sequence_of_commands_loads_the_same_through_a_snapshot() -> None:
    ledger = memory_ledger(interval=3)
    try:
        run_state_machine_as_test(
            lambda: SnapshotMachine(ledger),
            settings=settings(
                max_examples=50,
                stateful_step_count=30,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
            ),
        )
    finally:
        ledger.close()
