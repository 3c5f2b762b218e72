"""A real HTTP/1.1 receiver on 127.0.0.1 for webhook tests: records every request and the
connection it came over, answers from a script per path (a status and headers each), 204 when the
script is empty; HTTPS given a server TLS context (the server names it saw, SNI, one per TLS
handshake, in ``server_names``)."""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.monotonic)
    peer: tuple[str, int] = ("", 0)  # the connection it came over

    def header(self, name: str) -> str:
        return next(v for k, v in self.headers.items() if k.lower() == name.lower())


class Receiver:
    def __init__(self, server: ThreadingHTTPServer, scheme: str = "http") -> None:
        self._server = server
        self._scheme = scheme
        self._lock = threading.Condition()
        self.received: list[Received] = []
        self.scripts: dict[str, list[tuple[int, dict[str, str]]]] = {}
        self.server_names: list[str | None] = []
        self.default: tuple[int, dict[str, str]] = (204, {})  # when a path has no script
        self.pad = 0  # bytes of body in every answer

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def base(self) -> str:
        return f"{self._scheme}://{self._server.server_address[0]}:{self.port}"

    def url(self, path: str = "/hook") -> str:
        return self.base + path

    def answer(self, path: str, *answers: int | tuple[int, dict[str, str]]) -> None:
        """The next answers for ``path``, in order."""
        with self._lock:
            queue = self.scripts.setdefault(path, [])
            queue += [a if isinstance(a, tuple) else (a, {}) for a in answers]

    def on(self, path: str) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.path == path]

    def wait(self, path: str, count: int, timeout: float = 30.0) -> list[Received]:
        """The first ``count`` requests to ``path``; fails after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while len([r for r in self.received if r.path == path]) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    got = [r.path for r in self.received]
                    raise AssertionError(f"{path}: wanted {count} requests, got {got}")
                self._lock.wait(remaining)
            return [r for r in self.received if r.path == path][:count]

    def _record(self, received: Received) -> tuple[int, dict[str, str]]:
        with self._lock:
            self.received.append(received)
            self._lock.notify_all()
            queue = self.scripts.get(received.path)
            return queue.pop(0) if queue else self.default


def _handler(receiver_box: list[Receiver]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # connections are kept alive between requests

        def do_POST(self) -> None:  # http.server's name
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            peer = (str(self.client_address[0]), int(self.client_address[1]))
            received = Received(self.path, dict(self.headers.items()), body, peer=peer)
            status, headers = receiver_box[0]._record(received)
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            pad = receiver_box[0].pad
            self.send_header("Content-Length", str(pad))
            self.end_headers()
            if pad:
                try:
                    self.wfile.write(b"x" * pad)
                except OSError:
                    self.close_connection = True  # the client stopped reading

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def receiving(tls: ssl.SSLContext | None = None) -> Iterator[Receiver]:
    box: list[Receiver] = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(box))
    server.daemon_threads = True
    box.append(Receiver(server, "https" if tls else "http"))
    if tls is not None:

        def remember(sock: ssl.SSLObject, name: str | None, context: ssl.SSLContext) -> None:
            box[0].server_names.append(name)

        tls.sni_callback = remember  # type: ignore[assignment]
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield box[0]
    finally:
        server.shutdown()
        server.server_close()
