"""Errors the application raises beyond the domain's rule errors."""

from __future__ import annotations


class NotFoundError(Exception):
    """Missing, deleted, or another team's: the caller cannot tell which, by design."""

    def __init__(self, kind: str, ref: str) -> None:
        super().__init__(f"{kind} {ref} not found")
        self.kind = kind
        self.ref = ref

    @property
    def code(self) -> str:
        return f"{self.kind.upper()}_NOT_FOUND"


class VersionConflictError(Exception):
    """The caller's ``If-Match`` version is not the current one, or a race was lost too often."""

    def __init__(self, expected: int | None, actual: int) -> None:
        super().__init__(f"version is {actual}, not {expected}")
        self.expected = expected
        self.actual = actual


class IdempotencyConflictError(Exception):
    """The same ``Idempotency-Key`` came with a different request."""
