"""The in-process bus and a late event (a quarantined one a relay retry released): durable
consumers get it after what they were given; live subscribers, which follow positions, do not."""

from __future__ import annotations

from tests.unit.test_memory_bus import event, run


async def acked(consumer, count):  # type: ignore[no-untyped-def]
    got = []
    for _ in range(count):
        delivery = await anext(consumer)
        got.append(delivery.event.position)
        await delivery.ack()
    return got


def test_a_late_event_reaches_durable_consumers_after_what_they_had_and_not_live_ones():
    async def scenario():
        from infrastructure.memory_bus import MemoryBus  # noqa: PLC0415

        bus = MemoryBus()
        consumer = bus.durable("hooks", "taskwarden.>")
        await bus.publish([event(1), event(3)])
        first = await acked(consumer, 2)
        live = bus.live("taskwarden.>")
        await bus.publish_late(event(2))
        await bus.publish([event(4)])
        then = await acked(consumer, 2)
        seen_live = (await anext(live)).position
        await bus.close()
        return first, then, seen_live

    first, then, seen_live = run(scenario)
    assert first == [1, 3] and then == [2, 4]
    assert seen_live == 4


def test_a_late_event_does_not_move_a_durable_consumer_back():
    async def scenario():
        from infrastructure.memory_bus import MemoryBus  # noqa: PLC0415

        bus = MemoryBus()
        consumer = bus.durable("hooks", "taskwarden.>")
        await bus.publish([event(5)])
        await acked(consumer, 1)
        await bus.publish_late(event(2))
        await acked(consumer, 1)
        await consumer.aclose()
        again = bus.durable("hooks", "taskwarden.>")  # resumes after 5, not after 2
        await bus.publish([event(6)])
        resumed = await acked(again, 1)
        await bus.close()
        return resumed

    assert run(scenario) == [6]
