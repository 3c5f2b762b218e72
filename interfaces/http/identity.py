"""Request context (a request id) and the caller's credentials."""

from __future__ import annotations

import uuid

from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from application.auth import API_KEY_PREFIX


def credential(request: HTTPConnection) -> str | None:
    """``Authorization: Bearer <JWT or tw_ key>``, or ``X-API-Key: tw_...`` (seed 003)."""
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        return value.strip() if scheme.lower() == "bearer" and value.strip() else None
    key = request.headers.get("x-api-key")
    if key and key.startswith(API_KEY_PREFIX):
        return key.strip()
    return None


class RequestContext:
    """Pure ASGI middleware: a request id, kept from ``X-Request-ID`` when sane."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        incoming = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if 0 < len(incoming) <= 100 and incoming.isprintable() else ""
        request_id = request_id or str(uuid.uuid4())
        scope.setdefault("state", {})["request_id"] = request_id
        if scope["type"] == "websocket":  # no response headers to add; each message sent as is
            await self.app(scope, receive, send)
            return

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers") or [])
                headers.append((b"x-request-id", request_id.encode("latin-1")))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_id)
