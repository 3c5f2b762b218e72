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

- with ``source`` (the Store): reads the events from the event store (``scan``) until it reaches the
  floor, then follows the log (an event it cannot convert is tried again, then passed over, as
  the relay quarantines it). So after a restart a durable consumer resumes after its tracked
  position: nothing is lost, and nothing acknowledged comes again.
- without: skips to the floor (those events are gone, as in a JetStream stream past its limits).

With ``source`` the floor starts at the head of the log when the bus is first used (a relay
resuming from its tracked position may publish a few events below it again: a durable consumer
skips what it has). A new durable consumer (no position yet) starts at the floor: the events
published after it existed.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import deque
from collections.abc import AsyncIterator, Sequence
from typing import Any

from application.public_events import EventSource, PublicEvent, scan, subject
from infrastructure.bus_subjects import SlowSubscriberError, check_filter, subject_matches
from infrastructure.memory_subscriptions import MemoryDelivery, MemoryLive

__all__ = [
    "MemoryBus",
    "MemoryDelivery",
    "MemoryLive",
    "SlowSubscriberError",
    "check_filter",
    "subject_matches",
]
log = logging.getLogger("taskwarden.bus")
REPLAY_ATTEMPTS = 5  # a stored event that cannot be converted is tried this often, then skipped


# ---- the bus ----------------------------------------------------------------------------------


class MemoryBus:
    def __init__(
        self,
        *,
        source: EventSource | None = None,
        tracking: Any = None,
        prefix: str = "taskwarden",
        retain: int = 10_000,
        live_queue: int = 1_000,
        ack_wait: float = 30.0,
        replay_batch: int = 500,
        record_every: float = 1.0,
    ) -> None:
        if tracking is not None and source is None:
            raise ValueError("tracked durable consumers replay from the store: pass the source")
        self.prefix = prefix
        self._source = source  # the Store
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
        self._late: deque[tuple[int, int, PublicEvent]] = deque(maxlen=retain)  # number, after
        self._late_seq = 0
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

    async def publish_late(self, event: PublicEvent) -> None:
        """An event behind the last one published: a quarantined event a retry released.
        Durable consumers get it after what they were given; live subscribers (which follow
        positions) do not."""
        if self._closed:
            raise RuntimeError("the bus is closed")
        self._late_seq += 1
        self._late.append((self._late_seq, self._last, event))
        self._notify()

    async def last_position(self) -> int | None:
        """The last position published to this bus; None before any."""
        return self._last or None

    def _notify(self) -> None:
        published, self._published = self._published, asyncio.Event()
        published.set()

    async def _ensure_floor(self) -> int:
        if self._floor is None:
            head = 0 if self._source is None else await asyncio.to_thread(self._source.max_position)
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
        position = max(position, self._positions.get(name, 0))  # a late event: no step back
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
        from the log, waiting for more; and the late ones published since it began."""
        cursor, late_seen = position, self._late_seq
        tries: dict[int, int] = {}
        while not self._closed:
            floor = await self._ensure_floor()
            if cursor < floor:
                if self._source is None:
                    log.warning("durable consumer skips %d..%d: beyond the log", cursor + 1, floor)
                    cursor = floor
                    continue
                found = await asyncio.to_thread(scan, self._source, cursor, self._replay_batch)
                if found.last <= cursor:
                    cursor = floor
                    continue
                events, cursor = found.before_failure()
                for event in events:
                    if subject_matches(subject_filter, subject(event, self.prefix)):
                        yield event
                if found.failures:
                    cursor = await self._unconverted(found.failures[0].position, tries)
                continue
            published = self._published
            fresh = self._since(cursor)
            late = [(after, event) for seq, after, event in self._late if seq > late_seen]
            late_seen = self._late_seq
            for event in _in_publish_order(fresh, late):
                if subject_matches(subject_filter, subject(event, self.prefix)):
                    yield event
                cursor = max(cursor, event.position)
            if not fresh and not late and not self._closed:
                await published.wait()

    async def _unconverted(self, position: int, tries: dict[int, int]) -> int:
        """A stored event the replay cannot convert: tried again (a failure while the store is
        down raises), then passed over: the relay quarantines it, so it was never published.
        Returns the position to go on after."""
        assert self._source is not None  # only a replay from the store meets one
        await asyncio.to_thread(self._source.max_position)  # the store answers
        tries[position] = tries.get(position, 0) + 1
        if tries[position] >= REPLAY_ATTEMPTS:
            log.warning("durable replay passes over position %d: it cannot be converted", position)
            return position
        await asyncio.sleep(0.05 * 2 ** tries[position])
        return position - 1

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


def _in_publish_order(
    fresh: list[PublicEvent], late: list[tuple[int, PublicEvent]]
) -> list[PublicEvent]:
    """The fresh events and the late ones (each with the last position published before it)
    in the order they were published."""
    ordered: list[PublicEvent] = []
    taken = 0
    for after, event in late:
        while taken < len(fresh) and fresh[taken].position <= after:
            ordered.append(fresh[taken])
            taken += 1
        ordered.append(event)
    return ordered + fresh[taken:]
