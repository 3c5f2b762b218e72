"""A socket's outbox: bounded, in order, idle only while empty with its writer waiting; a send
handed over goes first; a failed send fails the writer."""

from __future__ import annotations

import asyncio

import pytest

from interfaces.ws import eager
from interfaces.ws.outbox import Outbox
from tests.unit.test_memory_bus import run


def test_messages_come_out_in_order_and_a_full_outbox_refuses_more():
    async def scenario():
        outbox = Outbox(2)
        assert outbox.put_nowait("a") and outbox.put_nowait("b")
        assert not outbox.put_nowait("c")
        assert [await outbox.take(), await outbox.take()] == ["a", "b"]
        assert outbox.put_nowait("c")

    run(scenario)


def test_a_put_waits_for_room_within_its_grace_and_gives_up_after_it():
    async def scenario():
        outbox = Outbox(1)
        outbox.put_nowait("a")
        assert not await outbox.put("late", 0.05)
        waiting = asyncio.create_task(outbox.put("b", 30))
        await asyncio.sleep(0)
        assert await outbox.take() == "a"
        assert await waiting
        assert await outbox.take() == "b"

    run(scenario)


def test_idle_only_while_empty_and_the_writer_waits():
    async def scenario():
        outbox = Outbox(4)
        assert not outbox.idle  # no writer waiting yet
        writer = asyncio.create_task(outbox.take())
        await asyncio.sleep(0)
        assert outbox.idle
        outbox.put_nowait("a")
        assert not outbox.idle
        assert await writer == "a"
        writer = asyncio.create_task(outbox.take())
        await asyncio.sleep(0)
        writer.cancel()
        await asyncio.gather(writer, return_exceptions=True)
        assert not outbox.idle  # a cancelled writer sends nothing

    run(scenario)


def test_a_send_handed_over_is_taken_before_what_was_queued():
    async def scenario():
        outbox = Outbox(4)
        outbox.put_nowait("queued")
        future = asyncio.get_running_loop().create_future()

        async def waits() -> None:
            await future

        started = eager.start(waits())
        outbox.hand_over(started)
        assert await outbox.take() is started
        assert await outbox.take() == "queued"
        future.set_result(None)
        await eager.finish(started)

    run(scenario)


def test_a_failed_send_fails_the_writer():
    async def scenario():
        outbox = Outbox(4)
        writer = asyncio.create_task(outbox.take())
        await asyncio.sleep(0)
        outbox.fail(OSError("client gone"))
        with pytest.raises(OSError, match="client gone"):
            await writer
        assert not outbox.idle

    run(scenario)
