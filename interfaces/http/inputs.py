"""Reading a request: the body (size-capped, held to application/limits.py, msgspec-decoded),
headers and query parameters."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

import msgspec
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from application import limits
from application.idempotency import Idempotency, fingerprint
from domain.values import Actor
from interfaces.http.errors import BadRequestError, ReadModelBehindError
from interfaces.http.role import services_of

T = TypeVar("T")
R = TypeVar("R")
C = TypeVar("C", bound=str)

# a version, a position, a page: ASCII digits only (str.isdigit and int() take "²" and "٣"), and
# 18 of them at most, so that int() never meets its 4,300-digit limit and the value fits a bigint
NATURAL = re.compile(r"[0-9]{1,18}")
INTEGER = re.compile(r"-?[0-9]{1,18}")


def natural(text: str) -> int | None:
    """``text`` as a non-negative integer, or None if it is not one of at most 18 ASCII digits."""
    return int(text) if NATURAL.fullmatch(text) else None


def is_json(content_type: str) -> bool:
    """``application/json`` or ``application/*+json``, whatever the case; parameters ignored."""
    kind, _, subtype = content_type.partition(";")[0].strip().lower().partition("/")
    suffixed = subtype.endswith("+json") and len(subtype) > len("+json")
    return kind == "application" and (subtype == "json" or suffixed)


async def body(request: Request, kind: type[T], *, optional: bool = False) -> T:
    """Decodes the JSON body into ``kind``; an empty optional body decodes as ``{}``."""
    limit = request.app.state.settings.max_body_bytes
    declared = natural(request.headers.get("content-length", ""))
    if declared is not None and declared > limit:
        raise BadRequestError(f"body over {limit} bytes", 413, "PAYLOAD_TOO_LARGE", limit=limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BadRequestError(f"body over {limit} bytes", 413, "PAYLOAD_TOO_LARGE", limit=limit)
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        if optional:
            raw = b"{}"
        else:
            raise BadRequestError("a JSON body is required", 422, "VALIDATION_REQUIRED_FIELD")
    if not is_json(request.headers.get("content-type", "application/json")):
        raise BadRequestError(
            "send application/json", 415, "UNSUPPORTED_MEDIA_TYPE", field="Content-Type"
        )
    return limits.decode(raw, kind)


def actor(request: Request) -> Actor:
    return request.state.principal.actor(request.state.request_id)


def expected_version(request: Request) -> int | None:
    """``If-Match: 3`` or ``If-Match: "3"`` (the ETag we send)."""
    value = request.headers.get("if-match")
    if value is None:
        return None
    version = natural(value.strip().removeprefix("W/").strip('"'))
    if version is None:
        raise BadRequestError("If-Match must be a version number", field="If-Match")
    return version


def idempotency(request: Request, command: msgspec.Struct) -> Idempotency | None:
    key = request.headers.get("idempotency-key")
    if key is None:
        return None
    if not 1 <= len(key) <= 200:
        raise BadRequestError(
            "Idempotency-Key must be 1 to 200 characters", field="Idempotency-Key"
        )
    scope = f"{request.method} {request.url.path}"
    return Idempotency(key=key, fingerprint=fingerprint(scope, msgspec.to_builtins(command)))


async def call(function: Callable[..., R], *args: Any, **kwargs: Any) -> R:
    """The eventsourcing library is synchronous: run it off the event loop."""
    return await run_in_threadpool(function, *args, **kwargs)


class Query:
    """Typed access to query parameters; unknown parameters are refused."""

    def __init__(self, request: Request, allowed: set[str]) -> None:
        self.params = request.query_params
        unknown = set(self.params.keys()) - allowed - {"min_position"}
        if unknown:
            raise BadRequestError("unknown query parameters", parameters=sorted(unknown))

    def text(self, name: str, max_length: int = 500) -> str | None:
        value = self.params.get(name)
        if value is not None and len(value) > max_length:
            raise BadRequestError(f"{name} is too long", field=name)
        return value

    def integer(self, name: str, default: int | None, low: int, high: int) -> int | None:
        value = self.params.get(name)
        if value is None or value == "":
            return default
        if not INTEGER.fullmatch(value):
            raise BadRequestError(f"{name} must be an integer", field=name)
        number = int(value)
        if not low <= number <= high:
            raise BadRequestError(f"{name} must be between {low} and {high}", field=name)
        return number

    def words(self, name: str, allowed: frozenset[str] | None = None) -> list[str]:
        raw = self.params.get(name)
        if not raw:
            return []
        items = [w.strip() for w in raw.split(",") if w.strip()]
        if allowed is not None:
            wrong = [w for w in items if w not in allowed]
            if wrong:
                raise BadRequestError(f"{name} has unknown values", field=name, values=wrong)
        return items

    def choice(self, name: str, default: C, allowed: frozenset[C]) -> C:
        """The parameter, one of ``allowed`` (typed as narrowly as they are), or ``default``."""
        value = self.params.get(name) or default
        for choice in allowed:
            if choice == value:
                return choice
        raise BadRequestError(f"{name} must be one of {', '.join(sorted(allowed))}", field=name)

    def moment(self, name: str) -> datetime | None:
        value = self.params.get(name)
        if not value:
            return None
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise BadRequestError(f"{name} must be an RFC 3339 time", field=name) from None
        if parsed.tzinfo is None:
            raise BadRequestError(f"{name} needs a time zone (use Z)", field=name)
        return parsed

    def as_of(self, name: str = "as_of") -> int | datetime | None:
        """A position in the log (digits) or an RFC 3339 time: the moment a read is as of."""
        value = self.params.get(name)
        if not value:
            return None
        position = natural(value)
        if position is not None:
            if position < 1:
                raise BadRequestError(f"{name} must be a position from 1 or a time", field=name)
            return position
        return self.moment(name)

    def paging(self) -> tuple[int, int]:
        """``page``/``page_size``, or their aliases ``limit``/``offset`` (seeds 002 and 003)."""
        size = self.integer("page_size", None, 1, 100)
        limit = self.integer("limit", None, 1, 100)
        offset = self.integer("offset", None, 0, 10_000_000)
        page = self.integer("page", None, 1, 1_000_000)
        size = size or limit or 50
        if page is None:
            page = (offset // size) + 1 if offset else 1
        return page, size


PAGING = {"page", "page_size", "limit", "offset", "sort", "order"}


async def read_after(request: Request) -> None:
    """``?min_position=N``: wait (bounded) until the read model has applied position N."""
    raw = request.query_params.get("min_position")
    if raw is None:
        return
    wanted = natural(raw)
    if wanted is None:
        raise BadRequestError("min_position must be a non-negative integer", field="min_position")
    runner = services_of(request).runner
    timeout = request.app.state.settings.read_wait_seconds
    if not await call(runner.wait_for, wanted, timeout):
        raise ReadModelBehindError(wanted, runner.position)
