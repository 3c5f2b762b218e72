"""Handlers for command runs (``/api/commands``) and the registry of the programs still running.

A team's runs are found through an event-sourced log (as API keys are): starting a run appends
``CommandRunLogged`` at the log's next version in the same transaction as the run's ``Started``,
so the log's version is the team's run count and a page of the history is a version range.

The registry lives in the API process that started the programs, on its event loop: one watcher
task per program enforces the timeout, acts on a cancel (recorded by any API process: the watcher
also looks for it in the store), and when the program has exited records ``Finished`` and the
output in one transaction. Output is served from memory while the program runs, from the store
afterwards.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from uuid import UUID

from eventsourcing.application import EventSourcedLog
from eventsourcing.domain import DomainEvent

from application.command_requests import MAX_TIMEOUT
from application.errors import NotFoundError
from application.store import Store
from domain.claim import claim_id
from domain.command_run import LOST_AFTER, LOST_REASON, CommandOutput, CommandRun, CommandStatus
from domain.command_run import output_id as command_output_id
from domain.values import Actor, rfc3339

log = logging.getLogger("taskwarden.commands")


class CommandsDisabledError(Exception):
    """``TASKWARDEN_COMMANDS_ENABLED`` is off: nothing may run (403 COMMANDS_DISABLED)."""

    def __init__(self) -> None:
        super().__init__("command execution is disabled on this server")


class CommandRunLogged(DomainEvent):
    """On the team's run log: names a run and its timeout (to skip runs that cannot be live)."""

    run_id: str
    timeout: float


def run_log(store: Store, team_id: str) -> EventSourcedLog[CommandRunLogged]:
    log_id = claim_id(team_id, "log", "command-runs")
    return store.event_log(log_id, CommandRunLogged)


# ---- handlers -------------------------------------------------------------------------------


def record_started(
    store: Store,
    by: Actor,
    *,
    command: str,
    argv: list[str],
    working_directory: str,
    timeout: float,
    environment: list[str],
    pid: int,
    host: str,
) -> tuple[CommandRun, int]:
    def decide() -> tuple[CommandRun, int]:
        run = CommandRun(
            team_id=by.team_id,
            command=command,
            argv=argv,
            working_directory=working_directory,
            timeout=timeout,
            environment=environment,
            pid=pid,
            host=host,
            actor=by.id,
            request_id=by.request_id,
        )
        logged = run_log(store, by.team_id).trigger_event(run_id=str(run.id), timeout=timeout)
        return run, store.commit(run, logged=[logged])

    return store.with_retries(decide)


def record_finished(
    store: Store,
    run: CommandRun,
    status: CommandStatus,
    exit_code: int | None,
    chunks: list[dict[str, str]],
    output_bytes: int,
    truncated: bool,
    reason: str | None = None,
) -> None:
    """The run's end and its output, in one transaction; once."""

    def decide() -> None:
        current = store.load(CommandRun, run.id, run.team_id, "command")
        if current.status != CommandStatus.RUNNING:
            return
        current.finish(status, exit_code, output_bytes, truncated, reason)
        output = CommandOutput.record(str(run.id), run.team_id, chunks, truncated)
        store.commit(current, output)

    store.with_retries(decide)


def load_run(store: Store, ref: str, team_id: str) -> CommandRun:
    """Another team's run and a missing one both answer COMMAND_NOT_FOUND."""
    try:
        run_id = UUID(ref)
    except ValueError:
        raise NotFoundError("command", ref) from None
    return store.load(CommandRun, run_id, team_id, "command")


def request_cancel(store: Store, ref: str, by: Actor) -> CommandRun:
    """Records the request (409 once the run has ended); the registry stops the program."""

    def decide() -> CommandRun:
        run = load_run(store, ref, by.team_id)
        run.request_cancel(by)
        store.commit(run)
        return run

    return store.with_retries(decide)


def stored_output(store: Store, run: CommandRun) -> list[dict[str, str]]:
    output = store.find(CommandOutput, command_output_id(run.id))
    return list(output.chunks) if output is not None else []


def run_data(run: CommandRun, now: datetime) -> dict[str, Any]:
    """A run as listed (seed 000's fields); a running one's duration is the time so far."""
    status = run.status_at(now)
    duration = run.duration
    if status == CommandStatus.RUNNING:
        duration = round((now - run.started_at).total_seconds(), 3)
    return {
        "id": str(run.id),
        "command_id": str(run.id),
        "command": run.command,
        "status": status,
        "pid": run.pid,
        "working_directory": run.working_directory,
        "started_at": rfc3339(run.started_at),
        "completed_at": rfc3339(run.completed_at),
        "exit_code": run.exit_code,
        "duration": duration,
        "started_by": run.started_by,
        "cancel_requested": run.cancel_requested,
    }


