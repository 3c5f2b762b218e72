"""The webhook queue's side of poison: an event it cannot queue does not hold the durable
consumer for ever.

The bus hands events over one at a time and waits for each to be acknowledged. An event whose
queueing fails is tried again alone (without reading ahead: the failure may be one of the events
read ahead, which then fails on its own hand-over), with a backoff; a failure counts only while
the store answers. After the policy's attempts the event is quarantined (consumer ``webhooks``)
and acknowledged, and the consumer goes on. A retry request queues the event again, late: its
deliveries go after those of the events that followed it.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import TYPE_CHECKING

from application.consumer_state import QUARANTINE, ConsumerState
from application.public_events import PublicEvent, scan
from application.quarantine import Poison, QuarantineService
from application.retry_requests import RetryRequests, store_answers

if TYPE_CHECKING:
    from application.webhooks.dispatch import Dispatcher

log = logging.getLogger("taskwarden.webhooks")


class QueueGuard:
    def __init__(
        self,
        dispatcher: Dispatcher,
        state: ConsumerState,
        quarantine: QuarantineService | None,
        retries: RetryRequests | None = None,
    ) -> None:
        self.dispatcher = dispatcher
        self.state = state
        self.quarantine = quarantine  # None: an event that fails is tried for ever (tests)
        self.retries = retries or (
            RetryRequests(quarantine, state.name) if quarantine is not None else None
        )
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.state.running = True
        if self.retries is not None:
            settling = self.retries.run(self.settle_retries)
            self._task = asyncio.create_task(settling, name="webhook-retries")

    def stop(self) -> list[asyncio.Task[None]]:
        """Cancels the settling of retries; the task to await."""
        self.state.running = False
        task, self._task = self._task, None
        if task is None:
            return []
        task.cancel()
        return [task]

    async def take(self, event: PublicEvent) -> None:
        """Queues the event handed over, or quarantines it; returns when it may be acknowledged."""
        ahead = True
        while True:
            try:
                await self.dispatcher.accept(event, ahead=ahead)
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001 - counted, then quarantined
                if ahead:  # one read ahead may be at fault: the event alone, at once
                    ahead = False
                    continue
                if await self._failed(event, error):
                    return
                continue
            self.state.passed(event.position)
            self.state.succeeded()
            return

    async def _failed(self, event: PublicEvent, error: BaseException) -> bool:
        """True once the event is quarantined; else waits out the backoff."""
        answers = await self.answers()
        verdict = self.state.failed(event.position, error, answers=answers)
        attempts = self.state.attempts
        log.warning("webhooks: position %d failed (%d): %r", event.position, attempts, error)
        if verdict == QUARANTINE and self.quarantine is not None:
            name = self.state.name
            poison = Poison.of(name, event.position, event.type, event.team_id, error, attempts)
            try:
                await asyncio.to_thread(self.quarantine.record, poison)
            except Exception as failure:  # noqa: BLE001 - the store failed: recorded next time
                log.warning("webhooks: could not record quarantine %d: %r", event.position, failure)
            else:
                self.state.was_quarantined(event.position)
                return True
        await self.state.pause()
        return False

    async def answers(self) -> bool:
        return await store_answers(self.dispatcher.store)

    # ---- retries -------------------------------------------------------------------------

    async def settle_retries(self) -> None:
        """Queues again the quarantined positions a retry was asked for."""
        if self.retries is None:
            return
        for entry in await asyncio.to_thread(self.retries.take):
            await self.retries.settle_async(
                entry, functools.partial(self._queue_again, entry.position), self.answers
            )

    async def _queue_again(self, position: int) -> None:
        if position > self.state.position:
            return  # not handed over yet: queued in order, or quarantined again then
        found = await asyncio.to_thread(scan, self.dispatcher.store, position - 1, 1)
        if found.failures:
            raise found.failures[0].error
        for event in found.events:
            if event.position == position:
                await self.dispatcher.accept(event, ahead=False)
