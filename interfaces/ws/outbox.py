"""A socket's bounded queue of encoded messages, emptied by its one writer task.

``asyncio.Queue`` does the same with more bookkeeping (task counts, a getter deque); with a
thousand sockets each taking every event, the queue is on the hot path. While nothing is queued
and the writer waits, a message may be sent at once on the caller's turn (``idle``); a send that
had to wait is handed over to the writer (``hand_over``), and a send that failed fails the writer
(``fail``), so that the socket ends as if the writer had sent it.
"""

from __future__ import annotations

import asyncio
from collections import deque

from interfaces.ws.eager import Started


class Outbox:
    def __init__(self, size: int) -> None:
        self._items: deque[str | Started] = deque()
        self._size = max(1, size)
        self._writer: asyncio.Future[None] | None = None  # the writer, waiting for a message
        self._room = asyncio.Event()  # set while there is room
        self._room.set()
        self._failure: BaseException | None = None

    def __len__(self) -> int:
        return len(self._items)

    @property
    def idle(self) -> bool:
        """Nothing queued and the writer waiting for a message: one may be sent at once."""
        writer = self._writer
        return not self._items and writer is not None and not writer.done() and not self._failure

    def put_nowait(self, text: str) -> bool:
        """Queues ``text`` if there is room; False if the outbox is full."""
        if len(self._items) >= self._size:
            self._room.clear()
            return False
        self._items.append(text)
        self._wake()
        return True

    def hand_over(self, started: Started) -> None:
        """A send begun at once that has to wait: the writer finishes it before anything else."""
        self._items.appendleft(started)
        self._wake()

    def fail(self, failure: BaseException) -> None:
        """A send begun at once failed: the writer raises it."""
        self._failure = failure
        self._wake()

    async def put(self, text: str, grace: float) -> bool:
        """Queues ``text``, waiting up to ``grace`` seconds for room; False if none came."""
        try:
            async with asyncio.timeout(grace):
                while not self.put_nowait(text):
                    await self._room.wait()
        except TimeoutError:
            return False
        return True

    async def take(self) -> str | Started:
        """The next message, or a started send to finish (the writer's side), waiting for one."""
        while not self._items:
            if self._failure is not None:
                raise self._failure
            self._writer = asyncio.get_running_loop().create_future()
            await self._writer
        if self._failure is not None:
            raise self._failure
        item = self._items.popleft()
        if not self._room.is_set():
            self._room.set()
        return item

    def _wake(self) -> None:
        writer = self._writer
        if writer is not None:
            self._writer = None
            if not writer.done():
                writer.set_result(None)
