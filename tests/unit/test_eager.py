"""Running a coroutine on the caller's turn until it first waits, and carrying it on in a task:
as a task would run it, with its waits, results, failures and cancellation."""

from __future__ import annotations

import asyncio

import pytest

from interfaces.ws import eager
from tests.unit.test_memory_bus import run


def test_a_coroutine_that_never_waits_is_finished_by_start():
    done: list[str] = []

    async def quick() -> None:
        done.append("sent")

    async def scenario():
        assert eager.start(quick()) is None
        assert done == ["sent"]

    run(scenario)


def test_a_coroutine_that_waits_is_carried_on_by_finish_with_what_it_waited_for():
    seen: list[object] = []

    async def scenario():
        future = asyncio.get_running_loop().create_future()

        async def waits() -> None:
            seen.append("began")
            seen.append(await future)
            await asyncio.sleep(0)  # a bare yield to the loop as well
            seen.append("ended")

        started = eager.start(waits())
        assert started is not None and seen == ["began"]
        carrying = asyncio.create_task(eager.finish(started))
        future.set_result("value")
        await carrying
        assert seen == ["began", "value", "ended"]

    run(scenario)


def test_a_failure_of_what_it_waits_for_is_raised_inside_the_coroutine():
    async def scenario():
        future = asyncio.get_running_loop().create_future()
        caught: list[BaseException] = []

        async def waits() -> None:
            try:
                await future
            except ValueError as failure:
                caught.append(failure)

        carrying = asyncio.create_task(eager.finish(eager.start(waits())))
        future.set_exception(ValueError("broken"))
        await carrying
        assert [str(c) for c in caught] == ["broken"]

    run(scenario)


def test_cancelling_the_task_that_carries_it_on_cancels_the_coroutine():
    async def scenario():
        cleaned: list[str] = []

        async def waits() -> None:
            try:
                await asyncio.sleep(3600)
            finally:
                cleaned.append("finally")

        carrying = asyncio.create_task(eager.finish(eager.start(waits())))
        await asyncio.sleep(0)
        carrying.cancel()
        with pytest.raises(asyncio.CancelledError):
            await carrying
        assert cleaned == ["finally"]

    run(scenario)


def test_a_coroutine_failing_before_it_waits_raises_from_start():
    async def fails() -> None:
        raise OSError("gone")

    async def scenario():
        with pytest.raises(OSError, match="gone"):
            eager.start(fails())

    run(scenario)
