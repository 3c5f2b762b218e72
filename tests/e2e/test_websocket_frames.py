"""Live events through a real uvicorn server run as ``taskwarden serve`` runs it: the frame built
once for a live event is written straight to each uncompressed socket, and a socket that took
compression is sent the same messages through ASGI (interfaces/http/ws_protocol.py,
interfaces/ws/frames.py). Both stores."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import httpx
import pytest
from starlette.types import ASGIApp, Receive, Scope, Send
from websockets.sync.client import ClientConnection, connect

from infrastructure.settings import Settings
from interfaces.http.server import server_options
from interfaces.http.ws_protocol import FramedWebSockets
from interfaces.ws.frames import FRAMES, text_frame
from tests.e2e.conftest import ADMIN_KEY
from tests.e2e.test_remote_worker import live_server
from tests.e2e.test_websocket import (
    EVENT_TYPES,
    connected,
    subscribed,
    ws_settings,
)
from tests.e2e.test_websocket import serving as serving_in_process

WAIT = 30.0  # seconds any one message may take (CI machines are loaded)
MORE_TASKS = 50  # tasks created, one at a time, until one event went out as a ready frame


class Recording(FramedWebSockets):
    """The served protocol, keeping each frame it wrote straight to its transport."""

    written: dict[int, list[bytes]] = {}  # client port: the frames written to it directly

    def write_frame(self, frame: bytes) -> bool:
        done = super().write_frame(frame)
        if done and self.client is not None:
            Recording.written.setdefault(self.client[1], []).append(frame)
        return done


@contextmanager
def serving(settings: Settings) -> Iterator[str]:
    """The app as ``taskwarden serve`` serves it, with the protocol that records its frames."""
    with live_server(settings, **(server_options(settings) | {"ws": Recording})) as (base, _):
        yield base


class Socket:
    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.port = int(ws.local_address[1])
        self.compressed = False  # permessage-deflate negotiated
        self.events: dict[int, str] = {}  # position: the message's text as it came

    def message(self) -> dict[str, Any]:
        text = self.ws.recv(timeout=WAIT)
        assert isinstance(text, str)
        message = json.loads(text)
        if "position" in message and message["type"] != "subscribed":
            self.events[int(message["position"])] = text
        return dict(message)

    def until(self, position: int) -> None:
        while position not in self.events:
            self.message()


@contextmanager
def socket(base: str, token: str, project_id: str, compression: str | None) -> Iterator[Socket]:
    url = base.replace("http://", "ws://") + "/ws/frames"
    with connect(url, subprotocols=["bearer", token], compression=compression) as ws:  # type: ignore[list-item]
        live = Socket(ws)
        assert live.message()["type"] == "connected"
        ws.send(json.dumps({"type": "subscribe", "project_id": project_id, "id": "s"}))
        while live.message()["type"] != "subscribed":
            pass
        yield live


def signed_in(http: httpx.Client) -> str:
    minted = http.post(
        "/api/auth/token",
        json={"team_id": "default", "role": "admin"},
        headers={"X-Admin-Key": ADMIN_KEY},
    )
    token = str(minted.json()["data"]["access_token"])
    http.headers["authorization"] = f"Bearer {token}"
    return token


def two_sockets(settings: Settings, framed: set[str]) -> tuple[Socket, Socket, list[int]]:
    """A socket that offers no compression and one that offers permessage-deflate, on one
    project; tasks created one at a time until each socket named in ``framed`` ("plain",
    "deflate") was written a ready frame. Their sockets, closed, and the tasks' positions."""
    Recording.written = {}
    with serving(settings) as base, httpx.Client(base_url=base, timeout=WAIT) as http:
        token = signed_in(http)
        project = http.post("/api/projects/", json={"name": "frames"}).json()["data"]
        with ExitStack() as stack:
            plain = stack.enter_context(socket(base, token, project["id"], None))
            deflate = stack.enter_context(socket(base, token, project["id"], "deflate"))
            ports = {"plain": plain.port, "deflate": deflate.port}
            positions = []
            for i in range(MORE_TASKS):  # a feed takes events on the hub's turn once caught up
                body = {"title": f"frames {i}", "project_id": project["id"]}
                created = http.post("/api/tasks/", json=body)
                assert created.status_code == 201, created.text
                positions.append(int(created.json()["meta"]["position"]))
                plain.until(positions[-1])
                deflate.until(positions[-1])
                if all(Recording.written.get(ports[name]) for name in framed):
                    break
            deflate.compressed = bool(deflate.ws.protocol.extensions)
    return plain, deflate, positions


def test_live_events_go_out_as_ready_frames_to_every_socket_by_default(settings):
    plain, deflate, positions = two_sockets(settings, {"plain", "deflate"})
    assert not deflate.compressed  # declined: browsers offer it, the server does not take it
    for live in (plain, deflate):
        direct = Recording.written.get(live.port, [])
        assert direct, f"no event was written as a ready frame in {MORE_TASKS} tasks"
        # each frame written directly is, byte for byte, the frame of a message the client read
        assert set(direct) <= {text_frame(text) for text in live.events.values()}
        assert set(positions) <= set(live.events)
    assert plain.events == deflate.events


