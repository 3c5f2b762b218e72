"""A small HTTP/1.1 client for webhook POSTs: h11 over asyncio streams, connections kept alive
per pinned target.

Why not httpx here: measured in bench/fanout.py, httpx's async stack (anyio locks, URL and header
models, the transport and pool layers) cost about 1.1 ms of CPU per POST, more than the rest of a
delivery (the store included) together. The sender needs one thing: a POST to an address it
checked, over a connection opened to that address (with the host's name for SNI and the
certificate), read back within a limit. h11 does the protocol (framing, keep-alive rules); this
module opens, keeps and reuses the connections.

A connection is reused only for the same target (scheme, address, port, server name) and only
when h11 says both sides finished the exchange. A kept connection that the receiver closed while
idle fails before any answer arrives; such a request is sent once more on a new connection (the
receiver never saw it).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import NamedTuple

import h11

READ = 65_536  # bytes read from the socket at a time
IDLE_PER_TARGET = 4  # kept-alive connections per target
TARGETS = 64  # targets with kept connections, least recently used closed


class Target(NamedTuple):
    """Where a connection goes: the checked address, and the name TLS verifies (https)."""

    scheme: str
    address: str
    port: int
    server_name: str


class Answer(NamedTuple):
    status: int
    headers: dict[str, str]  # lower-case names; a repeated header keeps its last value


class TooLongError(Exception):
    """The answer's body was longer than allowed: the connection is dropped (the status stands)."""

    def __init__(self, answer: Answer) -> None:
        super().__init__(f"answer longer than allowed (HTTP {answer.status})")
        self.answer = answer


Opener = Callable[
    [Target, ssl.SSLContext | None], Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]
]


async def open_tcp(
    target: Target, tls: ssl.SSLContext | None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection to the checked address; with TLS, SNI and the certificate name the host."""
    return await asyncio.open_connection(
        target.address,
        target.port,
        ssl=tls,
        server_hostname=target.server_name if tls is not None else None,
        limit=READ,
    )


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.protocol = h11.Connection(our_role=h11.CLIENT)
        self.answered = False  # any byte of an answer came back on this exchange

    @property
    def reusable(self) -> bool:
        return (
            self.protocol.our_state is h11.DONE
            and self.protocol.their_state is h11.DONE
            and not self.reader.at_eof()
        )

    async def post(
        self, path: str, headers: list[tuple[str, str]], body: bytes, limit: int
    ) -> Answer:
        self.answered = False
        protocol = self.protocol
        self.writer.write(
            protocol.send(h11.Request(method="POST", target=path, headers=headers))
            + protocol.send(h11.Data(data=body))
            + protocol.send(h11.EndOfMessage())
        )
        await self.writer.drain()
        answer: Answer | None = None
        received = 0
        while True:
            event = protocol.next_event()
            if event is h11.NEED_DATA:
                data = await self.reader.read(READ)
                self.answered = self.answered or bool(data)
                protocol.receive_data(data)  # b"": the receiver closed
            elif isinstance(event, h11.Response):
                answer = Answer(
                    event.status_code,
                    {k.decode("latin-1"): v.decode("latin-1") for k, v in event.headers},
                )
            elif isinstance(event, h11.Data):
                received += len(event.data)
                if received > limit and answer is not None:
                    raise TooLongError(answer)
            elif isinstance(event, h11.EndOfMessage) and answer is not None:
                return answer
            elif isinstance(event, h11.ConnectionClosed):
                raise ConnectionResetError("the receiver closed the connection")
            # an informational answer (1xx) is skipped

    def next_cycle(self) -> None:
        self.protocol.start_next_cycle()

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError, ssl.SSLError):
            await self.writer.wait_closed()


class Pool:
    """Kept-alive connections of one event loop, by target."""

    def __init__(self, opener: Opener = open_tcp) -> None:
        self._opener = opener
        self._idle: OrderedDict[Target, list[_Connection]] = OrderedDict()

    async def post(
        self,
        target: Target,
        tls: ssl.SSLContext | None,
        path: str,
        headers: list[tuple[str, str]],
        body: bytes,
        limit: int,
    ) -> Answer:
        """POSTs ``body`` to ``path`` at ``target`` (``headers`` must name Host and
        Content-Length); raises OSError, ssl.SSLError, h11.ProtocolError or TooLongError."""
        kept = self._take(target)
        if kept is not None:
            try:
                return await self._exchange(target, kept, path, headers, body, limit)
            except (OSError, h11.ProtocolError):
                if kept.answered:
                    raise
                # closed while idle: the receiver never saw this request; once more, anew
        reader, writer = await self._opener(target, tls)
        fresh = _Connection(reader, writer)
        return await self._exchange(target, fresh, path, headers, body, limit)

    async def _exchange(
        self,
        target: Target,
        connection: _Connection,
        path: str,
        headers: list[tuple[str, str]],
        body: bytes,
        limit: int,
    ) -> Answer:
        try:
            answer = await connection.post(path, headers, body, limit)
        except BaseException:
            connection.writer.close()
            raise
        if connection.reusable:
            connection.next_cycle()
            self._keep(target, connection)
        else:
            connection.writer.close()
        return answer

    def _take(self, target: Target) -> _Connection | None:
        idle = self._idle.get(target)
        while idle:
            connection = idle.pop()
            if not connection.reader.at_eof():
                return connection
            connection.writer.close()
        return None

    def _keep(self, target: Target, connection: _Connection) -> None:
        idle = self._idle.setdefault(target, [])
        self._idle.move_to_end(target)
        if len(idle) >= IDLE_PER_TARGET:
            connection.writer.close()
        else:
            idle.append(connection)
        while len(self._idle) > TARGETS:
            _, dropped = self._idle.popitem(last=False)
            for old in dropped:
                old.writer.close()

    async def aclose(self) -> None:
        idle = [c for connections in self._idle.values() for c in connections]
        self._idle.clear()
        await asyncio.gather(*(c.close() for c in idle), return_exceptions=True)
