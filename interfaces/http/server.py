"""How uvicorn serves the app: the options ``taskwarden serve`` passes, shared with the tests
that run a live server.

uvicorn speaks WebSocket only through a library of its own choosing; ``websockets`` is a
dependency so that ``/ws/{session_id}`` is served, and the implementation is named rather than
left to ``auto`` (which answers a plain 404 to every upgrade when no library is importable): the
sans-I/O one, with the frame writer of interfaces/http/ws_protocol.py (a live event's frame built
once and written to every socket), named by import path as uvicorn's ``--ws`` takes it. A
client's frames are limited to the request body limit: the gateway's messages are small, and
uvicorn closes a socket sending more with 1009 instead of buffering up to its 16 MiB default.
``permessage-deflate`` is off unless ``TASKWARDEN_WS_COMPRESSION`` asks for it (uvicorn accepts it
by default, and every browser offers it): it compresses each socket's messages with a context of
its own, so a live event would be compressed once per socket instead of framed once for all.

HTTP/1.1 is parsed by httptools (llhttp, in C), named too: with ``auto`` uvicorn falls back to
h11, in Python, when httptools is not importable, and h11's parsing was the largest part of a
request's CPU after the app's own (bench/http_load.py, docs/performance.md).
"""

from __future__ import annotations

from typing import Any

from infrastructure.event_loop import LOOP_IMPLEMENTATION
from infrastructure.settings import Settings

WEBSOCKET_IMPLEMENTATION = "interfaces.http.ws_protocol:FramedWebSockets"
HTTP_IMPLEMENTATION = "httptools"


def server_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.run`` and ``uvicorn.Config`` beyond the app and address."""
    return {
        "http": HTTP_IMPLEMENTATION,
        "loop": LOOP_IMPLEMENTATION,  # uvloop where installed (infrastructure/event_loop.py)
        "ws": WEBSOCKET_IMPLEMENTATION,
        "ws_max_size": settings.max_body_bytes,
        "ws_per_message_deflate": settings.ws_compression,
        "proxy_headers": False,  # X-Forwarded-For is honoured by the app, from trusted proxies only
    }
