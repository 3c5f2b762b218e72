"""What a process keeps between requests, bounded: at most ``size`` entries, the one kept
longest ago dropped first. The copies claims and creates decide on (``claim_copies``,
``open_projects``) and the listings' count estimates (``infrastructure/count_estimates``) are
kept in one.

Reads take no lock (a dict's ``get`` and ``pop`` are atomic under the GIL); a keep takes one, so
that two keeping at once never drop more than the bound asks.
"""

from __future__ import annotations

import threading
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class Kept(Generic[K, V]):
    def __init__(self, size: int) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._items: dict[K, V] = {}

    def get(self, key: K) -> V | None:
        return self._items.get(key)

    def keep(self, key: K, value: V) -> None:
        """Keeps ``value`` as the newest entry (replacing any kept under ``key``)."""
        with self._lock:
            self._items.pop(key, None)
            self._items[key] = value
            while len(self._items) > self._size:
                del self._items[next(iter(self._items))]

    def drop(self, key: K) -> None:
        self._items.pop(key, None)

    def __len__(self) -> int:
        return len(self._items)
