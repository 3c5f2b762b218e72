"""Handlers for command runs (``/api/commands``) and the registry of the programs still running.

A team's runs are found through an event-sourced log (as API keys are): starting a run appends
``ProgramRunLogged`` at the log's next version in the same transaction as the run's ``Started``,
so the log's version is the team's run count and a page of the history is a version range.

The registry lives in the API process that started the programs, on its event loop: one watcher
task per program enforces the timeout, acts on a cancel (recorded by any API process: the watcher
also looks for it in the store), and when the program has exited records ``Finished`` and the
output in one transaction. Output is served from memory while the program runs, from the store
afterwards.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from uuid import UUID

from eventsourcing.application import EventSourcedLog
from eventsourcing.domain import DomainEvent

from application.programs.requests import MAX_TIMEOUT
from application.store import Store
from domain.claim import claim_id
from domain.program_run import LOST_AFTER, LOST_REASON, ProgramOutput, ProgramRun, RunStatus
from domain.program_run import output_id as command_output_id
from domain.values import Actor, rfc3339

if TYPE_CHECKING:
    from application.programs.registry import Program

log = logging.getLogger("taskwarden.programs")


class ProgramsDisabledError(Exception):
    """``TASKWARDEN_COMMANDS_ENABLED`` is off: nothing may run (403 COMMANDS_DISABLED)."""

    def __init__(self) -> None:
        super().__init__("command execution is disabled on this server")


class ProgramRunLogged(DomainEvent):
    """On the team's run log: names a run and its timeout (to skip runs that cannot be live)."""

    run_id: str
    timeout: float


def run_log(store: Store, team_id: str) -> EventSourcedLog[ProgramRunLogged]:
    log_id = claim_id(team_id, "log", "command-runs")
    return store.event_log(log_id, ProgramRunLogged)


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
) -> tuple[ProgramRun, int]:
    def decide() -> tuple[ProgramRun, int]:
        run = ProgramRun(
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
    run: ProgramRun,
    status: RunStatus,
    exit_code: int | None,
    chunks: list[dict[str, str]],
    output_bytes: int,
    truncated: bool,
    reason: str | None = None,
) -> None:
    """The run's end and its output, in one transaction; once."""

    def decide() -> None:
        current = store.load(ProgramRun, run.id, run.team_id, "command")
        if current.status != RunStatus.RUNNING:
            return
        at = store.clock.now()
        current.finish(status, exit_code, output_bytes, truncated, reason, at=at)
        output = ProgramOutput.record(str(run.id), run.team_id, chunks, truncated)
        store.commit(current, output)

    store.with_retries(decide)


def load_run(store: Store, ref: str, team_id: str) -> ProgramRun:
    """Another team's run and a missing one both answer COMMAND_NOT_FOUND."""
    return store.load_ref(ProgramRun, ref, team_id, "command")


def request_cancel(store: Store, ref: str, by: Actor) -> ProgramRun:
    """Records the request (409 once the run has ended); the registry stops the program."""

    def decide() -> ProgramRun:
        run = load_run(store, ref, by.team_id)
        run.request_cancel(by, at=store.clock.now())
        store.commit(run)
        return run

    return store.with_retries(decide)


def stored_output(store: Store, run: ProgramRun) -> list[dict[str, str]]:
    output = store.find(ProgramOutput, command_output_id(run.id))
    return list(output.chunks) if output is not None else []


def run_data(run: ProgramRun, now: datetime) -> dict[str, Any]:
    """A run as listed (seed 000's fields); a running one's duration is the time so far."""
    status = run.status_at(now)
    duration = run.duration
    if status == RunStatus.RUNNING:
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
    run: ProgramRun, output: list[dict[str, str]], live: Program | None, now: datetime
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


def _recent(store: Store, team_id: str, now: datetime) -> Iterator[ProgramRun]:
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
                yield store.load(ProgramRun, UUID(entry.run_id), team_id, "command")
        top -= 100


def running_data(store: Store, team_id: str) -> dict[str, Any]:
    now = store.clock.now()
    runs = [run_data(r, now) for r in _recent(store, team_id, now)]
    running = [r for r in runs if r["status"] == RunStatus.RUNNING]
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
    now = store.clock.now()
    runs = [store.load(ProgramRun, UUID(e.run_id), team_id, "command") for e in logged]
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
