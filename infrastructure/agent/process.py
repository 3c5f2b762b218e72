"""One running agent: a subprocess in its own process group, read line by line through an adapter.

The agent is started from an argv (never a shell) with start_new_session=True, so it and everything
it starts share one process group. stdout lines go through the adapter; stderr lines are output.
When the agent exits, whatever is left of its group is killed, so no orphan outlives it (a process
that leaves the group with setsid() is out of reach). `terminate` writes a cancel notice, then sends
SIGTERM to the group, then SIGKILL after a grace period, and returns once the agent is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from infrastructure.agent.adapters import Adapter
from infrastructure.agent.protocol import CancelNotice, Message, Output, Reply, encode_reply

MAX_LINE_BYTES = 1_048_576  # a longer line is split into pieces of at most this size
READ_SIZE = 65_536
PIPE_GRACE = 2.0  # after the agent exits, how long its pipes may stay open before we stop reading
QUEUE_SIZE = 1_024  # messages read ahead of the consumer; then the agent waits on its pipe

class _End:
    """Put on the queue when a stream closes."""


_END = _End()


class AgentStartError(Exception):
    """The agent's program could not be started."""


def split_utf8(data: bytes | bytearray, size: int) -> int:
    """The largest cut of at most `size` bytes into `data` that splits no UTF-8 character."""
    if size >= len(data):
        return len(data)
    cut = size
    while cut > 0 and data[cut] & 0xC0 == 0x80:
        cut -= 1
    return cut or size  # not UTF-8 at all: cut anyway


class _Protocol(asyncio.subprocess.SubprocessStreamProtocol):
    """Tells when the process exits: Process.wait() waits for its pipes to close as well (3.11),
    and a grandchild may hold them open."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(limit=READ_SIZE, loop=loop)
        self.exited: asyncio.Future[None] = loop.create_future()

    def process_exited(self) -> None:
        super().process_exited()
        if not self.exited.done():
            self.exited.set_result(None)


async def spawn(
    argv: Sequence[str],
    *,
    cwd: Path | str,
    env: Mapping[str, str],
    stdin: int,
    stderr: int,
) -> tuple[asyncio.subprocess.Process, asyncio.Future[None]]:
    """Start `argv` (no shell) as the leader of a new process group, stdout piped; also return a
    future done as soon as it exits."""
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.subprocess_exec(
        lambda: _Protocol(loop),
        *argv,
        cwd=cwd,
        env=dict(env),
        stdin=stdin,
        stdout=asyncio.subprocess.PIPE,
        stderr=stderr,
        start_new_session=True,
    )
    return asyncio.subprocess.Process(transport, protocol, loop), protocol.exited


def kill_group(pid: int, sig: signal.Signals) -> None:
    """Send `sig` to the process group led by `pid`, if anything of it is left."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


