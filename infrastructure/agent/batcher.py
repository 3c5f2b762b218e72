"""Batches an execution's output into chunks, flushed by size or after a short delay, up to a cap.

A batch is flushed when its text reaches `max_bytes` (it never exceeds it: a longer text is split
on a character boundary) or `max_delay` seconds after its first chunk arrived (a timer task, no
polling). Consecutive text of one stream is merged into one chunk; chunks keep their order and carry
a per-execution sequence number. Once `cap_bytes` of text have been accepted the rest is dropped
and counted, and exactly one truncation marker chunk (stream "system") is emitted.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import msgspec


class Chunk(msgspec.Struct, frozen=True, kw_only=True):
    stream: str  # "stdout", "stderr" or "system"
    text: str
    seq: int


Flush = Callable[[list[Chunk]], Awaitable[None]]


def truncation_marker(cap_bytes: int) -> str:
    return f"[output truncated at {cap_bytes} bytes]"


def _char_length(lead: int) -> int:
    """The length of the UTF-8 character starting with byte `lead`."""
    return 1 if lead < 0xC0 else 2 if lead < 0xE0 else 3 if lead < 0xF0 else 4


def _cut(data: bytes, size: int) -> int:
    """The largest cut at most `size` bytes into UTF-8 `data` that splits no character."""
    if size >= len(data):
        return len(data)
    while size > 0 and data[size] & 0xC0 == 0x80:
        size -= 1
    return size


class OutputBatcher:
    def __init__(
        self,
        flush: Flush,
        *,
        max_bytes: int = 65_536,
        max_delay: float = 0.2,
        cap_bytes: int = 10 * 1024 * 1024,
        first_seq: int = 0,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        if max_bytes < 4:  # room for any one character
            raise ValueError("max_bytes must be at least 4")
        self._flush = flush
        self._max_bytes = max_bytes
        self._max_delay = max_delay
        self._cap = cap_bytes
        self._sleep = sleep
        self._seq = first_seq
        self._pending: list[Chunk] = []
        self._pending_bytes = 0
        self._lock = asyncio.Lock()
        self._timer: asyncio.Task[None] | None = None
        self._timers: set[asyncio.Task[None]] = set()  # kept referenced while they run
        self._timer_error: BaseException | None = None
        self._closed = False
        self.accepted_bytes = 0  # text passed on (flushed or pending), the marker not included
        self.dropped_bytes = 0
        self.truncated = False

    async def add(self, stream: str, text: str) -> None:
        self._raise_timer_error()
        if self._closed:
            raise RuntimeError("the batcher is closed")
        data = text.encode("utf-8", "replace")
        while data:
            if self.truncated or self.accepted_bytes + _char_length(data[0]) > self._cap:
                if not self.truncated:
                    self._truncate()
                break
            room = min(self._max_bytes - self._pending_bytes, self._cap - self.accepted_bytes)
            cut = _cut(data, room)
            if cut:
                self._append(stream, data[:cut])
                data = data[cut:]
            full = self._pending_bytes >= self._max_bytes
            if full or (data and self._pending_bytes + _char_length(data[0]) > self._max_bytes):
                await self._flush_now()
        self.dropped_bytes += len(data)
        if self._pending and self._timer is None:
            self._timer = asyncio.get_running_loop().create_task(self._flush_later())
            self._timers.add(self._timer)
            self._timer.add_done_callback(self._timers.discard)

    async def flush(self) -> None:
        """Flush what is pending now (before a message that must not overtake the output)."""
        self._raise_timer_error()
        await self._flush_now()

    async def close(self) -> None:
        """Flush what is pending; later adds are refused."""
        self._closed = True
        await self._flush_now()
        await asyncio.gather(*self._timers, return_exceptions=True)
        self._raise_timer_error()

    def _append(self, stream: str, data: bytes) -> None:
        text = data.decode("utf-8")
        last = self._pending[-1] if self._pending else None
        if last is not None and last.stream == stream:
            self._pending[-1] = Chunk(stream=stream, text=last.text + text, seq=last.seq)
        else:
            self._pending.append(Chunk(stream=stream, text=text, seq=self._seq))
            self._seq += 1
        self._pending_bytes += len(data)
        self.accepted_bytes += len(data)

    def _truncate(self) -> None:
        self.truncated = True
        marker = Chunk(stream="system", text=truncation_marker(self._cap), seq=self._seq)
        self._seq += 1
        self._pending.append(marker)

    async def _flush_later(self) -> None:
        try:
            await self._sleep(self._max_delay)
            self._timer = None  # from here on, nobody cancels this flush
            await self._flush_now()
        except asyncio.CancelledError:
            raise
        except Exception as error:  # noqa: BLE001 - kept and raised by the next add or close
            self._timer_error = error

    async def _flush_now(self) -> None:
        if self._timer is not None and self._timer is not asyncio.current_task():
            self._timer.cancel()
        self._timer = None
        async with self._lock:  # batches are taken and flushed in order
            batch, self._pending, self._pending_bytes = self._pending, [], 0
            if batch:
                await self._flush(batch)

    def _raise_timer_error(self) -> None:
        if self._timer_error is not None:
            error, self._timer_error = self._timer_error, None
            raise error
