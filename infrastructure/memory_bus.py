"""The embedded mode's bus: the Bus port in this process, on one event loop.

``live``: each subscription has a bounded queue, registered when ``live()`` is called. Publishing
never waits for a subscriber: one whose queue is full is dropped, and its iterator yields what was
queued, then raises ``SlowSubscriberError`` (it missed events; a WebSocket client resumes from
the event store by position).

``durable``: a named consumer gets every matching event in order, one at a time: the next one only
after the current one is acknowledged; one not acknowledged within ``ack_wait`` seconds is handed
out again (``attempt`` counts). One iterator per name consumes at a time; another one with the same
name waits until the first ends (a standby). The consumer's position (its last acknowledged event)
is kept per name, and, given ``tracking``, in the store as ``bus:<name>``: at most every
``record_every`` seconds while acknowledgements come, and when the consumer ends or the bus
closes. After a crash the last second's events may come again (consumers are idempotent: the
webhook queue finds its deliveries already queued); after a clean stop nothing acknowledged does.

The bus keeps the last ``retain`` published events. Every event published above ``floor`` is in
that log. A durable consumer behind the floor (a restart, or too slow for the log):

- with ``ledger``: reads the events from the event store (``public_events``) until it reaches the
  floor, then follows the log. So after a restart a durable consumer resumes after its tracked
  position: nothing is lost, and nothing acknowledged comes again.
- without: skips to the floor (those events are gone, as in a JetStream stream past its limits).

With ``ledger`` the floor starts at the head of the log when the bus is first used (a relay
resuming from its tracked position may publish a few events below it again: a durable consumer
skips what it has). A new durable consumer (no position yet) starts at the floor: the events
published after it existed.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

from application.public_events import PublicEvent, TeamIndex, public_events, subject

log = logging.getLogger("taskwarden.bus")


class SlowSubscriberError(Exception):
    """A live subscriber let its queue fill up and was dropped: it missed events."""


# ---- subjects ---------------------------------------------------------------------------------


def check_filter(subject_filter: str) -> str:
    """Raises ValueError unless the filter is a NATS subject filter: dot-separated non-empty
    tokens, ``*`` (one token) and ``>`` (one or more, last only) as whole tokens."""
    parts = subject_filter.split(".")
    for i, part in enumerate(parts):
        bad = not part or any(c.isspace() for c in part)
        wild = ("*" in part or ">" in part) and part not in ("*", ">")
        if bad or wild or (part == ">" and i != len(parts) - 1):
            raise ValueError(f"invalid subject filter: {subject_filter!r}")
    return subject_filter


def subject_matches(subject_filter: str, subject_name: str) -> bool:
    """NATS wildcard rules: ``*`` matches one token, a final ``>`` one or more."""
    pattern = subject_filter.split(".")
    tokens = subject_name.split(".")
    for i, part in enumerate(pattern):
        if part == ">":
            return len(tokens) > i
        if i >= len(tokens) or (part != "*" and part != tokens[i]):
            return False
    return len(tokens) == len(pattern)


# ---- live -------------------------------------------------------------------------------------


class MemoryLive:
    """One live subscription: an async iterator of ``PublicEvent``s."""

    def __init__(self, bus: MemoryBus, subject_filter: str, size: int) -> None:
        self.subject_filter = subject_filter
        self._bus = bus
        self._size = size
        self._queue: deque[PublicEvent] = deque()
        self._wake = asyncio.Event()
        self._dropped = False
        self._ended = False

    def offer(self, event: PublicEvent) -> None:
        if len(self._queue) >= self._size:
            self._dropped = True
            self._bus.forget(self)
        else:
            self._queue.append(event)
        self._wake.set()

    def end(self) -> None:
        self._ended = True
        self._wake.set()

    async def started(self) -> None:
        """Returns once events are being received (here at once: registered by ``live()``)."""

    def __aiter__(self) -> MemoryLive:
        return self

    async def __anext__(self) -> PublicEvent:
        while True:
            if self._queue:
                return self._queue.popleft()
            if self._dropped:
                raise SlowSubscriberError(f"live subscriber {self.subject_filter!r} fell behind")
            if self._ended:
                raise StopAsyncIteration
            self._wake.clear()
            await self._wake.wait()

    async def aclose(self) -> None:
        self._bus.forget(self)
        self.end()


# ---- durable ----------------------------------------------------------------------------------


class MemoryDelivery:
    def __init__(
        self,
        event: PublicEvent,
        attempt: int,
        handed_at: float,
        on_ack: Callable[[], Awaitable[None]],
    ) -> None:
        self._event = event
        self.attempt = attempt  # 1 on the first delivery, then counts redeliveries
        self.handed_at = handed_at
        self._on_ack = on_ack
        self._acked = asyncio.Event()

    @property
    def event(self) -> PublicEvent:
        return self._event

    @property
    def acked(self) -> bool:
        return self._acked.is_set()

    async def ack(self) -> None:
        """Records the consumer's position at once (and in the store, with tracking)."""
        if not self.acked:
            self._acked.set()
            await self._on_ack()

    async def settled(self, deadline: float) -> bool:
        """True once acknowledged; False if ``deadline`` (loop time) passes first."""
        remaining = deadline - asyncio.get_running_loop().time()
        if not self.acked and remaining > 0:
            try:
                async with asyncio.timeout(remaining):
                    await self._acked.wait()
            except TimeoutError:
                pass
        return self.acked


