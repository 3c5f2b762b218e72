"""uvicorn's sans-I/O WebSocket protocol, offering the app one more thing: writing a frame built
once to many sockets.

A live event goes to every socket subscribed to it, with the same text. Through the ASGI send,
each socket's copy is encoded, framed and serialized again, behind three coroutines (Starlette's
wrapper, uvicorn's send, the caller's). A server's frame is never masked (RFC 6455, 5.1), so
while a socket is open, uncompressed and not paused, the frame of a text is the same bytes for
every socket: the app builds it once (``interfaces.ws.frames``) and writes it to each socket's
transport through the scope extension ``FRAMES``. Whenever the socket is in any other state the
write is refused and the app sends through ASGI as before, which waits, compresses or refuses as
uvicorn decides.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.protocol import OPEN

from interfaces.ws.frames import FRAMES


class FramedWebSockets(WebSocketsSansIOProtocol):
    """``websockets-sansio`` with the ``FRAMES`` scope extension (``{"write": write_frame}``)."""

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        scope: Any = getattr(self, "scope", None)  # absent when the upgrade was refused
        if scope is None or not self._knows_its_state():
            return  # the app sends through ASGI
        extensions = scope.get("extensions")
        if extensions is None:
            extensions = scope["extensions"] = {}
        extensions[FRAMES] = {"write": self.write_frame}  # the app's task has not run yet

    def _knows_its_state(self) -> bool:
        """Whether uvicorn keeps the state ``write_frame`` reads (its attributes, not an API):
        another uvicorn release may not, and its sockets are then served through ASGI only."""
        return isinstance(getattr(self, "writable", None), asyncio.Event) and all(
            hasattr(self, name)
            for name in ("conn", "close_sent", "disconnected", "initial_response")
        )

    def write_frame(self, frame: bytes) -> bool:
        """Writes a whole, unmasked, uncompressed frame now; False (nothing written) unless the
        socket is open for the app's messages, took no compression, and its transport is not
        paused (a client not reading): then the caller sends through ASGI instead."""
        conn = self.conn
        if (
            conn.state is not OPEN
            or conn.extensions
            or self.close_sent
            or self.disconnected
            or self.initial_response is not None
            or not self.writable.is_set()
            or self.transport.is_closing()
        ):
            return False
        self.transport.write(frame)
        return True
