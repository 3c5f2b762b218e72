"""Poison planted in a real log, bypassing the HTTP edge (which refuses it): what an older or
newer version, a bug, or an input let through before the edge closed could have left there."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import psycopg
from eventsourcing.domain import DomainEvent
from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import register_topic

from domain.task import Task
from domain.values import Actor
from tests.builders import a_task


class Vanished(DomainEvent):
    """What an unknown topic turns out to be once the fix (a registered topic) is deployed."""

    team_id: str | None


def unknown_topic_row(ledger: Any, team_id: str | None) -> tuple[int, str]:
    """A stored row whose topic this version does not know, written straight through the
    recorder (``team_id`` None: its record names no team); its position and its topic
    (``fix_topic`` makes it decodable)."""
    topic = f"tests.poison:Vanished{uuid4().hex}"
    event = Vanished(
        originator_id=uuid4(), originator_version=1, timestamp=datetime.now(UTC), team_id=team_id
    )
    stored = ledger.mapper.to_stored_event(event)
    row = StoredEvent(
        originator_id=stored.originator_id,
        originator_version=1,
        topic=topic,
        state=stored.state,
    )
    ledger.recorder.insert_events([row])
    return ledger.max_position(), topic


def fix_topic(topic: str) -> None:
    register_topic(topic, Vanished)


def nul_task(store: Any, project_id: str, by: Actor) -> tuple[str, int]:
    """A task whose title holds a NUL character (Postgres text cannot), saved through the
    aggregate; its id and its position."""
    task = a_task(
        team_id=by.team_id,
        project_id=project_id,
        title="bad\x00title",
        priority=2,
        actor=by.id,
        request_id=by.request_id,
    )
    return str(task.id), store.commit(task)


def nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth):
        value = {"a": value}
    return value


@contextmanager
def no_cycle_collection() -> Iterator[None]:
    """The cyclic garbage collector held off while poison too deep for the recursion limit is
    converted, and run once after, at a shallow depth. A collection that starts at the deep end
    of such a stack runs finalizers there, which fail with RecursionError, and so does pytest's
    hook that reports them: the test failed at random (once in a clean-checkout CI run)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
        gc.collect()


def wait_until(condition: Callable[[], Any], timeout: float = 30.0, every: float = 0.02) -> Any:
    """The condition's value once true; fails after ``timeout`` seconds (a loaded machine)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {condition}")
        time.sleep(every)


@contextmanager
def unreachable(admin_url: str, url: str) -> Iterator[None]:
    """The database of ``url`` refuses connections and goes by another name (its sessions are
    ended) until the block ends: an outage of a real Postgres database."""
    name = url.rpartition("/")[2].partition("?")[0]
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')

        def renamed() -> bool:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                [name],
            )
            try:
                conn.execute(f'ALTER DATABASE "{name}" RENAME TO "{name}_away"')
            except psycopg.errors.ObjectInUse:
                return False
            return True

        wait_until(renamed)
    try:
        yield
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'ALTER DATABASE "{name}_away" RENAME TO "{name}"')
            conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')


def corrupt_update(ledger: Any, task_id: str) -> int:
    """A ``Task.Updated`` whose ``changes`` is not a mapping, appended to the task's history
    straight through the recorder: it decodes, says where it belongs and publishes, but the
    task can no longer be loaded, nor its listing row evolved. Its position."""
    aggregate = ledger.repository.get(UUID(task_id))
    event = Task.Updated(
        originator_id=aggregate.id,
        originator_version=aggregate.version + 1,
        timestamp=datetime.now(UTC),
        team_id=aggregate.team_id,
        project_id=aggregate.project_id,
        changes=5,
        actor="bug",
        request_id="",
    )
    ledger.recorder.insert_events([ledger.mapper.to_stored_event(event)])
    return int(ledger.max_position())