# ---- the bus ----------------------------------------------------------------------------------


class MemoryBus:
    def __init__(
        self,
        *,
        ledger: Any = None,
        tracking: Any = None,
        prefix: str = "taskwarden",
        retain: int = 10_000,
        live_queue: int = 1_000,
        ack_wait: float = 30.0,
        replay_batch: int = 500,
        record_every: float = 1.0,
    ) -> None:
        if tracking is not None and ledger is None:
            raise ValueError("tracked durable consumers replay from the store: pass the ledger")
        self.prefix = prefix
        self._ledger = ledger
        self._tracking = tracking
        self._retain = retain
        self._live_queue = live_queue
        self._ack_wait = ack_wait
        self._replay_batch = replay_batch
        self._log: deque[PublicEvent] = deque()
        self._floor: int | None = None  # every event published above it is in the log
        self._last = 0  # the last position published
        self._live: list[MemoryLive] = []
        self._positions: dict[str, int] = {}
        self._record_every = record_every
        self._stored: dict[str, tuple[int, float]] = {}  # in the store: position, loop time
        self._consumers: dict[str, asyncio.Lock] = {}
        self._published = asyncio.Event()
        self._closed = False

    # ---- publishing ---------------------------------------------------------------------

    async def publish(self, events: Sequence[PublicEvent]) -> None:
        """Appends in order; a position at or below the last one published is dropped (the
        relay republishing after a crash), as JetStream drops it by ``Nats-Msg-Id``."""
        if self._closed:
            raise RuntimeError("the bus is closed")
        await self._ensure_floor()
        for event in events:
            if event.position <= self._last:
                continue
            self._last = event.position
            self._log.append(event)
            name = subject(event, self.prefix)
            for live in list(self._live):
                if subject_matches(live.subject_filter, name):
                    live.offer(event)
        while len(self._log) > self._retain:
            dropped = self._log.popleft()
            self._floor = max(self._floor or 0, dropped.position)
        self._notify()

    async def last_position(self) -> int | None:
        """The last position published to this bus; None before any."""
        return self._last or None

    def _notify(self) -> None:
        published, self._published = self._published, asyncio.Event()
        published.set()

    async def _ensure_floor(self) -> int:
        if self._floor is None:
            head = 0 if self._ledger is None else await asyncio.to_thread(self._ledger.max_position)
            if self._floor is None:  # another coroutine may have set it meanwhile
                self._floor = head
        return self._floor

    # ---- live ---------------------------------------------------------------------------

    def live(self, subject_filter: str) -> MemoryLive:
        """Events published from this call on that match the filter, in order. Bounded: see the
        module docstring for a slow subscriber."""
        subscription = MemoryLive(self, check_filter(subject_filter), self._live_queue)
        if self._closed:
            subscription.end()
        else:
            self._live.append(subscription)
        return subscription

    def forget(self, subscription: MemoryLive) -> None:
        if subscription in self._live:
            self._live.remove(subscription)

    # ---- durable ------------------------------------------------------------------------

    def durable(self, name: str, subject_filter: str) -> AsyncIterator[MemoryDelivery]:
        return self._consume(name, check_filter(subject_filter))

    async def _consume(self, name: str, subject_filter: str) -> AsyncIterator[MemoryDelivery]:
        loop = asyncio.get_running_loop()
        async with self._consumers.setdefault(name, asyncio.Lock()):
            position = await self._start_position(name)
            try:
                async for event in self._after(position, subject_filter):
                    attempt = 1
                    while True:
                        recorded = functools.partial(self._record, name, event.position)
                        delivery = MemoryDelivery(event, attempt, loop.time(), recorded)
                        yield delivery
                        if await delivery.settled(delivery.handed_at + self._ack_wait):
                            break
                        attempt += 1
            finally:
                self._store_now(name)

    async def _start_position(self, name: str) -> int:
        if name in self._positions:
            return self._positions[name]
        if self._tracking is not None:
            stored = await asyncio.to_thread(self._tracking.get, f"bus:{name}")
            if stored is not None:
                self._positions[name] = stored
                return stored
        position = await self._ensure_floor()
        self._positions[name] = position
        self._store_now(name)  # a new consumer exists from now on, across restarts
        return position

    async def _record(self, name: str, position: int) -> None:
        self._positions[name] = position
        if self._tracking is None:
            return
        now = asyncio.get_running_loop().time()
        stored, at = self._stored.get(name, (None, -self._record_every))
        if position != stored and now - at >= self._record_every:
            self._stored[name] = (position, now)
            await asyncio.to_thread(self._tracking.set, f"bus:{name}", position)

    def _store_now(self, name: str) -> None:
        """Writes a consumer's position if the store is behind (at its end, at close: quick,
        and not worth a thread)."""
        position = self._positions.get(name)
        if self._tracking is None or position is None:
            return
        if self._stored.get(name, (None, 0.0))[0] == position:
            return
        try:
            self._tracking.set(f"bus:{name}", position)
        except Exception:  # noqa: BLE001 - at worst, events since the last record come again
            log.warning("could not record durable consumer %s at %d", name, position)
            return
        self._stored[name] = (position, asyncio.get_running_loop().time())

    async def _after(self, position: int, subject_filter: str) -> AsyncIterator[PublicEvent]:
        """Matching events after ``position`` in order: from the store below the floor, then
        from the log, waiting for more."""
        cursor = position
        index = TeamIndex(self._ledger.repository) if self._ledger is not None else None
        while not self._closed:
            floor = await self._ensure_floor()
            if cursor < floor:
                if index is None:
                    log.warning("durable consumer skips %d..%d: beyond the log", cursor + 1, floor)
                    cursor = floor
                    continue
                events, last = await asyncio.to_thread(
                    public_events, self._ledger, cursor, self._replay_batch, index
                )
                for event in events:
                    if subject_matches(subject_filter, subject(event, self.prefix)):
                        yield event
                cursor = last if last > cursor else floor
                continue
            published = self._published
            fresh = self._since(cursor)
            for event in fresh:
                if subject_matches(subject_filter, subject(event, self.prefix)):
                    yield event
                cursor = event.position
            if not fresh and not self._closed:
                await published.wait()

    def _since(self, position: int) -> list[PublicEvent]:
        fresh = []
        for event in reversed(self._log):
            if event.position <= position:
                break
            fresh.append(event)
        fresh.reverse()
        return fresh

    # ---- the rest -----------------------------------------------------------------------

    async def health(self) -> dict[str, object]:
        return {
            "status": "healthy",
            "kind": "in-process",
            "retained": len(self._log),
            "last_position": self._last,
        }

    async def close(self) -> None:
        """Ends every live and durable iterator (durable ones after the current delivery), and
        records the durable consumers' positions."""
        self._closed = True
        for name in list(self._positions):
            self._store_now(name)
        for live in list(self._live):
            live.end()
        self._live.clear()
        self._notify()
