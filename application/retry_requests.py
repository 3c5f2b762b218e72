"""A consumer's side of a retry request: finding the requests for it, and settling each one.

Each consumer checks its retry log every ``every`` seconds (one small query when nothing is new),
from the start of the log when its process starts, so a request made while no process ran the
consumer is found too. Settling processes the position again with the consumer's own code: it
went through (``Released``), or it failed again while the dependency answers (``FailedAgain``:
quarantined again, alerted again), or the dependency is down (kept, tried again at the next
check). Several processes running one consumer may each settle a request: processing is
idempotent for each consumer and the outcome is recorded once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

from application.quarantine import Poison, QuarantineService
from domain.quarantine import Quarantine

log = logging.getLogger("taskwarden.quarantine")
CHECK_EVERY = 2.0  # seconds between looks at a consumer's retry log


class Answering(Protocol):
    def max_position(self) -> int: ...


async def store_answers(store: Answering) -> bool:
    """The store answers now: a failure at this moment is the event's, not an outage."""
    try:
        await asyncio.to_thread(store.max_position)
    except Exception:  # noqa: BLE001 - any failure means: not now
        return False
    return True


class RetryRequests:
    def __init__(
        self,
        service: QuarantineService,
        consumer: str,
        every: float = CHECK_EVERY,
    ) -> None:
        self.service = service
        self.consumer = consumer
        self.every = every
        self._clock = service.store.clock  # its monotonic reading: a test moves it
        self._cursor = 0  # the last entry of the retry log read
        self._next = 0.0
        self._held: list[Quarantine] = []  # read, not settled: the dependency was down

    async def run(self, settle: Callable[[], Awaitable[None]]) -> None:
        """Calls ``settle`` every ``every`` seconds until cancelled (a consumer on the event
        loop); a check that fails (the store is down) is made again at the next one."""
        while True:
            await asyncio.sleep(self.every)
            with contextlib.suppress(Exception):
                await settle()

    def due(self) -> bool:
        return self._clock.monotonic() >= self._next

    def take(self) -> list[Quarantine]:
        """The requests to settle now (a thread: this reads the store)."""
        self._next = self._clock.monotonic() + self.every
        pending, self._cursor = self.service.retry_requests(self.consumer, self._cursor)
        held, self._held = self._held, []
        known = {entry.id for entry in held}
        return held + [entry for entry in pending if entry.id not in known]

    def settle(
        self, entry: Quarantine, process: Callable[[], None], answers: Callable[[], bool]
    ) -> bool | None:
        """Processes the entry's position again (a thread); True released, False failed again,
        None kept for the next check (the dependency is down)."""
        try:
            process()
        except Exception as error:  # noqa: BLE001 - the outcome is recorded, not raised
            return self._failed(entry, error, answers())
        return self._released(entry)

    async def settle_async(
        self,
        entry: Quarantine,
        process: Callable[[], Awaitable[None]],
        answers: Callable[[], Awaitable[bool]],
    ) -> bool | None:
        """As ``settle``, for a consumer on the event loop."""
        try:
            await process()
        except asyncio.CancelledError:
            raise
        except Exception as error:  # noqa: BLE001 - the outcome is recorded, not raised
            return await asyncio.to_thread(self._failed, entry, error, await answers())
        return await asyncio.to_thread(self._released, entry)

    def _failed(self, entry: Quarantine, error: BaseException, answers: bool) -> bool | None:
        if not answers:
            self._held.append(entry)
            return None
        poison = Poison.of(self.consumer, entry.position, entry.topic, entry.team_id, error, 1)
        try:
            self.service.record(poison)
        except Exception:  # noqa: BLE001 - the store failed: settled at the next check
            log.warning("%s: could not record a failed retry of %d", self.consumer, entry.position)
            self._held.append(entry)
            return None
        return False

    def _released(self, entry: Quarantine) -> bool | None:
        try:
            released = self.service.release(entry.id)
        except Exception:  # noqa: BLE001 - the store failed: settled at the next check
            log.warning("%s: could not record the release of %d", self.consumer, entry.position)
            self._held.append(entry)
            return None
        if released:
            log.info("%s released position %d", self.consumer, entry.position)
        return True
