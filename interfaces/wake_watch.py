"""Wakes this process's workers on the bus instead of at their next heartbeat or poll.

Two subscriptions, each to one public event of every team (the relay publishes them: the
in-process bus in embedded mode, NATS across processes):

- ``task.cancel_requested`` nudges the pool: the execution of that task, if this pool runs it,
  heartbeats now, and the heartbeat's answer decides as always
  (``application.execution_reports.heartbeat``: the one place that says a cancel is pending).
- ``task.execution_requested`` pokes this process's projection runner, which otherwise polls for
  what other processes committed: once its views show the request, its advance wakes the idle
  workers (``ExecutionHost``), whose claim decides as always. A request committed in this process
  has already poked it (the poke is then a no-op).

A missed or late event only means the next heartbeat or poll does the work, as before; remote
workers (``interfaces/remote_backend.py``) are not woken and keep their heartbeat and poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from application.ports import Bus
from application.public_events import PublicEvent

log = logging.getLogger("taskwarden.worker")

CANCEL = "task.cancel_requested"
REQUEST = "task.execution_requested"
RETRY_SECONDS = (0.1, 5.0)  # the first pause after a failed subscription, and the longest

Handler = Callable[[PublicEvent], None]


def every_team(event_type: str, prefix: str) -> str:
    """``<prefix>.*.<aggregate>.<event>``: that event of every team."""
    kind, _, name = event_type.partition(".")
    return f"{prefix}.*.{kind}.{name}"


class WakeWatch:
    def __init__(
        self,
        bus: Bus,
        nudge: Callable[[str], None],
        poke: Callable[[int], None] | None = None,
    ) -> None:
        """``nudge(task_id)``: ``WorkerPool.nudge``; ``poke(position)``: the projection
        runner's (None: no wake on requests)."""
        prefix = getattr(bus, "prefix", "taskwarden")
        self._bus = bus
        self._handlers: dict[str, Handler] = {
            every_team(CANCEL, prefix): lambda e: nudge(e.task_id or e.aggregate_id)
        }
        if poke is not None:
            self._handlers[every_team(REQUEST, prefix)] = lambda e: poke(e.position)
        self._tasks: list[asyncio.Task[None]] = []
        self.listening: dict[str, asyncio.Event] = {f: asyncio.Event() for f in self._handlers}

    def start(self) -> None:
        """On the event loop that runs the pool."""
        self._tasks = [asyncio.ensure_future(self._run(f, h)) for f, h in self._handlers.items()]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []

    async def _run(self, subject_filter: str, handle: Handler) -> None:
        pause = RETRY_SECONDS[0]
        listening = self.listening[subject_filter]
        while True:
            live: Any = None
            try:
                live = self._bus.live(subject_filter)
                started = getattr(live, "started", None)
                if started is not None:
                    await started()
                listening.set()
                async for event in live:
                    pause = RETRY_SECONDS[0]
                    handle(event)
                return  # the bus closed: the heartbeats and polls go on
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001 - heartbeats and polls still do the work
                log.info("wake watch %s: %r; again in %.1f s", subject_filter, error, pause)
            finally:
                listening.clear()
                close = getattr(live, "aclose", None)
                if close is not None:
                    with contextlib.suppress(Exception):
                        await close()
            await asyncio.sleep(pause)
            pause = min(pause * 2, RETRY_SECONDS[1])
