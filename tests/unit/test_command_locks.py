"""Commands on one task in one process take turns (application/command_locks.py): the second
loads what the first wrote instead of losing a race to it; two commands taking two tasks in
opposite orders do not wait for each other for ever; reads take no turn."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from application.command_locks import CommandLocks
from application.store import Store
from domain.task import Task
from domain.values import Actor
from tests.builders import a_task
from tests.stores import memory_store

ALICE = Actor("alice", "team-1", "req-1")
WAIT = 30.0  # a bound for a broken test, never reached by a passing one


@pytest.fixture
def store() -> Iterator[Store]:
    store = memory_store()
    yield store
    store.close()


def saved_task(store: Store, title: str = "t") -> Task:
    task = a_task(title=title)
    store.commit(task)
    return task


def until(condition, message: str) -> None:
    done = threading.Event()
    for _ in range(int(WAIT / 0.01)):
        if condition():
            return
        done.wait(0.01)
    raise AssertionError(message)


def test_a_second_command_on_a_task_loads_what_the_first_wrote_and_decides_once(store):
    task = saved_task(store)
    first_loaded, first_may_commit = threading.Event(), threading.Event()
    attempts: list[int] = []

    def first() -> None:
        def decide() -> None:
            loaded = store.load(Task, task.id, ALICE.team_id, "task")
            first_loaded.set()
            assert first_may_commit.wait(WAIT)
            loaded.update({"title": "first"}, ALICE)
            store.commit(loaded)

        store.with_retries(decide)

    def second() -> None:
        def decide() -> None:
            loaded = store.load(Task, task.id, ALICE.team_id, "task")
            attempts.append(loaded.version)
            loaded.update({"title": "second"}, ALICE)
            store.commit(loaded)

        store.with_retries(decide)

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    threads[0].start()
    assert first_loaded.wait(WAIT)
    threads[1].start()
    until(lambda: store.command_locks.wanted(task.id) == 2, "the second never asked for the task")
    first_may_commit.set()
    for thread in threads:
        thread.join(WAIT)
    assert attempts == [2]  # one attempt, on the version the first wrote: no race lost
    assert store.load(Task, task.id, ALICE.team_id, "task").title == "second"
    assert len(store.command_locks) == 0


def test_two_commands_taking_two_tasks_in_opposite_orders_both_finish():
    locks = CommandLocks(wait=0.05)
    x, y = a_task().id, a_task().id
    both_hold = threading.Barrier(2)
    finished: list[str] = []

    def command(first, then, name) -> None:
        def decide() -> None:
            locks.take(first)
            both_hold.wait(WAIT)
            locks.take(then)  # held by the other: waits 0.05 s, then goes on without it
            finished.append(name)

        locks.attempt(decide)

    threads = [
        threading.Thread(target=command, args=(x, y, "one")),
        threading.Thread(target=command, args=(y, x, "two")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
    assert sorted(finished) == ["one", "two"]
    assert len(locks) == 0


def test_a_read_outside_a_command_takes_no_turn(store):
    task = saved_task(store)
    holding, done = threading.Event(), threading.Event()

    def command() -> None:
        def decide() -> None:
            store.load(Task, task.id, ALICE.team_id, "task")
            holding.set()
            assert done.wait(WAIT)

        store.with_retries(decide)

    thread = threading.Thread(target=command)
    thread.start()
    assert holding.wait(WAIT)
    assert store.load(Task, task.id, ALICE.team_id, "task").version == 1
    assert store.command_locks.wanted(task.id) == 1  # the command's only
    done.set()
    thread.join(WAIT)
