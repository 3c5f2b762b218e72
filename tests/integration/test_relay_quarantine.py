"""The relay and poison already in the log (SQLite and Postgres, the in-process bus and NATS): an
event it cannot convert is retried, quarantined, alerted to its team and passed over, every other
team's events reach the bus in order, and a retry after the fix publishes the event late."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

from application import tasks
from application.commands import CreateTask
from application.consumer_state import ConsumerState, Policy
from application.quarantine import QuarantineService
from application.relay import MemoryTracking, Relay
from application.retry_requests import RetryRequests
from domain.quarantine import RELEASED, RETRY_REQUESTED
from infrastructure.memory_bus import MemoryBus
from tests.integration.test_nats_bus import bus_for, run
from tests.integration.views_world import ALICE, BOB, World, world
from tests.poison import nested, no_cycle_collection, unknown_topic_row


def relay_for(w: World, bus: Any) -> tuple[Relay, QuarantineService]:
    service = QuarantineService(w.store)
    policy = Policy(max_attempts=2, backoff=0.01, max_backoff=0.04)
    relay = Relay(
        w.ledger,
        bus,
        MemoryTracking(),
        clock=w.store.clock,
        state=ConsumerState("relay", policy, clock=w.store.clock),
        quarantine=service,
        retries=RetryRequests(service, "relay", every=0.01),
        poll_interval=0.01,
    )
    return relay, service


def deep_task(w: World, project: str) -> int:
    """A task whose metadata nests too deep for the conversion at the default recursion limit
    (written through the handler: the HTTP edge refuses it)."""
    cmd = CreateTask(title="deep", project_id=project, metadata=nested(600))
    return tasks.create_task(w.store, cmd, ALICE).position


@contextmanager
def recursion_limit(limit: int) -> Iterator[None]:
    """The fix, deployed: a conversion that takes deeper data."""
    before = sys.getrecursionlimit()
    sys.setrecursionlimit(limit)
    try:
        yield
    finally:
        sys.setrecursionlimit(before)


async def collect(consumer: Any, got: list[Any], until: Any, timeout: float = 30.0) -> None:
    """Acknowledges deliveries into ``got`` until ``until(got)``."""
    async with asyncio.timeout(timeout):
        while not until(got):
            delivery = await anext(consumer)
            got.append(delivery.event)
            await delivery.ack()


async def settled(service: QuarantineService, ref: str, timeout: float = 30.0) -> Any:
    """The entry once its retry request is settled (released or quarantined again)."""
    async with asyncio.timeout(timeout):
        while (entry := await asyncio.to_thread(service.find, ref)).status == RETRY_REQUESTED:
            await asyncio.sleep(0.02)
    return entry


async def relay_then_retry(w: World, bus: Any, consumer: Any, deep: int) -> Any:
    """Relays until the alert of the quarantined deep event, asks for its retry, and relays
    until it comes late; answers what arrived, the entry, its settled state and the relay's
    status."""
    relay, service = relay_for(w, bus)
    relay.start()
    got: list[Any] = []
    with ExitStack() as fixed:
        try:
            await collect(consumer, got, lambda g: ("team-a", "system.alert") in types(g))
            [entry] = await asyncio.to_thread(service.entries)
            fixed.enter_context(recursion_limit(10_000))
            await asyncio.to_thread(service.request_retry, str(entry.id), "user:admin", "req-1")
            await collect(consumer, got, lambda g: g[-1].position == deep)
            released = await settled(service, str(entry.id))
            return got, entry, released, relay.state.status(None)
        finally:  # stopped before the limit goes down again: no thread is left deeper than it
            await relay.stop()
            await bus.close()


def types(events: list[Any]) -> list[tuple[str, str]]:
    return [(e.team_id, e.type) for e in events]


def test_an_event_that_cannot_be_converted_is_quarantined_and_the_rest_is_published(
    tmp_path, database_url
):
    with world(tmp_path, database_url) as w:
        theirs = w.project("Theirs", by=BOB)
        mine = w.project("Mine")
        deep = deep_task(w, mine)
        w.task(theirs, "after", by=BOB)
        w.task(mine, "mine after")

        async def scenario():
            bus = MemoryBus()  # a new durable consumer gets all it publishes
            return await relay_then_retry(w, bus, bus.durable("all", "taskwarden.>"), deep)

        with no_cycle_collection():
            got, entry, released, status = run(scenario)
        assert (entry.consumer, entry.position, entry.team_id) == ("relay", deep, "team-a")
        assert (entry.error_type, entry.attempts) == ("RecursionError", 2)
        positions = [e.position for e in got[:-1]]
        assert positions == sorted(positions) and deep not in positions
        assert ("team-b", "task.created") in types(got) and types(got).count(
            ("team-a", "task.created")
        ) == 2  # "mine after", and the deep one late
        assert got[-1].position == deep and got[-1].data["metadata"] == nested(600)
        assert released.status == RELEASED
        assert status["quarantined"] == 1 and status["attempts"] == 0


def test_an_unknown_topic_is_quarantined_with_the_team_its_record_names(tmp_path, database_url):
    with world(tmp_path, database_url) as w:
        theirs = w.project("Theirs", by=BOB)
        position, topic = unknown_topic_row(w.ledger, "team-a")
        w.task(theirs, "after", by=BOB)

        async def scenario():
            bus = MemoryBus()  # a new durable consumer gets all it publishes
            consumer = bus.durable("all", "taskwarden.>")
            relay, service = relay_for(w, bus)
            relay.start()
            got: list[Any] = []
            try:
                await collect(consumer, got, lambda g: ("team-a", "system.alert") in types(g))
                return got, await asyncio.to_thread(service.entries)
            finally:
                await relay.stop()
                await bus.close()

        got, [entry] = run(scenario)
        assert (entry.position, entry.topic, entry.team_id) == (position, topic, "team-a")
        assert ("team-b", "task.created") in types(got)


def test_over_nats_the_rest_is_published_and_a_released_event_comes_late(
    tmp_path, nats_url, nats_stream
):
    _, prefix = nats_stream
    with world(tmp_path, None) as w:
        theirs = w.project("Theirs", by=BOB)
        deep = deep_task(w, w.project("Mine"))
        w.task(theirs, "after", by=BOB)

        async def scenario():
            bus = bus_for(nats_url, nats_stream)
            return await relay_then_retry(w, bus, bus.durable("all", f"{prefix}.>"), deep)

        got, _, released, _ = run(scenario)
        assert released.status == RELEASED
        assert ("team-b", "task.created") in types(got)
        assert got[-1].position == deep and [e.position for e in got].count(deep) == 1


def test_the_in_process_bus_replays_the_store_past_an_event_it_cannot_convert(
    tmp_path, database_url
):
    with world(tmp_path, database_url) as w:
        theirs = w.project("Theirs", by=BOB)
        position, _ = unknown_topic_row(w.ledger, "team-a")
        w.task(theirs, "after", by=BOB)

        async def scenario():
            tracking = MemoryTracking()
            tracking.set("bus:all", 0)  # a consumer that stopped before everything: replays
            bus = MemoryBus(source=w.ledger, tracking=tracking)
            consumer = bus.durable("all", "taskwarden.>")
            got: list[Any] = []
            try:
                await collect(consumer, got, lambda g: ("team-b", "task.created") in types(g))
            finally:
                await bus.close()
            return got

        got = run(scenario)
        assert types(got) == [("team-b", "project.created"), ("team-b", "task.created")]
        assert got[0].position < position < got[1].position
