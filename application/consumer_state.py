"""How a consumer of the log treats an event it fails on, and what every consumer reports.

One rule for the projection runner, the relay, the webhook queue and the WebSocket feeds: an
event that fails is tried again after a backoff (doubling up to ``max_backoff``); a failure counts
towards quarantine only when the consumer's dependency answers right after it (the read model, the
store, the bus), so an outage is waited out however long it lasts and quarantines nothing. After
``max_attempts`` counted failures on one position the consumer records the event as quarantined
(application/quarantine.py) and goes on after it.

Each consumer owns a ``ConsumerState``; ``status()`` is the one shape /api/health/detailed shows,
``problems()`` what makes /ready answer 503 (stuck, quarantining, too far behind), and the
process's ``Consumers`` are what /metrics counts. The clock (the ``Clock`` port, epoch seconds)
is injected: tests reach "stuck" without waiting for it, and a consumer waiting out a backoff
polls it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import msgspec

from application.ports import Clock
from domain.quarantine import short
from domain.values import rfc3339

RETRY, QUARANTINE = "retry", "quarantine"
POLL_SECONDS = 0.05  # a backoff is waited out in steps this long (the clock may be a test's)


class Policy(msgspec.Struct, frozen=True, kw_only=True):
    """TASKWARDEN_CONSUMER_MAX_ATTEMPTS, _BACKOFF_SECONDS, _MAX_BACKOFF_SECONDS."""

    max_attempts: int = 5
    backoff: float = 0.1
    max_backoff: float = 5.0


def describe(error: BaseException) -> str:
    """``Type: message``, cut short."""
    return short(f"{type(error).__name__}: {error}")


class ConsumerState:
    """What one consumer reports, and its retries of the event it is failing on. Thread-safe:
    the runner's thread writes it while a request reads it."""

    def __init__(self, name: str, policy: Policy | None = None, *, clock: Clock) -> None:
        self.name = name
        self.policy = policy or Policy()
        self.clock = clock
        self.running = False
        self.position = 0
        self.quarantined = 0  # events this process quarantined for this consumer
        self.last_error: str | None = None
        self.failing_position: int | None = None
        self.failing_since: float | None = None  # clock time of the first failure in a row
        self.attempts = 0  # counted failures on ``failing_position`` (the dependency answered)
        self.recording = False  # attempts exhausted: recording the quarantine
        self.failures = 0  # failures in a row, counted or not (the backoff grows with them)
        self._due = 0.0
        self._lock = threading.Lock()

    # ---- what the consumer tells it --------------------------------------------------------

    def failed(self, position: int | None, error: BaseException, *, answers: bool) -> str:
        """A failure on ``position`` (None: not known, e.g. a whole batch could not be read).
        ``answers``: the consumer's dependency answered right after, so the event itself is
        suspect. Returns QUARANTINE once ``max_attempts`` such failures hit one position, else
        RETRY after ``remaining()`` seconds."""
        with self._lock:
            now = self.clock.time()
            if position is not None and position != self.failing_position:
                self.failing_position = position
                self.attempts = 0
                self.failing_since = now
            if self.failing_since is None:
                self.failing_since = now
            self.last_error = describe(error)
            self.failures += 1
            if answers and position is not None:
                self.attempts += 1
            delay = self.policy.backoff * 2 ** min(self.failures - 1, 30)
            self._due = now + min(delay, self.policy.max_backoff)
            if self.attempts >= self.policy.max_attempts:
                self.recording = True
                return QUARANTINE
            return RETRY

    def passed(self, position: int) -> None:
        """Progress: everything up to ``position`` is done; a failure on an event at or before
        it is over."""
        with self._lock:
            self.position = max(self.position, position)
            if self.failing_position is not None and position >= self.failing_position:
                self._clear()

    def succeeded(self) -> None:
        """A round went through (the dependency is back): a failure not tied to one event, or
        to one now passed, is over."""
        with self._lock:
            failing = self.failing_position
            if failing is None or self.position >= failing:
                self._clear()

    def was_quarantined(self, position: int) -> None:
        with self._lock:
            self.quarantined += 1
            self.position = max(self.position, position)
            self._clear()

    def _clear(self) -> None:
        self.failing_position = self.failing_since = None
        self.last_error = None
        self.attempts = self.failures = 0
        self.recording = False
        self._due = 0.0

    def remaining(self) -> float:
        """Seconds left of the backoff before the next attempt."""
        return max(0.0, self._due - self.clock.time())

    def wait(self, stop: threading.Event) -> None:
        """Waits out the backoff (a thread), or until ``stop`` is set."""
        while not stop.is_set() and (left := self.remaining()) > 0:
            stop.wait(min(left, POLL_SECONDS))

    async def pause(self, stopping: Callable[[], bool] = lambda: False) -> None:
        """Waits out the backoff (the event loop), or until ``stopping()``."""
        while not stopping() and (left := self.remaining()) > 0:
            await asyncio.sleep(min(left, POLL_SECONDS))

    # ---- what it reports -------------------------------------------------------------------

    @property
    def quarantining(self) -> bool:
        """Failing on an event while the dependency answers: on the way to quarantining it."""
        return self.attempts > 0 or self.recording

    def status(self, head: int | None) -> dict[str, Any]:
        """The one shape of every consumer (docs/api.md, "Health"). ``head``: the last position
        there is for it to consume (None: not applicable, lag is null)."""
        with self._lock:
            since = self.failing_since
            return {
                "name": self.name,
                "running": self.running,
                "position": self.position,
                "lag": None if head is None else max(0, head - self.position),
                "last_error": self.last_error,
                "failing_since": None if since is None else rfc3339(_utc(since)),
                "failing_position": self.failing_position,
                "attempts": self.attempts,
                "quarantining": self.quarantining,
                "quarantined": self.quarantined,
            }

    def problems(self, head: int | None, stuck_seconds: float, max_lag: int) -> list[str]:
        """Why /ready must answer 503 for this consumer (nothing: it is fine)."""
        if not self.running:
            return []
        found = []
        since = self.failing_since
        if since is not None and self.clock.time() - since > stuck_seconds:
            found.append(f"{self.name} stuck at {self.failing_position or self.position + 1}")
        if self.quarantining:
            found.append(f"{self.name} quarantining position {self.failing_position}")
        lag = None if head is None else head - self.position
        if max_lag and lag is not None and lag > max_lag:
            found.append(f"{self.name} {lag} positions behind")
        return found


def _utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


Head = Callable[[], Awaitable[int | None]]


class Consumers:
    """The consumers this process runs, each with how to learn its head (for the lag)."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[ConsumerState, Head | None]] = {}

    def register(self, state: ConsumerState, head: Head | None = None) -> ConsumerState:
        self._entries[state.name] = (state, head)
        return state

    def __iter__(self) -> Any:
        return iter(list(self._entries.values()))

    def get(self, name: str) -> ConsumerState | None:
        entry = self._entries.get(name)
        return None if entry is None else entry[0]