def status_data(
    run: CommandRun, output: list[dict[str, str]], live: Program | None, now: datetime
) -> dict[str, Any]:
    data = run_data(run, now)
    data.update(
        argv=list(run.argv),
        timeout=run.timeout,
        environment=list(run.environment),
        host=run.host,
        cancelled_at=rfc3339(run.cancelled_at),
        reason=LOST_REASON if run.lost(now) else run.reason,
        output=output,
        output_bytes=live.output.output_bytes if live else run.output_bytes,
        truncated=live.output.truncated if live else run.truncated,
    )
    return data


def _recent(store: Store, team_id: str, now: datetime) -> Iterator[CommandRun]:
    """Newest first, every run that may still be running (no run lives past its timeout)."""
    horizon = now - timedelta(seconds=MAX_TIMEOUT) - LOST_AFTER
    entries = run_log(store, team_id)
    last = entries.get_last()
    top = last.originator_version if last is not None else 0
    while top > 0:
        page = list(entries.get(gt=max(top - 100, 0), lte=top, desc=True))
        for entry in page:
            if entry.timestamp < horizon:
                return
            if entry.timestamp + timedelta(seconds=entry.timeout) + LOST_AFTER >= now:
                yield store.load(CommandRun, UUID(entry.run_id), team_id, "command")
        top -= 100


def running_data(store: Store, team_id: str) -> dict[str, Any]:
    now = datetime.now(UTC)
    runs = [run_data(r, now) for r in _recent(store, team_id, now)]
    running = [r for r in runs if r["status"] == CommandStatus.RUNNING]
    return {"commands": running, "total_running": len(running)}


def history_data(store: Store, team_id: str, page: int, page_size: int) -> dict[str, Any]:
    """The team's runs, newest first, as a page of the list shape (``limit``/``offset`` too)."""
    entries = run_log(store, team_id)
    last = entries.get_last()
    total = last.originator_version if last is not None else 0
    skip = (page - 1) * page_size
    logged = []
    if skip < total:
        logged = list(entries.get(gt=max(total - skip - page_size, 0), lte=total - skip, desc=True))
    now = datetime.now(UTC)
    runs = [store.load(CommandRun, UUID(e.run_id), team_id, "command") for e in logged]
    pages = -(-total // page_size)
    return {
        "items": [run_data(r, now) for r in runs],
        "total": total,
        "page": page,
        "page_size": page_size,
        "pages": pages,
        "has_next": page < pages,
        "has_previous": page > 1,
    }


# ---- the programs running in this process ---------------------------------------------------


class Output(Protocol):
    output_bytes: int
    truncated: bool


class Program(Protocol):
    """A started program (``infrastructure.command_runner.Program``). Its attributes are
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
    run: CommandRun
    program: Program
    cancel: asyncio.Event = field(default_factory=asyncio.Event)
    watcher: asyncio.Task[None] | None = None


class CommandRegistry:
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
        record: Callable[[int], tuple[CommandRun, int]],
    ) -> tuple[CommandRun, int]:
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
        loop = asyncio.get_running_loop()
        deadline = loop.time() + run.timeout
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
    ) -> tuple[CommandStatus, int | None, str | None]:
        program, loop = live.program, asyncio.get_running_loop()
        while True:
            await self._until_exit_or_cancel(live, min(self.poll, deadline - loop.time()))
            code = program.returncode
            if code is not None:
                return (CommandStatus.COMPLETED if code == 0 else CommandStatus.FAILED), code, None
            if live.cancel.is_set() or await asyncio.to_thread(self._cancel_recorded, live.run):
                return CommandStatus.CANCELLED, await program.stop(self.grace), "cancelled"
            if loop.time() >= deadline:
                reason = f"no exit within its timeout of {live.run.timeout:g} seconds"
                return CommandStatus.TIMED_OUT, await program.stop(self.grace), reason

    async def _until_exit_or_cancel(self, live: Live, seconds: float) -> None:
        waits = [
            asyncio.ensure_future(live.program.wait(max(seconds, 0))),
            asyncio.ensure_future(live.cancel.wait()),
        ]
        await asyncio.wait(waits, timeout=max(seconds, 0), return_when=asyncio.FIRST_COMPLETED)
        for waiting in waits:
            waiting.cancel()

    def _cancel_recorded(self, run: CommandRun) -> bool:
        current = self.store.load(CommandRun, run.id, run.team_id, "command")
        return current.cancel_requested
