"""The frame writer ``taskwarden serve``'s WebSocket protocol offers the app
(interfaces/http/ws_protocol.py): a ready frame goes to the transport only while the socket is
open, uncompressed and not paused, and the frame built once is the bytes uvicorn's own send
writes for the same text.

The protocol is driven as uvicorn drives it (``connection_made``, ``data_received`` with a real
handshake) over an in-memory transport that keeps what is written."""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from uvicorn.config import Config
from uvicorn.server import ServerState
from websockets.frames import Close, Frame, Opcode

from infrastructure.settings import Settings
from interfaces.http.server import WEBSOCKET_IMPLEMENTATION, server_options
from interfaces.http.ws_protocol import FramedWebSockets
from interfaces.ws.frames import FRAMES, Outgoing, frame_writer, text_frame

DEFLATE = "permessage-deflate; client_max_window_bits"


class Transport(asyncio.Transport):
    """What the protocol writes, kept; paused and closed as the test says."""

    def __init__(self) -> None:
        super().__init__()
        self.written: list[bytes] = []
        self.closing = False

    def write(self, data: Any) -> None:
        self.written.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        addresses = {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 50000)}
        return addresses.get(name, default)


class App:
    """Accepts the socket (or refuses it), keeps its scope and its ASGI send, then waits."""

    def __init__(self, accept: bool = True) -> None:
        self.accept = accept
        self.scope: dict[str, Any] | None = None
        self.send: Callable[[dict[str, Any]], Awaitable[None]] | None = None
        self.ready = asyncio.Event()
        self.done = asyncio.Event()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.scope, self.send = scope, send
        await receive()  # websocket.connect
        if self.accept:
            await send({"type": "websocket.accept"})
        else:
            await send({"type": "websocket.close"})
        self.ready.set()
        await self.done.wait()


