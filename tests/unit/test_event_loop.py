"""Every role's loop is uvloop: the API process through uvicorn's options, the others through
``event_loop.run``."""

from __future__ import annotations

import asyncio

import uvloop

from infrastructure import event_loop
from infrastructure.settings import Settings
from interfaces.http.server import server_options


async def _running_loop_and(value: int) -> tuple[asyncio.AbstractEventLoop, int]:
    await asyncio.sleep(0)
    return asyncio.get_running_loop(), value


def test_run_answers_the_coroutine_on_a_uvloop_loop() -> None:
    loop, value = event_loop.run(_running_loop_and(7))
    assert isinstance(loop, uvloop.Loop)
    assert value == 7
    assert loop.is_closed()


def test_uvicorn_is_told_to_run_uvloop() -> None:
    assert event_loop.LOOP_IMPLEMENTATION == "uvloop"
    assert server_options(Settings())["loop"] == "uvloop"
