"""One WebSocket subscription's events, in log order, with no gap and no duplicate.

A subscription starts at a position: the client's ``since``, or the head of the log when it was
made. The feed listens to the bus first, reads the store from the start position up to its head,
then forwards live events, skipping those the store already gave (position at most the last one
read). Whatever the bus may have missed is read from the store instead: before the first live event
(a bus may start listening a moment after it is asked to) and after the live buffer overflowed
(the feed fell behind while reading the store or waiting on a slow client), the positions between
the last one read and the live event are read from the store. The store is the truth; the bus only
saves reading it.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from starlette.concurrency import run_in_threadpool

from application.ports import Bus
from application.public_events import PublicEvent, TeamIndex, public_events, subject

log = logging.getLogger("taskwarden.ws")
PAGE = 500  # stored events read per query while replaying
STARTED_WAIT = 5.0  # seconds to wait for the bus to confirm it listens, else read what it missed
RELISTEN_LIMIT = 3  # the bus may drop a live subscription this often in a row before it fails
_GAP = object()  # in the live buffer: events may be missing here


class FeedEndedError(Exception):
    """The bus stopped delivering (it was closed)."""


class GapTooLargeError(Exception):
    """The bus missed more than a resume may replay: the client must read the state again."""

    def __init__(self, last: int, position: int) -> None:
        super().__init__(f"events missed between {last} and {position}")
        self.last = last
        self.position = position


def team_filter(team_id: str, prefix: str = "taskwarden") -> str:
    """The bus subject filter of a team's events (built by the one subject rule)."""
    probe = PublicEvent(
        position=0,
        type="x.y",
        team_id=team_id,
        aggregate="x",
        aggregate_id="",
        version=0,
        timestamp="",
        actor=None,
        data={},
    )
    return subject(probe, prefix).rsplit(".", 2)[0] + ".>"


Offer = Callable[[PublicEvent], Awaitable[None]]


class Feed:
    """Reads the store after ``start``, then follows the bus; ``offer`` gets each event once, in
    order (it filters and sends). Runs until cancelled; raises FeedEndedError if the bus ends,
    GapTooLargeError if it missed more than ``max_gap`` positions."""

    def __init__(  # noqa: PLR0913
        self, bus: Bus, ledger: Any, index: TeamIndex, team_id: str, buffer_size: int, max_gap: int
    ) -> None:
        self._bus = bus
        self._ledger = ledger
        self._index = index
        self._team = team_id
        self._size = max(1, buffer_size)
        self._max_gap = max_gap

    async def run(self, start: int, offer: Offer) -> None:
        subject_filter = team_filter(self._team, getattr(self._bus, "prefix", "taskwarden"))
        pump = _Pump(lambda: self._bus.live(subject_filter), self._size)
        try:
            # a bus that can tell when it listens leaves no gap before the store is read
            gap = not await pump.started()
            last = await self._read(start, None, offer)
            while True:
                event, overflowed = await pump.next()
                gap = gap or overflowed
                if event.position <= last:
                    continue
                if gap:
                    if event.position - last > self._max_gap:
                        raise GapTooLargeError(last, event.position)
                    await self._read(last, event.position, offer)
                    gap = False
                await offer(event)
                last = event.position
        finally:
            await pump.stop()

    async def _read(self, after: int, before: int | None, offer: Offer) -> int:
        """Offers the stored events after ``after`` (and before ``before``); returns the last
        position read."""
        while True:
            events, scanned = await run_in_threadpool(
                public_events, self._ledger, after, PAGE, self._index
            )
            for event in events:
                if before is not None and event.position >= before:
                    return after
                await offer(event)
            if scanned <= after or (before is not None and scanned >= before):
                return after if before is not None else scanned
            after = scanned


class _Pump:
    """Buffers the bus's live events while the feed reads the store or waits on its client.

    Where events may be missing it leaves a gap mark: on overflow (it forgets what it buffered)
    and when the bus drops the subscription (it listens again). The store has what is missing."""

    def __init__(self, listen: Callable[[], AsyncIterator[Any]], size: int) -> None:
        self._listen = listen
        self._size = size
        self._buffer: deque[Any] = deque()
        self._ready = asyncio.Event()
        self._first = listen()
        self._task = asyncio.create_task(self._run())

    async def started(self) -> bool:
        """True once the bus confirms it listens (``started()``, as both buses offer)."""
        started = getattr(self._first, "started", None)
        if started is None:
            return False
        try:
            async with asyncio.timeout(STARTED_WAIT):
                await started()
        except TimeoutError:
            return False
        return True

    async def _run(self) -> None:
        failures = 0
        live: AsyncIterator[Any] | None = self._first
        try:
            while True:
                live = live or self._listen()
                try:
                    async for event in live:
                        failures = 0
                        self._put(event)
                    return  # the bus was closed
                except Exception:
                    failures += 1
                    if failures > RELISTEN_LIMIT:
                        raise
                    log.warning("live subscription dropped; listening again", exc_info=True)
                    self._put(_GAP)
                finally:
                    await _closed(live)
                    live = None
        finally:
            self._ready.set()

    def _put(self, item: Any) -> None:
        if len(self._buffer) >= self._size:
            self._buffer.clear()
            self._buffer.append(_GAP)
        self._buffer.append(item)
        self._ready.set()

    async def next(self) -> tuple[PublicEvent, bool]:
        """The next live event, and whether events may be missing before it."""
        gap = False
        while True:
            while not self._buffer:
                if self._task.done():
                    self._task.result()  # the bus's error, if it failed
                    raise FeedEndedError("the event bus stopped")
                self._ready.clear()
                await self._ready.wait()
            item = self._buffer.popleft()
            if item is not _GAP:
                return item, gap
            gap = True

    async def stop(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


async def _closed(live: AsyncIterator[Any]) -> None:
    close = getattr(live, "aclose", None)
    if close is not None:
        await close()
