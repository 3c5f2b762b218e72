"""A live event's WebSocket frame, built once and written to every socket that takes it.

Served by ``taskwarden serve`` (``interfaces.http.ws_protocol``), a socket's scope carries the
extension ``FRAMES``: a ``write`` that puts a ready frame on the socket's transport, or refuses
(returns False) when the socket is not open, took compression, or is paused; the caller then
sends through ASGI. Under any other server (the test client, another ASGI server) there is no
extension and every message goes through ASGI.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from websockets.frames import Frame, Opcode

FRAMES = "taskwarden.websocket.frames"

FrameWriter = Callable[[bytes], bool]


def frame_writer(scope: Mapping[str, Any]) -> FrameWriter | None:
    """The server's frame writer for this socket, or None if the server offers none."""
    extension = (scope.get("extensions") or {}).get(FRAMES)
    return None if extension is None else extension["write"]


def text_frame(text: str) -> bytes:
    """The server's frame of one whole text message: unmasked, uncompressed."""
    return Frame(Opcode.TEXT, text.encode()).serialize(mask=False)


class Outgoing:
    """A message for many sockets: its text, and its frame once a socket asks for it."""

    __slots__ = ("_frame", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self._frame: bytes | None = None

    @property
    def frame(self) -> bytes:
        frame = self._frame
        if frame is None:
            frame = self._frame = text_frame(self.text)
        return frame
