"""The WebSocket gateway: ``/ws/{session_id}`` (seed 000), described in docs/api.md.

Before accepting, a browser's ``Origin`` must be the server's own or an allowed one (else close
4403: no handshake for a page of another site). Then the client authenticates within
``ws_auth_seconds``: a bearer token offered as the subprotocols ``["bearer", "<token>"]`` (accepted
as ``bearer``), the ``Authorization`` or ``X-API-Key`` header of a client that can set one, or a
first message ``{"type": "auth", "token": ...}``; else close 4401. The socket
only reads the bus and the store, so a client of one API replica sees what another one wrote.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import NoReturn
from urllib.parse import urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from application.auth import authenticate
from application.errors import AuthenticationError
from application.principal import Principal
from application.store import narrow_to_project
from domain.values import Permission
from interfaces.http.identity import credential
from interfaces.http.role import role_of, services_of
from interfaces.ws.messages import Auth, MessageError, decode, error, reply, who
from interfaces.ws.session import Closing, Session, receive
from interfaces.ws.shared import Shared

log = logging.getLogger("taskwarden.ws")
SUBPROTOCOL = "bearer"


async def gateway(websocket: WebSocket) -> None:
    settings = websocket.app.state.settings
    if not origin_allowed(websocket, settings.ws_allowed_origins):
        await websocket.close(4403, "origin not allowed")
        return
    offered = bearer(websocket.scope.get("subprotocols") or [])
    subprotocol = SUBPROTOCOL if offered is not None else None
    await websocket.accept(subprotocol=subprotocol)
    offered = offered or credential(websocket)  # as over HTTP
    shared = role_of(websocket).sockets
    shared.connections += 1
    try:
        await _serve(websocket, offered, shared)
    except* WebSocketDisconnect:
        pass  # the client left
    except* Closing as closing:
        first = closing.exceptions[0]
        while isinstance(first, ExceptionGroup):  # nested: its first Closing
            first = first.exceptions[0]
        await _close(websocket, first)
    except* Exception as failures:
        log.error("websocket failed", exc_info=failures)
        await _close(websocket, Closing(1011, "internal error; resume with since"))
    finally:
        shared.connections -= 1


async def _serve(websocket: WebSocket, offered: str | None, shared: Shared) -> None:
    services = services_of(websocket)
    principal, credential = await _sign_in(websocket, offered)
    narrow_to_project(principal.project_id)  # every load of this socket, as for a request
    head = await run_in_threadpool(services.store.max_position)
    greeting = {
        "session_id": websocket.path_params.get("session_id"),
        **who(principal),
        "position": head,
    }
    limit = websocket.app.state.settings.ws_max_sockets_per_principal
    if limit and shared.sockets_of.get(principal.actor_id, 0) >= limit:
        text = f"at most {limit} sockets at once per user or key; close one first"
        await websocket.send_json(error("RATE_LIMIT_EXCEEDED", text))
        raise Closing(4429, "too many sockets for this user or key")
    session = Session(websocket, principal, credential, shared)
    with _counted(principal, shared):
        await session.serve(reply("connected", greeting))


@contextmanager
def _counted(principal: Principal, shared: Shared) -> Iterator[None]:
    """The sockets each user or key holds on this process (seed 000 allows 50)."""
    shared.sockets_of[principal.actor_id] = shared.sockets_of.get(principal.actor_id, 0) + 1
    try:
        yield
    finally:
        left = shared.sockets_of.get(principal.actor_id, 1) - 1
        if left > 0:
            shared.sockets_of[principal.actor_id] = left
        else:
            shared.sockets_of.pop(principal.actor_id, None)


async def _sign_in(websocket: WebSocket, offered: str | None) -> tuple[Principal, str]:
    services, settings = services_of(websocket), websocket.app.state.settings
    credential = offered
    if credential is None:
        try:
            async with asyncio.timeout(settings.ws_auth_seconds):
                credential = await _auth_message(websocket)
        except TimeoutError:
            limit = settings.ws_auth_seconds
            await _refuse(websocket, "AUTH_TOKEN_MISSING", f"authenticate within {limit:g} s")
    try:
        principal: Principal = await run_in_threadpool(
            authenticate, services.store, services.codec, credential
        )
    except AuthenticationError as failure:
        await _refuse(websocket, failure.code, str(failure))
    if not principal.allows(Permission.READ):
        raise Closing(4403, f"role {principal.role} may not read")
    return principal, credential or ""


async def _auth_message(websocket: WebSocket) -> str:
    raw = await receive(websocket)
    try:
        message = decode(raw, websocket.app.state.settings.max_body_bytes)
    except MessageError as failure:
        await _refuse(websocket, failure.code, failure.message)
    if not isinstance(message, Auth):
        await _refuse(websocket, "AUTH_TOKEN_MISSING", 'authenticate first: {"type": "auth"}')
    return message.token


async def _refuse(websocket: WebSocket, code: str, message: str) -> NoReturn:
    """Says why, then closes with 4401."""
    await websocket.send_json(error(code, message))
    raise Closing(4401, f"{code}: {message}")


async def _close(websocket: WebSocket, closing: Closing) -> None:
    if websocket.application_state is not WebSocketState.CONNECTED:
        return
    if websocket.client_state is not WebSocketState.CONNECTED:
        return
    try:
        await websocket.close(closing.code, closing.reason)
    except (WebSocketDisconnect, RuntimeError, OSError):
        pass  # the client is already gone


def origin_allowed(websocket: WebSocket, allowed: Sequence[str]) -> bool:
    """No ``Origin`` (not a browser), the server's own, or one of ``allowed`` (``*``: any)."""
    origin = websocket.headers.get("origin")
    if origin is None:
        return True
    origin = origin.strip().rstrip("/").lower()
    if "*" in allowed or origin in {a.lower() for a in allowed}:
        return True
    host = websocket.headers.get("host", "").lower()
    return bool(host) and urlsplit(origin).netloc == host


def bearer(subprotocols: Sequence[str]) -> str | None:
    """The token offered as ``Sec-WebSocket-Protocol: bearer, <token>``."""
    names = list(subprotocols)
    if SUBPROTOCOL not in names:
        return None
    at = names.index(SUBPROTOCOL)
    return names[at + 1] if at + 1 < len(names) else None


ROUTE = WebSocketRoute("/ws/{session_id}", gateway)
