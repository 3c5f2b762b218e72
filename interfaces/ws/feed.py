"""One WebSocket subscription's events, in log order, with no gap and no duplicate.

A subscription starts at a position: the client's ``since``, or the head of the log when it was
made. The feed listens first (through the process's hub: one bus subscription per team), reads
the store from the start position up to its head, then forwards live events, skipping those the
store already gave (position at most the last one read). Whatever the bus may have missed is read
from the store instead: before the first live event (a bus may start listening a moment after it
is asked to), after the bus dropped the subscription, and after the live buffer overflowed (the
feed fell behind while reading the store or waiting on a slow client), the positions between the
last one read and the live event are read from the store. The store is the truth; the bus only
saves reading it.

Once caught up, a live event is offered on the hub's turn (``offer_now``: placed and queued for
the socket without waiting, the common case); only an event that needs a lookup or finds the
socket's queue full goes through the feed's own task, and the ones after it wait their turn.

An event the feed cannot convert (read from the store) is handed to the guard
(interfaces/ws/poison.py): scanned again, or quarantined and skipped; the feed goes on after it.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.concurrency import run_in_threadpool

from application.ports import Bus
from application.public_events import EventSource, PublicEvent, Unconverted, scan
from interfaces.ws.hub import Hub
from interfaces.ws.poison import SocketGuard

log = logging.getLogger("taskwarden.ws")
PAGE = 500  # stored events read per query while replaying
_GAP = object()  # in the live buffer: events may be missing here


class FeedEndedError(Exception):
    """The bus stopped delivering (it was closed)."""


class GapTooLargeError(Exception):
    """The bus missed more than a resume may replay: the client must read the state again."""

    def __init__(self, last: int, position: int) -> None:
        super().__init__(f"events missed between {last} and {position}")
        self.last = last
        self.position = position


Offer = Callable[[PublicEvent], Awaitable[None]]
OfferNow = Callable[[PublicEvent], bool]  # True: handled at once; False: needs ``offer``


class Feed:
    """Reads the store after ``start``, then follows the hub; each event is offered once, in
    order (``offer`` and ``offer_now`` filter and send). Runs until cancelled; raises
    FeedEndedError if the bus ends, GapTooLargeError if it missed more than ``max_gap``
    positions. It is the hub's listener."""

    def __init__(
        self,
        hub: Hub,
        bus: Bus,
        source: EventSource,
        team_id: str,
        buffer_size: int,
        max_gap: int,
        guard: SocketGuard | None = None,
    ) -> None:
        self._hub = hub
        self._guard = guard
        self._bus = bus
        self._source = source  # the Store
        self._team = team_id
        self._size = max(1, buffer_size)
        self._max_gap = max_gap
        self._buffer: deque[Any] = deque()
        self._ready = asyncio.Event()
        self._end: BaseException | None = None
        self._live = False  # caught up and idle: the hub's turn may offer at once
        self._gap = False
        self._last = 0
        self._offer_now: OfferNow = lambda event: False

    async def run(self, start: int, offer: Offer, offer_now: OfferNow | None = None) -> None:
        if offer_now is not None:
            self._offer_now = offer_now
        attachment = self._hub.attach(self._bus, self._team, self)
        try:
            # a bus that can tell when it listens leaves no gap before the store is read
            self._gap = not await attachment.started()
            self._last = await self._read(start, None, offer)
            while True:
                event = await self._next()
                if event.position <= self._last:
                    continue
                if self._gap:
                    if event.position - self._last > self._max_gap:
                        raise GapTooLargeError(self._last, event.position)
                    await self._read(self._last, event.position, offer)
                    self._gap = False
                await offer(event)
                self._last = event.position
        finally:
            self._live = False
            attachment.detach()

    # ---- the hub's side (Listener) -------------------------------------------------------------

    def deliver(self, event: PublicEvent) -> None:
        if self._live:
            if event.position <= self._last:
                return
            try:
                if self._offer_now(event):
                    self._last = event.position
                    return
            except Exception:  # the feed's task offers it again, and fails there if it must
                log.debug("offering a live event failed", exc_info=True)
            self._live = False
        self._put(event)

    def gap(self) -> None:
        self._live = False
        self._put(_GAP)

    def ended(self, failure: BaseException | None) -> None:
        self._live = False
        self._end = failure or FeedEndedError("the event bus stopped")
        self._ready.set()

    # ---- the feed's task -----------------------------------------------------------------------

    def _put(self, item: Any) -> None:
        if len(self._buffer) >= self._size:  # fell behind: forget, read the store instead
            self._buffer.clear()
            self._buffer.append(_GAP)
        self._buffer.append(item)
        self._ready.set()

    async def _next(self) -> PublicEvent:
        """The next live event the hub's turn did not take; marks where events may be missing."""
        while True:
            while not self._buffer:
                if self._end is not None:
                    raise self._end
                self._live = not self._gap
                self._ready.clear()
                await self._ready.wait()
                self._live = False
            item = self._buffer.popleft()
            if item is not _GAP:
                return item
            self._gap = True

    async def _read(self, after: int, before: int | None, offer: Offer) -> int:
        """Offers the stored events after ``after`` (and before ``before``); returns the last
        position read."""
        while True:
            found = await run_in_threadpool(scan, self._source, after, PAGE)
            events, _ = found.before_failure()
            for event in events:
                if before is not None and event.position >= before:
                    return after
                await offer(event)
            if found.failures:
                failure = found.failures[0]
                if before is not None and failure.position >= before:
                    return after
                converted = await self._unconverted(failure)
                if converted is not None:
                    await offer(converted)
                after = failure.position
                continue
            scanned = found.last
            if scanned <= after or (before is not None and scanned >= before):
                return after if before is not None else scanned
            after = scanned

    async def _unconverted(self, failure: Unconverted) -> PublicEvent | None:
        """The event once it converts, or None once it is quarantined (no guard: raises)."""
        if self._guard is None:
            raise failure.error
        position = failure.position

        async def rescan() -> Any:
            return await run_in_threadpool(scan, self._source, position - 1, 1)

        return await self._guard.unconverted(failure, rescan)
