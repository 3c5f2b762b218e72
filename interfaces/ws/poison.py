"""The WebSocket feeds' side of poison: an event a socket cannot take is skipped, not fatal.

Each socket's feed turns public events into messages: it converts what it reads from the store,
decides where each event belongs (which may load its aggregate) and encodes the message. An event
that fails there is tried again with a backoff, counting only while the store answers, at most
the policy's attempts per position in this process (whichever sockets try); then it is recorded
once as quarantined for consumer ``websocket`` (its id is derived from consumer and position, so
every socket and every process records the same entry) and skipped. The socket stays open and
later events still arrive.

A retry request re-checks the event: converted, placed and encoded again. When that works the
entry is released; sockets that skipped it do not get it then (a client resuming with ``since``
before it reads it from the store).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from starlette.concurrency import run_in_threadpool

from application.consumer_state import ConsumerState
from application.public_events import PublicEvent, Unconverted, scan
from application.quarantine import Poison, QuarantineService, stored_poison
from application.retry_requests import RetryRequests, store_answers
from application.store import Store
from domain.quarantine import short
from interfaces.ws.filter import Place
from interfaces.ws.messages import event_message

log = logging.getLogger("taskwarden.ws")
NAME = "websocket"
REMEMBERED = 10_000  # positions whose tries (or quarantine) this process remembers
_encoder = msgspec.json.Encoder()


class SocketGuard:
    def __init__(
        self,
        state: ConsumerState,
        quarantine: QuarantineService | None,
        source: Store,
        retries: RetryRequests | None = None,
    ) -> None:
        self.state = state
        self.quarantine = quarantine
        self.source = source  # the Store
        self.retries = retries or (
            RetryRequests(quarantine, state.name) if quarantine is not None else None
        )
        self._tries: OrderedDict[int, int] = OrderedDict()  # position -> failures counted
        self._skipped: set[int] = set()  # quarantined: every socket of this process skips them
        self._task: asyncio.Task[None] | None = None

    # ---- a socket's events -------------------------------------------------------------------

    async def message(
        self, event: PublicEvent, make: Callable[[], Awaitable[str | None]]
    ) -> str | None:
        """``make()``'s message for the event (None: not for this socket, or skipped)."""
        while event.position not in self._skipped:
            try:
                text = await make()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001 - counted, then quarantined
                poison = Poison.of(NAME, event.position, event.type, event.team_id, error, 0)
                await self._failed(poison, error)
                continue
            self.state.passed(event.position)
            return text
        return None

    async def unconverted(
        self, failure: Unconverted, rescan: Callable[[], Awaitable[Any]]
    ) -> PublicEvent | None:
        """A stored event the feed could not convert: scanned again until it converts (its
        public event, or None if it is not public), or quarantined (None)."""
        error: BaseException = failure.error
        poison = await run_in_threadpool(  # its team may have to be read from the store
            stored_poison, NAME, self.source, failure.notification, None, error, 0
        )
        while failure.position not in self._skipped:
            await self._failed(msgspec.structs.replace(poison, **_described(error)), error)
            if failure.position in self._skipped:
                break
            try:
                found = await rescan()
            except asyncio.CancelledError:
                raise
            except Exception as again:  # noqa: BLE001 - the store: counted as not answering
                error = again
                continue
            if not found.failures:
                return next((e for e in found.events if e.position == failure.position), None)
            error = found.failures[0].error
        return None

    async def _failed(self, poison: Poison, error: BaseException) -> None:
        """Counts the failure (the store answers), then quarantines or waits out a backoff."""
        answers = await self.answers()
        self.state.failed(poison.position, error, answers=answers)
        tries = self._tries.get(poison.position, 0) + (1 if answers else 0)
        self._remember(poison.position, tries)
        policy = self.state.policy
        if tries >= policy.max_attempts and self.quarantine is not None:
            counted = msgspec.structs.replace(poison, attempts=tries)
            try:
                await run_in_threadpool(self.quarantine.record, counted)
            except Exception as failure:  # noqa: BLE001 - the store failed: tried again
                log.warning("websocket: could not record %d: %r", poison.position, failure)
            else:
                self._skipped.add(poison.position)
                self.state.was_quarantined(poison.position)
                return
        await asyncio.sleep(min(policy.backoff * 2 ** max(0, tries - 1), policy.max_backoff))

    def _remember(self, position: int, tries: int) -> None:
        self._tries[position] = tries
        self._tries.move_to_end(position)
        while len(self._tries) > REMEMBERED:
            old, _ = self._tries.popitem(last=False)
            self._skipped.discard(old)

    async def answers(self) -> bool:
        return await store_answers(self.source)

    # ---- retries -------------------------------------------------------------------------

    def start(self) -> None:
        """Settles the retry requests of consumer ``websocket`` periodically (the app's loop)."""
        self.state.running = True
        if self.retries is not None and self._task is None:
            self._task = asyncio.create_task(self.retries.run(self.settle_retries))

    async def stop(self) -> None:
        self.state.running = False
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def settle_retries(self) -> None:
        if self.retries is None:
            return
        for entry in await run_in_threadpool(self.retries.take):

            async def check(position: int = entry.position) -> None:
                await self._check(position)

            if await self.retries.settle_async(entry, check, self.answers):
                self._skipped.discard(entry.position)
                self._tries.pop(entry.position, None)

    async def _check(self, position: int) -> None:
        found = await run_in_threadpool(scan, self.source, position - 1, 1)
        if found.failures:
            raise found.failures[0].error
        for event in found.events:
            if event.position == position:
                _encoder.encode(event_message(event, "check", *Place.of(event)))


def _described(error: BaseException) -> dict[str, str]:
    return {"error_type": type(error).__name__, "error": short(str(error))}
