"""Runs a program to its end: argv only, its own process group, a timeout, the tail of its output.

Used for git (workspaces) and for a task's test_command. stdout and stderr are read together and
only the last `cap_bytes` are kept. On timeout the group gets SIGTERM, then SIGKILL after `grace`;
when the program exits, whatever it left running in its group is killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import ClassVar

import msgspec

from infrastructure.agent.process import PIPE_GRACE, kill_group, spawn

READ_SIZE = 65_536
NOT_FOUND, NOT_EXECUTABLE = 127, 126


class ProcessResult(msgspec.Struct, frozen=True, kw_only=True):
    __test__: ClassVar[bool] = False  # not a pytest class, whatever its alias is called

    exit_code: int  # as a shell reports it: 127 not found, 126 not executable, -N killed by N
    duration: float  # seconds
    output_tail: str
    timed_out: bool = False


class _Tail:
    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.data = bytearray()

    def add(self, data: bytes) -> None:
        self.data += data
        if len(self.data) > 2 * self.cap:
            del self.data[: len(self.data) - self.cap]

    def text(self) -> str:
        return bytes(self.data[-self.cap :] if self.cap else b"").decode("utf-8", "replace")


async def _drain(stream: asyncio.StreamReader, tail: _Tail) -> None:
    while data := await stream.read(READ_SIZE):
        tail.add(data)


async def run_argv(
    argv: Sequence[str],
    *,
    cwd: Path | str,
    env: Mapping[str, str],
    timeout: float,
    cap_bytes: int = 65_536,
    grace: float = 2.0,
) -> ProcessResult:
    """Run `argv` in `cwd` and wait for it; never raises for the program's own failures."""
    started = time.monotonic()
    try:
        process, exited = await spawn(
            argv,
            cwd=cwd,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.STDOUT,
        )
    except OSError as error:
        message = f"cannot start {argv[0]!r}: {error.strerror or error}"
        code = NOT_FOUND if isinstance(error, FileNotFoundError) else NOT_EXECUTABLE
        duration = time.monotonic() - started
        return ProcessResult(exit_code=code, duration=duration, output_tail=message)
    tail = _Tail(cap_bytes)
    assert process.stdout is not None
    reader = asyncio.ensure_future(_drain(process.stdout, tail))
    timed_out = False
    try:
        await asyncio.wait_for(asyncio.shield(exited), timeout)
    except TimeoutError:
        timed_out = True
        kill_group(process.pid, signal.SIGTERM)
        kill_group(process.pid, signal.SIGCONT)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(exited), grace)
    finally:
        kill_group(process.pid, signal.SIGKILL)  # the program if still there, and its leftovers
        await asyncio.shield(exited)
        done, _ = await asyncio.wait([reader], timeout=PIPE_GRACE)
        if not done:  # something outside the group still holds the pipe
            reader.cancel()
    assert process.returncode is not None
    return ProcessResult(
        exit_code=process.returncode,
        duration=time.monotonic() - started,
        output_tail=tail.text(),
        timed_out=timed_out,
    )