def handshake(extensions: str | None = None) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [
        "GET /ws/s HTTP/1.1",
        "Host: 127.0.0.1:8000",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
    ]
    if extensions:
        lines.append(f"Sec-WebSocket-Extensions: {extensions}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def client_frame(frame: Frame) -> bytes:
    return frame.serialize(mask=True)


async def opened(
    app: App,
    extensions: str | None = None,
    protocol_class: type[FramedWebSockets] = FramedWebSockets,
) -> tuple[FramedWebSockets, Transport]:
    config = Config(app, ws=protocol_class, log_level="warning", ws_ping_interval=None)
    config.load()
    protocol = protocol_class(config, ServerState(), {}, _loop=asyncio.get_running_loop())
    transport = Transport()
    protocol.connection_made(transport)
    protocol.data_received(handshake(extensions))
    async with asyncio.timeout(10):
        await app.ready.wait()
    return protocol, transport


def run(scenario: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(asyncio.wait_for(scenario(), 30))


FRAME = text_frame('{"type":"task_update","position":7}')


def test_serve_names_this_protocol_and_declines_compression_unless_asked():
    assert WEBSOCKET_IMPLEMENTATION == "interfaces.http.ws_protocol:FramedWebSockets"
    assert server_options(Settings())["ws"] == WEBSOCKET_IMPLEMENTATION
    assert server_options(Settings.from_env({}))["ws_per_message_deflate"] is False
    asked = Settings.from_env({"TASKWARDEN_WS_COMPRESSION": "1"})
    assert asked.ws_compression is True and server_options(asked)["ws_per_message_deflate"]


def test_an_open_socket_offers_the_writer_and_takes_a_frame_as_it_is():
    async def scenario() -> None:
        app = App()
        protocol, transport = await opened(app)
        assert app.scope is not None
        write = frame_writer(app.scope)
        assert write is not None and app.scope["extensions"][FRAMES]["write"] == write
        assert write(FRAME) is True
        assert transport.written[-1] == FRAME
        app.done.set()

    run(scenario)


def test_no_writer_when_the_server_offers_none():
    offered = {"type": "websocket", "extensions": {"websocket.http.response": {}}}
    assert frame_writer(offered) is None
    assert frame_writer({"type": "websocket", "extensions": None}) is None
    assert frame_writer({"type": "websocket"}) is None


def test_a_paused_transport_refuses_until_it_resumes():
    async def scenario() -> None:
        app = App()
        protocol, transport = await opened(app)
        before = len(transport.written)
        protocol.pause_writing()  # the client stopped reading: the ASGI send waits instead
        assert protocol.write_frame(FRAME) is False
        assert len(transport.written) == before
        protocol.resume_writing()
        assert protocol.write_frame(FRAME) is True
        assert transport.written[-1] == FRAME
        app.done.set()

    run(scenario)


def test_a_socket_that_took_compression_refuses():
    async def scenario() -> None:
        app = App()
        protocol, transport = await opened(app, extensions=DEFLATE)
        assert protocol.conn.extensions  # negotiated: each socket compresses on its own
        before = len(transport.written)
        assert protocol.write_frame(FRAME) is False
        assert len(transport.written) == before
        assert app.send is not None  # the ASGI send still serves it, compressed
        await app.send({"type": "websocket.send", "text": "x" * 200})
        assert len(transport.written) == before + 1
        assert transport.written[-1] != text_frame("x" * 200)  # compressed
        app.done.set()

    run(scenario)


async def _app_closes(app: App, protocol: FramedWebSockets) -> None:
    assert app.send is not None
    await app.send({"type": "websocket.close", "code": 1000})


async def _client_closes(app: App, protocol: FramedWebSockets) -> None:
    protocol.data_received(client_frame(Frame(Opcode.CLOSE, Close(1000, "bye").serialize())))


async def _connection_lost(app: App, protocol: FramedWebSockets) -> None:
    protocol.connection_lost(None)


@pytest.mark.parametrize("ending", [_app_closes, _client_closes, _connection_lost])
def test_once_the_socket_is_closing_it_refuses(ending: Any):
    async def scenario() -> None:
        app = App()
        protocol, transport = await opened(app)
        await ending(app, protocol)
        before = len(transport.written)
        assert protocol.write_frame(FRAME) is False
        assert len(transport.written) == before
        app.done.set()

    run(scenario)


def test_a_refused_upgrade_offers_no_writer():
    async def scenario() -> None:
        app = App(accept=False)
        protocol, transport = await opened(app)
        assert app.scope is not None  # the app saw the upgrade and refused it (403)
        assert protocol.write_frame(FRAME) is False
        assert transport.written[-1].startswith(b"HTTP/1.1 403")
        app.done.set()

    run(scenario)


@pytest.mark.parametrize("size", [0, 125, 126, 65535, 65536, 200_000])
def test_the_frame_built_once_is_what_the_asgi_send_writes(size):
    text = "é" * (size // 2) + "x" * (size % 2)
    assert _written_by_asgi(text) == text_frame(text) == Outgoing(text).frame


@hypothesis_settings(max_examples=50, deadline=None)
@given(st.text(max_size=300))
def test_any_text_frames_as_the_asgi_send_frames_it(text):
    assert _written_by_asgi(text) == text_frame(text)


def _written_by_asgi(text: str) -> bytes:
    async def scenario() -> bytes:
        app = App()
        protocol, transport = await opened(app)
        assert app.send is not None
        await app.send({"type": "websocket.send", "text": text})
        app.done.set()
        return transport.written[-1]

    return run(scenario)  # type: ignore[no-any-return]


def test_an_outgoing_message_frames_its_text_once():
    message = Outgoing("hello")
    first = message.frame
    assert first == text_frame("hello")
    assert message.frame is first


def test_a_uvicorn_without_the_state_it_reads_offers_no_writer():
    bare = object.__new__(FramedWebSockets)  # none of uvicorn's connection state
    assert bare._knows_its_state() is False

    async def scenario() -> None:
        app = App()
        protocol, _ = await opened(app)
        assert protocol._knows_its_state() is True
        del protocol.close_sent  # as if a release renamed it
        assert protocol._knows_its_state() is False
        protocol.close_sent = False
        app.done.set()

    run(scenario)


class Unknowing(FramedWebSockets):
    def _knows_its_state(self) -> bool:
        return False


def test_without_the_state_the_socket_is_served_through_asgi_only():
    async def scenario() -> None:
        app = App()
        protocol, transport = await opened(app, protocol_class=Unknowing)
        assert app.scope is not None and frame_writer(app.scope) is None
        assert app.send is not None
        await app.send({"type": "websocket.send", "text": "hello"})
        assert transport.written[-1] == text_frame("hello")
        app.done.set()

    run(scenario)
