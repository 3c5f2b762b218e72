"""Group commit: concurrent commands share one transaction; a conflicting one fails alone."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from eventsourcing.persistence import IntegrityError, Recording

from application.committer import Committer, CommitterClosedError, CommitTimeoutError
from application.ledger import Ledger
from domain.task import Task
from domain.values import Actor
from infrastructure.event_store import ledger_env
from infrastructure.settings import Settings
from tests.builders import a_task

ME = Actor(id="user-1", team_id="team-1", request_id="req-1")
WAIT = 30.0  # seconds a loaded machine may take; the waits end as soon as the condition holds


class GatedLedger(Ledger):
    """Counts transactions (one per ``save``) and can hold a save until the gate opens."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.saves: list[int] = []
        self.gate = threading.Event()
        self.gate.set()
        self.saving = threading.Event()
        self.fail_batches: Exception | None = None

    def save(self, *objs: Any, **kwargs: Any) -> list[Recording[Any]]:
        self.saving.set()
        assert self.gate.wait(WAIT)
        self.saves.append(len(objs))
        if self.fail_batches is not None and len(objs) > 1:
            raise self.fail_batches
        return super().save(*objs, **kwargs)


@pytest.fixture
def ledger() -> Iterator[GatedLedger]:
    ledger = GatedLedger(env=ledger_env(Settings(memory_store=True), create_tables=True))
    yield ledger
    ledger.close()


@pytest.fixture
def committer(ledger: GatedLedger) -> Iterator[Committer]:
    committer = Committer(ledger)
    yield committer
    ledger.gate.set()
    committer.close()


def new_task(title: str, *tags: str) -> Task:
    task = a_task(title=title, actor=ME.id, request_id=ME.request_id)
    for tag in tags:
        task.add_tags([tag], ME)
    return task


class Caller(threading.Thread):
    """One command committing its events from its own thread."""

    def __init__(self, committer: Committer, events: list[Any]) -> None:
        super().__init__(daemon=True)
        self.committer = committer
        self.events = events
        self.recordings: list[Recording[Any]] | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.recordings = self.committer.commit(self.events)
        except BaseException as error:  # noqa: BLE001 - examined by the test
            self.error = error


def eventually(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.005)


def hold_the_writer(ledger: GatedLedger, committer: Committer, task: Task | None = None) -> Caller:
    """Starts a commit that blocks inside ``save`` so that the next commands queue up."""
    ledger.gate.clear()
    ledger.saving.clear()
    blocker = Caller(committer, (task or new_task("blocker")).collect_events())
    blocker.start()
    assert ledger.saving.wait(WAIT)
    return blocker


def queue_in_order(committer: Committer, event_lists: list[list[Any]]) -> list[Caller]:
    """Starts one caller per list, each after the previous one is waiting in the queue."""
    callers = []
    for number, events in enumerate(event_lists, start=1):
        caller = Caller(committer, events)
        caller.start()
        callers.append(caller)
        # the committer's queue is the only way to know a caller is waiting, not yet saved
        eventually(lambda n=number: committer._queue.qsize() == n)
    return callers


def finish(ledger: GatedLedger, *callers: Caller) -> None:
    ledger.gate.set()
    for caller in callers:
        caller.join(WAIT)
        assert not caller.is_alive()


def test_nothing_to_commit_writes_no_transaction(ledger: GatedLedger, committer: Committer) -> None:
    assert committer.commit([]) == []
    assert ledger.saves == []


def test_concurrent_commands_are_written_in_fewer_transactions_than_commands(
    ledger: GatedLedger, committer: Committer
) -> None:
    blocker = hold_the_writer(ledger, committer)
    tasks = [new_task(f"task-{n}", *[f"tag-{i}" for i in range(n % 3)]) for n in range(20)]
    callers = queue_in_order(committer, [t.collect_events() for t in tasks])
    finish(ledger, blocker, *callers)

    assert all(c.error is None for c in [blocker, *callers])
    assert ledger.saves == [1, sum(len(c.events) for c in callers)]
    assert len(ledger.saves) < len(callers)


