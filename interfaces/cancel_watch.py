"""Tells this process's workers of a cancel at once instead of at their next heartbeat.

It listens on the bus for ``task.cancel_requested`` (published by the relay: the in-process bus
in embedded mode, NATS across processes) and nudges the pool: the execution of that task, if this
pool runs it, heartbeats now, and the heartbeat's answer decides as always
(``application.execution_reports.heartbeat``: the one place that says a cancel is pending). A
missed or late event only means the next heartbeat delivers the cancel, as before; remote workers
(``interfaces/remote_backend.py``) are not nudged and keep their heartbeat.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from application.ports import Bus

log = logging.getLogger("taskwarden.worker")

EVENT = "task.cancel_requested"
RETRY_SECONDS = (0.1, 5.0)  # the first pause after a failed subscription, and the longest


def cancel_filter(prefix: str) -> str:
    """Every team's cancel requests: ``<prefix>.*.task.cancel_requested``."""
    kind, _, name = EVENT.partition(".")
    return f"{prefix}.*.{kind}.{name}"


class CancelWatch:
    def __init__(self, bus: Bus, nudge: Callable[[str], None]) -> None:
        self._bus = bus
        self._nudge = nudge  # WorkerPool.nudge(task_id)
        self._filter = cancel_filter(getattr(bus, "prefix", "taskwarden"))
        self._task: asyncio.Task[None] | None = None
        self.listening = asyncio.Event()  # set once the bus confirms the subscription (tests)

    def start(self) -> None:
        """On the event loop that runs the pool."""
        self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None

    async def _run(self) -> None:
        pause = RETRY_SECONDS[0]
        while True:
            live: Any = None
            try:
                live = self._bus.live(self._filter)
                started = getattr(live, "started", None)
                if started is not None:
                    await started()
                self.listening.set()
                async for event in live:
                    pause = RETRY_SECONDS[0]
                    self._nudge(event.task_id or event.aggregate_id)
                return  # the bus closed: the heartbeats go on
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001 - the heartbeat still delivers cancels
                log.info("cancel watch: %r; listening again in %.1f s", error, pause)
            finally:
                self.listening.clear()
                close = getattr(live, "aclose", None)
                if close is not None:
                    with contextlib.suppress(Exception):
                        await close()
            await asyncio.sleep(pause)
            pause = min(pause * 2, RETRY_SECONDS[1])
