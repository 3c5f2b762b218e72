"""The in-process bus's subscriptions: a live one (bounded, dropped when it falls behind) and one
delivery to a durable consumer (handed out again until acknowledged); infrastructure/memory_bus.py
says how the bus uses them."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from application.public_events import PublicEvent
from infrastructure.bus_subjects import SlowSubscriberError

if TYPE_CHECKING:
    from infrastructure.memory_bus import MemoryBus


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
