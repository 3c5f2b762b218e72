"""Commands on one task in one process take turns instead of racing.

Four clients updating one task at once all loaded the same version, all decided, and all but one
lost at the commit; the losers paused (``application.conflict_retry``) and tried again, to lose
again to whoever came back first: 24 updates/s where one client alone made more. Here a command
that loads a task (inside ``Store.with_retries``) first takes the task's lock in this process and
holds it until the attempt ends, after its commit: the next command loads the version that
commit wrote, and nothing is decided twice. Reads (outside a command) take no lock.

The lock is a courtesy between the threads of one process, not the guard: other processes write
the same tasks, so optimistic concurrency (a version written twice is refused, and the command
decides again) stays what keeps the log right. A command waits ``WAIT_SECONDS`` at most for a
lock (two commands taking two tasks' locks in opposite orders would otherwise wait for each other
for ever), then goes on without it, as every command did before.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TypeVar
from uuid import UUID

R = TypeVar("R")
WAIT_SECONDS = 1.0

# the locks the current command's attempt holds (None: not in a command)
_held: ContextVar[dict[UUID, threading.Lock] | None] = ContextVar("command_locks", default=None)


class CommandLocks:
    def __init__(self, wait: float = WAIT_SECONDS) -> None:
        self._wait = wait
        self._guard = threading.Lock()
        self._locks: dict[UUID, tuple[threading.Lock, int]] = {}  # and how many want each

    def attempt(self, decide: Callable[[], R]) -> R:
        """Runs one attempt of a command: the locks it takes are released when it ends (an
        attempt inside another's keeps to the outer one's)."""
        if _held.get() is not None:
            return decide()
        with self._holding():
            return decide()

    def take(self, aggregate_id: UUID) -> None:
        """Inside an attempt: waits for this aggregate's turn (``wait`` seconds at most)."""
        held = _held.get()
        if held is None or aggregate_id in held:
            return
        lock = self._use(aggregate_id)
        if lock.acquire(timeout=self._wait):
            held[aggregate_id] = lock
        else:
            self._disuse(aggregate_id)  # went on without it: the version check still guards

    @contextmanager
    def _holding(self) -> Iterator[None]:
        held: dict[UUID, threading.Lock] = {}
        token = _held.set(held)
        try:
            yield
        finally:
            _held.reset(token)
            for aggregate_id, lock in held.items():
                lock.release()
                self._disuse(aggregate_id)

    def _use(self, aggregate_id: UUID) -> threading.Lock:
        with self._guard:
            lock, users = self._locks.get(aggregate_id, (None, 0))
            lock = lock or threading.Lock()
            self._locks[aggregate_id] = (lock, users + 1)
            return lock

    def _disuse(self, aggregate_id: UUID) -> None:
        with self._guard:
            lock, users = self._locks[aggregate_id]
            if users == 1:
                del self._locks[aggregate_id]
            else:
                self._locks[aggregate_id] = (lock, users - 1)

    def wanted(self, aggregate_id: UUID) -> int:
        """How many commands hold or wait for this aggregate's lock."""
        with self._guard:
            return self._locks.get(aggregate_id, (None, 0))[1]

    def __len__(self) -> int:
        """Aggregates some command holds or waits for (none once they are all done)."""
        return len(self._locks)