class AgentProcess:
    def __init__(
        self,
        process: asyncio.subprocess.Process,
        exited: asyncio.Future[None],
        adapter: Adapter,
        output_cap: int | None,
    ) -> None:
        self._process = process
        self._leader_exited = exited
        self._adapter = adapter
        self._output_cap = output_cap
        self._queue: asyncio.Queue[Message | _End] = asyncio.Queue(QUEUE_SIZE)
        self._exited: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.output_bytes = 0  # output text passed on
        self.dropped_output_bytes = 0  # output text dropped beyond the cap
        self._tasks = [
            asyncio.ensure_future(self._reap()),
            asyncio.ensure_future(self._read(process.stdout, "stdout")),
            asyncio.ensure_future(self._read(process.stderr, "stderr")),
        ]

    @classmethod
    async def start(
        cls,
        argv: Sequence[str],
        cwd: Path | str,
        env: Mapping[str, str],
        adapter: Adapter,
        *,
        output_cap_bytes: int | None = None,
        stdin: bool = True,
    ) -> AgentProcess:
        """Start the agent. Output text beyond `output_cap_bytes` is read and dropped (protocol
        messages never are); the message crossing the cap is still passed on, so a batcher with the
        same cap sees the overflow and marks it."""
        try:
            process, exited = await spawn(
                argv,
                cwd=cwd,
                env=env,
                stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
        except OSError as error:
            raise AgentStartError(f"cannot start {argv[0]!r}: {error.strerror or error}") from None
        return cls(process, exited, adapter, output_cap_bytes)

    @property
    def pid(self) -> int:
        return self._process.pid

    @property
    def returncode(self) -> int | None:
        """The exit code once the agent is gone (negative: killed by that signal)."""
        return self._exited.result() if self._exited.done() else None

    async def messages(self) -> AsyncIterator[Message]:
        """The agent's messages in order (per stream) until both its stdout and stderr close."""
        ended = 0
        while ended < 2:  # stdout and stderr
            item = await self._queue.get()
            if isinstance(item, _End):
                ended += 1
            else:
                yield item

    async def send(self, reply: Reply) -> bool:
        """Write one reply line to the agent's stdin; False when its stdin is closed."""
        stdin = self._process.stdin
        if stdin is None or stdin.is_closing():
            return False
        try:
            stdin.write(encode_reply(reply))
            await stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            return False
        return True

    async def wait(self) -> int:
        """The exit code, once the agent has exited and the rest of its group was killed."""
        return await asyncio.shield(self._exited)

    async def wait_until(self, deadline: float) -> int | None:
        """The exit code, or None if the agent still runs at `deadline` (event loop time)."""
        timeout = max(deadline - asyncio.get_running_loop().time(), 0)
        await asyncio.wait([self._exited], timeout=timeout)
        return self.returncode

    async def terminate(
        self, grace: float = 5.0, *, reason: str | None = None, notice_grace: float = 1.0
    ) -> int:
        """End the agent and its whole group; return its exit code once it is gone.

        A cancel notice goes to its stdin first (if open) and it has `notice_grace` seconds to
        exit on its own; then SIGTERM to the group and `grace` seconds; then SIGKILL."""
        if self.returncode is not None:
            return self.returncode
        if self._process.stdin is not None:
            with contextlib.suppress(TimeoutError):
                sent = await asyncio.wait_for(self.send(CancelNotice(reason=reason)), notice_grace)
                if sent and (code := await self.wait_until(self._now() + notice_grace)) is not None:
                    return code
        kill_group(self.pid, signal.SIGTERM)
        kill_group(self.pid, signal.SIGCONT)  # a stopped process must run to see its SIGTERM
        if await self.wait_until(self._now() + grace) is None:
            kill_group(self.pid, signal.SIGKILL)
        return await self.wait()

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    async def _reap(self) -> None:
        await self._leader_exited
        code = self._process.returncode
        assert code is not None
        kill_group(self.pid, signal.SIGKILL)  # whatever the agent left running in its group
        if self._process.stdin is not None:
            self._process.stdin.close()
        self._exited.set_result(code)

    async def _read(
        self, stream: asyncio.StreamReader | None, name: Literal["stdout", "stderr"]
    ) -> None:
        buffer = bytearray()
        try:
            if stream is None:
                return
            async for data in self._chunks(stream):
                buffer += data
                start = 0
                while (end := buffer.find(b"\n", start)) >= 0:
                    await self._line(bytes(buffer[start:end]), name)
                    start = end + 1
                del buffer[:start]
                if len(buffer) > MAX_LINE_BYTES:  # a very long line: pass it on in pieces
                    cut = split_utf8(buffer, len(buffer) - len(buffer) % MAX_LINE_BYTES)
                    await self._line(bytes(buffer[:cut]), name)
                    del buffer[:cut]
            if buffer:
                await self._line(bytes(buffer), name)
        finally:
            await self._queue.put(_END)

    async def _chunks(self, stream: asyncio.StreamReader) -> AsyncIterator[bytes]:
        while True:
            read = asyncio.ensure_future(stream.read(READ_SIZE))
            if not self._exited.done():
                either: list[asyncio.Future[Any]] = [read, self._exited]
                await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
            if not read.done():  # the agent is gone but something still holds the pipe
                done, _ = await asyncio.wait([read], timeout=PIPE_GRACE)
                if not done:
                    read.cancel()
                    return
            data = read.result()
            if not data:
                return
            yield data

    async def _line(self, raw: bytes, name: Literal["stdout", "stderr"]) -> None:
        while len(raw) > MAX_LINE_BYTES:
            cut = split_utf8(raw, MAX_LINE_BYTES)
            await self._deliver(raw[:cut], name)
            raw = raw[cut:]
        await self._deliver(raw, name)

    async def _deliver(self, raw: bytes, name: Literal["stdout", "stderr"]) -> None:
        line = raw.decode("utf-8", "replace").removesuffix("\r")
        if name == "stderr":
            messages: list[Message] = [Output(stream="stderr", text=line)]
        else:
            try:
                messages = self._adapter.parse(line)
            except Exception:  # noqa: BLE001 - an adapter bug must not stop the reading
                messages = [Output(stream="stdout", text=line)]
        for message in messages:
            if isinstance(message, Output) and self._output_cap is not None:
                size = len(message.text.encode("utf-8", "replace"))
                if self.output_bytes > self._output_cap:
                    self.dropped_output_bytes += size
                    continue
                self.output_bytes += size
            await self._queue.put(message)
