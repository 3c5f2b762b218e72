"""The webhook receiver of the fan-out benchmark: a minimal asyncio HTTP/1.1 server in a child
process that records each delivery (when, which hook, which position), and its client side."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import msgspec

from bench.common import (
    ROOT,
    free_port,
    wait_until_healthy,
)

# ---- part 2: webhook deliveries ---------------------------------------------------------------


class _Hook(msgspec.Struct):
    position: int | None = None
    webhook_id: str = ""


_hook = msgspec.json.Decoder(_Hook).decode


class Receiver:
    """A minimal HTTP/1.1 server (run in a child process): ``POST /hook/<i>`` answers 200 and
    records when, which hook and which position; with holding on, each hook's first request is
    answered 503 ``Retry-After: 3600`` instead (and its ``webhook-id`` kept). ``POST /reset``
    (``?hold=1``) forgets everything; ``GET /stats`` tells all."""

    def __init__(self) -> None:
        self.records: list[tuple[float, int, int | None]] = []
        self.held: dict[int, str] = {}
        self.hold = False
        self.sample = b""
        self.connections = 0

    async def serve(self, port: int) -> None:
        server = await asyncio.start_server(self.connection, "127.0.0.1", port, backlog=1024)
        async with server:
            await server.serve_forever()

    async def connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                lines = head.split(b"\r\n")
                method, target = lines[0].split(b" ")[:2]
                headers = {}
                for line in lines[1:]:
                    name, _, value = line.partition(b":")
                    headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get(b"content-length", b"0")))
                status, answer, extra = self.handle(method, target.decode(), headers, body)
                writer.write(
                    f"HTTP/1.1 {status} X\r\ncontent-type: application/json\r\n{extra}"
                    f"content-length: {len(answer)}\r\n\r\n".encode()
                    + answer
                )
                if headers.get(b"connection", b"").lower() == b"close":
                    break
        finally:
            writer.close()

    def handle(
        self, method: bytes, target: str, headers: dict[bytes, bytes], body: bytes
    ) -> tuple[int, bytes, str]:
        path, _, query = target.partition("?")
        if path.startswith("/hook/"):
            hook = int(path.removeprefix("/hook/"))
            if self.hold and hook not in self.held:
                self.held[hook] = headers.get(b"webhook-id", b"").decode()
                return 503, b"", "retry-after: 3600\r\n"
            try:
                position = _hook(body).position
            except msgspec.DecodeError:
                position = None
            self.records.append((time.monotonic(), hook, position))
            if not self.sample:
                self.sample = body
            return 200, b"", ""
        if path == "/reset":
            self.records, self.held, self.hold = [], {}, "hold=1" in query
            self.sample = b""
            return 200, b"{}", ""
        if path == "/stats":
            stats = {
                "records": self.records,
                "held": self.held,
                "sample": self.sample.decode(),
                "connections": self.connections,
            }
            return 200, msgspec.json.encode(stats), ""
        return 200, b'{"status":"ok"}', ""


@contextmanager
def receiver_process() -> Iterator[str]:
    port = free_port()
    argv = [sys.executable, "-m", "bench.hook_receiver", str(port)]
    process = subprocess.Popen(argv, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(url, process=process)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=15)


class Stats(msgspec.Struct):
    records: list[tuple[float, int, int | None]]
    held: dict[int, str]
    sample: str
    connections: int


def stats(receiver: str) -> Stats:
    response = httpx.get(f"{receiver}/stats", timeout=30)
    return msgspec.json.decode(response.content, type=Stats)


def reset(receiver: str, hold: bool = False) -> None:
    httpx.post(f"{receiver}/reset{'?hold=1' if hold else ''}", timeout=30).raise_for_status()


def wait_received(receiver: str, expected: int, timeout: float) -> Stats:
    deadline = time.monotonic() + timeout
    while True:
        got = stats(receiver)
        if len(got.records) >= expected or time.monotonic() > deadline:
            return got
        time.sleep(0.25)


if __name__ == "__main__":
    asyncio.run(Receiver().serve(int(sys.argv[1])))