def test_every_caller_gets_the_recordings_of_its_own_events(
    ledger: GatedLedger, committer: Committer
) -> None:
    blocker = hold_the_writer(ledger, committer)
    tasks = [new_task(f"task-{n}", *[f"tag-{i}" for i in range(n % 4)]) for n in range(12)]
    callers = queue_in_order(committer, [t.collect_events() for t in tasks])
    finish(ledger, blocker, *callers)

    positions = []
    for task, caller in zip(tasks, callers, strict=True):
        assert caller.recordings is not None
        assert [r.domain_event for r in caller.recordings] == caller.events
        assert {r.domain_event.originator_id for r in caller.recordings} == {task.id}
        positions += [r.notification.id for r in caller.recordings]
        assert ledger.repository.get(task.id).tags == [f"tag-{i}" for i in range(len(task.tags))]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)
    assert positions[-1] == ledger.max_position()


def test_a_conflicting_command_in_a_batch_fails_alone(
    ledger: GatedLedger, committer: Committer
) -> None:
    shared = new_task("shared")
    ledger.save(shared)
    first, second = ledger.repository.get(shared.id), ledger.repository.get(shared.id)
    first.add_tags(["first"], ME)
    second.add_tags(["second"], ME)  # the same version 2: only one can be written
    others = [new_task(f"other-{n}") for n in range(5)]

    saves_before = len(ledger.saves)
    blocker = hold_the_writer(ledger, committer)
    callers = queue_in_order(
        committer,
        [
            first.collect_events(),
            *[o.collect_events() for o in others[:3]],
            second.collect_events(),
            *[o.collect_events() for o in others[3:]],
        ],
    )
    finish(ledger, blocker, *callers)

    failed = [c for c in callers if c.error is not None]
    assert failed == [callers[4]]
    assert isinstance(callers[4].error, IntegrityError)
    assert all(c.recordings for c in callers if c is not callers[4])
    assert ledger.repository.get(shared.id).tags == ["first"]
    assert all(ledger.repository.get(o.id).title == o.title for o in others)
    # the blocker, the batch tried once, then each command alone
    assert len(ledger.saves) - saves_before == 1 + 1 + len(callers)


def test_a_failure_of_the_whole_batch_reaches_every_caller_in_it(
    ledger: GatedLedger, committer: Committer
) -> None:
    ledger.fail_batches = OSError("disk full")
    blocker = hold_the_writer(ledger, committer)  # one event: not failed
    callers = queue_in_order(committer, [new_task(f"t{n}").collect_events() for n in range(3)])
    finish(ledger, blocker, *callers)
    assert blocker.error is None
    assert [type(c.error) for c in callers] == [OSError] * 3
    ledger.fail_batches = None
    assert committer.commit(new_task("after").collect_events())


def heard_by(heard: list[Any], count: int) -> None:
    """Waits (bounded) until the listeners have been called ``count`` times: they run on the
    committer's thread just after the callers of the batch are answered."""
    deadline = time.monotonic() + 5
    while len(heard) < count and time.monotonic() < deadline:
        time.sleep(0.001)


def test_listeners_hear_the_position_of_each_committed_batch(
    ledger: GatedLedger, committer: Committer
) -> None:
    heard: list[int] = []
    committer.on_commit(heard.append)
    recordings = committer.commit(new_task("alone", "x").collect_events())
    heard_by(heard, 1)  # the listeners run just after the callers are answered
    assert heard == [recordings[-1].notification.id] == [ledger.max_position()]

    blocker = hold_the_writer(ledger, committer)
    callers = queue_in_order(committer, [new_task(f"t{n}").collect_events() for n in range(4)])
    finish(ledger, blocker, *callers)
    heard_by(heard, 3)
    assert heard[-1] == ledger.max_position()
    assert len(heard) == 3  # alone, blocker, then the one batch of four
    assert heard == sorted(heard)


