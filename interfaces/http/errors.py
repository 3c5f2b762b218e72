"""The one table from what the application answers to HTTP: each kind of result a command
handler returns (``application/results.py``) and each kind of error anything raises, to a status,
and for an error one of seed 000's codes.

Handlers know nothing of HTTP; routes answer a handler's result with ``written`` and let errors
propagate to ``handle``. A type not in the table is looked up by its bases (``DeletedError`` before
``DomainError``); an error found nowhere is a bug: 500, logged, in the envelope.
"""

from __future__ import annotations

import logging
import math
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec
import psycopg
import psycopg_pool
from eventsourcing.persistence import IntegrityError, OperationalError
from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response

from application.board import BoardTooLargeError
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
from application.programs.runs import ProgramsDisabledError
from application.results import (
    Batch,
    Cancellation,
    Changed,
    Created,
    Deleted,
    Requested,
    Result,
    Submitted,
)
from domain.errors import DeletedError, DomainError, RuleViolationError
from infrastructure.artifacts import (
    WorkspaceFileNotFoundError,
    WorkspaceFileTooLargeError,
    WorkspaceNotFoundError,
    WorkspacePathError,
    WorkspaceTooLargeError,
)
from interfaces.http.envelope import failure, ok
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

Status = int | Callable[[Any], int]


def _data(result: Any) -> Any:
    return result.data


def _own_code(error: Any) -> str:
    return str(error.code)


def _own_details(error: Any) -> dict[str, Any]:
    return dict(error.details)


def _none(error: Any) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class Answer:
    """How a kind of result is answered: its status and its body (the result's ``data``)."""

    status: Status
    body: Callable[[Any], Any] = _data


@dataclass(frozen=True)
class Refusal:
    """How a kind of error is answered: its status, its code, its message (the error's text)
    and its details."""

    status: Status
    code: str | Callable[[Any], str] = _own_code
    message: str | Callable[[Any], str] = str
    details: Callable[[Any], dict[str, Any]] = _none


def _cancellation(result: Cancellation) -> dict[str, Any]:
    task = result.task
    return {
        "task_id": task["id"],
        "status": task["status"],
        "cancel_requested": not result.now,
        "cancelled_at": task["completed_at"] if result.now else None,
        "reason": result.reason,
    }


def _batch(result: Batch) -> dict[str, Any]:
    """Each refused item with the status and code it would have answered alone."""
    errors = []
    for item in result.refused:
        status, code, message, _ = describe(item.error)
        errors.append({"task_id": item.ref, "code": code, "message": message, "status": status})
    return {
        **result.data,
        "affected_count": len(result.done),
        "successful": result.done,
        "failed": [item.ref for item in result.refused],
        "errors": errors,
    }


def _validation(error: msgspec.ValidationError) -> dict[str, Any]:
    message = str(error)
    path = message.rpartition(" - at `")[2].rstrip("`") if " - at `" in message else None
    return {"field": path, "issue": message}


STORE_DOWN_ANSWER = Refusal(503, "DATABASE_ERROR", "the event store is unreachable")

