"""The event loop every process role runs on: uvloop (libuv, in C) where it is installed.

Measured on the API process (``bench/http_load.py --paths create``, Postgres, wrk, the same
run's bare endpoint beside it): a create costs 0.89 -> 0.80 ms of CPU at 16 connections and
0.78 -> 0.66 at 64 with uvloop in place of asyncio's selector loop, 10-17 % more creates per
second; the loop's own scheduling, its socket writes and the wake-ups other threads send it
(``call_soon_threadsafe``) are what it makes cheaper. uvicorn takes the same choice by name
(``interfaces.http.server``); the roles without HTTP (workers, relay, webhook senders) run their
main coroutine through :func:`run`.

uvloop is not built for Windows: there (and wherever it is absent) asyncio's own loop runs, and
everything behaves the same, only slower.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from importlib.util import find_spec
from typing import Any, TypeVar

T = TypeVar("T")

#: uvicorn's ``--loop`` for the API process: ``uvloop`` when importable, else ``asyncio``
LOOP_IMPLEMENTATION = "uvloop" if find_spec("uvloop") is not None else "asyncio"


def new_event_loop() -> asyncio.AbstractEventLoop:
    """A new loop of :data:`LOOP_IMPLEMENTATION`."""
    if LOOP_IMPLEMENTATION == "uvloop":
        import uvloop  # noqa: PLC0415

        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)`` on a loop of :data:`LOOP_IMPLEMENTATION`."""
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        return runner.run(main)
