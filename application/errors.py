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


class RaceLostError(VersionConflictError):
    """Without ``If-Match``, concurrent writers won every try until the retry bound passed
    (``TASKWARDEN_CONFLICT_RETRY_SECONDS``): 409, try again."""

    def __init__(self, attempts: int, seconds: float) -> None:
        Exception.__init__(
            self, f"a concurrent change won each of {attempts} tries in {seconds:g} s; try again"
        )
        self.attempts = attempts
        self.seconds = seconds


class IdempotencyConflictError(Exception):
    """The same ``Idempotency-Key`` came with a different request."""


class AuthenticationError(Exception):
    """No credentials, bad credentials, or a disabled account: 401."""

    def __init__(self, message: str, code: str = "AUTH_TOKEN_INVALID") -> None:
        super().__init__(message)
        self.code = code


class PermissionDeniedError(Exception):
    """Authenticated, but the role does not allow this: 403."""

    def __init__(self, permission: str, role: str) -> None:
        super().__init__(f"role {role} may not {permission}")
        self.permission = permission
        self.role = role


class AdminKeyNotConfiguredError(Exception):
    """``POST /api/auth/token`` without TASKWARDEN_ADMIN_KEY set: 503."""
