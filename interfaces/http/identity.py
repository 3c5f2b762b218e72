"""Who is calling. Until tokens and API keys arrive, every caller is the default team's operator.

Every handler already takes the caller's team from here, so scoping is in place everywhere.
"""

from __future__ import annotations

import uuid

import msgspec
from starlette.types import ASGIApp, Receive, Scope, Send


class Principal(msgspec.Struct, frozen=True):
    actor_id: str
    team_id: str
    role: str


DEFAULT = Principal(actor_id="anonymous", team_id="default", role="admin")


class RequestContext:
    """Pure ASGI middleware: a request id (kept from ``X-Request-ID`` when sane) and the caller."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        incoming = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if 0 < len(incoming) <= 100 and incoming.isprintable() else ""
        request_id = request_id or str(uuid.uuid4())
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        state["principal"] = DEFAULT

        async def send_with_id(message: dict) -> None:  # type: ignore[type-arg]
            if message["type"] == "http.response.start":
                headers = list(message.get("headers") or [])
                headers.append((b"x-request-id", request_id.encode("latin-1")))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_id)
