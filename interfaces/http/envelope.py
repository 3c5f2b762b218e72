"""Seed 000's envelope: ``{"data", "error", "meta": {"timestamp", "request_id", "version"}}``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec
from starlette.requests import HTTPConnection
from starlette.responses import Response

_encoder = msgspec.json.Encoder()


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def meta(conn: HTTPConnection, position: int | None = None) -> dict[str, Any]:
    info: dict[str, Any] = {
        "timestamp": now(),
        "request_id": getattr(conn.state, "request_id", None),
        "version": conn.app.state.settings.version,
    }
    if position is not None:
        info["position"] = position
    return info


class JSON(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return _encoder.encode(content)


def ok(
    conn: HTTPConnection,
    data: Any,
    status: int = 200,
    position: int | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    return JSON({"data": data, "error": None, "meta": meta(conn, position)}, status, headers)


def failure(
    conn: HTTPConnection,
    status: int,
    code: str,
    message: str,
    details: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body = {
        "data": None,
        "error": {"code": code, "message": message, "details": details or {}},
        "meta": meta(conn),
    }
    return JSON(body, status, headers)