def test_with_compression_on_a_compressed_socket_is_sent_the_same_messages_through_asgi(
    settings,
):
    plain, deflate, positions = two_sockets(ws_settings(settings, ws_compression=True), {"plain"})
    assert deflate.compressed
    assert Recording.written.get(plain.port)
    assert deflate.port not in Recording.written  # compressed per socket: all through ASGI
    assert list(plain.events) == list(deflate.events)  # the same messages, in the same order
    assert [json.loads(t) for t in plain.events.values()] == [
        json.loads(t) for t in deflate.events.values()
    ]
    assert set(positions) <= set(plain.events)


@pytest.mark.parametrize("compression", [None, "deflate"])
def test_a_socket_closed_by_its_client_leaves_the_others_served(settings, compression):
    Recording.written = {}
    served = ws_settings(settings, ws_compression=compression is not None)
    with serving(served) as base, httpx.Client(base_url=base, timeout=WAIT) as http:
        token = signed_in(http)
        project = http.post("/api/projects/", json={"name": "frames"}).json()["data"]
        with socket(base, token, project["id"], compression) as staying:
            with socket(base, token, project["id"], None) as leaving:
                first = http.post("/api/tasks/", json={"title": "a", "project_id": project["id"]})
                position = int(first.json()["meta"]["position"])
                leaving.until(position)
            second = http.post("/api/tasks/", json={"title": "b", "project_id": project["id"]})
            later = int(second.json()["meta"]["position"])
            staying.until(later)
            assert position in staying.events and later in staying.events


# ---- order: a ready frame never overtakes a message still waiting --------------------------------


class Line:
    """One socket's wire as a server offering frames would fill it: every message, whether
    written as a ready frame or sent through ASGI, in the order it went out. Its ASGI sends wait
    while ``held`` (a client not reading), as uvicorn's wait for a paused transport."""

    def __init__(self) -> None:
        self.wire: list[dict[str, Any]] = []
        self.held = False
        self.released: asyncio.Event | None = None

    def write(self, frame: bytes) -> bool:
        self.wire.append(json.loads(_payload(frame)))
        return True

    async def send(self, message: dict[str, Any], send: Any) -> None:
        if message["type"] == "websocket.send":
            while self.held:
                self.released = self.released or asyncio.Event()
                await self.released.wait()
            self.wire.append(json.loads(message["text"]))
        await send(message)

    async def release(self) -> None:
        self.held = False
        if self.released is not None:
            self.released.set()


def _payload(frame: bytes) -> str:
    length = frame[1] & 0x7F
    return frame[2 if length < 126 else 4 if length == 126 else 10 :].decode()


class Wired:
    """An ASGI middleware giving each socket a ``Line``: the ``FRAMES`` extension writes to it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.lines: list[Line] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            await self.app(scope, receive, send)
            return
        line = Line()
        self.lines.append(line)
        extensions = dict(scope.get("extensions") or {}) | {FRAMES: {"write": line.write}}

        async def sent(message: Any) -> None:
            await line.send(message, send)

        await self.app({**scope, "extensions": extensions}, receive, sent)


def test_a_live_event_waits_behind_a_message_still_being_sent(settings):
    wires: list[Wired] = []

    def wrap(app: ASGIApp) -> Wired:
        wires.append(Wired(app))
        return wires[-1]

    with serving_in_process(ws_settings(settings), wrap) as api:
        project = api.project()
        with connected(api) as slow, connected(api) as other:
            subscribed(slow, channel="project_updates", project_id=project["id"])
            subscribed(other, channel="project_updates", project_id=project["id"])
            held, seen = wires[0].lines
            held.held = True
            slow.send(type="ping", id="waiting")  # its pong waits: the socket is busy
            positions = []
            for _ in range(3):
                api.task(project["id"])
                positions.append(api.position())
            deadline = time.monotonic() + WAIT  # the hub hands an event to both sockets at once
            while not {m.get("position") for m in seen.wire} >= set(positions):
                assert time.monotonic() < deadline, f"the other socket got no event: {seen.wire}"
                time.sleep(0.01)
            api.client.portal.call(held.release)
            assert slow.receive()["type"] == "pong"
            slow.events_until(positions[-1])
    kinds = [(m["type"], m.get("position")) for m in held.wire]
    pong = kinds.index(("pong", None))
    events = [position for kind, position in kinds[pong + 1 :] if kind in EVENT_TYPES]
    assert all(kind not in EVENT_TYPES for kind, _ in kinds[:pong]), kinds
    assert events == sorted(events) and set(positions) <= set(events), kinds
    assert any(m.get("position") in positions for m in seen.wire)
