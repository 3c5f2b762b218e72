"""Running a coroutine on the caller's turn until it first waits: what Python 3.12's eager tasks
do, for 3.11, without a task.

A WebSocket send almost never waits (uvicorn writes to the transport and returns; it waits only
while the transport is paused, i.e. the client is not reading). Sending a live event to a thousand
sockets through a writer task each costs a thousand task switches; ``start`` sends on the hub's
turn instead, and only a send that has to wait is handed to the socket's writer task, which
``finish``es it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, NamedTuple


class Started(NamedTuple):
    """A coroutine that waits on ``waiting`` (what it yielded: a future, or None for a bare
    yield to the loop)."""

    coroutine: Coroutine[Any, Any, Any]
    waiting: Any


def start(coroutine: Coroutine[Any, Any, Any]) -> Started | None:
    """Runs ``coroutine`` now: None if it finished, else what is left to ``finish``. Raises what
    the coroutine raises."""
    try:
        waiting = coroutine.send(None)
    except StopIteration:
        return None
    return Started(coroutine, waiting)


async def finish(started: Started) -> None:
    """Carries a started coroutine on in the calling task, as a task would: waits for what it
    waits on, then resumes it (a failure or a cancellation is thrown into it)."""
    coroutine, waiting = started
    while True:
        try:
            if waiting is None:
                await asyncio.sleep(0)
            else:
                # taken over as Task.__step takes a yielded future: cleared, then awaited here
                waiting._asyncio_future_blocking = False
                await waiting
        except BaseException as error:  # noqa: BLE001 - the coroutine decides, as under a task
            try:
                waiting = coroutine.throw(error)
            except StopIteration:
                return
            continue
        try:
            waiting = coroutine.send(None)
        except StopIteration:
            return