def test_recording_listeners_get_each_batch_as_committed_before_the_position_listeners(
    ledger: GatedLedger, committer: Committer
) -> None:
    heard: list[tuple[str, object]] = []
    committer.on_commit(lambda position: heard.append(("position", position)))
    committer.on_recorded(lambda recordings: heard.append(("recordings", recordings)))
    events = new_task("alone", "x").collect_events()
    recordings = committer.commit(events)
    heard_by(heard, 2)
    assert heard == [("recordings", recordings), ("position", recordings[-1].notification.id)]
    assert [r.domain_event for r in recordings] == events

    blocker = hold_the_writer(ledger, committer)
    callers = queue_in_order(committer, [new_task(f"t{n}").collect_events() for n in range(4)])
    finish(ledger, blocker, *callers)
    heard_by(heard, 6)
    batches = [batch for kind, batch in heard if kind == "recordings"]
    assert len(batches) == 3  # alone, blocker, then the one batch of four
    ids = [r.notification.id for batch in batches for r in batch]  # type: ignore[attr-defined]
    assert ids == list(range(ids[0], ids[0] + len(ids))) and ids[-1] == ledger.max_position()


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_failing_recording_listener_does_not_stop_later_commits(
    ledger: GatedLedger, committer: Committer
) -> None:
    heard: list[int] = []
    both = threading.Event()

    def broken(recordings: object) -> None:
        raise RuntimeError("listener bug")

    def position(at: int) -> None:
        heard.append(at)
        if len(heard) == 2:
            both.set()

    committer.on_recorded(broken)
    committer.on_commit(position)  # called after the callers are answered: waited for below
    committer.commit(new_task("first").collect_events())
    later = Caller(committer, new_task("second").collect_events())
    later.start()
    later.join(3)
    assert not later.is_alive() and later.recordings
    assert both.wait(3)  # position listeners still ran, after the failing one
    assert heard == [1, later.recordings[-1].notification.id]


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_failing_listener_does_not_stop_later_commits(
    ledger: GatedLedger, committer: Committer
) -> None:
    def broken(position: int) -> None:
        raise RuntimeError("listener bug")

    committer.on_commit(broken)
    committer.commit(new_task("first").collect_events())
    later = Caller(committer, new_task("second").collect_events())
    later.start()
    later.join(3)
    assert not later.is_alive() and later.recordings


def test_a_commit_after_close_is_refused_instead_of_waiting_for_ever(ledger: GatedLedger) -> None:
    committer = Committer(ledger)  # type: ignore[arg-type]
    committer.close()
    with pytest.raises(CommitterClosedError):
        committer.commit([object()])


def test_a_stuck_commit_holds_its_callers_no_longer_than_the_wait_and_a_queued_one_is_dropped(
    ledger: GatedLedger,
) -> None:
    """TASKWARDEN_DATABASE_TIMEOUT_SECONDS: the store stops answering in the middle of a save."""
    committer = Committer(ledger, wait=0.3)  # type: ignore[arg-type]
    try:
        stuck_task, queued_task = new_task("stuck"), new_task("queued")
        stuck = hold_the_writer(ledger, committer, stuck_task)
        [queued] = queue_in_order(committer, [queued_task.collect_events()])
        for caller in (stuck, queued):
            caller.join(WAIT)  # each gives up after its wait, with the save still held
            assert not caller.is_alive()
            assert isinstance(caller.error, CommitTimeoutError)
        assert stuck.error.written is None  # type: ignore[union-attr] - it was being saved
        assert queued.error.written is False  # type: ignore[union-attr] - taken back
        ledger.gate.set()
        after = new_task("after")
        assert committer.commit(after.collect_events())  # the writer goes on
        assert stuck_task.id in ledger.repository  # the save in flight landed
        assert queued_task.id not in ledger.repository  # the one taken back never did
        assert after.id in ledger.repository
    finally:
        ledger.gate.set()
        committer.close()
