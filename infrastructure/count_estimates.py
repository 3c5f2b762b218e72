"""The planner's estimates of how many tasks a listing matches, kept a few seconds.

A listing past the count's bound answers the planner's row estimate as its ``total``
(``infrastructure/sql_listing.py``), asked with an ``EXPLAIN`` per page: a round trip and a
planning of the filters on the server each time, for a figure that moves only as the table's
statistics and size do. Pages of the same listing read within ``KEEP_SECONDS`` share one: on
Postgres, 16 connections, a project of 2,500 tasks (``bench/http_load.py``, three rounds), list
requests went 981 / 989 / 1,025 -> 1,085 / 1,217 / 1,125 per second, filtered ones 1,095 /
1,084 / 1,081 -> 1,413 / 1,272 / 1,297.

A listing is its filters' SQL and parameters, the team among them, so no team is answered
another's figure. At most ``SIZE`` listings are kept, the oldest dropped first.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from application.kept import Kept

KEEP_SECONDS = 5.0
SIZE = 1_024

Key = tuple[str, bytes]


class CountEstimates:
    def __init__(self, monotonic: Callable[[], float], keep: float = KEEP_SECONDS) -> None:
        self._monotonic = monotonic
        self._keep = keep
        self._kept: Kept[Key, tuple[float, int]] = Kept(SIZE)

    @staticmethod
    def key(where: str, params: list[Any]) -> Key:
        return where, msgspec.json.encode(params)

    def get(self, key: Key) -> int | None:
        """The estimate kept for ``key`` if it is fresh, else None."""
        found = self._kept.get(key)
        if found is None or self._monotonic() - found[0] >= self._keep:
            return None
        return found[1]

    def put(self, key: Key, estimate: int) -> None:
        self._kept.keep(key, (self._monotonic(), estimate))
