"""Command runs: one program an admin ran on the server (seed 000's ``/api/commands``).

``ProgramRun`` is small on purpose (the team's history loads many of them): it records what was
started (argv, working directory, timeout, the *names* of the extra environment variables, never
their values, the pid and the host), a cancel request, and how it ended. The output is not in it:
``ProgramOutput``, whose id is derived from the run's, records it once, in the same transaction as
``ProgramRun.Finished``.

Only the API process that started a program records its end. If that process dies first, nobody
does: a run still ``running`` past its deadline plus ``LOST_AFTER`` is reported ``failed`` (lost),
derived from its own events, so it never stays running forever.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import event

from domain.errors import InvalidTransitionError, RuleViolationError
from domain.place import Placed
from domain.values import Actor

_NAMESPACE = uuid5(NAMESPACE_URL, "https://taskwarden.dev/command-output")

# the owner records the end within the grace period after the deadline; past this margin it is dead
LOST_AFTER = timedelta(seconds=60)
LOST_REASON = "lost: no outcome was recorded (the server running it stopped)"


class RunStatus(StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"


OUTCOMES = frozenset(set(RunStatus) - {RunStatus.RUNNING})


class ProgramRun(Placed):
    @event("Started")
    def __init__(
        self,
        *,
        team_id: str,
        command: str,
        argv: list[str],
        working_directory: str,
        timeout: float,
        environment: list[str],
        pid: int,
        host: str,
        actor: str,
        request_id: str,
    ) -> None:
        self.team_id = team_id
        self.command = command
        self.argv = list(argv)
        self.working_directory = working_directory
        self.timeout = timeout
        self.environment = list(environment)
        self.pid = pid
        self.host = host
        self.started_by = actor
        self.status = RunStatus.RUNNING.value
        self.cancel_requested = False
        self.cancelled_at: datetime | None = None
        self.completed_at: datetime | None = None
        self.exit_code: int | None = None
        self.duration: float | None = None
        self.output_bytes = 0
        self.truncated = False
        self.reason: str | None = None

    @property
    def started_at(self) -> datetime:
        return self.created_on

    @property
    def deadline(self) -> datetime:
        return self.started_at + timedelta(seconds=self.timeout)

    def lost(self, now: datetime) -> bool:
        """Running by its events, but nobody can still be running it."""
        return self.status == RunStatus.RUNNING and now > self.deadline + LOST_AFTER

    def status_at(self, now: datetime) -> str:
        return RunStatus.FAILED.value if self.lost(now) else self.status

    def request_cancel(self, by: Actor, *, at: datetime) -> None:
        """Asking twice records once; an ended (or lost) run cannot be cancelled."""
        if self.status != RunStatus.RUNNING or self.lost(at):
            raise InvalidTransitionError(
                f"command run is {self.status_at(at)}, not running",
                status=self.status_at(at),
                target="cancelled",
            )
        if not self.cancel_requested:
            self._cancel_requested(at=at, actor=by.id, request_id=by.request_id)

    @event("CancelRequested")
    def _cancel_requested(self, at: datetime, actor: str, request_id: str) -> None:
        self.cancel_requested = True
        self.cancelled_at = at

    def finish(
        self,
        status: RunStatus,
        exit_code: int | None,
        output_bytes: int,
        truncated: bool,
        reason: str | None = None,
        *,
        at: datetime,
    ) -> None:
        if status not in OUTCOMES:
            raise RuleViolationError(f"{status} is not how a run ends", status=str(status))
        if self.status != RunStatus.RUNNING:
            raise InvalidTransitionError(
                f"command run already {self.status}", status=self.status, target=str(status)
            )
        duration = round(max((at - self.started_at).total_seconds(), 0.0), 3)
        self._finished(
            status=status.value,
            exit_code=exit_code,
            at=at,
            duration=duration,
            output_bytes=output_bytes,
            truncated=truncated,
            reason=reason,
        )

    @event("Finished")
    def _finished(
        self,
        status: str,
        exit_code: int | None,
        at: datetime,
        duration: float,
        output_bytes: int,
        truncated: bool,
        reason: str | None,
    ) -> None:
        self.status = status
        self.exit_code = exit_code
        self.completed_at = at
        self.duration = duration
        self.output_bytes = output_bytes
        self.truncated = truncated
        self.reason = reason


class ProgramOutput(Placed):
    """What a run wrote, as kept (at most the cap, then a marker): recorded at its end, in
    events of at most ``BATCH_CHARACTERS`` of text each (no event near a message size limit).

    ``chunks`` are seed 000's ``{"timestamp", "stream", "content"}`` in the order they were read.
    """

    @staticmethod
    def create_id(run_id: str) -> UUID:
        return output_id(run_id)

    @event("Recorded")
    def __init__(
        self, *, run_id: str, team_id: str, chunks: list[dict[str, Any]], truncated: bool
    ) -> None:
        self.run_id = run_id
        self.team_id = team_id
        self.chunks = [dict(c) for c in chunks]
        self.truncated = truncated

    @classmethod
    def record(
        cls, run_id: str, team_id: str, chunks: list[dict[str, Any]], truncated: bool
    ) -> ProgramOutput:
        batches = _batches(chunks)
        output = cls(run_id=run_id, team_id=team_id, chunks=batches[0], truncated=truncated)
        for batch in batches[1:]:
            output._appended(chunks=batch)
        return output

    @event("Appended")
    def _appended(self, chunks: list[dict[str, Any]]) -> None:
        self.chunks.extend(dict(c) for c in chunks)


BATCH_CHARACTERS = 131_072


def _batches(chunks: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Consecutive chunks, at most ``BATCH_CHARACTERS`` of content a batch (one bigger chunk
    alone); always at least one batch."""
    batches: list[list[dict[str, Any]]] = [[]]
    size = 0
    for chunk in chunks:
        length = len(chunk.get("content", ""))
        if batches[-1] and size + length > BATCH_CHARACTERS:
            batches.append([])
            size = 0
        batches[-1].append(chunk)
        size += length
    return batches


def output_id(run_id: str | UUID) -> UUID:
    return uuid5(_NAMESPACE, str(run_id))