TABLE: dict[type, Answer | Refusal] = {
    # ---- what command handlers return --------------------------------------------------------
    Created: Answer(201),
    Changed: Answer(200),
    Requested: Answer(202),  # happens later (Queued: the execution waits in the queue)
    Submitted: Answer(202, lambda r: {**r.data, "message": "Task queued successfully"}),
    Deleted: Answer(
        200, lambda r: {"message": f"{r.kind.capitalize()} deleted successfully", **r.data}
    ),
    Cancellation: Answer(lambda r: 200 if r.now else 202, _cancellation),  # 202: asked to stop
    Batch: Answer(200, _batch),
    # ---- the request itself ------------------------------------------------------------------
    BadRequestError: Refusal(lambda e: e.status, details=_own_details),
    BadInputError: Refusal(422, details=_own_details),
    msgspec.ValidationError: Refusal(422, "VALIDATION_ERROR", details=_validation),
    msgspec.DecodeError: Refusal(
        422, "VALIDATION_INVALID_FORMAT", lambda e: f"malformed JSON: {e}"
    ),
    SearchSyntaxError: Refusal(
        422, "VALIDATION_ERROR", lambda e: f"search: {e}", lambda e: {"field": "search"}
    ),
    RateLimitedError: Refusal(429, "RATE_LIMIT_EXCEEDED", details=lambda e: e.details),
    HTTPException: Refusal(
        lambda e: e.status_code,
        lambda e: HTTP_CODES.get(e.status_code, "ERROR"),
        lambda e: str(e.detail),
    ),
    # ---- who asks ----------------------------------------------------------------------------
    AuthenticationError: Refusal(401),
    PermissionDeniedError: Refusal(
        403,
        "AUTH_INSUFFICIENT_PERMISSIONS",
        details=lambda e: {"role": e.role, "permission": e.permission},
    ),
    AdminKeyNotConfiguredError: Refusal(503, "ADMIN_KEY_NOT_CONFIGURED"),
    BoardTooLargeError: Refusal(
        422, "VALIDATION_ERROR", details=lambda e: {"field": "as_of", "max_tasks": e.limit}
    ),
    ProgramsDisabledError: Refusal(
        403, "COMMANDS_DISABLED", details=lambda e: {"setting": "TASKWARDEN_COMMANDS_ENABLED"}
    ),
    # ---- what the command met ----------------------------------------------------------------
    NotFoundError: Refusal(404, details=lambda e: {"id": e.ref}),
    DeletedError: Refusal(404, "RESOURCE_NOT_FOUND", details=_own_details),
    RuleViolationError: Refusal(422, details=_own_details),
    DomainError: Refusal(409, details=_own_details),
    RaceLostError: Refusal(
        409,
        "VERSION_CONFLICT",
        details=lambda e: {"attempts": e.attempts, "retried_seconds": e.seconds},
    ),
    VersionConflictError: Refusal(
        409, "VERSION_CONFLICT", details=lambda e: {"expected": e.expected, "actual": e.actual}
    ),
    IntegrityError: Refusal(409, "VERSION_CONFLICT", "a concurrent change won; try again"),
    IdempotencyConflictError: Refusal(409, "IDEMPOTENCY_KEY_REUSED"),
    # a task's workspace (routes_artifacts.py); too large is 422, not 413: 413 speaks of the
    # request's own body
    WorkspaceNotFoundError: Refusal(404, "WORKSPACE_NOT_FOUND", details=_own_details),
    WorkspaceFileNotFoundError: Refusal(404, "WORKSPACE_FILE_NOT_FOUND", details=_own_details),
    WorkspacePathError: Refusal(422, "WORKSPACE_PATH_INVALID", details=_own_details),
    WorkspaceTooLargeError: Refusal(422, "WORKSPACE_TOO_LARGE", details=_own_details),
    WorkspaceFileTooLargeError: Refusal(422, "WORKSPACE_FILE_TOO_LARGE", details=_own_details),
    # ---- dependencies ------------------------------------------------------------------------
    ReadModelBehindError: Refusal(
        503,
        "READ_MODEL_BEHIND",
        "the read model has not reached min_position",
        lambda e: {"min_position": e.wanted, "position": e.reached},
    ),
    **dict.fromkeys(STORE_DOWN, STORE_DOWN_ANSWER),
}
UNEXPECTED = Refusal(500, "INTERNAL_ERROR", "an unexpected error occurred")


def _row(kind: type) -> Answer | Refusal | None:
    """The row of ``kind`` or of its nearest base in the table."""
    for base in kind.__mro__:
        row = TABLE.get(base)
        if row is not None:
            return row
    return None


def _apply(value: Any, field: Any) -> Any:
    return field(value) if callable(field) else field


def describe(error: BaseException) -> tuple[int, str, str, dict[str, Any]]:
    """(status, code, message, details) for any failure; used by routes and by batch items."""
    row = _row(type(error))
    refusal = row if isinstance(row, Refusal) else UNEXPECTED
    return (
        _apply(error, refusal.status),
        _apply(error, refusal.code),
        _apply(error, refusal.message),
        refusal.details(error),
    )


def answer(result: Result) -> tuple[int, Any]:
    """(status, body) for a handler's result."""
    row = _row(type(result))
    if not isinstance(row, Answer):
        raise TypeError(f"no answer for {type(result).__name__}")
    return _apply(result, row.status), row.body(result)


def written(conn: HTTPConnection, result: Result) -> Response:
    """A write's answer: its status and body from the table, the position it reached (also as
    ``X-Position``), the version as ``ETag`` when the body shows one."""
    status, body = answer(result)
    headers = {"X-Position": str(result.position)}
    if isinstance(body, dict) and "version" in body:
        headers["ETag"] = f'"{body["version"]}"'
    if result.replayed:
        headers["Idempotent-Replayed"] = "true"
    return ok(conn, body, status, result.position, headers)


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


# every error the table answers: Starlette hands each to ``handle``
EXPECTED: tuple[type[Exception], ...] = tuple(
    kind for kind, row in TABLE.items() if isinstance(row, Refusal) and issubclass(kind, Exception)
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
