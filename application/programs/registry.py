"""The registry of the programs still running in this API process, on its event loop: one watcher
task per program enforces the timeout, acts on a cancel (recorded by any API process: the watcher
also looks for it in the store), and when the program has exited records ``Finished`` and the
output in one transaction (``application/programs/runs.py``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol
from uuid import UUID

from application.programs.runs import record_finished
from application.store import Store
from domain.program_run import ProgramRun, RunStatus

log = logging.getLogger("taskwarden.programs")


class Output(Protocol):
    output_bytes: int
    truncated: bool


class Program(Protocol):
    """A started program (``infrastructure.program_runner.Program``). Its attributes are
    read-only here, so that one of a narrower type (the runner's own Output) fits."""

    @property
    def pid(self) -> int: ...
    @property
    def output(self) -> Output: ...
    @property
    def returncode(self) -> int | None: ...
    def chunks(self) -> list[dict[str, str]]: ...
    async def wait(self, timeout: float) -> bool: ...
    async def stop(self, grace: float) -> int: ...
    async def finish(self) -> None: ...
    def abandon(self) -> None: ...


@dataclass
class Live:
    run: ProgramRun
    program: Program
    cancel: asyncio.Event = field(default_factory=asyncio.Event)
    watcher: asyncio.Task[None] | None = None


class ProgramRegistry:
    """The programs this API process started and still watches."""

    def __init__(
        self, store: Store, grace: float = 5.0, poll: float = 1.0, output_cap: int = 1_048_576
    ) -> None:
        self.store = store
        self.output_cap = output_cap  # bytes of output kept per run, then a marker
        self.grace = grace  # seconds between TERM and KILL
        self.poll = poll  # seconds between looks for a cancel recorded by another process
        self._live: dict[UUID, Live] = {}

    async def start(
        self,
        spawn: Callable[[], Awaitable[Program]],
        record: Callable[[int], tuple[ProgramRun, int]],
    ) -> tuple[ProgramRun, int]:
        """Starts the program, then records it (``record(pid)``, off the loop: the run and its
        position); a program that could not be recorded is killed."""
        program = await spawn()
        try:
            run, position = await asyncio.to_thread(record, program.pid)
        except BaseException:
            program.abandon()
            await program.wait(2.0)
            raise
        live = Live(run=run, program=program)
        self._live[run.id] = live
        live.watcher = asyncio.get_running_loop().create_task(self._watch(live))
        live.watcher.add_done_callback(lambda _: self._forget(live))
        return run, position

    def live(self, run_id: UUID) -> Program | None:
        found = self._live.get(run_id)
        return found.program if found else None

    async def cancel(self, run_id: UUID) -> None:
        """Stops a program of this process and waits until its end is recorded."""
        found = self._live.get(run_id)
        if found is None or found.watcher is None:
            return
        found.cancel.set()
        await asyncio.wait({found.watcher}, timeout=self.grace + 10)

    async def close(self) -> None:
        """The server is stopping: stop every program it watches and record each end."""
        watchers = [live.watcher for live in self._live.values() if live.watcher is not None]
        for live in list(self._live.values()):
            live.cancel.set()
        if watchers:
            await asyncio.wait(watchers, timeout=self.grace + 10)

    async def _watch(self, live: Live) -> None:
        program, run = live.program, live.run
        deadline = self.store.clock.monotonic() + run.timeout
        try:
            status, code, reason = await self._outcome(live, deadline)
            await program.finish()
            output = program.output
            await asyncio.to_thread(
                record_finished,
                self.store,
                run,
                status,
                code,
                program.chunks(),
                output.output_bytes,
                output.truncated,
                reason,
            )
        except Exception:
            log.exception("command run %s: its end could not be recorded", run.id)
            program.abandon()

    def _forget(self, live: Live) -> None:
        """The watcher is done; cancelled (the server is stopping, perhaps before it even
        started): nothing it started may outlive it."""
        self._live.pop(live.run.id, None)
        if live.watcher is not None and live.watcher.cancelled():
            live.program.abandon()

    async def _outcome(
        self, live: Live, deadline: float
    ) -> tuple[RunStatus, int | None, str | None]:
        program, clock = live.program, self.store.clock
        while True:
            await self._until_exit_or_cancel(live, min(self.poll, deadline - clock.monotonic()))
            code = program.returncode
            if code is not None:
                return (RunStatus.COMPLETED if code == 0 else RunStatus.FAILED), code, None
            if live.cancel.is_set() or await asyncio.to_thread(self._cancel_recorded, live.run):
                return RunStatus.CANCELLED, await program.stop(self.grace), "cancelled"
            if clock.monotonic() >= deadline:
                reason = f"no exit within its timeout of {live.run.timeout:g} seconds"
                return RunStatus.TIMED_OUT, await program.stop(self.grace), reason

    async def _until_exit_or_cancel(self, live: Live, seconds: float) -> None:
        waits = [
            asyncio.ensure_future(live.program.wait(max(seconds, 0))),
            asyncio.ensure_future(live.cancel.wait()),
        ]
        await asyncio.wait(waits, timeout=max(seconds, 0), return_when=asyncio.FIRST_COMPLETED)
        for waiting in waits:
            waiting.cancel()

    def _cancel_recorded(self, run: ProgramRun) -> bool:
        current = self.store.load(ProgramRun, run.id, run.team_id, "command")
        return current.cancel_requested
