"""Rate limiting by GCRA (the generic cell rate algorithm), and the in-process limiter.

A budget of ``limit`` requests per ``window`` seconds refills one request every ``window / limit``
seconds, up to ``limit``. The whole state of a key is one number, its theoretical arrival time
(``tat``): the instant its budget would be full again. A request at ``now`` is allowed when
``max(tat, now) + interval - now <= window``, and then moves ``tat`` on by one interval; a refused
request changes nothing. No fixed window edges: never twice the limit across a boundary. A key whose
``tat`` has passed is the same as a key never seen, so forgetting it is safe.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from application.ports import Allowance

EPSILON = 1e-3  # seconds: ``limit`` intervals fit in ``window`` despite float rounding (an
# epoch near 1.7e9 keeps about 7 decimals, and ``tat`` adds one interval per request)
SWEEP_SECONDS = 60.0


def allowance(tat: float, allowed: bool, now: float, limit: int, window: int) -> Allowance:
    """What the caller is told, from a key's ``tat`` after the request was counted (or not)."""
    interval = window / limit
    tat = max(tat, now)
    remaining = int((now + window - tat + EPSILON) / interval)
    return Allowance(
        allowed=allowed,
        limit=limit,
        window=window,
        remaining=min(limit, max(0, remaining)),
        reset_at=tat,
        retry_after=0.0 if allowed else max(0.0, tat + interval - window - now),
    )


def step(tat: float | None, now: float, limit: int, window: int) -> tuple[float, Allowance]:
    """One request at ``now`` against a key's ``tat`` (None: never seen): the new ``tat``."""
    interval = window / limit
    base = now if tat is None else max(tat, now)
    allowed = base + interval - now <= window + EPSILON
    if allowed:
        base += interval
    return base, allowance(base, allowed, now, limit, window)


class MemoryRateLimiter:
    """Counters in this process (embedded mode, tests, the fallback of the shared one)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._tats: dict[str, float] = {}
        self._next_sweep = clock() + SWEEP_SECONDS

    def take(self, key: str, limit: int, window: int) -> Allowance:
        now = self._clock()
        with self._lock:
            if now >= self._next_sweep:
                self._sweep(now)
            tat, result = step(self._tats.get(key), now, limit, window)
            self._tats[key] = tat
        return result

    async def hit(self, key: str, limit: int, window: int) -> Allowance:
        return self.take(key, limit, window)  # no I/O, microseconds: fine on the event loop

    async def close(self) -> None:
        pass

    def __len__(self) -> int:
        return len(self._tats)

    def _sweep(self, now: float) -> None:
        """Forgets the keys whose budget is full again (caller holds the lock)."""
        self._tats = {key: tat for key, tat in self._tats.items() if tat > now}
        self._next_sweep = now + SWEEP_SECONDS
