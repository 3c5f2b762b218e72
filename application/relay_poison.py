"""The relay's side of poison: an event it cannot convert, or that the bus refuses.

A conversion failure is reported by ``scan`` with its position; the relay publishes the events
before it, then this module retries, counting the failure only while the store and the bus answer
(``answers``), and after the policy's attempts records the quarantine and moves the relay past
the position. A batch the bus refuses while it answers is published one event at a time (the bus
drops what it already has, by position) to find the event at fault.

A retry request publishes the event late (``publish_late`` where the bus offers it, else a plain
publish): the bus stores it after the events that followed it; durable consumers (the webhook
queue) take it then, and live WebSocket subscribers, which follow positions, do not.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from application.consumer_state import QUARANTINE
from application.public_events import PublicEvent, Unconverted, scan
from application.quarantine import Poison, QuarantineService, stored_poison
from application.retry_requests import store_answers

if TYPE_CHECKING:
    from application.relay import Relay
    from application.retry_requests import RetryRequests

log = logging.getLogger("taskwarden.relay")
HEALTH_WAIT = 3.0  # seconds the bus has to say whether it is healthy


class EventFailedError(Exception):
    """One event the relay could not convert or publish."""

    def __init__(
        self, position: int, error: BaseException, poison: Callable[[str, Any, int], Poison]
    ) -> None:
        super().__init__(f"position {position}: {error!r}")
        self.position = position
        self.error = error
        self._poison = poison  # (consumer, source, attempts) -> Poison

    @classmethod
    def unconverted(cls, failure: Unconverted) -> EventFailedError:
        def poison(consumer: str, source: Any, attempts: int) -> Poison:
            return stored_poison(
                consumer, source, failure.notification, failure.event, failure.error, attempts
            )

        return cls(failure.position, failure.error, poison)

    @classmethod
    def unpublished(cls, event: PublicEvent, error: BaseException) -> EventFailedError:
        def poison(consumer: str, source: Any, attempts: int) -> Poison:
            return Poison.of(consumer, event.position, event.type, event.team_id, error, attempts)

        return cls(event.position, error, poison)

    def poison(self, consumer: str, source: Any, attempts: int) -> Poison:
        return self._poison(consumer, source, attempts)


class Poisoning:
    def __init__(
        self,
        relay: Relay,
        quarantine: QuarantineService | None = None,
        retries: RetryRequests | None = None,
    ) -> None:
        self.relay = relay
        self.quarantine = quarantine  # None: an event at fault is retried for ever (tests)
        self.retries = retries

    async def publish(self, events: list[PublicEvent], last: int) -> int:
        """Publishes the events; if the bus refuses them while it answers, one at a time, and
        the one it refuses raises ``EventFailedError`` (those before it published)."""
        bus = self.relay._bus
        try:
            await bus.publish(events)
            return last
        except Exception:
            if not await self._bus_answers():
                raise
        for count, event in enumerate(events):
            try:
                await bus.publish([event])
            except Exception as error:
                await self.relay.advance(event.position - 1, count)
                raise EventFailedError.unpublished(event, error) from error
        return last

    async def failed(self, failed: EventFailedError) -> None:
        """Counts the failure (if the store and the bus answer), then waits out the backoff or
        quarantines the event and passes over it."""
        relay, state = self.relay, self.relay.state
        answers = await self.answers()
        verdict = state.failed(failed.position, failed.error, answers=answers)
        log.warning("relay: position %d failed (%d): %r", failed.position, state.attempts, failed)
        if verdict == QUARANTINE and self.quarantine is not None:
            record, source = self.quarantine.record, relay._source
            name, attempts = relay.state.name, state.attempts
            try:  # in a thread: the event's team may have to be read from the store
                await asyncio.to_thread(lambda: record(failed.poison(name, source, attempts)))
            except Exception as error:  # noqa: BLE001 - the store failed: recorded next round
                log.warning("relay: could not record quarantine %d: %r", failed.position, error)
            else:
                state.was_quarantined(failed.position)
                await relay.advance(failed.position, 0)
                return
        relay._resync = True  # the bus may have stored more than was recorded
        await state.pause(lambda: relay._stopping)

    async def answers(self) -> bool:
        """The store and the bus answer: a failure now is the event's."""
        return await store_answers(self.relay._source) and await self._bus_answers()

    async def _bus_answers(self) -> bool:
        health = getattr(self.relay._bus, "health", None)
        if health is None:
            return True
        try:
            async with asyncio.timeout(HEALTH_WAIT):
                status: object = (await health()).get("status")
                return status == "healthy"
        except Exception:  # noqa: BLE001 - any failure means: not now
            return False

    # ---- retries -------------------------------------------------------------------------

    def retries_due(self) -> bool:
        return self.retries is not None and self.retries.due()

    async def settle_retries(self) -> None:
        """Publishes late the quarantined positions a retry was asked for."""
        if self.retries is None:
            return
        for entry in await asyncio.to_thread(self.retries.take):
            await self.retries.settle_async(
                entry, functools.partial(self._publish_late, entry.position), self.answers
            )

    async def _publish_late(self, position: int) -> None:
        relay = self.relay
        if position > relay.position:
            return  # not reached yet: published in order, or quarantined again then
        found = await asyncio.to_thread(scan, relay._source, position - 1, 1)
        if found.failures:
            raise found.failures[0].error
        for event in found.events:
            if event.position == position:
                late = getattr(relay._bus, "publish_late", None)
                await (late(event) if late is not None else relay._bus.publish([event]))
