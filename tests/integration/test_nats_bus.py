"""The NATS JetStream bus on a real server: ordered durable consumers, duplicates dropped by
position, live subscriptions, redelivery, resumption."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
import nats
from nats.js.api import StorageType, StreamConfig

from infrastructure.nats_bus import NatsBus
from tests.nats_server import free_port
from tests.unit.test_memory_bus import event


def run(scenario: Callable[[], Awaitable[Any]], timeout: float = 60) -> Any:
    return asyncio.run(asyncio.wait_for(scenario(), timeout))


def bus_for(nats_url: str, nats_stream: tuple[str, str], **kw: Any) -> NatsBus:
    stream, prefix = nats_stream
    return NatsBus(nats_url, stream, prefix=prefix, **kw)


async def acked(consumer: Any, count: int) -> list[tuple[int, int]]:
    """``count`` deliveries as (position, attempt), each acknowledged."""
    got = []
    for _ in range(count):
        delivery = await anext(consumer)
        got.append((delivery.event.position, delivery.attempt))
        await delivery.ack()
    return got


async def stream_messages(url: str, stream: str) -> int:
    nc = await nats.connect(url)
    try:
        return int((await nc.jetstream().stream_info(stream)).state.messages)
    finally:
        await nc.close()


def test_a_durable_consumer_receives_what_was_published_in_order(nats_url, nats_stream):
    _, prefix = nats_stream

    async def scenario():
        bus = bus_for(nats_url, nats_stream)
        try:
            await bus.publish([event(1), event(2, "team-2"), event(3), event(5)])
            await bus.publish([event(8, kind="project.created"), event(9)])
            team = await acked(bus.durable("team-1", f"{prefix}.team-1.>"), 5)
            tasks = await acked(bus.durable("tasks", f"{prefix}.*.task.*"), 5)
            return team, tasks
        finally:
            await bus.close()

    team, tasks = run(scenario)
    assert [p for p, _ in team] == [1, 3, 5, 8, 9]
    assert [p for p, _ in tasks] == [1, 2, 3, 5, 9]
    assert {a for _, a in team + tasks} == {1}


def test_a_position_published_again_is_dropped_by_the_stream(nats_url, nats_stream):
    stream, prefix = nats_stream

    async def scenario():
        bus = bus_for(nats_url, nats_stream)
        try:
            await bus.publish([event(1), event(2)])
            await bus.publish([event(2)])  # the relay again, after a crash
            await bus.publish([event(1), event(2), event(3)])
            consumer = bus.durable("hooks", f"{prefix}.>")
            got = await acked(consumer, 3)
            stored = await stream_messages(nats_url, stream)
            return got, await next_is_a_marker(bus, consumer, 4), stored
        finally:
            await bus.close()

    got, nothing_more, stored = run(scenario)
    assert got == [(1, 1), (2, 1), (3, 1)] and nothing_more and stored == 3


async def next_is_a_marker(bus: NatsBus, consumer: Any, position: int) -> bool:
    """Whether the durable consumer's next delivery is a marker published now at ``position``: a
    consumer gets the stream's messages in order, so anything stored before it would come first
    (a positive signal that nothing more is there, instead of waiting a while for nothing)."""
    await bus.publish([event(position)])
    delivery = await anext(consumer)
    await delivery.ack()
    return delivery.event.position == position


def test_an_unacknowledged_delivery_comes_again_before_the_next_one(nats_url, nats_stream):
    _, prefix = nats_stream

    async def scenario():
        bus = bus_for(nats_url, nats_stream, ack_wait=1.0)
        try:
            await bus.publish([event(1), event(2)])
            consumer = bus.durable("hooks", f"{prefix}.>")
            first = await anext(consumer)  # not acknowledged
            return (first.event.position, first.attempt), await acked(consumer, 2)
        finally:
            await bus.close()

    assert run(scenario) == ((1, 1), [(1, 2), (2, 1)])


def test_a_durable_consumer_resumes_after_its_last_acknowledgement_in_another_process(
    nats_url, nats_stream
):
    _, prefix = nats_stream

    async def first_process():
        bus = bus_for(nats_url, nats_stream)
        try:
            await bus.publish([event(1), event(2), event(3)])
            return await acked(bus.durable("hooks", f"{prefix}.>"), 2)
        finally:
            await bus.close()

    async def second_process():
        bus = bus_for(nats_url, nats_stream)
        try:
            await bus.publish([event(4)])
            return await acked(bus.durable("hooks", f"{prefix}.>"), 2)
        finally:
            await bus.close()

    assert run(first_process) == [(1, 1), (2, 1)]
    assert run(second_process) == [(3, 1), (4, 1)]


def test_a_live_subscriber_gets_matching_events_from_when_it_subscribed(nats_url, nats_stream):
    _, prefix = nats_stream

    async def scenario():
        bus = bus_for(nats_url, nats_stream)
        try:
            await bus.publish([event(1)])
            live = bus.live(f"{prefix}.*.task.*")
            await live.started()
            await bus.publish([event(2), event(3, kind="project.updated"), event(4, "team-2")])
            await bus.publish([event(4, "team-2")])  # a duplicate: not seen twice
            await bus.publish([event(5)])
            got = [(await anext(live)).position for _ in range(3)]
            await live.aclose()
            return got
        finally:
            await bus.close()

    assert run(scenario) == [2, 4, 5]


def test_the_bus_knows_the_last_position_it_stored(nats_url, nats_stream):
    async def scenario():
        bus = bus_for(nats_url, nats_stream)
        try:
            before = await bus.last_position()
            await bus.publish([event(3), event(7)])
            return before, await bus.last_position(), await bus.health()
        finally:
            await bus.close()

    before, after, health = run(scenario)
    assert before is None and after == 7
    assert health["status"] == "healthy" and health["messages"] == 2


def test_without_a_server_publishing_fails_quickly_and_health_says_so(nats_stream):
    async def scenario():
        bus = NatsBus(f"nats://127.0.0.1:{free_port()}", "NONE", publish_timeout=0.5)
        try:
            health = await bus.health()
            try:
                await bus.publish([event(1)])
            except Exception as error:  # noqa: BLE001
                return health, type(error).__name__
            return health, None
        finally:
            await bus.close()

    health, error = run(scenario)
    assert health["status"] == "unhealthy" and error == "BusUnavailableError"


def test_an_existing_stream_gets_the_configured_limits_and_keeps_the_rest(nats_url, nats_stream):
    stream, prefix = nats_stream

    async def scenario():
        nc = await nats.connect(nats_url)
        try:
            js = nc.jetstream()
            await js.add_stream(
                StreamConfig(
                    name=stream,
                    subjects=[f"{prefix}.>"],
                    storage=StorageType.MEMORY,
                    max_age=60,
                    duplicate_window=30,
                )
            )
            bus = bus_for(nats_url, nats_stream, max_age=3600.0, max_bytes=1 << 20)
            try:
                await bus.publish([event(1)])
            finally:
                await bus.close()
            return (await js.stream_info(stream)).config
        finally:
            await nc.close()

    config = run(scenario)
    assert config.max_age == 3600 and config.max_bytes == 1 << 20
    assert config.duplicate_window == 120 and config.storage == StorageType.MEMORY


def test_a_list_of_servers_connects_to_one_that_answers(nats_url, nats_stream):
    stream, prefix = nats_stream

    async def scenario():
        bus = NatsBus(f"nats://127.0.0.1:{free_port()}, {nats_url}", stream, prefix=prefix)
        try:
            await bus.publish([event(1)])
            return await bus.last_position()
        finally:
            await bus.close()

    assert run(scenario) == 1


def test_an_event_larger_than_the_server_accepts_goes_out_without_its_data(nats_url, nats_stream):
    _, prefix = nats_stream
    big = msgspec.structs.replace(event(2), data={"text": "x" * 2_000_000})

    async def scenario():
        bus = bus_for(nats_url, nats_stream)
        try:
            await bus.publish([event(1), big, event(3)])
            consumer = bus.durable("all", f"{prefix}.>")
            got = []
            for _ in range(3):
                delivery = await anext(consumer)
                got.append((delivery.event.position, delivery.event.data))
                await delivery.ack()
            return got
        finally:
            await bus.close()

    assert run(scenario) == [(1, {"n": 1}), (2, {"truncated": True}), (3, {"n": 3})]


def test_closing_the_bus_ends_its_iterators_connected_or_not(nats_url, nats_stream):
    _, prefix = nats_stream

    async def ends(bus: NatsBus) -> list[str]:
        live = bus.live(f"{prefix}.>")
        consumer = bus.durable("hooks", f"{prefix}.>")
        waiting = [asyncio.ensure_future(anext(live)), asyncio.ensure_future(anext(consumer))]
        await asyncio.sleep(0.5)  # likely waiting by now; if not, they end all the same
        await bus.close()
        done, _ = await asyncio.wait(waiting, timeout=30)
        return [type(task.exception()).__name__ for task in waiting if task in done]

    async def scenario():
        connected = await ends(bus_for(nats_url, nats_stream))
        dead = await ends(NatsBus(f"nats://127.0.0.1:{free_port()}", "NONE", prefix=prefix))
        return connected, dead

    assert run(scenario) == (["StopAsyncIteration"] * 2, ["StopAsyncIteration"] * 2)
