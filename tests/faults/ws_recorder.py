"""A WebSocket client that records a project's events as docs/api.md's "Resume" tells a client to
behave: it subscribes to ``project_updates`` with ``since``, and whenever its socket ends (the
server closed it, the connection broke) it connects again and subscribes with ``since`` set to the
last position it received. Every event message is recorded in arrival order."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

from websockets.exceptions import InvalidHandshake, WebSocketException
from websockets.sync.client import ClientConnection, connect

RECONNECT_PAUSE = 0.5  # seconds before connecting again (a client's backoff)


class WsRecorder:
    def __init__(
        self, url: Callable[[], str], token: str, project_id: str, since: int, name: str = "fault"
    ) -> None:
        self._url = url
        self._token = token
        self._project_id = project_id
        self.since = since  # the last position received (the next subscription's since)
        self._name = name
        self.positions: list[int] = []  # every event message's position, as it came
        self.sockets = 0  # connections made
        self.ends: list[str] = []  # why each socket ended
        self.resyncs: list[dict[str, Any]] = []  # resync_required answers (events beyond reach)
        self._stop = threading.Event()
        self._socket: ClientConnection | None = None
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="ws-recorder", daemon=True)

    def start(self) -> WsRecorder:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def drop(self) -> None:
        """Closes the socket from this side, as a client losing its network would see it end:
        the recorder connects again and resumes from the last position it received."""
        socket = self._socket
        if socket is not None:
            socket.close()

    def wait(self, check: Callable[[list[int]], bool], what: str, timeout: float = 120.0) -> None:
        """Returns once ``check(positions)`` holds; fails after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not check(self.positions):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"WebSocket: timed out waiting for {what}; {len(self.positions)} events, "
                        f"{self.sockets} sockets, ended: {self.ends[-5:]}, resyncs: {self.resyncs}"
                    )
                self._changed.wait(min(remaining, 1.0))

    def _run(self) -> None:
        while not self._stop.is_set():
            address = self._url().replace("http://", "ws://") + f"/ws/{self._name}"
            try:
                with connect(
                    address, subprotocols=["bearer", self._token], open_timeout=10, close_timeout=2
                ) as ws:  # type: ignore[list-item]
                    self.sockets += 1
                    self._socket = ws
                    self._follow(ws)
            except (OSError, TimeoutError, InvalidHandshake, WebSocketException) as ended:
                self.ends.append(f"{type(ended).__name__}: {ended}")
            self._stop.wait(RECONNECT_PAUSE)

    def _follow(self, ws: ClientConnection) -> None:
        greeting = json.loads(ws.recv(timeout=30))
        assert greeting["type"] == "connected", greeting
        subscribe = {"type": "subscribe", "channel": "project_updates", "id": "s"}
        ws.send(json.dumps(subscribe | {"project_id": self._project_id, "since": self.since}))
        while not self._stop.is_set():
            try:
                message = json.loads(ws.recv(timeout=0.5))
            except TimeoutError:
                continue
            if message["type"] == "resync_required":
                self.resyncs.append(message["data"])
                return
            if "position" in message:
                with self._changed:
                    self.positions.append(int(message["position"]))
                    self.since = max(self.since, int(message["position"]))
                    self._changed.notify_all()
