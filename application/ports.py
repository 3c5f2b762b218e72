"""Ports the outside world implements: the clock, token signing, password hashing, rate limiting,
the bus."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any, Protocol

import msgspec


class Clock(Protocol):
    """Where the domain and the application get the time: they never read the wall clock
    themselves, so a test moves time instead of waiting for it (``infrastructure/clock.py``
    reads the system's; ``tests/clock.py`` is moved by hand). Aggregates are given the moment
    (``at``) by the handler that calls them; handlers read it from ``Store.clock``."""

    def now(self) -> datetime:
        """The current moment, timezone-aware UTC."""
        ...

    def time(self) -> float:
        """The current moment in epoch seconds (``now().timestamp()``): the views' unit."""
        ...

    def monotonic(self) -> float:
        """Seconds from an arbitrary origin that never go back, for intervals and deadlines
        (a retry bound, a check every few seconds); unaffected by the wall clock's jumps."""
        ...


class InvalidTokenError(Exception):
    """Bad signature, wrong algorithm, expired, wrong issuer or audience, malformed."""


class TokenCodec(Protocol):
    access_ttl: int

    def issue(
        self, claims: dict[str, Any], *, at: float | None = None, jti: str | None = None
    ) -> str:
        """A signed access token; ``at`` (epoch seconds, default now) and ``jti`` (default random)
        given, the same claims give the same token."""
        ...

    def derive(self, purpose: str, material: str) -> str:
        """A secret only this server can compute from ``material`` (an HMAC under a key of the
        server's own for ``purpose``): 43 URL-safe characters."""
        ...

    def read(self, token: str) -> dict[str, Any]:
        """The verified claims; raises InvalidTokenError."""
        ...


class PasswordHasher(Protocol):
    def hash(self, password: str) -> str: ...

    def verify(self, password: str, encoded: str) -> bool: ...


class Allowance(msgspec.Struct, frozen=True, kw_only=True):
    """One request counted against one budget: ``limit`` requests per ``window`` seconds."""

    allowed: bool
    limit: int
    window: int
    remaining: int  # requests that could follow at once
    reset_at: float  # epoch seconds when the whole budget is back
    retry_after: float  # seconds until a request would be allowed again; 0 when allowed


class RateLimiter(Protocol):
    """Counts requests per key; shared by every API process when the store is shared."""

    async def hit(self, key: str, limit: int, window: int) -> Allowance:
        """Counts one request against ``key``; a refused request is not counted."""
        ...

    async def close(self) -> None: ...


class Delivery(Protocol):
    """One event handed to a durable consumer; redelivered (in order) until acknowledged."""

    @property
    def event(self) -> Any: ...  # application.public_events.PublicEvent

    async def ack(self) -> None: ...


class Bus(Protocol):
    """Fans public events out: NATS JetStream in production, in this process in embedded mode.

    Subjects are ``taskwarden.<team>.<aggregate>.<event>`` (``application.public_events.subject``);
    filters use NATS wildcards (``taskwarden.team-1.>``, ``taskwarden.*.task.*``). Publishing is
    at least once and deduplicated by position (``Nats-Msg-Id``), so a relay that publishes an
    event again after a crash causes no duplicate downstream.
    """

    async def publish(self, events: Sequence[Any]) -> None:
        """Publishes ``PublicEvent``s in order; returns once the bus has stored them."""
        ...

    def live(self, subject_filter: str) -> AsyncIterator[Any]:
        """Events published from now on that match the filter, in order (WebSocket fan-out)."""
        ...

    def durable(self, name: str, subject_filter: str) -> AsyncIterator[Delivery]:
        """A named consumer that survives restarts: every matching event, in order, at least once
        (webhook delivery)."""
        ...

    async def close(self) -> None: ...
