"""The in-process bus: live fan-out with a bounded queue, durable consumers that redeliver until
acknowledged and resume where they were, duplicates dropped by position."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from application.public_events import PublicEvent
from infrastructure.memory_bus import MemoryBus, SlowSubscriberError


def event(position: int, team: str = "team-1", kind: str = "task.created") -> PublicEvent:
    aggregate, _, name = kind.partition(".")
    return PublicEvent(
        position=position,
        type=kind,
        team_id=team,
        aggregate=aggregate,
        aggregate_id=f"id-{position}",
        version=1,
        timestamp="2025-01-01T00:00:00Z",
        actor=None,
        data={"n": position},
    )


def run(scenario: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(asyncio.wait_for(scenario(), 60))


async def take(iterator: Any, count: int) -> list[Any]:
    return [await anext(iterator) for _ in range(count)]


def test_live_subscribers_get_matching_events_published_after_they_subscribed():
    async def scenario():
        bus = MemoryBus()
        await bus.publish([event(1)])
        team = bus.live("taskwarden.team-1.>")
        tasks = bus.live("taskwarden.*.task.*")
        await bus.publish([event(2), event(3, "team-2"), event(4, kind="project.created")])
        got_team = [e.position for e in await take(team, 2)]
        got_tasks = [e.position for e in await take(tasks, 2)]
        await bus.close()
        return got_team, got_tasks, [e async for e in team]

    assert run(scenario) == ([2, 4], [2, 3], [])


def test_a_slow_live_subscriber_gets_what_was_queued_then_an_error():
    async def scenario():
        bus = MemoryBus(live_queue=2)
        slow = bus.live("taskwarden.>")
        fast = bus.live("taskwarden.>")
        got_fast = []
        for position in (1, 2, 3, 4):
            await bus.publish([event(position)])
            got_fast.append((await anext(fast)).position)
        got_slow = [e.position for e in await take(slow, 2)]
        with pytest.raises(SlowSubscriberError):
            await anext(slow)
        return got_fast, got_slow

    assert run(scenario) == ([1, 2, 3, 4], [1, 2])


def test_a_position_published_again_is_dropped():
    async def scenario():
        bus = MemoryBus()
        live = bus.live("taskwarden.>")
        await bus.publish([event(1), event(2)])
        await bus.publish([event(2), event(1), event(3)])
        got = [e.position for e in await take(live, 3)]
        return got, await bus.last_position()

    assert run(scenario) == ([1, 2, 3], 3)


def test_a_durable_consumer_gets_matching_events_in_order_one_at_a_time():
    async def scenario():
        bus = MemoryBus()
        consumer = bus.durable("hooks", "taskwarden.*.task.>")
        await bus.publish([event(1), event(2, kind="project.created"), event(3), event(4)])
        got = []
        for _ in range(3):
            delivery = await anext(consumer)
            got.append((delivery.event.position, delivery.attempt))
            await delivery.ack()
        return got

    assert run(scenario) == [(1, 1), (3, 1), (4, 1)]


def test_an_unacknowledged_delivery_comes_again_after_the_ack_wait():
    async def scenario():
        bus = MemoryBus(ack_wait=0.05)
        consumer = bus.durable("hooks", "taskwarden.>")
        await bus.publish([event(1), event(2)])
        first = await anext(consumer)
        again = await anext(consumer)  # not acknowledged: the same event, after 0.05 s
        await again.ack()
        after = await anext(consumer)
        return (
            (first.event.position, first.attempt),
            (again.event.position, again.attempt),
            (after.event.position),
        )

    assert run(scenario) == ((1, 1), (1, 2), 2)


def test_an_acknowledgement_given_later_releases_the_next_event():
    async def scenario():
        bus = MemoryBus(ack_wait=5)
        consumer = bus.durable("hooks", "taskwarden.>")
        await bus.publish([event(1), event(2)])
        first = await anext(consumer)
        asyncio.get_running_loop().call_later(0.05, asyncio.ensure_future, first.ack())
        second = await anext(consumer)
        return second.event.position, second.attempt

    assert run(scenario) == (2, 1)


def test_a_durable_consumer_resumes_after_its_last_acknowledged_event():
    async def scenario():
        bus = MemoryBus()
        consumer = bus.durable("hooks", "taskwarden.>")
        await bus.publish([event(1), event(2), event(3)])
        delivery = await anext(consumer)
        await delivery.ack()
        await anext(consumer)  # 2 is handed out but never acknowledged
        await consumer.aclose()
        again = bus.durable("hooks", "taskwarden.>")
        got = []
        for _ in range(2):
            delivery = await anext(again)
            got.append(delivery.event.position)
            await delivery.ack()
        return got

    assert run(scenario) == [2, 3]


def test_a_second_iterator_with_the_same_name_waits_for_the_first():
    async def scenario():
        bus = MemoryBus()
        first = bus.durable("hooks", "taskwarden.>")
        second = bus.durable("hooks", "taskwarden.>")
        await bus.publish([event(1), event(2)])
        delivery = await anext(first)
        await delivery.ack()
        waiting = asyncio.ensure_future(anext(second))
        await asyncio.sleep(0)  # the second starts and waits
        held = await anext(first)  # a positive signal: 2 went to the first, which holds the name
        blocked = not waiting.done()
        await first.aclose()  # 2 was not acknowledged: it comes again, to the second
        return delivery.event.position, held.event.position, blocked, (await waiting).event.position

    assert run(scenario) == (1, 2, True, 2)


def test_a_new_durable_consumer_starts_with_what_the_bus_keeps():
    async def scenario():
        bus = MemoryBus(retain=2)
        await bus.publish([event(1), event(2), event(3)])
        consumer = bus.durable("late", "taskwarden.>")
        got = []
        for _ in range(2):
            delivery = await anext(consumer)
            got.append(delivery.event.position)
            await delivery.ack()
        return got

    assert run(scenario) == [2, 3]


def test_closing_the_bus_ends_every_iterator():
    async def scenario():
        bus = MemoryBus()
        live = bus.live("taskwarden.>")
        consumer = bus.durable("hooks", "taskwarden.>")
        pending = asyncio.ensure_future(anext(consumer))
        await asyncio.sleep(0.01)
        await bus.close()
        with pytest.raises(StopAsyncIteration):
            await pending
        return [e async for e in live], [e async for e in bus.live("taskwarden.>")]

    assert run(scenario) == ([], [])


def test_tracking_needs_the_store_to_replay_from():
    with pytest.raises(ValueError, match="source"):
        MemoryBus(tracking=object())


class Tracked:
    """The tracking port in memory, counting writes; a ledger whose head is 0."""

    repository = None  # nothing is replayed from the store here

    def __init__(self) -> None:
        self.positions: dict[str, int] = {}
        self.writes = 0

    def get(self, name: str) -> int | None:
        return self.positions.get(name)

    def set(self, name: str, position: int) -> None:
        self.writes += 1
        self.positions[name] = position

    def max_position(self) -> int:
        return 0


def test_a_durable_consumers_position_is_stored_at_most_every_interval_and_when_it_ends():
    async def scenario():
        tracking = Tracked()
        bus = MemoryBus(source=tracking, tracking=tracking, record_every=3600)
        consumer = bus.durable("hooks", "taskwarden.>")
        await bus.publish([event(1), event(2), event(3)])
        for _ in range(3):
            delivery = await anext(consumer)
            await delivery.ack()
        during = (dict(tracking.positions), tracking.writes)
        await consumer.aclose()
        after_end = dict(tracking.positions)
        await bus.publish([event(4)])
        again = bus.durable("hooks", "taskwarden.>")
        delivery = await anext(again)
        await delivery.ack()
        await bus.close()
        return during, after_end, delivery.event.position, tracking.positions

    during, after_end, resumed_at, closed = run(scenario)
    assert during == ({"bus:hooks": 0}, 1)  # written when created, not at each ack
    assert after_end == {"bus:hooks": 3}
    assert resumed_at == 4
    assert closed == {"bus:hooks": 4}
