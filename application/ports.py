"""Ports the outside world implements: token signing and password hashing."""

from __future__ import annotations

from typing import Any, Protocol


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
