"""Ports the outside world implements: token signing, password hashing, rate limiting."""

from __future__ import annotations

from typing import Any, Protocol

import msgspec


class InvalidTokenError(Exception):
    """Bad signature, wrong algorithm, expired, wrong issuer or audience, malformed."""


class TokenCodec(Protocol):
    access_ttl: int

    def issue(self, claims: dict[str, Any]) -> str: ...

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
