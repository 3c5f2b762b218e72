"""Light clients for the fan-out benchmark: one keep-alive HTTP/1.1 connection, and a minimal
RFC 6455 WebSocket client on ``asyncio.Protocol`` that timestamps each message as it arrives."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import secrets
import time
from collections import Counter, defaultdict
from typing import Any, cast
from uuid import uuid4

import msgspec

from bench.common import KeepAliveConnection

WAIT_EVENT = 15.0  # seconds for one event to reach every socket before it counts as missing


# ---- a light HTTP client ----------------------------------------------------------------------


class Http(KeepAliveConnection):
    """``bench.common``'s keep-alive connection that opens a new one when the server may have
    closed it for idleness."""

    IDLE = 3.0  # seconds; uvicorn closes a keep-alive connection idle for 5

    def __init__(
        self, base_url: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        super().__init__(reader, writer)
        self.base_url = base_url
        self.used = time.monotonic()

    @classmethod
    async def open(cls, base_url: str) -> Http:
        host, port = base_url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        return cls(base_url, reader, writer)

    async def request(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> tuple[int, bytes]:
        if time.monotonic() - self.used > self.IDLE:  # the server may have closed it: a new one
            await self.close()
            fresh = await Http.open(self.base_url)
            self.reader, self.writer = fresh.reader, fresh.writer
        self.used = time.monotonic()
        return await super().request(method, path, body, headers)

    async def close(self) -> None:
        with contextlib.suppress(OSError):
            await super().close()


class _Answer(msgspec.Struct):
    meta: dict[str, Any] = {}


_answer = msgspec.json.Decoder(_Answer).decode


# ---- a light WebSocket client -----------------------------------------------------------------


class _Incoming(msgspec.Struct):
    type: str = ""
    position: int | None = None


_incoming = msgspec.json.Decoder(_Incoming).decode


class Arrivals:
    """When each socket received each position (this process's ``perf_counter``)."""

    def __init__(self, sockets: int) -> None:
        self.sockets = sockets
        self.times: dict[int, list[float]] = defaultdict(list)
        self.sizes: list[int] = []
        self.closes: Counter[str] = Counter()  # sockets the server closed, by code and reason
        self._waiting: dict[int, asyncio.Future[None]] = {}

    def record(self, position: int, at: float, size: int) -> None:
        got = self.times[position]
        got.append(at)
        if len(self.sizes) < 50:
            self.sizes.append(size)
        if len(got) >= self.sockets:
            waiter = self._waiting.pop(position, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(None)

    async def complete(self, position: int, timeout: float) -> bool:
        if len(self.times[position]) >= self.sockets:
            return True
        waiter = asyncio.get_running_loop().create_future()
        self._waiting[position] = waiter
        try:
            async with asyncio.timeout(timeout):
                await waiter
        except TimeoutError:
            return False
        finally:
            self._waiting.pop(position, None)
        return True


class WsClient(asyncio.Protocol):
    """A minimal RFC 6455 client: handshake, masked text frames out, unmasked frames in, pongs
    for pings. Timestamps a message when its bytes are handed to the protocol."""

    def __init__(self, path: str, token: str | None, arrivals: Arrivals) -> None:
        self.path = path
        self.token = token
        self.arrivals = arrivals
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.upgraded = False
        self.fragments = bytearray()
        self.waiters: dict[str, asyncio.Future[None]] = {}
        self.closed = asyncio.get_running_loop().create_future()
        self.seen: list[str] = []  # message types before the subscription (for errors)
        self.received = 0  # event messages
        self.closing = False

    # ---- asyncio.Protocol --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        key = base64.b64encode(secrets.token_bytes(16)).decode()
        auth = f"Authorization: Bearer {self.token}\r\n" if self.token else ""
        transport.write(
            (
                f"GET {self.path} HTTP/1.1\r\nHost: bench\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                f"Sec-WebSocket-Version: 13\r\n{auth}\r\n"
            ).encode()
        )

    def data_received(self, data: bytes) -> None:
        at = time.perf_counter()
        if self.upgraded and not self.buffer and len(data) > 4 and data[0] == 0x81:
            # the common case, one whole text frame of 126 to 65,535 bytes: read in place
            if data[1] == 126 and int.from_bytes(data[2:4], "big") == len(data) - 4:
                self._message(data[4:], at)
                return
        self.buffer += data
        if not self.upgraded:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            status = bytes(self.buffer[:end]).split(b"\r\n", 1)[0]
            if b" 101 " not in status + b" ":
                self._fail(f"handshake refused: {status!r}")
                return
            del self.buffer[: end + 4]
            self.upgraded = True
        self._frames(at)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closing:
            self.arrivals.closes[f"connection lost: {exc!r}"] += 1
            self.closing = True
        if not self.closed.done():
            self.closed.set_result(None)
        for waiter in self.waiters.values():
            if not waiter.done():
                waiter.set_exception(ConnectionError(f"socket closed; saw {self.seen}"))

    # ---- frames ------------------------------------------------------------------------------

    def _frames(self, at: float) -> None:
        buf = self.buffer
        while len(buf) >= 2:
            fin, opcode, length, start = buf[0] & 0x80, buf[0] & 0x0F, buf[1] & 0x7F, 2
            if length == 126:
                if len(buf) < 4:
                    return
                length, start = int.from_bytes(buf[2:4], "big"), 4
            elif length == 127:
                if len(buf) < 10:
                    return
                length, start = int.from_bytes(buf[2:10], "big"), 10
            if len(buf) < start + length:
                return
            payload = bytes(buf[start : start + length])
            del buf[: start + length]
            if opcode == 0x9:
                self._send(0xA, payload)
            elif opcode == 0x8:
                if not self.closing:
                    code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
                    self.arrivals.closes[f"{code} {payload[2:].decode(errors='replace')}"] += 1
                    self.closing = True
                if self.transport is not None:
                    self.transport.close()
                return
            elif opcode in (0x0, 0x1, 0x2):
                self.fragments += payload
                if fin:
                    message, self.fragments = bytes(self.fragments), bytearray()
                    self._message(message, at)

    def _message(self, raw: bytes, at: float) -> None:
        message = _incoming(raw)
        if message.position is not None:
            self.received += 1
            self.arrivals.record(message.position, at, len(raw))
            return
        self.seen.append(message.type)
        waiter = self.waiters.pop(message.type, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        elif message.type == "error":
            self._fail(f"error: {raw[:300]!r}")

    def _send(self, opcode: int, payload: bytes) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        mask = secrets.token_bytes(4)
        n = len(payload)
        if n < 126:
            head = bytes([0x80 | opcode, 0x80 | n])
        elif n < 65536:
            head = bytes([0x80 | opcode, 0x80 | 126]) + n.to_bytes(2, "big")
        else:
            head = bytes([0x80 | opcode, 0x80 | 127]) + n.to_bytes(8, "big")
        keystream = (mask * (n // 4 + 1))[:n]
        masked = (int.from_bytes(payload, "big") ^ int.from_bytes(keystream, "big")).to_bytes(
            n, "big"
        )
        self.transport.write(head + mask + masked)

    def _fail(self, why: str) -> None:
        for waiter in self.waiters.values():
            if not waiter.done():
                waiter.set_exception(ConnectionError(why))
        self.waiters.clear()
        if self.transport is not None:
            self.transport.close()

    # ---- the benchmark's use -----------------------------------------------------------------

    def expect(self, kind: str) -> asyncio.Future[None]:
        waiter = asyncio.get_running_loop().create_future()
        self.waiters[kind] = waiter
        return waiter

    def send_json(self, message: dict[str, Any]) -> None:
        self._send(0x1, json.dumps(message).encode())

    def close(self) -> None:
        self.closing = True
        if self.transport is not None and not self.transport.is_closing():
            self._send(0x8, (1000).to_bytes(2, "big"))
            self.transport.close()


async def open_socket(
    url: str, token: str | None, project_id: str, arrivals: Arrivals, timeout: float = 30.0
) -> WsClient:
    host, port = url.removeprefix("http://").split(":")
    loop = asyncio.get_running_loop()
    path = f"/ws/bench-{uuid4().hex[:8]}"
    client: WsClient | None = None
    connected: asyncio.Future[None] | None = None

    def factory() -> WsClient:
        nonlocal client, connected
        client = WsClient(path, token, arrivals)
        connected = client.expect("connected")  # may come before create_connection returns
        return client

    async with asyncio.timeout(timeout):
        await loop.create_connection(factory, host, int(port))
        assert client is not None and connected is not None
        await connected
        subscribed = client.expect("subscribed")
        client.send_json(
            {"type": "subscribe", "id": "s", "channel": "project_updates", "project_id": project_id}
        )
        await subscribed
    return client
