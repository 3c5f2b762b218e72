"""The one table that maps every failure to a status and one of seed 000's codes."""

from __future__ import annotations

import logging
import math
import sqlite3
from datetime import UTC, datetime
from typing import Any

import msgspec
import psycopg
import psycopg_pool
from eventsourcing.persistence import IntegrityError, OperationalError
from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response

from application.command_runs import CommandsDisabledError
from application.errors import (
    AdminKeyNotConfiguredError,
    AuthenticationError,
    IdempotencyConflictError,
    NotFoundError,
    PermissionDeniedError,
    RaceLostError,
    VersionConflictError,
)
from application.limits import BadInputError
from application.ports import Allowance
from domain.errors import DeletedError, DomainError, RuleViolationError
from infrastructure.artifacts import (
    WorkspaceError,
    WorkspaceFileNotFoundError,
    WorkspaceFileTooLargeError,
    WorkspaceNotFoundError,
    WorkspacePathError,
    WorkspaceTooLargeError,
)
from interfaces.http.envelope import failure
from projections.search import SearchSyntaxError

log = logging.getLogger("taskwarden.http")


class BadRequestError(Exception):
    """A request the route could not read: query parameters, headers, body size."""

    def __init__(
        self, message: str, status: int = 422, code: str = "VALIDATION_ERROR", **details: Any
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.details = details


class ReadModelBehindError(Exception):
    """``min_position`` was not reached within the wait bound."""

    def __init__(self, wanted: int, reached: int) -> None:
        super().__init__(f"read model at {reached}, wanted {wanted}")
        self.wanted = wanted
        self.reached = reached


class RateLimitedError(Exception):
    """A budget of ``interfaces.http.rate_limits`` is spent: 429 with ``Retry-After``."""

    def __init__(self, allowance: Allowance) -> None:
        super().__init__("Too many requests. Please try again later.")
        self.allowance = allowance
        self.retry_after = max(1, math.ceil(allowance.retry_after))
        self.headers = {"Retry-After": str(self.retry_after)}

    @property
    def details(self) -> dict[str, Any]:
        reset = datetime.fromtimestamp(math.ceil(self.allowance.reset_at), UTC)
        return {
            "limit": self.allowance.limit,
            "window": self.allowance.window,
            "reset_at": reset.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "retry_after": self.retry_after,
        }


# the event store or the read model cannot be reached: a dependency is down, not a bug
STORE_DOWN = (
    OperationalError,
    psycopg.OperationalError,
    psycopg_pool.PoolTimeout,
    sqlite3.OperationalError,
)

# reading a task's workspace (interfaces/http/routes_artifacts.py); too large is 422, not 413:
# 413 speaks of the request's own body
WORKSPACE_CODES: dict[type[WorkspaceError], tuple[int, str]] = {
    WorkspaceNotFoundError: (404, "WORKSPACE_NOT_FOUND"),
    WorkspaceFileNotFoundError: (404, "WORKSPACE_FILE_NOT_FOUND"),
    WorkspacePathError: (422, "WORKSPACE_PATH_INVALID"),
    WorkspaceTooLargeError: (422, "WORKSPACE_TOO_LARGE"),
    WorkspaceFileTooLargeError: (422, "WORKSPACE_FILE_TOO_LARGE"),
}

HTTP_CODES = {
    400: "BAD_REQUEST",
    401: "AUTH_TOKEN_MISSING",
    403: "AUTH_INSUFFICIENT_PERMISSIONS",
    404: "RESOURCE_NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    422: "VALIDATION_ERROR",
    429: "RATE_LIMIT_EXCEEDED",
    503: "SERVICE_UNAVAILABLE",
}


def describe(error: BaseException) -> tuple[int, str, str, dict[str, Any]]:
    """(status, code, message, details) for any failure; used by routes and by bulk items."""
    if isinstance(error, BadRequestError):
        return error.status, error.code, error.message, error.details
    if isinstance(error, BadInputError):
        return 422, error.code, error.message, error.details
    if isinstance(error, msgspec.ValidationError):
        message = str(error)
        path = message.rpartition(" - at `")[2].rstrip("`") if " - at `" in message else None
        return 422, "VALIDATION_ERROR", message, {"field": path, "issue": message}
    if isinstance(error, msgspec.DecodeError):
        return 422, "VALIDATION_INVALID_FORMAT", f"malformed JSON: {error}", {}
    if isinstance(error, SearchSyntaxError):
        return 422, "VALIDATION_ERROR", f"search: {error}", {"field": "search"}
    if isinstance(error, AuthenticationError):
        return 401, error.code, str(error), {}
    if isinstance(error, PermissionDeniedError):
        details: dict[str, Any] = {"role": error.role, "permission": error.permission}
        return 403, "AUTH_INSUFFICIENT_PERMISSIONS", str(error), details
    if isinstance(error, AdminKeyNotConfiguredError):
        return 503, "ADMIN_KEY_NOT_CONFIGURED", str(error), {}
    if isinstance(error, CommandsDisabledError):
        return 403, "COMMANDS_DISABLED", str(error), {"setting": "TASKWARDEN_COMMANDS_ENABLED"}
    if isinstance(error, WorkspaceError):
        status, code = WORKSPACE_CODES[type(error)]
        return status, code, str(error), error.details
    if isinstance(error, NotFoundError):
        return 404, error.code, str(error), {"id": error.ref}
    if isinstance(error, DeletedError):
        return 404, "RESOURCE_NOT_FOUND", error.message, error.details
    if isinstance(error, RuleViolationError):
        return 422, error.code, error.message, error.details
    if isinstance(error, DomainError):
        return 409, error.code, error.message, error.details
    if isinstance(error, RaceLostError):
        details = {"attempts": error.attempts, "retried_seconds": error.seconds}
        return 409, "VERSION_CONFLICT", str(error), details
    if isinstance(error, VersionConflictError):
        details = {"expected": error.expected, "actual": error.actual}
        return 409, "VERSION_CONFLICT", str(error), details
    if isinstance(error, IntegrityError):
        return 409, "VERSION_CONFLICT", "a concurrent change won; try again", {}
    if isinstance(error, IdempotencyConflictError):
        return 409, "IDEMPOTENCY_KEY_REUSED", str(error), {}
    if isinstance(error, RateLimitedError):
        return 429, "RATE_LIMIT_EXCEEDED", str(error), error.details
    if isinstance(error, ReadModelBehindError):
        details = {"min_position": error.wanted, "position": error.reached}
        return 503, "READ_MODEL_BEHIND", "the read model has not reached min_position", details
    if isinstance(error, STORE_DOWN):
        return 503, "DATABASE_ERROR", "the event store is unreachable", {}
    if isinstance(error, HTTPException):
        code = HTTP_CODES.get(error.status_code, "ERROR")
        return error.status_code, code, str(error.detail), {}
    return 500, "INTERNAL_ERROR", "an unexpected error occurred", {}


async def handle(conn: HTTPConnection, error: Exception) -> Response:
    status, code, message, details = describe(error)
    if status >= 500 and status != 503:
        log.exception("request %s failed", getattr(conn.state, "request_id", "?"), exc_info=error)
    headers = dict(getattr(error, "headers", None) or {})
    if status == 401:
        headers.setdefault("WWW-Authenticate", 'Bearer realm="taskwarden"')
    if status == 503:
        headers.setdefault("Retry-After", "1")
    return failure(conn, status, code, message, details, headers)


EXPECTED = (
    BadRequestError,
    BadInputError,
    AuthenticationError,
    PermissionDeniedError,
    AdminKeyNotConfiguredError,
    CommandsDisabledError,
    msgspec.ValidationError,
    msgspec.DecodeError,
    SearchSyntaxError,
    NotFoundError,
    DomainError,
    VersionConflictError,
    IntegrityError,
    IdempotencyConflictError,
    WorkspaceError,
    ReadModelBehindError,
    RateLimitedError,
    *STORE_DOWN,
    HTTPException,
)


def handlers() -> dict[Any, Any]:
    """Starlette exception handlers: every exception type routes through ``handle``.

    Expected failures are answered by the exception middleware; anything else reaches the
    server-error handler, which still answers in the envelope (never a bare 500 with a trace).
    """

    async def on_error(request: Request, error: Exception) -> Response:
        return await handle(request, error)

    table: dict[Any, Any] = {kind: on_error for kind in EXPECTED}
    table[Exception] = on_error
    return table
